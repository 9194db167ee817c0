#!/usr/bin/env python3
"""backends/onednn/benchmarks/zoo.py: tbk_onednn on torchvision's classification zoo, measured.

    PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 backends/onednn/benchmarks/zoo.py \
        [--networks resnet18 ...] [--repetitions 7] [--size N] [--out docs/zoo.md]

For each network (random weights, eval mode, batch 1, its standard input size: 299 for
inception_v3, else 224) and each of scripted (torch.jit.script) and traced (torch.jit.trace):
tbk.lower whole when every node is supported, else tbk.partition(freeze=True) with the example
input; then one row: how (whole, or regions and nodes in the backend), the share of the network's
convolution and linear multiply-adds in tbk_onednn (counted with forward hooks on the eager
modules; a convolution or linear operator that PyTorch's profiler sees run in TorchScript during a
call counts against it, as one mean layer), ms per call at one
thread (median of --repetitions calls, after two warm-up calls, paths taken in turns) against
torch.jit.freeze + optimize_for_inference of the same scripted/traced module, and the largest
difference from eager relative to the output's scale. The last lines are the goals of issue 22:
every CNN at 95% or more of its multiply-adds in tbk_onednn, scripted and traced; the geometric
mean over the CNNs at least 1.3x faster than frozen + optimize_for_inference; no partition
aborts. Needs Debian's python3-torchvision beside Debian's torch.
"""
import argparse
import importlib.machinery
import importlib.util
import math
import os
import re
import statistics
import sys
import time
import warnings

import torch
import torchvision

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")


def load_script(name):
    """A script of this folder as a module (run_onednn has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader(name, os.path.join(os.path.dirname(os.path.abspath(__file__)), name))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


# what the other benchmarks measure with: one thread, the paths timed in random turns
# (alternatives.py), multiply-adds counted with forward hooks and the CPU named (run_onednn)
run_onednn = load_script("run_onednn")
alternatives = run_onednn.alternatives
NETWORKS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
            "squeezenet1_1", "regnet_y_400mf", "shufflenet_v2_x1_0", "mnasnet1_0", "efficientnet_b0",
            "densenet121", "googlenet", "inception_v3", "alexnet", "vgg11_bn", "convnext_tiny", "vit_b_16"]
TRANSFORMERS = {"vit_b_16"}  # not a CNN: outside the CNN goals
WEIGHTED = (torch.nn.Conv2d, torch.nn.Linear)


def make(name):
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(**kwargs).eval()
    if name in TRANSFORMERS:  # torchvision starts ViT's head at zero: its output would be zero
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


WEIGHTED_OPS = {"aten::conv2d", "aten::_convolution", "aten::linear", "aten::addmm", "aten::mm", "aten::matmul",
                "aten::bmm", "aten::_native_multi_head_attention"}


def weighted_left(model, x):
    """How many convolution and linear operators run in TorchScript during a call of `model`
    (PyTorch's profiler; operators that no other operator called: tbk_onednn's regions call
    none). Counting what
    ran, not what the report lists, leaves out the branches a call does not take (scripted ViT's
    slow attention path)."""
    with torch.no_grad(), torch.autograd.profiler.profile() as profile:
        model(x)
    def called_by_an_operator(e):
        return e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::")
    return sum(1 for e in profile.function_events if e.name in WEIGHTED_OPS and not called_by_an_operator(e))


def timed(fn, x, repetitions, paths):
    """Median ms per call of each path, after two warm-up calls, the paths taken in random turns."""
    with torch.no_grad():
        for p in paths:
            fn[p](x), fn[p](x)
        times = alternatives.take_turns({p: lambda calls, p=p: alternatives.sample_ms(fn[p], x, calls) for p in paths},
                                        repetitions, calls=1)
    return {p: statistics.median(t) for p, t in times.items()}


def row(name, mode, size, repetitions):
    module = make(name)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        want = module(x)
    # (check_trace=False: torch.jit.trace's own sanity check fails on torchvision's ViT)
    made = torch.jit.script(module) if mode == "scripted" else torch.jit.trace(module, x, check_trace=False)
    started = time.perf_counter()
    try:
        lowered = tbk.lower(made, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        how, report = "whole", ""
    except RuntimeError:
        try:
            lowered = tbk.partition(made, "tbk_onednn", example_inputs=(x,), freeze=True)
        except RuntimeError as e:
            return {"name": name, "mode": mode, "how": "ABORTED: " + str(e).splitlines()[0][:120]}
        report = tbk.report(lowered)
        head = re.search(r"method forward: (\d+) regions?, (\d+) of (\d+) nodes", report)
        how = f"{head.group(1)} regions, {head.group(2)} of {head.group(3)} nodes"
    prepare_s = time.perf_counter() - started
    total = run_onednn.flops_of(module, x) / 2
    layers = sum(isinstance(m, WEIGHTED) for m in module.modules())
    left = weighted_left(lowered, x)
    # each weighted node left stands for one layer; its share is estimated as the mean layer's
    share = 1.0 if left == 0 else max(0.0, 1 - left / max(1, layers))
    reference = torch.jit.optimize_for_inference(torch.jit.freeze(
        torch.jit.script(module) if mode == "scripted" else torch.jit.trace(module, x, check_trace=False)))
    try:
        with torch.no_grad():
            reference(x)
        paths = ["tbk", "ofi"]
    except RuntimeError as e:  # PyTorch's own path can fail (mkldnn's adaptive pool, small inputs)
        print(f"{name} {mode}: frozen + optimize_for_inference fails: {str(e).splitlines()[-1][:100]}")
        paths = ["tbk"]
    ms = timed({"tbk": lowered, "ofi": reference}, x, repetitions, paths)
    ms.setdefault("ofi", float("nan"))
    with torch.no_grad():
        got = lowered(x)
    if not isinstance(got, torch.Tensor):  # scripted GoogLeNet and Inception v3: (logits, aux...)
        got = got[0]
    error = alternatives.relative_error(got.numpy(), want.numpy())
    return {"name": name, "mode": mode, "how": how, "share": share, "gmacs": total / 1e9,
            "tbk_ms": ms["tbk"], "ofi_ms": ms["ofi"], "error": error, "prepare_s": prepare_s, "left": left}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="*", default=NETWORKS)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--size", type=int, default=0, help="input size (default: each network's own)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    alternatives.one_thread()
    rows = []
    for name in args.networks:
        size = args.size or (299 if name == "inception_v3" else 224)
        for mode in ("scripted", "traced"):
            r = row(name, mode, size, args.repetitions)
            rows.append(r)
            if "share" in r:
                print(f"{name:20s} {mode:8s} {r['how']:34s} weighted {r['share']*100:5.1f}%  "
                      f"{r['tbk_ms']:8.2f} ms  vs {r['ofi_ms']:8.2f} ms ({r['ofi_ms']/r['tbk_ms']:.2f}x)  "
                      f"err {r['error']:.1e}", flush=True)
            else:
                print(f"{name:20s} {mode:8s} {r['how']}", flush=True)
    lines = ["| network | how | conv/linear multiply-adds in tbk_onednn | GMAC | tbk_onednn ms | frozen + optimize_for_inference ms | speed-up | error |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "share" not in r:
            lines.append(f"| {r['name']} {r['mode']} | {r['how']} | | | | | | |")
            continue
        share = "100%" if r["left"] == 0 else f"about {r['share']*100:.0f}% ({r['left']} layers left, estimated by count)"
        lines.append(f"| {r['name']} {r['mode']} | {r['how']} | {share} | {r['gmacs']:.2f} | "
                     f"{r['tbk_ms']:.2f} | {r['ofi_ms']:.2f} | {r['ofi_ms']/r['tbk_ms']:.2f}x | {r['error']:.1e} |")
    cnn = [r for r in rows if "share" in r and r["name"] not in TRANSFORMERS]
    timed_cnn = [r for r in cnn if not math.isnan(r["ofi_ms"])]
    aborts = [r for r in rows if "share" not in r]
    low = [f"{r['name']} {r['mode']}" for r in cnn if r["share"] < 0.95]
    geomean = (math.exp(statistics.mean(math.log(r["ofi_ms"] / r["tbk_ms"]) for r in timed_cnn))
               if timed_cnn else 0)
    goals = [f"goal: every CNN has >= 95% of its conv/linear multiply-adds in tbk_onednn: "
             f"{'met' if not low else 'NOT met: ' + ', '.join(low)}",
             f"goal: geometric mean speed-up over frozen + optimize_for_inference >= 1.3x at batch 1, one "
             f"thread: {geomean:.2f}x over {len(timed_cnn)} rows, {'met' if geomean >= 1.3 else 'NOT met'}",
             f"goal: no partition aborts: {'met' if not aborts else 'NOT met: ' + ', '.join(r['name'] + ' ' + r['mode'] for r in aborts)}"]
    print("\n".join(goals))
    if args.out:
        page = f"""# tbk_onednn on torchvision's zoo

Generated by `PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3
backends/onednn/benchmarks/zoo.py --repetitions {args.repetitions}{f" --size {args.size}" if args.size else ""} --out docs/zoo.md` on {run_onednn.cpu_model()}, Debian's torch
{torch.__version__} and torchvision {torchvision.__version__}: random weights, eval mode, batch 1,
{f"{args.size}x{args.size}" if args.size else "224x224 (inception_v3: 299x299)"}, one thread everywhere, median of {args.repetitions} calls taken in
turns with the reference. Each network, scripted and traced, is lowered whole when tbk_onednn runs
every node, else partitioned (`tbk.partition(..., example_inputs=(x,), freeze=True)`); the
reference is the same scripted or traced module frozen and put through
`torch.jit.optimize_for_inference`. Multiply-adds are counted with forward hooks on the eager
convolution and linear layers (for vit_b_16, whose eager attention runs PyTorch's fused kernel,
its projections are not counted); a convolution or linear operator that PyTorch's profiler sees
run in TorchScript during a call of the lowered model counts against the share; error is the
largest difference from eager relative to the output's largest magnitude. vit_b_16 is not a CNN and is outside the CNN goals (torchvision
starts its head at zero; here it is drawn from N(0, 0.02^2), so that the error says something).
Scripted, ViT's attention runs in `torch.nn.MultiheadAttention`'s eval-mode fast path,
`aten::_native_multi_head_attention`, which tbk_onednn composes of its own operations; the slow
path's branch is never taken and stays in TorchScript (the share counts what ran).
googlenet and inception_v3 scripted return a tuple with `None` for their auxiliary outputs, which
a lowered method cannot return: they are partitioned, one region holding all but the tuple's
nodes.

""" + "\n".join(lines) + "\n\n" + "\n".join("- " + g for g in goals) + "\n"
        with open(args.out, "w") as f:
            f.write(page)
    return 0 if not low and geomean >= 1.3 and not aborts else 1


if __name__ == "__main__":
    sys.exit(main())
