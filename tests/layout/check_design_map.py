#!/usr/bin/env python3
"""check_design_map.py: docs/design.md's maps are true. Usage: check_design_map.py SOURCE_ROOT

- every header of include/tbk/ is named in "Headers: the map" (by its path from include/, or by
  its file name in a row that names a sibling by path);
- every source of backends/onednn/ (.hpp, .cpp, .py) is named in "Backends: the map" (by its path
  from backends/onednn/; operators/<family>.hpp and operators/<family>_shape.hpp rows name each
  family in backticks);
- every file a map names exists;
- the payload format (program.hpp and what it includes, transitively) includes neither libtorch
  nor oneDNN: the fuzz target compiles it alone.
"""
import pathlib
import re
import sys

TICKS = re.compile(r"`([^`]+)`")
LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s*<([^>]+)>", re.M)


def section(text, title):
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def map_rows(text):
    """The backticked names of each table row."""
    return [TICKS.findall(line) for line in text.splitlines() if line.startswith("| `")]


def check_headers(root, doc, problems):
    include = root / "include"
    rows = map_rows(section(doc, "Headers: the map"))
    named = set()
    for names in rows:
        directory = next((n.rsplit("/", 1)[0] for n in names if "/" in n and n.endswith(".hpp")), None)
        for n in names:
            if not n.endswith(".hpp"):
                continue
            path = n if "/" in n else f"{directory}/{n}" if directory else n
            named.add(path)
            if not (include / path).exists():
                problems.append(f"Headers: the map names {path}, which does not exist")
    for header in sorted(include.rglob("*.hpp")):
        rel = header.relative_to(include).as_posix()
        if rel not in named:
            problems.append(f"include/{rel} is not in docs/design.md's header map")


def check_backends(root, doc, problems):
    onednn = root / "backends" / "onednn"
    rows = map_rows(section(doc, "Backends: the map"))
    named, families = set(), set()
    for names in rows:
        if names and names[0].startswith("operators/<family>"):
            families.update(n for n in names[1:] if re.fullmatch(r"\w+", n))
            continue
        for n in names:
            if re.fullmatch(r"[\w./-]+\.(hpp|cpp|py)", n):
                named.add(n)
                if not (onednn / n).exists():
                    problems.append(f"Backends: the map names {n}, which does not exist")
            elif n.endswith("/"):
                named.add(n)
                if not (onednn / n).is_dir():
                    problems.append(f"Backends: the map names {n}, which is not a directory")
    for family in sorted(families):
        if not (onednn / "operators" / f"{family}.hpp").exists():
            problems.append(f"Backends: the map names family {family}: operators/{family}.hpp does not exist")
    for path in sorted(onednn.rglob("*")):
        if path.suffix not in (".hpp", ".cpp", ".py") or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(onednn).as_posix()
        top = rel.split("/", 1)[0] + "/"
        if rel in named or (top in named and top != "operators/"):
            continue
        stem = path.stem.removesuffix("_shape")
        if rel.startswith("operators/") and stem in families:
            continue
        problems.append(f"backends/onednn/{rel} is not in docs/design.md's backends map")


def check_format_is_standard(root, problems):
    onednn = root / "backends" / "onednn"
    seen, todo = set(), [onednn / "program.hpp"]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        for target in SYSTEM_INCLUDE.findall(text):
            if "/" in target or target.startswith(("dnnl", "ATen", "torch", "c10")):
                problems.append(f"{path.relative_to(root)} (payload format) includes <{target}>: "
                                "the format is standard C++ only")
        todo.extend(path.parent / target for target in LOCAL_INCLUDE.findall(text))


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    doc = (root / "docs" / "design.md").read_text(encoding="utf-8")
    problems = []
    check_headers(root, doc, problems)
    check_backends(root, doc, problems)
    check_format_is_standard(root, problems)
    if problems:
        print("\n".join(problems))
        return 1
    print("docs/design.md's maps name every header and every backends/onednn file; the payload "
          "format is standard C++")
    return 0


if __name__ == "__main__":
    sys.exit(main())
