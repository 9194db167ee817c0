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

Where this Python imports executorch (1.5.1, beside torch 2.13 or 2.14), the sources are also
built with ExecuTorch's runtime and TBK_WITH_EXECUTORCH defined, so that a source registers its
backend for ExecuTorch programs (.pte) as well:

    #ifdef TBK_WITH_EXECUTORCH
    #include <tbk/executorch.hpp>
    TBK_REGISTER_EXECUTORCH_BACKEND(my_backend, "my_backend");
    #endif

and tbk.executorch.partitioner("my_backend") lowers to it, executorch.runtime runs the program.
"""
import os
from typing import List, Optional, Sequence

import torch

from . import _build, executorch_runtime, get_include, load_library

__all__ = ["load", "cflags", "ldflags"]


def _executorch(executorch: Optional[bool]) -> Optional[executorch_runtime.RuntimePaths]:
    """ExecuTorch's runtime when it is to be built with: True (RuntimeError when this Python has
    none, saying why), False (never), None (where this Python imports executorch)."""
    if executorch is False:
        return None
    try:
        return executorch_runtime.runtime_paths()
    except RuntimeError as e:
        if executorch:
            raise RuntimeError(f"tbk.cpp_extension: executorch=True, but {e}") from None
        return None


def cflags(executorch: Optional[bool] = False) -> List[str]:
    """The compiler flags a translation unit that includes tbk's headers needs, besides torch's
    own: the C++ standard and the torch version the headers check (tbk/detail/compat.hpp); with
    executorch (True, or None: where this Python imports executorch) also ExecuTorch's headers and
    TBK_WITH_EXECUTORCH (tbk.executorch_runtime.cflags). They go after torch's include flags (as
    extra_compile_args do in torch.utils.cpp_extension)."""
    flags = [f"-std={_build.CXX_STD}", f"-DTBK_CONFIGURED_TORCH_VERSION={_build.TORCH_VERSION_NUMBER}"]
    paths = _executorch(executorch)
    return flags + (executorch_runtime.cflags(paths) if paths else [])


def ldflags(executorch: Optional[bool] = False) -> List[str]:
    """The linker flags besides torch's: none, or with executorch (as in cflags) libexecutorch.so
    and an rpath to it."""
    paths = _executorch(executorch)
    return executorch_runtime.ldflags(paths) if paths else []


def load(name: str, sources: Sequence[str], *, extra_cflags: Optional[Sequence[str]] = None,
         extra_ldflags: Optional[Sequence[str]] = None, extra_include_paths: Optional[Sequence[str]] = None,
         build_directory: Optional[str] = None, executorch: Optional[bool] = None, verbose: bool = False) -> str:
    """Compiles `sources` (a backend's registration translation unit and whatever it needs) into
    the shared library <name>.so, loads it, and returns its path. name: the library's name
    (letters, digits, underscores), not necessarily the backend's. executorch: build with
    ExecuTorch's runtime and TBK_WITH_EXECUTORCH (None: where this Python imports executorch;
    True: RuntimeError when it cannot). Raises RuntimeError with the compiler's output when the
    build fails, and ValueError for a source that does not exist."""
    missing = [s for s in sources if not os.path.isfile(s)]
    if missing:
        raise ValueError(f"tbk.cpp_extension.load({name!r}): no such source file: {', '.join(missing)}")
    from torch.utils import cpp_extension
    paths = _executorch(executorch)
    # (torch 1.13's load returns nothing for a library: its place is known beforehand)
    build_directory = build_directory or cpp_extension._get_build_directory(name, verbose)
    cpp_extension.load(name, list(sources),
                       extra_cflags=cflags(False) + (executorch_runtime.cflags(paths) if paths else [])
                       + list(extra_cflags or []),
                       extra_ldflags=(executorch_runtime.ldflags(paths) if paths else []) + list(extra_ldflags or []),
                       extra_include_paths=[get_include()] + list(extra_include_paths or []),
                       build_directory=build_directory, verbose=verbose, is_python_module=False)
    library = os.path.join(build_directory, f"{name}.so")
    load_library(library)  # registers the backends' torch.compile names (loading again is harmless)
    return library
