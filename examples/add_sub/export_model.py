#!/usr/bin/python3
"""export_model.py: lower the add/sub model to "custom_backend" in Python and save it.

    /usr/bin/python3 examples/add_sub/export_model.py --out model.pt [--lite] [--selective]
        [--lib build/examples/add_sub/libcustom_backend.so] [--methods forward,accum,sub_accum]

--selective lowers only the submodule `inner` of a model whose methods call it.

The saved model runs wherever libcustom_backend.so is loaded: `add_sub_run model.pt` in C++,
or torch.jit.load in Python after torch.ops.load_library.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIB = os.path.join(HERE, "..", "..", "build", "examples", "add_sub", "libcustom_backend.so")


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b

    @torch.jit.export
    def accum(self, a: torch.Tensor, b: torch.Tensor):
        return a + b

    @torch.jit.export
    def sub_accum(self, a: torch.Tensor, b: torch.Tensor):
        return a - b


class Outer(torch.nn.Module):
    """The same methods, computed by a submodule `inner` (for selective lowering)."""

    def __init__(self):
        super().__init__()
        self.inner = Inner()

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return self.inner(a, b)

    @torch.jit.export
    def accum(self, a: torch.Tensor, b: torch.Tensor):
        return self.inner(a, b)[0]

    @torch.jit.export
    def sub_accum(self, a: torch.Tensor, b: torch.Tensor):
        return self.inner(a, b)[1]


class Inner(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


def lower_selectively():
    """Outer with only its submodule `inner` lowered to custom_backend."""
    def to_backend(module):
        return torch._C._jit_to_backend("custom_backend", module, {"forward": {"": ""}})
    return torch._C._jit_to_backend_selective(torch.jit.script(Outer()), to_backend, ["inner"])


def lower(methods):
    """The scripted AddSub model lowered to custom_backend (the library must be loaded)."""
    spec = {name: {"": ""} for name in methods}
    return torch._C._jit_to_backend("custom_backend", torch.jit.script(AddSub()), spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to save the lowered model")
    parser.add_argument("--lib", default=DEFAULT_LIB, help="path of libcustom_backend.so")
    parser.add_argument("--methods", default="forward,accum,sub_accum",
                        help="comma-separated methods to lower")
    parser.add_argument("--selective", action="store_true",
                        help="lower only the submodule `inner` (methods are then all of Outer's)")
    parser.add_argument("--lite", action="store_true",
                        help="save for the lite interpreter (_save_for_lite_interpreter)")
    args = parser.parse_args(argv)

    if not os.path.exists(args.lib):
        parser.error(f"{args.lib} does not exist; build it first (meson compile -C build)")
    torch.ops.load_library(args.lib)
    lowered = lower_selectively() if args.selective else lower(args.methods.split(","))
    if args.lite:
        lowered._save_for_lite_interpreter(args.out)
    else:
        torch.jit.save(lowered, args.out)
    print(f"saved {args.out} ({'lite interpreter' if args.lite else 'TorchScript'}, "
          f"{'submodule inner lowered' if args.selective else 'methods: ' + args.methods})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
