#!/usr/bin/env python3
"""torch_pybind11_abi.py: the -DPYBIND11_... flags an extension module needs to share pybind11's
type registry with the torch that this Python imports (what torch.utils.cpp_extension passes), one
per line; none when torch's pybind11 needs none."""
import torch

flags = []
for name in ("COMPILER_TYPE", "STDLIB", "BUILD_ABI"):
    value = getattr(torch._C, f"_PYBIND11_{name}", None)
    if value:
        flags.append(f'-DPYBIND11_{name}="{value}"')
print("\n".join(flags))
