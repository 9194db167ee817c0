#!/usr/bin/env python3
"""executorch_config.py: where the executorch package this Python imports keeps its C++ headers and
runtime library.

Meson runs it for -Dexecutorch (with the Python whose torch the build uses). Prints three lines:
the release (1.5.1), the include directory and the library directory (libexecutorch.so). Reads
the installed files only: importing executorch takes seconds and prints warnings.
"""
import importlib.util
import os
import re
import sys


def main() -> int:
    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        print(f"{sys.executable} cannot import executorch; install it with "
              f"'{sys.executable} -m pip install executorch==1.5.1'", file=sys.stderr)
        return 1
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
            print(f"executorch {version} at {root} has no {path}: it is not a wheel with the C++ "
                  "runtime (executorch==1.5.1 from PyPI has it)", file=sys.stderr)
            return 1
    print(version)
    print(include)
    print(lib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
