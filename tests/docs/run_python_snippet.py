#!/usr/bin/env python3
"""run_python_snippet.py: runs a documentation snippet the way the docs show it, from a
directory where build/ is the build directory. Usage: run_python_snippet.py BUILD_ROOT SCRIPT
(with /usr/bin/python3, whose torch is Debian's python3-torch)."""
import os
import subprocess
import sys
import tempfile


def main() -> int:
    build_root, script = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory() as where:
        os.symlink(build_root, os.path.join(where, "build"))
        return subprocess.run([sys.executable, script], cwd=where).returncode


if __name__ == "__main__":
    sys.exit(main())
