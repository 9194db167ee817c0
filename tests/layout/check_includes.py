#!/usr/bin/env python3
"""check_includes.py: the include directions of docs/design.md's map hold. Usage:
check_includes.py SOURCE_ROOT

- include/tbk/detail/ never includes a public header (tbk/*.hpp) nor the testing kit;
- the core (tbk/*.hpp but tbk/testing.hpp) never includes the testing kit (tbk/testing/);
- no header includes one that is not there.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*<(tbk/[^>]+)>', re.M)


def main() -> int:
    root = pathlib.Path(sys.argv[1]) / "include"
    problems = []
    headers = sorted(root.rglob("*.hpp"))
    for header in headers:
        name = header.relative_to(root).as_posix()
        for target in INCLUDE.findall(header.read_text(encoding="utf-8")):
            if not (root / target).exists():
                problems.append(f"{name} includes {target}, which does not exist")
            in_detail = name.startswith("tbk/detail/")
            is_kit = name.startswith("tbk/testing/") or name == "tbk/testing.hpp"
            if in_detail and not target.startswith("tbk/detail/"):
                problems.append(f"{name} (detail) includes {target}: detail/ includes only detail/")
            if not is_kit and (target.startswith("tbk/testing/") or target == "tbk/testing.hpp"):
                problems.append(f"{name} (core) includes the testing kit's {target}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{len(headers)} headers: detail/ includes only detail/, the core never the kit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
