#!/usr/bin/env python3
"""backends/onednn/benchmarks/precision.py: tbk_onednn's precisions (the method option "precision":
fp32, bf16, auto) against OpenVINO's default precision and its f32, on torchvision's networks, one
thread, with this core's fp32, bf16 and int8 peaks; prints a markdown report ending in issue 34's
goal lines.

    PYTHONPATH=build/python /usr/bin/python3 backends/onednn/benchmarks/precision.py \
        [--networks mobilenet_v2 ...] [--batches 1 8] [--repetitions 9] [--calls 3] [--out FILE]

Debian's python3-torch and python3-torchvision build the networks (random weights, eval mode,
224x224), time tbk_onednn (tbk.lower of the scripted module, fast path) at each precision and
export the networks to ONNX for OpenVINO, which runs in a child of the python3 on PATH (pip's
openvino; alternatives.py) at its default inference precision ("bf16" on CPUs where OpenVINO runs
bf16) and at f32. Each repetition takes every path once, in random order; medians in ms per call,
GFLOP/s (convolution and linear multiply-adds x2 over the time) in brackets. Errors: the largest
difference from eager fp32, relative to the output's largest magnitude. Peaks: fma_peak.c (fp32
FMA) and lowp_peak.c (AVX512_BF16's vdpbf16ps; AVX512_VNNI's vpdpbusd or AVX-512BW's and AVX2's
three-instruction int8 sequence; AMX said present or not, not measured), built with cc.

With --zoo instead: bf16's error on torchvision's 17 classification networks (zoo.py's, traced,
tbk.lower whole or tbk.partition(freeze=True) where a node is refused, --zoo-batch random inputs
at each one's standard size): the largest difference from eager fp32 relative to the output's
scale, top-1 agreement (the share of inputs whose argmax is eager's) and eager's top-1 margin (the
median gap between its two largest logits, relative to the output's scale: random weights leave
some networks' logits closer than bf16's error, where top-1 agreement means nothing).

Goal lines (issue 34), each printed, measured or "not measured" with the reason: on a CPU with AMX,
bf16 at least 1.0x OpenVINO's default on each network at batch 1 and 4x tbk_onednn fp32 on
ResNet-50; on a CPU without AMX, "auto" never slower than fp32 (its interval's low end at or below
1.0); int8 (at least 1.0x the fastest int8 path with AMX, 1.5x fp32 on ResNet-50 without) is
int8.py's (it needs torch 2's PT2E quantization; this runs on Debian's torch 1.13).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import warnings

import torch
import torchvision

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zoo  # noqa: E402  (the folder's scripts as modules; the torchvision networks)
from zoo import load_script  # noqa: E402

run_onednn = load_script("run_onednn")
alternatives, bench = run_onednn.alternatives, run_onednn.bench
NETWORKS = ["mobilenet_v2", "mobilenet_v3_large", "resnet18", "resnet50"]
TITLES = {"mobilenet_v2": "MobileNetV2", "mobilenet_v3_large": "MobileNetV3-Large", "resnet18": "ResNet-18",
          "resnet50": "ResNet-50"}
PRECISIONS = ["fp32", "bf16", "auto"]
PATHS = [f"tbk_onednn_{p}" for p in PRECISIONS] + ["openvino_default", "openvino"]
PATH_TITLES = {"tbk_onednn_fp32": "tbk_onednn fp32", "tbk_onednn_bf16": "tbk_onednn bf16",
               "tbk_onednn_auto": "tbk_onednn auto", "openvino_default": "OpenVINO default ({})",
               "openvino": "OpenVINO f32"}


def peaks(directory):
    """{"fp32": (GFLOP/s, how), "bf16": (GFLOP/s or None, how), "int8": (GOP/s or None, how),
    "amx": "present, not measured" | "none"} of this core."""
    found = {}
    for program in ("fma_peak", "lowp_peak"):
        binary = os.path.join(directory, program)
        subprocess.run(["cc", "-O2", os.path.join(HERE, program + ".c"), "-o", binary], check=True)
        out = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.splitlines()
        if program == "fma_peak":
            found["fp32"] = (float(out[0]), out[1] + " FMA")
            continue
        for line in out[:2]:
            kind, value, *how = line.split()
            found[kind] = (None, "none") if value == "none" else (float(value), how[0])
        found["amx"] = out[2].split(" ", 1)[1]
    return found


def measure(networks, batches, repetitions, calls, directory):
    """{case: {"times_ms": {path: [ms, ...]}, "errors": {path: e}, "gflop": G, "failed": {...}}}
    and the OpenVINO runtimes' versions and what is missing."""
    alternatives.one_thread()
    made = alternatives.build_networks([f"torchvision.{n}" for n in networks])
    cases = [(name, batch) for name in made for batch in batches]
    alternatives.export_onnx(made, cases, directory)
    results = {}
    with alternatives.Runtimes(os.path.join(directory, "manifest.json"), ["openvino", "openvino_default"]) as runtimes:
        for name, batch in cases:
            key = alternatives.case_key(name, batch)
            module, x = made[name]
            xb = alternatives.batched(x, batch)
            lowered = {f"tbk_onednn_{p}": tbk.lower(torch.jit.script(module), "tbk_onednn",
                                                    {"forward": {"precision": p}}, example_inputs=(xb,), path="fast")
                       for p in PRECISIONS}
            with torch.no_grad():
                want = module(xb).numpy()
                errors = {p: alternatives.relative_error(f(xb).numpy(), want) for p, f in lowered.items()}
                times = run_onednn.time_paths(key, lowered, runtimes, xb, repetitions, calls)
            errors.update(runtimes.errors.get(key, {}))
            results[key] = {"times_ms": times, "errors": errors, "failed": runtimes.failed.get(key, {}),
                            "gflop": run_onednn.flops_of(module, xb) / 1e9}
            print(f"{key}: " + ", ".join(f"{p} {statistics.median(t):.2f} ms" for p, t in times.items()),
                  file=sys.stderr, flush=True)
        return results, runtimes.versions, runtimes.missing


def openvino_default_precision():
    """OpenVINO's default inference precision on this CPU, asked in the runtimes' Python."""
    probe = "import openvino; print(openvino.Core().get_property('CPU', 'INFERENCE_PRECISION_HINT').to_string())"
    done = subprocess.run([alternatives.RUNTIMES_PYTHON, "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def goals(results, found):
    """Goal lines: measured ones as bench.goal_line prints them, the others marked not measured."""
    lines, amx = [], found["amx"] != "none"
    r = lambda key, top, bottom: bench.ratio_interval(results[key]["times_ms"][top], results[key]["times_ms"][bottom])
    for name in NETWORKS:
        key = alternatives.case_key(f"torchvision.{name}", 1)
        if key not in results:
            continue
        title = f"{TITLES[name]}, batch 1"
        if amx and "openvino_default" in results[key]["times_ms"]:
            lines.append(bench.goal_line(f"{title}: OpenVINO default / tbk_onednn bf16",
                                         *r(key, "openvino_default", "tbk_onednn_bf16"), 1.0, "min"))
        else:
            lines.append(f"goal {title}: OpenVINO default / tbk_onednn bf16 (>= 1.0, with AMX): not measured: "
                         + ("OpenVINO did not run" if amx else "this CPU has no AMX"))
        if not amx:
            lines.append(bench.goal_line(f"{title}: tbk_onednn auto / fp32 (no AMX)",
                                         *r(key, "tbk_onednn_auto", "tbk_onednn_fp32"), 1.0, "not_slower"))
        lines.append(f"goal {title}: fastest int8 path / tbk_onednn int8 (>= 1.0, with AMX): not measured here: "
                     "int8.py measures it (PT2E quantization needs torch 2)")
    key = alternatives.case_key("torchvision.resnet50", 1)
    if key in results and amx:
        lines.append(bench.goal_line("ResNet-50, batch 1: tbk_onednn fp32 / bf16 (AMX)",
                                     *r(key, "tbk_onednn_fp32", "tbk_onednn_bf16"), 4.0, "min"))
    else:
        lines.append("goal ResNet-50, batch 1: tbk_onednn fp32 / bf16 (>= 4.0, with AMX): not measured: "
                     + ("this CPU has no AMX" if not amx else "ResNet-50 not measured"))
    lines.append("goal ResNet-50, batch 1: tbk_onednn fp32 / int8 (>= 1.5, without AMX): not measured here: "
                 "int8.py measures it (PT2E quantization needs torch 2)")
    return lines


def report(results, found, isa, versions, missing, default_precision, repetitions):
    titles = {p: PATH_TITLES[p].format(default_precision) for p in PATHS}
    peak_text = (f"fp32 {found['fp32'][0]:.1f} GFLOP/s ({found['fp32'][1]}); bf16 "
                 + (f"{found['bf16'][0]:.1f} GFLOP/s ({found['bf16'][1]})" if found["bf16"][0] else "none")
                 + "; int8 " + (f"{found['int8'][0]:.1f} GOP/s ({found['int8'][1]})" if found["int8"][0] else "none")
                 + f"; AMX {found['amx']}")
    times = ["| network | batch | GFLOP | " + " | ".join(titles[p] for p in PATHS) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(PATHS)]
    errors = ["| network | batch | " + " | ".join(titles[p] for p in PATHS) + " |",
              "| --- | ---: |" + " ---: |" * len(PATHS)]
    for key, case in results.items():
        name, batch = key.rsplit("/", 1)
        row = f"| {TITLES[name.split('.', 1)[1]]} | {batch} | "
        cells = []
        for p in PATHS:
            t = case["times_ms"].get(p)
            cells.append(f"{statistics.median(t):,.2f} ({case['gflop'] / (statistics.median(t) / 1e3):,.1f})"
                         if t else "n/a")
        times.append(row + f"{case['gflop']:.3g} | " + " | ".join(cells) + " |")
        errors.append(row + " | ".join(f"{case['errors'][p]:.1e}" if p in case["errors"] else "n/a"
                                       for p in PATHS) + " |")
    notes = [f"- {key}, {r}: {why}" for key, case in results.items() for r, why in case["failed"].items()]
    notes += [f"- {r}: {why}" for r, why in missing.items()]
    return "\n".join([
        f"{run_onednn.cpu_model()}, oneDNN ISA {isa}; Debian's torch {torch.__version__}; "
        + (f"OpenVINO {versions['openvino'].split('-')[0]}" if "openvino" in versions else "no OpenVINO")
        + f"; one thread; {repetitions} repetitions, paths in random turns; ms per call (GFLOP/s).",
        "", f"Peaks of this core: {peak_text}.", "", *times, "",
        "Largest error against eager fp32, relative to the output's largest magnitude:", "", *errors,
        *([""] + notes if notes else []), "", "```text", *goals(results, found), "```"])


def zoo_errors(batch):
    """Markdown: for each of zoo.py's networks in bf16, its error against eager fp32 and top-1
    agreement over `batch` random inputs."""
    lines = ["| network | how | error | top-1 agreement | eager's top-1 margin |", "| --- | --- | ---: | ---: | ---: |"]
    for name in zoo.NETWORKS:
        module = zoo.make(name)
        side = 299 if name == "inception_v3" else 224
        x = torch.randn(batch, 3, side, side)
        traced = torch.jit.trace(module, x, check_trace=False)
        options = {"forward": {"precision": "bf16"}}
        try:
            lowered, how = tbk.lower(traced, "tbk_onednn", options, example_inputs=(x,)), "whole"
        except RuntimeError:
            lowered, how = tbk.partition(traced, "tbk_onednn", options, example_inputs=(x,), freeze=True), "partitioned"
        with torch.no_grad():
            want, got = module(x), lowered(x)
        error = ((got - want).abs().max() / want.abs().max()).item()
        agreement = (got.argmax(1) == want.argmax(1)).float().mean().item()
        top2 = want.topk(2, dim=1).values
        margin = ((top2[:, 0] - top2[:, 1]) / want.abs().max()).median().item()
        lines.append(f"| {name} | {how} | {error:.1e} | {agreement:.0%} | {margin:.1e} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=NETWORKS, choices=NETWORKS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--calls", type=int, default=3, help="calls per timed sample")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--zoo", action="store_true", help="bf16's error on zoo.py's 17 networks instead")
    parser.add_argument("--zoo-batch", type=int, default=16)
    args = parser.parse_args()
    if args.zoo:
        isa = run_onednn.onednn_isa(os.environ)
        text = (f"{run_onednn.cpu_model()}, oneDNN ISA {isa}; Debian's torch {torch.__version__}; "
                f"bf16 against eager fp32, {args.zoo_batch} random inputs per network.\n\n" + zoo_errors(args.zoo_batch))
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        return
    with tempfile.TemporaryDirectory() as directory:
        found = peaks(directory)
        results, versions, missing = measure(args.networks, args.batches, args.repetitions, args.calls, directory)
    text = report(results, found, run_onednn.onednn_isa(os.environ), versions, missing, openvino_default_precision(),
                  args.repetitions)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
