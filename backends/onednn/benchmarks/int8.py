#!/usr/bin/env python3
"""backends/onednn/benchmarks/int8.py: tbk_onednn on PT2E-quantized torchvision networks against
PyTorch 2's and ExecuTorch's int8 CPU paths, one thread; prints a markdown report ending in issue
34's int8 goal lines.

    PYTHONPATH=build-214/python V/bin/python backends/onednn/benchmarks/int8.py \
        [--networks mobilenet_v2 ...] [--batches 1] [--repetitions 9] [--out FILE]

Needs a torch with torchvision, torchao and executorch (torch 2.14.1 + torchvision 0.29.1 in a
venv, tbk built against it: README, "With pip"). Each network (zoo_pt2.py's: random weights, eval
mode, 224x224) is quantized as users quantize for CPU: torch.export, then torchao's prepare_pt2e
(calibrated on 4 random batches) and convert_pt2e, with torchao's X86InductorQuantizer for
tbk_onednn and Inductor (where it fails, as torchao 0.18's does on ResNets, tbk_onednn takes the
XNNPACKQuantizer program and Inductor int8 is marked failed), ExecuTorch's XNNPACKQuantizer
(per-channel) for XNNPACK. The paths, timed
in random turns (median of --repetitions calls after a warm-up), ms per call and GOP/s
(convolution and linear multiply-adds x2 over the time) against this core's int8 peak
(lowp_peak.c):
- tbk_onednn fp32: tbk.export.lower of the fp32 program;
- tbk_onednn int8: tbk.export.lower of the X86InductorQuantizer program;
- Inductor fp32 and int8: torch.compile with torch._inductor.config.freezing = True (int8: the
  X86InductorQuantizer program, the flow torchao documents for Inductor);
- XNNPACK int8 .pte: the XNNPACKQuantizer program, XnnpackPartitioner, ExecuTorch's Python
  runtime.
Not run: ONNX Runtime QDQ and OpenVINO int8 (they need a quantized ONNX model: onnxruntime's
quantize_static or NNCF, neither installed beside torch 2.14.1 here); their rows say so.
Errors: the largest difference from the fp32 eager model, and for int8 paths also from the
quantized model in eager, relative to the output's largest magnitude.
Goal lines (issue 34): without AMX, tbk_onednn int8 at least 1.5x its fp32 on ResNet-50 at batch 1;
with AMX, at least 1.0x the fastest other int8 path on each network (printed as not measured on a
CPU without AMX, with the ratio for reference).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch
import torchvision

import tbk
import tbk.export
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zoo_pt2  # noqa: E402  (the networks, measure)
from zoo import load_script  # noqa: E402

run_onednn = load_script("run_onednn")
bench = run_onednn.bench
NETWORKS = ["mobilenet_v2", "mobilenet_v3_large", "resnet18", "resnet50"]
TITLES = {"mobilenet_v2": "MobileNetV2", "mobilenet_v3_large": "MobileNetV3-Large", "resnet18": "ResNet-18",
          "resnet50": "ResNet-50"}
PATHS = {"tbk_fp32": "tbk_onednn fp32", "tbk_int8": "tbk_onednn int8", "inductor_fp32": "Inductor fp32 + freezing",
         "inductor_int8": "Inductor int8 (X86InductorQuantizer)", "xnnpack_int8": "XNNPACK int8 .pte"}
INT8 = ("tbk_int8", "inductor_int8", "xnnpack_int8")


def make(name):
    """zoo_pt2's network with batch-norm statistics a trained network might have (as models.py
    sets them): torchvision's initial ones leave MobileNetV2's logits near 1e-9, which int8 rounds
    to zero."""
    model = zoo_pt2.make(name)
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model


def quantized(model, x, quantizer):
    """The PT2E-quantized model: prepare_pt2e, calibration on x and three random batches, convert_pt2e."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
    torch.manual_seed(1)
    for sample in [x] + [torch.randn_like(x) for _ in range(3)]:
        prepared(sample)
    return convert_pt2e(prepared)


def x86_quantizer():
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
    q = x86.X86InductorQuantizer()
    q.set_global(x86.get_default_x86_inductor_quantization_config())
    return q


def xnnpack_quantizer():
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                       get_symmetric_quantization_config)
    q = XNNPACKQuantizer()
    q.set_global(get_symmetric_quantization_config(is_per_channel=True))
    return q


def paths_of(name, batch):
    """path -> a warmed-up call; path -> the reference its error is also taken against (the
    quantized model in eager, for int8 paths); the input; the fp32 model."""
    import torch._inductor.config as inductor_config
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime
    model = make(name)
    x = torch.randn(batch, 3, 224, 224)
    torch._dynamo.reset()
    inductor_config.freezing = True
    calls, references, notes = {}, {}, []
    with torch.no_grad():
        calls["tbk_fp32"] = tbk.export.lower(torch.export.export(model, (x,)), "tbk_onednn").module()
        xnn = quantized(make(name), x, xnnpack_quantizer())
        references["xnnpack_int8"] = xnn(x)
        try:
            x86 = quantized(make(name), x, x86_quantizer())
        except ValueError as e:  # torchao 0.18 on ResNets' conv + add + relu
            x86 = None
            notes.append(f"{name}: X86InductorQuantizer failed ({e}); tbk_onednn int8 runs the XNNPACKQuantizer "
                         "program, Inductor int8 does not run")
        tbk_program = x86 if x86 is not None else xnn
        references["tbk_int8"] = tbk_program(x)
        calls["tbk_int8"] = tbk.export.lower(torch.export.export(tbk_program, (x,)), "tbk_onednn").module()
        calls["inductor_fp32"] = torch.compile(make(name), backend="inductor")
        if x86 is not None:
            references["inductor_int8"] = references["tbk_int8"]
            calls["inductor_int8"] = torch.compile(x86, backend="inductor")
        program = to_edge_transform_and_lower(torch.export.export(xnn, (x,)),
                                              partitioner=[XnnpackPartitioner()]).to_executorch()
        with tempfile.NamedTemporaryFile(suffix=".pte", delete=False) as f:
            f.write(program.buffer)
        method = Runtime.get().load_program(f.name).load_method("forward")
        os.unlink(f.name)
        calls["xnnpack_int8"] = lambda _x, m=method: m.execute([_x])[0]
        for call in calls.values():
            call(x)
    return calls, references, x, model, notes


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max()).item()


def int8_peak():
    """This core's int8 peak from lowp_peak.c (GOP/s), and whether it has AMX."""
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "lowp_peak")
        subprocess.run(["cc", "-O2", "-march=native", "-o", exe, os.path.join(HERE, "lowp_peak.c")], check=True)
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    found = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    bf16, int8 = found.get("bf16", ["?", "?"]), found.get("int8", ["?", "?"])
    amx = " ".join(found.get("amx", ["none"]))
    text = f"bf16 {bf16[0]} GFLOP/s ({bf16[1]}), int8 {int8[0]} GOP/s ({int8[1]}), AMX {amx}."
    return int8[0], amx, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="*", default=NETWORKS)
    parser.add_argument("--batches", nargs="*", type=int, default=[1])
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    peak, amx, peak_text = int8_peak()
    has_amx = not amx.startswith("none")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [f"`{' '.join(sys.argv)}` on {cpu}, oneDNN ISA {run_onednn.onednn_isa(dict(os.environ), sys.executable)}, "
             f"torch {torch.__version__}, torchvision {torchvision.__version__}, {time.strftime('%Y-%m-%d')}, one thread, "
             f"median of {args.repetitions} calls, paths in random turns; ms per call (GOP/s).", "",
             f"lowp_peak.c: {peak_text}", "",
             "| network | batch | GOP | " + " | ".join(PATHS.values()) + " | ONNX Runtime QDQ int8 | OpenVINO int8 |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in PATHS) + " | --- | --- |"]
    error_lines = ["", "Errors against the fp32 eager model (int8 paths: and against their quantized model in eager), "
                   "relative to the output's largest magnitude:", "",
                   "| network | batch | " + " | ".join(PATHS.values()) + " |", "| --- | ---: | " +
                   " | ".join("---:" for _ in PATHS) + " |"]
    medians = {}
    goals, notes = [], []
    for name in args.networks:
        for batch in args.batches:
            calls, references, x, model, why = paths_of(name, batch)
            notes += why
            gop = run_onednn.flops_of(model, x) / 1e9
            samples = zoo_pt2.measure({p: (lambda c: lambda: c(x))(c) for p, c in calls.items()}, args.repetitions)
            m = {p: statistics.median(s) for p, s in samples.items()}
            medians[(name, batch)] = samples
            lines.append(f"| {TITLES.get(name, name)} | {batch} | {gop:.3g} | " +
                         " | ".join(f"{m[p]:.2f} ({gop / m[p] * 1e3:.1f})" if p in m else "failed" for p in PATHS) +
                         " | not run | not run |")
            with torch.no_grad():
                want = model(x)
                cells = []
                for p in PATHS:
                    if p not in calls:
                        cells.append("failed")
                        continue
                    got = calls[p](x)
                    cell = f"{relative_error(got, want):.1e}"
                    if p in references:
                        cell += f" ({relative_error(got, references[p]):.1e})"
                    cells.append(cell)
            error_lines.append(f"| {TITLES.get(name, name)} | {batch} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
            if batch != 1:
                continue
            title = f"{TITLES.get(name, name)}, batch 1"
            others = min((p for p in ("inductor_int8", "xnnpack_int8") if p in m), key=lambda p: m[p])
            value, low, high = bench.ratio_interval(samples[others], samples["tbk_int8"])
            if has_amx:
                goals.append(bench.goal_line(f"{title}: fastest int8 path ({PATHS[others]}) / tbk_onednn int8",
                                             value, low, high, 1.0, "min"))
            else:
                goals.append(f"goal {title}: fastest int8 path / tbk_onednn int8 (>= 1.0, with AMX): not measured: "
                             f"this CPU has no AMX (here {PATHS[others]} / tbk_onednn int8 = {value:.3f} "
                             f"[{low:.3f}, {high:.3f}])")
            if name == "resnet50" and not has_amx:
                goals.append(bench.goal_line(f"{title}: tbk_onednn fp32 / int8 (without AMX)",
                                             *bench.ratio_interval(samples["tbk_fp32"], samples["tbk_int8"]), 1.5, "min"))
    if "resnet50" not in args.networks or has_amx:
        goals.append("goal ResNet-50, batch 1: tbk_onednn fp32 / int8 (>= 1.5, without AMX): not measured: "
                     + ("this CPU has AMX" if has_amx else "ResNet-50 not run"))
    lines += error_lines + [""] + notes + ["", "```text"] + goals + ["```"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
