#!/usr/bin/env bash
# run_fuzz.sh: builds the tbk_onednn payload fuzz target with clang (libFuzzer, AddressSanitizer,
# UndefinedBehaviorSanitizer), seeds its corpus with real payloads (write_seeds.py) and fuzzes
# for SECONDS. Fails on any finding: a crash, a sanitizer report, a leak, an exception other
# than std::invalid_argument, or a decoded program that does not re-encode to its bytes.
#
#   run_fuzz.sh SOURCE_ROOT WORK_DIR SECONDS PYTHON
#   (environment: PYTHONPATH with the tbk package and tbk.onednn, TBK_ONEDNN_MODELS)
#
# Longer runs: backends/onednn/fuzz/run_fuzz.sh . build/fuzz 3600 /usr/bin/python3 (docs/onednn.md).
set -euo pipefail
root=$1 work=$2 seconds=$3 python=$4
mkdir -p "$work/seeds" "$work/corpus"
clang=$(command -v clang++-14 || command -v clang++)
"$clang" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I "$root/backends/onednn" "$root/backends/onednn/fuzz/fuzz_onednn_payload.cpp" -o "$work/fuzz_onednn_payload"
"$python" "$root/backends/onednn/fuzz/write_seeds.py" "$work/seeds"
# (the corpus grows across runs in the same build directory; the seeds are rewritten each time;
# backends/onednn/fuzz/regressions holds every input a run has found, fixed since)
# (-error_exitcode=1: libFuzzer's default, 77, is what meson reads as a skipped test)
"$work/fuzz_onednn_payload" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$work/seeds" \
  "$root/backends/onednn/fuzz/regressions"
