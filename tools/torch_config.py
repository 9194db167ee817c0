#!/usr/bin/env python3
"""torch_config.py: where the torch that this Python imports keeps its C++ headers and libraries.

Meson runs it for `-Dtorch=python`. Prints four lines: the release (2.13.0), the include
directory, the library directory, and the _GLIBCXX_USE_CXX11_ABI value its libraries were
built with. Reads the installed files only: importing torch would take seconds and print its warnings.

`torch_config.py --cpp-std INCLUDE_DIR` prints the C++ standard the torch whose headers are in
INCLUDE_DIR requires: c++20 when its ATen/ATen.h refuses anything older (torch 2.14: "#error C++20
or later compatible compiler is required to use ATen"), else c++17. Meson runs it for both stacks.
"""
import importlib.util
import os
import re
import sys


def required_cpp_std(include_dir: str) -> str:
    """c++20 when ATen/ATen.h under include_dir refuses an older standard, else c++17."""
    with open(os.path.join(include_dir, "ATen", "ATen.h"), encoding="utf-8") as f:
        text = f.read()
    return "c++20" if re.search(r"C\+\+20 or later", text) else "c++17"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--cpp-std":
        print(required_cpp_std(sys.argv[2]))
        return 0
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        print(f"{sys.executable} cannot import torch; install it with "
              f"'{sys.executable} -m pip install torch==2.13.0' or use -Dtorch=system (under pip install: "
              "pass --no-build-isolation, so that the build sees the torch installed beside it)",
              file=sys.stderr)
        return 1
    root = list(spec.submodule_search_locations)[0]
    with open(os.path.join(root, "version.py"), encoding="utf-8") as f:
        version = re.search(r"__version__\s*=\s*['\"]([0-9.]+)", f.read()).group(1)
    include, lib = os.path.join(root, "include"), os.path.join(root, "lib")
    for path in (os.path.join(include, "ATen", "ATen.h"), os.path.join(lib, "libtorch_cpu.so")):
        if not os.path.exists(path):
            print(f"torch {version} at {root} has no {path}: it is not a build with C++ headers "
                  "and libraries", file=sys.stderr)
            return 1
    # pip's wheels use the C++11 ABI (g++'s default) since 2.7, the old one before.
    major, minor = (int(part) for part in version.split(".")[:2])
    abi = "1" if (major, minor) >= (2, 7) else "0"
    print(version, include, lib, abi, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
