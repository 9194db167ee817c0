#!/usr/bin/env python3
"""check_snippets.py: every code block in the documentation is a quote of a file the tests
compile or run. Usage: check_snippets.py SOURCE_ROOT

For each fenced block in README.md and docs/*.md whose language is cpp, python, meson, cmake or ini (wrap files),
its lines (indentation and trailing spaces aside) must appear, in order and contiguous, in one
file under examples/, backends/, tests/, docs/snippets/ or include/. A line that is only "...", "// ..."
or "# ..." in the block stands for lines left out. Blocks of shell commands (sh) and of output
(text, none) are not code and are not checked.
"""
import pathlib
import re
import sys

CODE = {"cpp", "c++", "python", "meson", "cmake", "ini"}
GAP = {"...", "// ...", "# ..."}
SOURCES = ("examples", "backends", "tests", "docs/snippets", "include")
SUFFIXES = {".cpp", ".hpp", ".py", ".build", ".txt", ".wrap", ".in"}


def blocks(markdown: str):
    """(language, first line number, lines) for each fenced block."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if m:
            start, language = i + 1, m.group(1).lower()
            i += 1
            body = []
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            yield language, start, body
        i += 1


def normalized(lines):
    return [line.strip() for line in lines]


def chunks(body):
    """The block split at gap lines, blank lines at the ends of each chunk dropped."""
    out, current = [], []
    for line in normalized(body):
        if line in GAP:
            out.append(current)
            current = []
        else:
            current.append(line)
    out.append(current)
    result = []
    for chunk in out:
        while chunk and not chunk[0]:
            chunk = chunk[1:]
        while chunk and not chunk[-1]:
            chunk = chunk[:-1]
        if chunk:
            result.append(chunk)
    return result


def contains_in_order(haystack, needles):
    """Whether each needle (a list of lines) occurs contiguously in haystack, in order."""
    at = 0
    for needle in needles:
        found = -1
        for start in range(at, len(haystack) - len(needle) + 1):
            if haystack[start:start + len(needle)] == needle:
                found = start
                break
        if found < 0:
            return False
        at = found + len(needle)
    return True


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    sources = {}
    for folder in SOURCES:
        for path in (root / folder).rglob("*"):
            if path.is_file() and (path.suffix in SUFFIXES or path.name == "meson.build"):
                sources[path.relative_to(root)] = normalized(path.read_text(errors="replace").splitlines())
    documents = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    problems, checked = [], 0
    for doc in documents:
        for language, line, body in blocks(doc.read_text()):
            if language not in CODE:
                continue
            checked += 1
            needles = chunks(body)
            if not any(contains_in_order(text, needles) for text in sources.values()):
                problems.append(f"{doc.relative_to(root)}:{line}: this {language} block is not "
                                f"a quote of any compiled or tested file:\n    " +
                                "\n    ".join(body[:6]) + ("\n    ..." if len(body) > 6 else ""))
    if problems:
        print("\n\n".join(problems))
        print(f"\n{len(problems)} of {checked} code blocks are not quoted from tested files")
        return 1
    print(f"all {checked} code blocks in README.md and docs/ are quotes of tested files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
