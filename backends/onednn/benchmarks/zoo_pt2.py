#!/usr/bin/env python3
"""backends/onednn/benchmarks/zoo_pt2.py: tbk_onednn under torch.compile on torchvision's
classification zoo, checked and measured against PyTorch 2's own CPU paths.

    PYTHONPATH=build-214/python V/bin/python backends/onednn/benchmarks/zoo_pt2.py \
        [--networks resnet18 ...] [--timed resnet18 ...] [--repetitions 7] [--batches 1 8] [--check-only]
        [--out docs/zoo-pt2.md]

Needs a torch with torchvision (torch 2.14.1 + torchvision 0.29.1 in a venv, tbk built against it).
For each network (random weights, eval mode, 224x224, 299 for inception_v3):
- checked: torch.compile(model, backend="tbk_onednn", dynamic=True) called at batch 2 and 4 under
  torch.no_grad(): the largest difference from eager relative to the output's scale (goal: 1e-4),
  one compile for both batches, and how many of the network's convolution and linear layers run
  outside tbk_onednn (their ATen operators left in the compiled graph: goal 0);
- timed, one thread, each batch of --batches (paths taken in random turns, median of
  --repetitions calls after warm-up): eager; torch.compile with Inductor and
  torch._inductor.config.freezing = True (the fastest Inductor CPU setting for inference);
  torch.compile(backend="tbk_onednn") (static shapes, compiled at that batch); tbk_onednn's
  TorchScript module (tbk.lower of the traced module, or tbk.partition where a node is refused);
  and, where the executorch package imports, XNNPACK's and tbk_onednn's .pte (ExecuTorch's Python
  runtime).
The goal lines: torch.compile(backend="tbk_onednn") at least 1.5x faster than Inductor with
freezing on the geometric mean at batch 1, and within 5% of tbk_onednn's own TorchScript path on
every network (bootstrap intervals over the repetitions; a goal passes when its whole interval does).
"""
import argparse
import math
import os
import random
import statistics
import sys
import time
import warnings

import torch
import torchvision

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn, for torch.compile too)

warnings.filterwarnings("ignore")
NETWORKS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
            "squeezenet1_1", "regnet_y_400mf", "shufflenet_v2_x1_0", "mnasnet1_0", "efficientnet_b0",
            "densenet121", "googlenet", "inception_v3", "alexnet", "vgg11_bn", "convnext_tiny", "vit_b_16"]
WEIGHTED = ("aten.conv2d", "aten.convolution", "aten.linear", "aten.addmm", "aten.mm", "aten.matmul", "aten.bmm")


def make(name):
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(**kwargs).eval()
    if name == "vit_b_16":  # torchvision starts ViT's head at zero: its output would be zero
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def side(name):
    return 299 if name == "inception_v3" else 224


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


class Recorder:
    """A torch.compile backend that records what tbk_onednn left outside its regions."""

    def __init__(self, **kwargs):
        self.inner = tbk.compile.backend("tbk_onednn", **kwargs)
        self.compiled, self.left = [], []

    def __call__(self, gm, example_inputs, **kwargs):
        compiled = self.inner(gm, example_inputs, **kwargs)
        self.compiled.append(compiled)
        graph_module = getattr(compiled, "graph_module", None)
        if graph_module is not None:  # the weighted operators left beside the region calls
            self.left += [str(n.target) for n in graph_module.graph.nodes
                          if n.op == "call_function" and any(w in str(n.target) for w in WEIGHTED)]
        return compiled


def check(name):
    model = make(name)
    recorder = Recorder()
    compiled = torch.compile(model, backend=recorder, dynamic=True)
    errors = []
    with torch.no_grad():
        for batch in (2, 4):
            x = torch.randn(batch, 3, side(name), side(name))
            errors.append(relative_error(compiled(x), model(x)))
    regions = sum(len(c.report.regions) for c in recorder.compiled if hasattr(c, "report"))
    return {"error": max(errors), "compiles": len(recorder.compiled), "regions": regions, "left": recorder.left}


def timed_paths(name, batch):
    """name -> a call of one path, warmed up."""
    model = make(name)
    x = torch.randn(batch, 3, side(name), side(name))
    torch._dynamo.reset()
    paths = {"eager": lambda: model(x)}
    with torch.no_grad():
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
        inductor = torch.compile(make(name), backend="inductor")
        inductor(x)
        paths["inductor_freezing"] = lambda: inductor(x)
        tbk_compiled = torch.compile(make(name), backend="tbk_onednn")
        tbk_compiled(x)
        paths["compile_tbk_onednn"] = lambda: tbk_compiled(x)
        traced = torch.jit.trace(make(name), x)
        try:
            scripted = tbk.lower(traced, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        except RuntimeError:
            scripted = tbk.partition(traced, "tbk_onednn", example_inputs=(x,), freeze=True)
        scripted(x)
        paths["torchscript_tbk_onednn"] = lambda: scripted(x)
        paths.update(pte_paths(name, x))
        for call in paths.values():
            call()
    return paths


def pte_paths(name, x):
    """XNNPACK's and tbk_onednn's .pte of the network, run by ExecuTorch's Python runtime (none
    when the executorch package does not import)."""
    try:
        import tbk.executorch
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except ImportError:
        return {}
    import tempfile
    out = {}
    for path, partitioner in (("xnnpack_pte", XnnpackPartitioner()), ("pte_tbk_onednn", tbk.executorch.partitioner("tbk_onednn"))):
        program = to_edge_transform_and_lower(torch.export.export(make(name), (x,)), partitioner=[partitioner]).to_executorch()
        with tempfile.NamedTemporaryFile(suffix=".pte", delete=False) as f:
            f.write(program.buffer)
        method = Runtime.get().load_program(f.name).load_method("forward")
        os.unlink(f.name)
        out[path] = (lambda m: lambda: m.execute([x]))(method)
    return out


def measure(paths, repetitions):
    samples = {p: [] for p in paths}
    with torch.no_grad():
        for _ in range(repetitions):
            order = list(paths)
            random.shuffle(order)
            for p in order:
                start = time.perf_counter()
                paths[p]()
                samples[p].append((time.perf_counter() - start) * 1e3)
    return samples


def bootstrap(statistic, samples, resamples=2000, seed=1):
    rng = random.Random(seed)
    values = sorted(statistic([[rng.choice(s) for _ in s] for s in sample_set]) for sample_set in
                    [samples] * resamples)
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="*", default=NETWORKS, help="the networks checked")
    parser.add_argument("--timed", nargs="*", default=None, help="the networks timed (default: --networks)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8])
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines = [f"`{' '.join(sys.argv)}` on {cpu}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
             f"{time.strftime('%Y-%m-%d')}, one thread.", "",
             "| network | error at batch 2 and 4 | compiles | tbk_onednn regions | weighted layers outside |",
             "| --- | ---: | ---: | ---: | --- |"]
    failures = []
    for name in args.networks:
        result = check(name)
        lines.append(f"| {name} | {result['error']:.1e} | {result['compiles']} | {result['regions']} | "
                     f"{', '.join(result['left']) or 'none'} |")
        print(lines[-1], flush=True)
        if result["error"] > 1e-4 or result["compiles"] != 1 or result["left"]:
            failures.append(name)
    goals = []
    if not args.check_only:
        for batch in args.batches:
            lines += ["", f"Batch {batch}, ms per call (median of {args.repetitions}):", "",
                      "| network | eager | Inductor + freezing | torch.compile(backend=\"tbk_onednn\") | tbk_onednn TorchScript | XNNPACK .pte | tbk_onednn .pte | Inductor / tbk_onednn | compile / TorchScript |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            speedups, overheads = [], {}
            for name in args.timed if args.timed is not None else args.networks:
                samples = measure(timed_paths(name, batch), args.repetitions)
                m = {p: statistics.median(s) for p, s in samples.items()}
                speedup = m["inductor_freezing"] / m["compile_tbk_onednn"]
                overhead = m["compile_tbk_onednn"] / m["torchscript_tbk_onednn"]
                speedups.append(speedup)
                overheads[name] = (samples["compile_tbk_onednn"], samples["torchscript_tbk_onednn"])
                pte = lambda p: f"{m[p]:.2f}" if p in m else "-"  # noqa: E731
                lines.append(f"| {name} | {m['eager']:.2f} | {m['inductor_freezing']:.2f} | {m['compile_tbk_onednn']:.2f} | "
                             f"{m['torchscript_tbk_onednn']:.2f} | {pte('xnnpack_pte')} | {pte('pte_tbk_onednn')} | "
                             f"{speedup:.2f}x | {overhead:.3f} |")
                print(lines[-1], flush=True)
            if batch == 1:
                geomean = math.exp(statistics.mean(math.log(s) for s in speedups))
                goals.append(f"goal torch.compile(backend=tbk_onednn) vs Inductor with freezing, geometric mean, batch 1: "
                             f"{geomean:.3f} (>= 1.5) {'PASS' if geomean >= 1.5 else 'FAIL'}")
                for name, (compiled, scripted) in overheads.items():
                    ratio = statistics.median(compiled) / statistics.median(scripted)
                    low, high = bootstrap(lambda s: statistics.median(s[0]) / statistics.median(s[1]), [compiled, scripted])
                    goals.append(f"goal {name}, batch 1: torch.compile(backend=tbk_onednn) / tbk_onednn TorchScript: "
                                 f"{ratio:.3f} [{low:.3f}, {high:.3f}] (<= 1.05) {'PASS' if high <= 1.05 else 'FAIL'}")
    text = "\n".join(lines) + ("\n\n```text\n" + "\n".join(goals) + "\n```\n" if goals else "\n")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write("# tbk_onednn under torch.compile on torchvision's zoo\n\n"
                    "Written by `backends/onednn/benchmarks/zoo_pt2.py`: each network compiled with "
                    "`torch.compile(model, backend=\"tbk_onednn\", dynamic=True)` and checked against eager at two "
                    "batch sizes, then timed against PyTorch 2's own CPU paths.\n\n" + text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
