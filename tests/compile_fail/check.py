#!/usr/bin/env python3
"""check.py: runs one compile-fail case. Usage: check.py CASE.cpp COMPILER [FLAGS...]

CASE.cpp starts with `// expect: SENTENCE`. The case must fail to compile and the first error
the compiler prints must contain SENTENCE; `// expect: compiles` means it must compile cleanly.
"""
import subprocess
import sys


def main() -> int:
    case, command = sys.argv[1], sys.argv[2:]
    with open(case, encoding="utf-8") as f:
        first = f.readline()
    if not first.startswith("// expect: "):
        print(f"{case}: the first line must be '// expect: ...'")
        return 1
    expected = first[len("// expect: "):].strip()
    run = subprocess.run(command + ["-fsyntax-only", "-fdiagnostics-color=never", case],
                         capture_output=True, text=True)
    output = run.stdout + run.stderr
    errors = [line for line in output.splitlines() if " error: " in line]
    if expected == "compiles":
        if run.returncode != 0:
            print(f"{case}: should compile, but the compiler said:\n{output}")
            return 1
        print(f"{case}: compiles, as it should")
        return 0
    if run.returncode == 0:
        print(f"{case}: should fail to compile with\n  {expected}\nbut it compiled")
        return 1
    if not errors or expected not in errors[0]:
        print(f"{case}: the first error should contain\n  {expected}\nbut the errors were:")
        print("\n".join(errors) or output)
        return 1
    print(f"{case}: fails to compile with its sentence first:\n  {errors[0].strip()}")
    print(f"  ({len(errors)} error line(s) in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
