#!/usr/bin/env python3
"""check_kit.py: proves the conformance kit catches what it claims. Usage: check_kit.py PROGRAM
[--executorch] (the program has the kit's ExecuTorch leg: tbk/testing/executorch.hpp)

PROGRAM (kit_proof) puts one sound backend and several broken ones through TBK_TEST_BACKEND.
It must fail; from its doctest XML report, each backend's kit checks must fail exactly where
EXPECTED says, each failure must carry the message fragment that says what broke, the checks
that cannot run must show as skipped (with a reason) where SKIPPED says, and every other kit
check must pass.
"""
import subprocess
import sys
import xml.etree.ElementTree as ET

RESULTS_NATIVE = "results equal the reference (native path)"
RESULTS_FAST = "results equal the reference (fast path)"
FRESH = "every call returns new results"
SAVE_LOAD = "save and load keep the results"
BAD_CALLS = "bad calls give clear errors"
THREADS = "concurrent calls give the reference results"
UNAVAILABLE = "an unavailable backend says why"
MEMORY = "lower, save and load cycles do not grow memory"
PARTITIONED = "a partitioned model gives the reference results, saved and loaded too"
CHECKS = [RESULTS_NATIVE, RESULTS_FAST, FRESH, SAVE_LOAD, BAD_CALLS, THREADS, UNAVAILABLE, MEMORY, PARTITIONED]

# backend -> the checks that cannot run for it and must show as skipped (never as passed);
# a backend not named here must have UNAVAILABLE (no .unavailable_when) and PARTITIONED (no
# supports hook) skipped, and no other.
SKIPPED = {
    "sound": {PARTITIONED},
    "ignores_switch": {PARTITIONED},
    "unavailable_without_reason": {PARTITIONED},
    "anonymous_errors": {UNAVAILABLE, RESULTS_FAST, PARTITIONED},
    "sound_graph": {UNAVAILABLE},
    "claims_nothing": {UNAVAILABLE},
}

# backend -> {failing check: message fragment the failure must contain}
EXPECTED = {
    "sound": {},
    "wrong_result": {RESULTS_NATIVE: "values differ", RESULTS_FAST: "values differ",
                     FRESH: "values differ", SAVE_LOAD: "values differ", THREADS: "values differ"},
    "loses_dtype": {RESULTS_NATIVE: "dtype Float, expected Double",
                    RESULTS_FAST: "dtype Float, expected Double",
                    FRESH: "dtype Float, expected Double",
                    SAVE_LOAD: "dtype Float, expected Double",
                    THREADS: "dtype Float, expected Double"},
    "not_thread_safe": {THREADS: "threads on one lowered module went wrong",
                        FRESH: "a held result changed when the method was called again"},
    "crashes_on_bad_argument": {BAD_CALLS: "crashed (signal 11"},
    "loses_state": {SAVE_LOAD: "after save and load in memory: result[0]: values differ"},
    "leaks": {MEMORY: "resident memory grew by"},
    "ignores_switch": {UNAVAILABLE: "returned without an error; it should fail, giving the reason"},
    "reuses_outputs": {FRESH: "a held result changed when the method was called again"},
    "accepts_bad_calls": {BAD_CALLS: "returned without an error; it should refuse them"},
    "unavailable_without_reason": {UNAVAILABLE: "the error does not give the reason"},
    "anonymous_errors": {BAD_CALLS: "the error does not name backend 'anonymous_errors'"},
    "sound_graph": {},
    "claims_nothing": {PARTITIONED: "partitioned, the backend runs no node of it"},
}


# With --executorch (the program was built with ExecuTorch): the kit's ExecuTorch leg, backend ->
# {check: the message fragment its failure must contain}; the checks not named must pass.
EXECUTORCH_RESULTS = "the ExecuTorch delegate gives the reference results"
EXECUTORCH_MEMORY = "the ExecuTorch delegate's init, execute and destroy leak nothing"
EXECUTORCH_EXPECTED = {
    "sound": {},
    "wrong_result": {EXECUTORCH_RESULTS: "values differ"},
    "loses_dtype": {EXECUTORCH_RESULTS: "execute failed with ExecuTorch error",
                    EXECUTORCH_MEMORY: "execute failed with ExecuTorch error"},
    "leaks": {EXECUTORCH_MEMORY: "resident memory grew by"},
}


def main() -> int:
    run = subprocess.run([sys.argv[1], "--reporters=xml", "--no-colors"],
                         capture_output=True, text=True)
    if run.returncode == 0:
        print("kit_proof passed, but its broken backends should have failed kit checks")
        return 1
    try:
        report = ET.fromstring(run.stdout)
    except ET.ParseError as e:
        print(f"kit_proof's XML report does not parse ({e}); it may have crashed:\n"
              f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        return 1

    seen = {}
    for case in report.iter("TestCase"):
        name = case.get("name", "")
        if not name.startswith("tbk kit: "):
            continue
        backend, check = name[len("tbk kit: "):].split(": ", 1)
        check = check.split(" [skipped: ")[0]
        if case.get("skipped") == "true":
            seen[(backend, check)] = ("skipped", case.get("description", ""))
            continue
        results = case.find("OverallResultsAsserts")
        failures = int(results.get("failures", "0")) if results is not None else 0
        crashed = results is not None and results.get("test_case_success") == "false" and failures == 0
        text = "\n".join(t for t in case.itertext() if t.strip())
        seen[(backend, check)] = ("failed" if failures > 0 or crashed else "passed", text)

    problems = []
    for backend, failing in EXPECTED.items():
        skipped = SKIPPED.get(backend, {UNAVAILABLE, PARTITIONED})
        for check in CHECKS:
            if (backend, check) not in seen:
                problems.append(f"{backend}: the kit case '{check}' was not registered")
                continue
            outcome, text = seen[(backend, check)]
            if check in skipped:
                if outcome != "skipped":
                    problems.append(f"{backend}: '{check}' {outcome}, but it cannot run and must "
                                    "show as skipped")
                elif not text:
                    problems.append(f"{backend}: '{check}' was skipped without a reason")
                else:
                    print(f"{backend}: '{check}' skipped, as it should: {text}")
            elif outcome == "skipped":
                problems.append(f"{backend}: '{check}' was skipped ({text}), but it can run here")
            elif check in failing:
                if outcome != "failed":
                    problems.append(f"{backend}: '{check}' passed, but the fault should fail it")
                elif failing[check] not in text:
                    problems.append(f"{backend}: '{check}' failed without saying "
                                    f"'{failing[check]}':\n{text}")
                else:
                    print(f"{backend}: '{check}' failed, as it should: ...{failing[check]}...")
            elif outcome == "failed":
                problems.append(f"{backend}: '{check}' failed, but this backend is sound there:\n{text}")
    if "--executorch" in sys.argv[2:]:
        for backend, failing in EXECUTORCH_EXPECTED.items():
            for check in (EXECUTORCH_RESULTS, EXECUTORCH_MEMORY):
                fragment = failing.get(check, "")
                outcome, text = seen.get((backend, check), ("not registered", ""))
                if fragment == "" and outcome != "passed":
                    problems.append(f"{backend}: '{check}' {outcome}, but this backend is sound there:\n{text}")
                elif fragment and (outcome != "failed" or fragment not in text):
                    problems.append(f"{backend}: '{check}' {outcome}, but it should fail saying '{fragment}':\n{text}")
                else:
                    print(f"{backend}: '{check}' {outcome}, as it should")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"the kit caught every fault, and nothing else, in {len(EXPECTED)} backends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
