#!/usr/bin/env python3
"""run_suite.py: ExecuTorch's fp32 operator test suite (executorch.backends.test.suite.operators,
from the executorch wheel) for tbk_onednn beside XNNPACK and the portable kernels, one thread,
each test file in a pytest process of its own; writes docs/executorch-suite.md.

    python3 backends/onednn/tests/executorch_suite/run_suite.py \\
        [--flows tbk_onednn,xnnpack,portable,tbk_custom_backend] [--tbk-pythonpath build-pip/python] \\
        [--out docs/executorch-suite.md] [--seed 1] [--files test_add.py,test_gelu.py] \\
        [--records run.jsonl]    # or, to rewrite the page only: --from-records run.jsonl

Crashes: a native crash kills the pytest process it happens in, so every test file runs in a
process of its own, with tbk_flows recording each test's start (flushed) and its finish. A test
that started and never finished in a process that died (or hung past --timeout) counts as
crashed; it runs once more alone, unrecorded, to keep its last output, and its file goes on in a
new process without it and without the tests already done.
"""
import argparse
import collections
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "crashed")


def suite_paths() -> Tuple[str, str]:
    """(the directory that holds the executorch package, the operator suite's directory)."""
    import executorch.backends.test.suite.operators as operators
    suite = os.path.dirname(os.path.abspath(operators.__file__))
    package_root = os.path.abspath(os.path.join(suite, *[".."] * 5))
    return package_root, suite


def environment(tbk_pythonpath: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [tbk_pythonpath, HERE, env.get("PYTHONPATH", "")] if p)
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("TBK_CUSTOM_BACKEND_LIB",
                   os.path.join(os.path.dirname(tbk_pythonpath), "examples", "add_sub", "libcustom_backend.so"))
    return env


def pytest_command(targets: List[str], flows: List[str], record: Optional[str], seed: int,
                   deselect: List[str], capture: bool = True) -> List[str]:
    command = [sys.executable, "-m", "pytest", "-p", "tbk_flows", "-p", "no:cacheprovider", "-p", "no:warnings",
               "-q", "--rootdir", ".", "--tbk-seed", str(seed), "-m", " or ".join(f"flow_{f}" for f in flows)]
    command += ["--tbk-record", record] if record else []
    command += [] if capture else ["-s"]
    for nodeid in deselect:
        command += ["--deselect", nodeid]
    return command + targets


def read_records(path: str) -> Tuple[List[str], Dict[str, dict]]:
    """The node ids started, in order, and the finish records by node id."""
    started, finished = [], {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                record = json.loads(line)
                if record["event"] == "start":
                    started.append(record["nodeid"])
                else:
                    finished[record["nodeid"]] = record
    return started, finished


def run_process(command: List[str], cwd: str, env: Dict[str, str], timeout: float, log: str) -> Tuple[int, bool]:
    """Runs `command` in a process group of its own, output to `log`; (return code, timed out)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            return process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait(), True


def tail(path: str, lines: int = 25) -> str:
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def how_it_ended(code: int, timed_out: bool, timeout: float) -> str:
    if timed_out:
        return f"hung: killed after {timeout:.0f} s"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"the process exited with {code} without finishing the test"


def run_file(path: str, flows: List[str], cwd: str, env: Dict[str, str], work: str, seed: int,
             timeout: float) -> Tuple[Dict[str, dict], List[str]]:
    """One test file, in as many processes as its crashes take: the finish records by node id (a
    crashed test gets one of outcome "crashed") and the file's errors (collection failures)."""
    results: Dict[str, dict] = {}
    errors: List[str] = []
    name = os.path.basename(path)
    for attempt in range(1000):
        record = os.path.join(work, f"{name}.{attempt}.jsonl")
        log = os.path.join(work, f"{name}.{attempt}.log")
        command = pytest_command([os.path.relpath(path, cwd)], flows, record, seed, sorted(results))
        code, timed_out = run_process(command, cwd, env, timeout, log)
        started, finished = read_records(record)
        results.update(finished)
        lost = [nodeid for nodeid in started if nodeid not in finished]
        if not lost:
            if code not in (0, 1, 5):  # 5: nothing collected (every test already done)
                errors.append(f"{name}: pytest exited with {code}:\n{tail(log)}")
            return results, errors
        for nodeid in lost:  # the one that was running when the process died
            results[nodeid] = crashed_record(nodeid, how_it_ended(code, timed_out, timeout), cwd, env, work,
                                             flows, seed, timeout, log)
    errors.append(f"{name}: gave up after 1000 processes")
    return results, errors


def crashed_record(nodeid: str, ended: str, cwd: str, env: Dict[str, str], work: str, flows: List[str],
                   seed: int, timeout: float, log: str) -> dict:
    """A crashed test's record: how its process ended, and its output when run again alone."""
    alone_log = log + ".alone"
    code, timed_out = run_process(pytest_command([nodeid], flows, None, seed, [], capture=False), cwd, env,
                                  timeout, alone_log)
    again = how_it_ended(code, timed_out, timeout) if (code < 0 or timed_out) else f"exited with {code}"
    flow = nodeid.split("[", 1)[1].split("-")[0].rstrip("]") if "[" in nodeid else ""
    return {"event": "finish", "nodeid": nodeid, "outcome": "crashed", "flow": flow, "subtests": [],
            "lowerings": [], "reason": f"{ended}; run again alone: {again}",
            "stderr": f"The process that died (its last lines, faulthandler's stacks among them):\n{tail(log, 60)}\n\n"
                      f"Run again alone:\n{tail(alone_log, 30)}"}


# ---- the page -----------------------------------------------------------------------------------

def cpu_description() -> Tuple[str, str]:
    """lscpu's model name and the ISA flags that decide oneDNN's kernels."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown", "unknown"
    model = re.search(r"^Model name:\s*(.+)$", text, re.M)
    flags = re.search(r"^Flags:\s*(.+)$", text, re.M)
    have = set(flags.group(1).split()) if flags else set()
    wanted = ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"]
    isa = ", ".join(f"{flag} {'yes' if flag in have else 'no'}" for flag in wanted)
    return (model.group(1).strip() if model else "unknown"), isa


def versions() -> Tuple[str, str]:
    import torch
    try:
        from executorch.version import __version__ as et
    except ImportError:
        et = "unknown"
    return torch.__version__, et


def tbk_build(tbk_pythonpath: str) -> str:
    """Which tbk ran: the package's directory, the checkout's commit and whether its tree had changes."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"the package in {tbk_pythonpath}"
    return (f"the package in {tbk_pythonpath}, built from commit {head}" +
            (" with uncommitted changes in the working tree" if dirty else ""))


def test_name(nodeid: str) -> str:
    """test_file.py::test_x[flow-param] -> test_x[param] (the flow is the table's column)."""
    base = nodeid.split("::", 1)[1]
    if "[" not in base:
        return base
    name, params = base.split("[", 1)
    rest = params.rstrip("]").split("-")[1:]
    return f"{name}[{'-'.join(rest)}]" if rest else name


def delegated(record: dict) -> bool:
    return any(s["delegated"] for s in record["subtests"])


def refusals(record: dict) -> Dict[str, str]:
    merged: Dict[str, str] = {}
    for lowering in record["lowerings"]:
        merged.update(lowering["refusals"])
    return merged


def code_block(text: str, limit: int = 1500) -> List[str]:
    text = text.strip()
    if len(text) > limit:
        text = text[:limit // 2] + "\n...\n" + text[-limit // 2:]
    return ["```", text.replace("```", "'''"), "```"]


def summary_table(records: List[dict], flows: List[str]) -> List[str]:
    lines = ["| flow | passed | failed | skipped | crashed | expected failures (xfail) | tests with a delegate call |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for flow in flows:
        mine = [r for r in records if r["flow"] == flow]
        counts = collections.Counter(r["outcome"] for r in mine)
        failed = counts["failed"] + counts["xpassed"]
        delegating = sum(1 for r in mine if delegated(r))
        lines.append(f"| {flow} | {counts['passed']} | {failed} | {counts['skipped']} | {counts['crashed']} | "
                     f"{counts['xfailed']} | {delegating} |")
    return lines


def operators_of(nodes: List[str]) -> str:
    """Edge node names as their operators: aten_squeeze_copy_dims_12 -> aten_squeeze_copy_dims."""
    return ", ".join(sorted({re.sub(r"_\d+$", "", n) for n in nodes}))


def by_reason_and_operators(records: List[dict]) -> Dict[str, Dict[str, List[str]]]:
    """reason -> the refused nodes' operators -> the tests: a test whose nodes were refused for
    several reasons is under each."""
    grouped: Dict[str, Dict[str, List[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in records:
        reasons = refusals(r)
        if not reasons:
            ops = sorted({op for s in r["subtests"] for op in s["undelegated_ops"]})
            grouped["no reason given: no node refused, none delegated"][", ".join(ops) or "no operators"].append(
                test_name(r["nodeid"]))
        for reason in sorted(set(reasons.values())):
            grouped[reason][operators_of([n for n, why in reasons.items() if why == reason])].append(
                test_name(r["nodeid"]))
    return grouped


def grouped_lines(grouped: Dict[str, Dict[str, List[str]]], heading: str) -> List[str]:
    lines: List[str] = []
    size = lambda ops: sum(len(tests) for tests in ops.values())  # noqa: E731
    for reason, ops in sorted(grouped.items(), key=lambda item: (-size(item[1]), item[0])):
        lines += [f"{heading} {reason} ({size(ops)})", ""] if heading else [f"- {reason} ({size(ops)}):"]
        indent = "" if heading else "  "
        lines += [f"{indent}- {op}: {', '.join(sorted(tests))}" for op, tests in sorted(ops.items())]
        lines += [""] if heading else []
    return lines


def undelegated_section(records: List[dict], flow: str) -> List[str]:
    """The tests `flow` ran without a delegate call, grouped by the reasons its partitioner gave."""
    ran = [r for r in records if r["flow"] == flow and r["outcome"] in ("passed", "failed", "xfailed")]
    none = [r for r in ran if not delegated(r)]
    if not none:
        return []
    return [f"## Tests {flow} does not delegate, by the backend's reason", "",
            f"{len(none)} tests ran with no delegate call. Under each reason the backend gave, the operators "
            "of the Edge nodes it refused, then the tests (a test with nodes refused for several reasons is "
            "under each).", ""] + grouped_lines(by_reason_and_operators(none), "###")


def partial_section(records: List[dict], flow: str) -> List[str]:
    """Nodes refused in tests whose other nodes were delegated."""
    some = [r for r in records if r["flow"] == flow and delegated(r) and refusals(r)]
    if not some:
        return []
    return [f"## Nodes {flow} left out of tests it delegates other nodes of", "",
            f"{len(some)} tests; by reason, then operator:", ""] + \
        grouped_lines(by_reason_and_operators(some), "") + [""]


def native_log(text: str) -> str:
    """The lines of a test's output that ExecuTorch's and tbk's C++ logs wrote ("[method.cpp:1528] ...")."""
    return "\n".join(line for line in text.splitlines() if re.match(r"\[\w+\.(cpp|hpp|h):\d+\]", line))


def failures_section(records: List[dict], flow: str) -> List[str]:
    bad = [r for r in records if r["flow"] == flow and r["outcome"] in ("failed", "xpassed", "crashed")]
    lines = [f"## Failures and crashes of {flow}", ""]
    if not bad:
        return lines + ["None.", ""]
    for r in bad:
        lines += [f"### {test_name(r['nodeid'])}: {r['outcome']}", ""]
        for k, s in enumerate(r["subtests"]):
            if s["error"] or s["detail"]:
                lines += [f"Subtest {k}: {s['detail'] or 'passed'}, delegated: {s['delegated']}."]
                lines += code_block(s["error"]) if s["error"] else []
        if r["outcome"] == "crashed" or not r["subtests"]:
            lines += [r["reason"]] + code_block(r["stderr"])
        elif native_log(r["stderr"]):
            lines += ["The runtime's log:"] + code_block(native_log(r["stderr"]), 800)
        lines += [""]
    return lines


# The suite's skip after lowering, which carries no error (runner.py's run_test): an operator left
# in ExecuTorch has no portable kernel (UNSUPPORTED_PORTABLE_OPS), or the Edge program before
# delegation has a 3-D convolution, whatever the backend took.
NO_PORTABLE_KERNEL = ("the suite's own skip (it gives the error None): an operator left in ExecuTorch has no portable "
                      "kernel (median, embedding_bag, adaptive_max_pool2d, round.decimals, ...), or the program "
                      "has a 3-D convolution, which the suite skips before looking at delegation")


def skipped_section(records: List[dict], flow: str, shown: int = 40) -> List[str]:
    by_reason: Dict[str, List[str]] = collections.defaultdict(list)
    for r in records:
        if r["flow"] == flow and r["outcome"] in ("skipped", "xfailed"):
            reason = re.sub(r"^Skipped: ", "", r["reason"]).strip() or "(no reason)"
            if reason.endswith("Error: None"):
                reason = NO_PORTABLE_KERNEL
            reason = ("expected failure: " if r["outcome"] == "xfailed" else "") + reason[:400]
            by_reason[reason].append(test_name(r["nodeid"]))
    if not by_reason:
        return []
    lines = [f"## Tests skipped or expected to fail for {flow}", ""]
    for reason, tests in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        more = f", and {len(tests) - shown} more" if len(tests) > shown else ""
        lines += [f"- {reason} ({len(tests)}): " + ", ".join(sorted(tests)[:shown]) + more]
    return lines + [""]


def comparison_section(records: List[dict], ours: str, theirs: str) -> List[str]:
    mine = {test_name(r["nodeid"]): r for r in records if r["flow"] == ours}
    other = {test_name(r["nodeid"]): r for r in records if r["flow"] == theirs}
    if not mine or not other:
        return []
    only_theirs = sorted(t for t, r in other.items() if delegated(r) and not (t in mine and delegated(mine[t])))
    only_mine = sorted(t for t, r in mine.items() if delegated(r) and not (t in other and delegated(other[t])))
    count = lambda rs: sum(1 for r in rs.values() if delegated(r))  # noqa: E731
    return [f"## {ours} against {theirs}", "",
            f"{ours} delegates in {count(mine)} tests, {theirs} in {count(other)}.", "",
            f"- {theirs} delegates, {ours} does not ({len(only_theirs)}): " + (", ".join(only_theirs) or "none"),
            f"- {ours} delegates, {theirs} does not ({len(only_mine)}): " + (", ".join(only_mine) or "none"), ""]


def write_page(path: str, records: List[dict], errors: List[str], flows: List[str], command: str,
               seconds: float, seed: int, files: int, build: str) -> None:
    model, isa = cpu_description()
    torch_version, et_version = versions()
    lines = [
        "# ExecuTorch's operator test suite: tbk_onednn beside XNNPACK",
        "",
        "What this page is: the results of ExecuTorch's own backend test suite "
        "(`executorch.backends.test.suite.operators`, the fp32 operator tests shipped in the executorch "
        f"wheel) for the flows {', '.join(flows)}, with tbk's flows added by the pytest plugin "
        "`backends/onednn/tests/executorch_suite/tbk_flows.py`. Generated; do not edit.",
        "",
        "- Regenerate: `python3 backends/onednn/tests/executorch_suite/run_suite.py` (about 80 minutes on two "
        "cores); this page: `" + command + "`",
        f"- Date: {datetime.date.today().isoformat()}; {files} test files, {seconds / 60:.0f} min, seed {seed} "
        "(the suite draws each test's inputs from it)",
        f"- CPU: {model}; {isa}; one thread (OMP_NUM_THREADS=1)",
        f"- torch {torch_version}, executorch {et_version}, Python {platform.python_version()}; tbk: {build}",
        "- Isolation: each test file runs in a pytest process of its own; a test that starts and does not "
        "finish in a process that dies (or hangs) counts as crashed, runs once more alone for its output, "
        "and the file goes on in a new process without it.",
        "- Outcomes are pytest's. The suite itself skips a test it cannot run on any backend (export fails, "
        "or an operator left outside has no portable kernel), and does not run a program with no delegate "
        "call: such a test passes (for portable, which delegates nothing, every program runs).",
        "",
    ]
    lines += summary_table(records, flows) + [""]
    if errors:
        lines += ["## Test files that did not run", ""] + [line for e in errors for line in code_block(e)] + [""]
    for flow in [f for f in flows if f.startswith("tbk_")]:
        lines += failures_section(records, flow)
        lines += comparison_section(records, flow, "xnnpack") if flow == "tbk_onednn" else []
        lines += undelegated_section(records, flow) + partial_section(records, flow) + skipped_section(records, flow)
    for flow in [f for f in flows if not f.startswith("tbk_")]:
        bad = [r for r in records if r["flow"] == flow and r["outcome"] in ("failed", "xpassed", "crashed")]
        if bad:
            lines += [f"## Failures and crashes of {flow} (for reference)", ""]
            lines += [f"- {test_name(r['nodeid'])}: {r['outcome']}, " +
                      (", ".join(sorted({s['detail'] for s in r['subtests'] if s['detail']})) or r["reason"][:200])
                      for r in bad] + [""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip() + "\n")


def shown_arguments(argv: List[str]) -> List[str]:
    """The command line as the page shows it: without --records (a scratch file) and its value."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--records":
            skip = True
        elif not a.startswith("--records="):
            shown.append(a)
    return shown


def load_records(path: str) -> Tuple[dict, List[dict]]:
    """A --records file: its first line (the run: command, flows, seconds, seed, files, errors) and
    the tests' records."""
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[0], lines[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", default="tbk_onednn,xnnpack,portable,tbk_custom_backend")
    parser.add_argument("--tbk-pythonpath", default=os.path.join(ROOT, "build-pip", "python"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "executorch-suite.md"))
    parser.add_argument("--files", default="", help="comma-separated test files of the suite (default: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a test file's process may take")
    parser.add_argument("--records", default="", help="also write every record to this JSON-lines file")
    parser.add_argument("--from-records", default="", help="run nothing: write the page from --records' file")
    args = parser.parse_args()

    if args.from_records:
        meta, records = load_records(args.from_records)
        write_page(args.out, records, meta["errors"], meta["flows"], meta["command"], meta["seconds"],
                   meta["seed"], meta["files"], meta["build"])
        print(f"wrote {args.out} from {args.from_records}")
        return 0
    flows = [f for f in args.flows.split(",") if f]
    package_root, suite = suite_paths()
    files = sorted(f for f in os.listdir(suite) if f.startswith("test_") and f.endswith(".py"))
    if args.files:
        files = [f for f in files if f in args.files.split(",")]
    env = environment(os.path.abspath(args.tbk_pythonpath))
    build = tbk_build(args.tbk_pythonpath)  # before the run: the tree may change while it runs
    started = time.monotonic()
    records: List[dict] = []
    errors: List[str] = []
    with tempfile.TemporaryDirectory(prefix="tbk-suite-") as work:
        for k, name in enumerate(files):
            found, errs = run_file(os.path.join(suite, name), flows, package_root, env, work, args.seed, args.timeout)
            records += found.values()
            errors += errs
            counts = collections.Counter(r["outcome"] for r in found.values() if r["flow"] in flows)
            print(f"[{k + 1}/{len(files)}] {name}: {dict(counts)} ({time.monotonic() - started:.0f} s)", flush=True)
    records = [r for r in records if r["flow"] in flows]
    meta = {"event": "meta", "errors": errors, "flows": flows, "seconds": time.monotonic() - started,
            "seed": args.seed, "files": len(files), "build": build,
            "command": shlex.join(["python3", os.path.relpath(os.path.abspath(__file__), ROOT)] +
                                  shown_arguments(sys.argv[1:]))}
    if args.records:
        with open(args.records, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in [meta] + records)
    write_page(args.out, records, errors, flows, meta["command"], meta["seconds"], args.seed, len(files), build)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
