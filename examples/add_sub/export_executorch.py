#!/usr/bin/env python3
"""export_executorch.py: the add/sub model as an ExecuTorch program, lowered to "custom_backend".

    python3 examples/add_sub/export_executorch.py --out add_sub.pte \
        [--lib build-pip/examples/add_sub/libcustom_backend.so]

Needs pip's torch 2.13 and executorch==1.5.1, tbk built with -Dtorch=python (so that
libcustom_backend registers "custom_backend" for ExecuTorch too) and PYTHONPATH=<build>/python.
It exports forward(a, b) -> (a + b, a - b) with torch.export, lowers it with
tbk.executorch.partitioner("custom_backend"), writes the .pte, then loads and runs it with
executorch.runtime and checks it against eager. add_sub_executorch_run runs the same file in C++.
"""
import argparse
import os

import torch

import tbk.executorch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIB = os.path.join(HERE, "..", "..", "build-pip", "examples", "add_sub", "libcustom_backend.so")


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the .pte file to write")
    parser.add_argument("--lib", default=DEFAULT_LIB, help="libcustom_backend.so built with ExecuTorch")
    args = parser.parse_args()

    torch.ops.load_library(args.lib)  # registers custom_backend for TorchScript and ExecuTorch
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    a, b = torch.randn(2, 3), torch.randn(2, 3)
    exported = torch.export.export(AddSub(), (a, b))
    program = to_edge_transform_and_lower(
        exported, partitioner=[tbk.executorch.partitioner("custom_backend")]).to_executorch()
    with open(args.out, "wb") as f:
        f.write(program.buffer)

    method = Runtime.get().load_program(args.out).load_method("forward")
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    got = method.execute([a, b])
    assert torch.equal(got[0], a + b) and torch.equal(got[1], a - b), (got, a + b, a - b)
    print(f"export_executorch: wrote {args.out}; forward(a, b) = (a + b, a - b) with executorch.runtime, as eager")


if __name__ == "__main__":
    main()
