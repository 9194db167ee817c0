"""tbk.cpp_extension: a tbk backend from its C++ sources to a registered backend in one call, as
torch.utils.cpp_extension.load builds and loads an ordinary extension:

    import torch, tbk, tbk.cpp_extension
    tbk.cpp_extension.load("my_backend", ["register_my_backend.cpp"])   # TBK_REGISTER_BACKEND(..., "my_backend")
    lowered = tbk.lower(torch.jit.script(model), "my_backend", {"forward": {}})
    compiled = torch.compile(model, backend="my_backend")                # torch 2

The sources are compiled with tbk's headers (tbk.get_include()), the C++ standard the torch tbk
was built for requires (c++17; c++20 for torch 2.14) and TBK_CONFIGURED_TORCH_VERSION, linked
against that torch by torch.utils.cpp_extension (which needs ninja), cached in its build directory
(~/.cache/torch_extensions unless build_directory is given) and loaded into the process with
torch.ops.load_library; every tbk backend it registers becomes a torch.compile backend too.
"""
import os
from typing import List, Optional, Sequence

import torch

from . import _build, get_include, load_library

__all__ = ["load", "cflags"]


def cflags() -> List[str]:
    """The compiler flags a translation unit that includes tbk's headers needs, besides torch's
    own: the C++ standard and the torch version the headers check (tbk/detail/compat.hpp)."""
    return [f"-std={_build.CXX_STD}", f"-DTBK_CONFIGURED_TORCH_VERSION={_build.TORCH_VERSION_NUMBER}"]


def load(name: str, sources: Sequence[str], *, extra_cflags: Optional[Sequence[str]] = None,
         extra_ldflags: Optional[Sequence[str]] = None, extra_include_paths: Optional[Sequence[str]] = None,
         build_directory: Optional[str] = None, verbose: bool = False) -> str:
    """Compiles `sources` (a backend's registration translation unit and whatever it needs) into
    the shared library <name>.so, loads it, and returns its path. name: the library's name
    (letters, digits, underscores), not necessarily the backend's. Raises RuntimeError with the
    compiler's output when the build fails, and ValueError for a source that does not exist."""
    missing = [s for s in sources if not os.path.isfile(s)]
    if missing:
        raise ValueError(f"tbk.cpp_extension.load({name!r}): no such source file: {', '.join(missing)}")
    from torch.utils import cpp_extension
    # (torch 1.13's load returns nothing for a library: its place is known beforehand)
    build_directory = build_directory or cpp_extension._get_build_directory(name, verbose)
    cpp_extension.load(name, list(sources), extra_cflags=cflags() + list(extra_cflags or []),
                       extra_ldflags=list(extra_ldflags or []),
                       extra_include_paths=[get_include()] + list(extra_include_paths or []),
                       build_directory=build_directory, verbose=verbose, is_python_module=False)
    library = os.path.join(build_directory, f"{name}.so")
    load_library(library)  # registers the backends' torch.compile names (loading again is harmless)
    return library
