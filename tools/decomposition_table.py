#!/usr/bin/env python3
"""decomposition_table.py: what each common operator becomes on PyTorch's export paths, as a
Markdown table (docs/torch-compile.md quotes it): the operator as the author wrote it (torch.export's
graph, which tbk.export and tbk.compile show a backend's hooks), ExecuTorch's Edge graph when no
backend claims it (to_edge's core ATen decompositions), and aot_autograd's graph with Inductor's
decomposition table (what a torch.compile backend built on aot_autograd would see). tbk spells each
operator as TorchScript does before a hook sees it (tbk.bridge.SPELLINGS), and keeps an operator the
hook claims from being decomposed (ExecuTorch's ops_to_not_decompose).

Usage: python3 tools/decomposition_table.py [--out FILE]   (torch 2, pip's)
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def cases():
    """name -> (module, example inputs)."""
    x4, x2, x3 = torch.randn(2, 8, 6, 6), torch.randn(2, 8), torch.randn(2, 5, 8)
    return {
        "`nn.Linear` (2-D input)": (nn.Linear(8, 4), (x2,)),
        "`nn.Linear` (3-D input)": (nn.Linear(8, 4), (x3,)),
        "`nn.Conv2d`": (nn.Conv2d(8, 4, 3), (x4,)),
        "`nn.BatchNorm2d` (eval)": (nn.BatchNorm2d(8), (x4,)),
        "`nn.LayerNorm`": (nn.LayerNorm(8), (x3,)),
        "`F.gelu`": (_Fn(F.gelu), (x2,)),
        "`F.hardswish`": (_Fn(F.hardswish), (x2,)),
        "`F.silu`": (_Fn(F.silu), (x2,)),
        "`F.relu6`": (_Fn(F.relu6), (x2,)),
        "`nn.MaxPool2d(2)`": (nn.MaxPool2d(2), (x4,)),
        "`nn.AdaptiveAvgPool2d(1)`": (nn.AdaptiveAvgPool2d(1), (x4,)),
        "`F.softmax`": (_Fn(lambda t: F.softmax(t, -1)), (x2,)),
        "`nn.Dropout` (eval)": (nn.Dropout(0.5), (x2,)),
        "`torch.flatten(x, 1)`": (_Fn(lambda t: torch.flatten(t, 1)), (x4,)),
        "`x.view(2, -1)`": (_Fn(lambda t: t.view(2, -1)), (x4,)),
        "`x @ w` (3-D by 2-D)": (_Fn(lambda t: t @ torch.ones(8, 3)), (x3,)),
    }


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def ops(graph) -> str:
    names = []
    for node in graph.nodes:
        if node.op != "call_function" or "getitem" in str(node.target):
            continue
        target = node.target
        if not isinstance(target, torch._ops.OpOverload):  # an Edge operator wraps its ATen one as _op
            target = getattr(target, "_op", target) if isinstance(getattr(target, "_op", None), torch._ops.OpOverload) else target
        name = str(target)
        name = name.replace("aten.", "").replace(".default", "").replace("dim_order_ops.", "")
        if name not in names:
            names.append(name)
    return ", ".join(f"`{n}`" for n in names) or "(nothing)"


def aot_inductor_graph(module, inputs):
    """The forward graph aot_autograd traces with Inductor's decompositions (inference)."""
    from torch._functorch.aot_autograd import aot_export_module
    from torch._inductor.decomposition import select_decomp_table

    class AsTuple(nn.Module):  # aot_export_module wants a tuple of outputs
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *args):
            return (self.inner(*args),)
    with torch.no_grad():
        gm, _ = aot_export_module(AsTuple(), inputs, trace_joint=False, decompositions=select_decomp_table())
    return gm.graph


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the table here (default: standard output)")
    args = parser.parse_args()
    try:
        from executorch.exir import to_edge
    except ImportError:
        to_edge = None
    rows = ["| written | torch.export (what tbk's hooks see) | ExecuTorch Edge, unclaimed | aot_autograd + Inductor's decompositions |",
            "| --- | --- | --- | --- |"]
    for name, (module, inputs) in cases().items():
        module.eval()
        exported = torch.export.export(module, inputs).run_decompositions({})
        edge = ops(to_edge(torch.export.export(module, inputs)).exported_program().graph) if to_edge else "(no executorch)"
        rows.append(f"| {name} | {ops(exported.graph)} | {edge} | {ops(aot_inductor_graph(module, inputs))} |")
    text = "\n".join(rows) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
