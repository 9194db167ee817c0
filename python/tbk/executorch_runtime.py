#!/usr/bin/env python3
"""tbk.executorch_runtime: where the executorch package this Python imports keeps its C++ runtime
(headers and libexecutorch.so), and the compiler flags a backend's registration library needs to
register with it (TBK_REGISTER_EXECUTORCH_BACKEND, tbk/executorch.hpp).

Reads the installed files only (importing executorch takes seconds and prints warnings), so it
runs before tbk is built: Meson runs this file for -Dexecutorch (with the Python whose torch the
build uses), which prints three lines: the release (1.5.1), the include directory and the library
directory; tbk.cpp_extension imports it.
"""
import importlib.util
import os
import re
import sys
from typing import List, NamedTuple

__all__ = ["RuntimePaths", "runtime_paths", "cflags", "ldflags", "DEFINE"]

# Defined (as 1) for a translation unit built with ExecuTorch's runtime by tbk.cpp_extension: a
# source registers its backend with ExecuTorch under #ifdef TBK_WITH_EXECUTORCH.
DEFINE = "TBK_WITH_EXECUTORCH"


class RuntimePaths(NamedTuple):
    version: str  # the executorch package's release, "unknown" when it does not say
    include: str  # the directory that holds executorch/runtime/...
    lib: str  # the directory that holds libexecutorch.so


def runtime_paths() -> RuntimePaths:
    """The executorch package's C++ runtime. Raises RuntimeError saying what is missing when this
    Python cannot import executorch, or its package has no C++ runtime (executorch==1.5.1 from
    PyPI has one)."""
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{sys.executable} cannot import executorch; install it with "
                           f"'{sys.executable} -m pip install executorch==1.5.1'")
    root = list(spec.submodule_search_locations)[0]
    version = "unknown"
    version_file = os.path.join(root, "version.py")
    if os.path.exists(version_file):
        with open(version_file, encoding="utf-8") as f:
            found = re.search(r"__version__\s*=\s*['\"]([0-9.]+)", f.read())
            version = found.group(1) if found else version
    include, lib = os.path.join(root, "include"), os.path.join(root, "lib")
    for path in (os.path.join(include, "executorch", "runtime", "backend", "interface.h"),
                 os.path.join(lib, "libexecutorch.so")):
        if not os.path.exists(path):
            raise RuntimeError(f"executorch {version} at {root} has no {path}: it is not a wheel with the C++ "
                               "runtime (executorch==1.5.1 from PyPI has it)")
    return RuntimePaths(version, include, lib)


def cflags(paths: RuntimePaths) -> List[str]:
    """Compiler flags for a TU that includes tbk/executorch.hpp, after torch's include paths:
    ExecuTorch's headers as a system directory searched after torch's (it carries copies of some
    c10 headers; torch's must win), the event tracer as the wheel was built, and DEFINE."""
    return ["-isystem", paths.include, "-DET_EVENT_TRACER_ENABLED", f"-D{DEFINE}=1"]


def ldflags(paths: RuntimePaths) -> List[str]:
    """Linker flags: libexecutorch.so, found at run time through an rpath to the wheel's lib/ (the
    very library executorch.runtime's Python bindings load, so one registry serves both)."""
    return [f"-L{paths.lib}", "-lexecutorch", f"-Wl,-rpath,{paths.lib}"]


def main() -> int:
    # Run as a script, this file's directory leads sys.path, and tbk's own executorch.py there is
    # not the executorch package
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        paths = runtime_paths()
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(paths.version)
    print(paths.include)
    print(paths.lib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
