#!/usr/bin/env bash
# run_fuzz.sh: builds tbk_onednn's fuzz targets with clang (libFuzzer, AddressSanitizer,
# UndefinedBehaviorSanitizer), seeds their corpora with real payloads (write_seeds.py) and fuzzes
# the payload's program decoder for SECONDS and its ":checksums" text for a third of that. Fails
# on any finding: a crash, a sanitizer report, a leak, an exception other than
# std::invalid_argument, a decoded program that does not re-encode to its bytes, or checksums that
# do not read back as written.
#
#   run_fuzz.sh SOURCE_ROOT WORK_DIR SECONDS PYTHON
#   (environment: PYTHONPATH with the tbk package and tbk.onednn, TBK_ONEDNN_MODELS)
#
# Longer runs: backends/onednn/fuzz/run_fuzz.sh . build/fuzz 3600 /usr/bin/python3 (docs/onednn.md).
set -euo pipefail
root=$1 work=$2 seconds=$3 python=$4
mkdir -p "$work/seeds" "$work/corpus" "$work/checksums_seeds" "$work/checksums_corpus"
clang=$(command -v clang++-14 || command -v clang++)
for target in fuzz_onednn_payload fuzz_onednn_checksums; do
  "$clang" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I "$root/backends/onednn" "$root/backends/onednn/fuzz/$target.cpp" -o "$work/$target"
done
"$python" "$root/backends/onednn/fuzz/write_seeds.py" "$work/seeds" "$work/checksums_seeds"
# (the corpora grow across runs in the same build directory; the seeds are rewritten each time;
# backends/onednn/fuzz/regressions holds every input a run has found, fixed since)
# (-error_exitcode=1: libFuzzer's default, 77, is what meson reads as a skipped test)
"$work/fuzz_onednn_payload" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$work/seeds" \
  "$root/backends/onednn/fuzz/regressions"
"$work/fuzz_onednn_checksums" -max_total_time="$(( (seconds + 2) / 3 ))" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -max_len=4096 -print_final_stats=1 -artifact_prefix="$work/checksums-" \
  "$work/checksums_corpus" "$work/checksums_seeds"
