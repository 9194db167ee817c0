#!/usr/bin/env python3
"""backends/onednn/benchmarks/executorch_paths.py: tbk_onednn as an ExecuTorch delegate, measured
against ExecuTorch's own CPU paths and TorchScript's best, one thread, batch 1.

    PYTHONPATH=build-pip/python python3 backends/onednn/benchmarks/executorch_paths.py \
        [--repetitions 15] [--calls 5] [--smoke] [--out docs/executorch-performance.md]

Needs pip's torch 2.13, executorch==1.5.1 and tbk built with -Dtorch=python (build-pip). The
networks are those of backends/onednn/models.py (built from torch.nn alone: pip's torchvision does
not import beside pip's torch), with random weights and batch-norm statistics: the
MobileNetV2-style network at 224x224, the ResNet-18-style one at 160x160 and 224x224, the MLP.
Each is exported once (torch.export) and run on every path, in random turns each repetition:
- tbk_onednn .pte: partitioned with tbk.executorch.partitioner("tbk_onednn");
- XNNPACK .pte: ExecuTorch's XnnpackPartitioner (the wheel's XnnpackBackend), its threadpool
  reset to one thread;
- portable .pte: no delegate (the wheel's kernels; two orders of magnitude slower, so timed on
  three single calls after the others);
- TorchScript frozen + optimize_for_inference (torch 2.13), and tbk_onednn lowered in
  TorchScript (tbk.lower, fast path), for reference.
Prints a table of medians (ms per call) and each path's error against eager (largest difference
relative to the output's largest magnitude); the last line is the goal of issue 23: tbk_onednn's
.pte at least as fast as XNNPACK's on each CNN at batch 1. --smoke: small inputs, two
repetitions, no goal (it proves that the script runs). --out writes the table as a page.
"""
import argparse
import importlib.machinery
import importlib.util
import os
import statistics
import sys
import tempfile
import warnings

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # before any library reads it

warnings.filterwarnings("ignore")
import torch  # noqa: E402

import tbk  # noqa: E402
import tbk.onednn  # noqa: E402,F401  (registers tbk_onednn for TorchScript and ExecuTorch)
import tbk.executorch  # noqa: E402
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: E402
from executorch.exir import to_edge_transform_and_lower  # noqa: E402
from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool  # noqa: E402
from executorch.runtime import Runtime  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def load_script(name, path):
    loader = importlib.machinery.SourceFileLoader(name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


# the helpers the other benchmarks measure with: paths in random turns, the CPU named
alternatives = load_script("alternatives", os.path.join(HERE, "alternatives.py"))
run_onednn = load_script("run_onednn", os.path.join(HERE, "run_onednn"))
models = load_script("models", os.path.join(ROOT, "backends", "onednn", "models.py"))

PATHS = ["tbk_onednn_pte", "xnnpack_pte", "portable_pte", "frozen_ofi", "tbk_onednn_torchscript"]
TITLES = {"tbk_onednn_pte": "tbk_onednn .pte", "xnnpack_pte": "XNNPACK .pte", "portable_pte": "portable .pte",
          "frozen_ofi": "TorchScript frozen + optimize_for_inference", "tbk_onednn_torchscript": "tbk_onednn TorchScript"}
CNNS = {"mobilenet_v2", "resnet"}


def cases(smoke):
    size = 32 if smoke else 224
    made = models.networks(size=size)
    out = [("mobilenet_v2", size, *made["mobilenet_v2"]), ("resnet", size, *made["resnet"])]
    if not smoke:
        out.insert(1, ("resnet", 160, made["resnet"][0], torch.randn(1, 3, 160, 160)))
    out.append(("mlp", None, *made["mlp"]))
    return out


def pte_runner(exported, partitioners, directory, name):
    path = os.path.join(directory, name + ".pte")
    with open(path, "wb") as f:
        f.write(to_edge_transform_and_lower(exported, partitioner=partitioners).to_executorch().buffer)
    method = Runtime.get().load_program(path).load_method("forward")
    return lambda x: method.execute([x])[0]


def runners(module, x, directory):
    exported = torch.export.export(module, (x,))
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(module)))
    lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,), path="fast")
    return {
        "tbk_onednn_pte": pte_runner(exported, [tbk.executorch.partitioner("tbk_onednn")], directory, "tbk_onednn"),
        "xnnpack_pte": pte_runner(exported, [XnnpackPartitioner()], directory, "xnnpack"),
        "portable_pte": pte_runner(exported, [], directory, "portable"),
        "frozen_ofi": frozen,
        "tbk_onednn_torchscript": lowered,
    }


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def measure(repetitions, calls, smoke):
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, size, module, x in cases(smoke):
            with torch.no_grad():
                want = module(x)
                run = runners(module, x, directory)
                errors = {}
                for path, f in run.items():
                    for _ in range(2):  # warm-up
                        got = f(x)
                    errors[path] = relative_error(got, want)
                samplers = {p: (lambda n, f=f: alternatives.sample_ms(f, x, n)) for p, f in run.items()
                            if p != "portable_pte"}
                times = alternatives.take_turns(samplers, repetitions, calls)
                # the portable kernels are two orders of magnitude slower: three single calls
                times["portable_pte"] = [alternatives.sample_ms(run["portable_pte"], x, 1) for _ in range(3)]
            rows.append((name, size, {p: statistics.median(t) for p, t in times.items()}, errors))
            print(f"{name} {size or ''}: " + ", ".join(f"{p} {statistics.median(times[p]):.2f} ms" for p in PATHS),
                  file=sys.stderr)
    return rows


def page(rows, command, repetitions, calls):
    lines = ["# tbk_onednn as an ExecuTorch delegate: measured", "",
             f"Generated by `{command}` on {run_onednn.cpu_model()}, torch {torch.__version__}, "
             f"executorch {tbk.executorch.executorch_version()}: batch 1, one thread on every path "
             f"(ExecuTorch's threadpool reset to 1, OMP/OpenBLAS at 1, torch.set_num_threads(1)), median "
             f"of {repetitions} samples of {calls} calls each, paths taken in random turns (the portable "
             "kernels: median of three single calls). The networks "
             "are those of backends/onednn/models.py with random weights; error is the largest "
             "difference from eager relative to the output's largest magnitude.", "",
             "| network | " + " | ".join(TITLES[p] + " ms" for p in PATHS) + " | XNNPACK / tbk_onednn | error tbk_onednn .pte |",
             "| --- |" + " --- |" * (len(PATHS) + 2)]
    for name, size, ms, errors in rows:
        title = f"{name} {size}x{size}" if size else name
        lines.append(f"| {title} | " + " | ".join(f"{ms[p]:.2f}" for p in PATHS) +
                     f" | {ms['xnnpack_pte'] / ms['tbk_onednn_pte']:.2f}x | {errors['tbk_onednn_pte']:.1e} |")
    return "\n".join(lines) + "\n"


def goal(rows):
    cnn = [(f"{n} {s}", ms["xnnpack_pte"] / ms["tbk_onednn_pte"]) for n, s, ms, _ in rows if n in CNNS]
    slower = [f"{name} ({ratio:.2f}x)" for name, ratio in cnn if ratio < 1.0]
    text = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in cnn)
    return (f"goal: tbk_onednn's .pte at least as fast as XNNPACK's on each CNN at batch 1, one thread: {text}: " +
            ("met" if not slower else "NOT met: " + ", ".join(slower)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.smoke:
        args.repetitions, args.calls = 2, 1
    torch.set_num_threads(1)
    _unsafe_reset_threadpool(1)
    rows = measure(args.repetitions, args.calls, args.smoke)
    command = "PYTHONPATH=build-pip/python python3 backends/onednn/benchmarks/executorch_paths.py" + \
        (f" --repetitions {args.repetitions}" if args.repetitions != 15 else "") + (" --smoke" if args.smoke else "")
    text = page(rows, command, args.repetitions, args.calls)
    if not args.smoke:
        text += "\n- " + goal(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
