"""tbk_flows: a pytest plugin that adds tbk's backends to ExecuTorch's backend test suite
(executorch.backends.test.suite, shipped in the executorch wheel) as test flows, and records, per
test, what was delegated and why the partitioner left nodes out.

    cd $(python3 -c 'import site; print(site.getsitepackages()[0])')
    PYTHONPATH=/work/main/build-pip/python:/work/main/backends/onednn/tests/executorch_suite \\
    OMP_NUM_THREADS=1 python3 -m pytest -p tbk_flows -p no:cacheprovider \\
        executorch/backends/test/suite/operators -m flow_tbk_onednn [--tbk-record out.jsonl]

Flows (executorch.backends.test.suite.flow.TestFlow), added to the suite's own (portable, xnnpack,
...) by replacing flow.all_flows before the suite's conftest.py imports it (a `-p` plugin is
imported before any conftest):

- tbk_onednn: tbk_onednn (import tbk.onednn), lowered with tbk.executorch.partitioner("tbk_onednn").
- tbk_custom_backend: the add/sub reference backend (examples/add_sub, libcustom_backend.so from
  TBK_CUSTOM_BACKEND_LIB, else the build tree beside tbk). It has no supports hook, so it gets
  every node; it only runs the add and sub tests without alpha, the others are skipped with the
  reason. Its method "forward" returns both x + y and x - y (PyTorch's test backend), so a graph
  of one output fails at run time: those tests are strict expected failures (KNOWN_FAILURES).

A flow whose backend does not load is left out, and the header of the pytest run says why.

--tbk-record PATH (or TBK_SUITE_RECORD) appends JSON lines: {"event": "start", "nodeid"} when a
test starts (so that a runner finds the test a native crash killed), then one "finish" record: its
outcome, and per lowering (a test lowers one model or several: subtests) the suite's result,
whether a delegate call was made, the error, and the partitioner's `refusals` (Edge node name ->
the backend's reason). run_suite.py reads them.
"""
import json
import logging
import os
import random
from typing import Any, Dict, List, Optional

import pytest
import torch

from executorch.backends.test.harness import Tester
from executorch.backends.test.harness.stages import StageType, ToEdgeTransformAndLower
from executorch.backends.test.suite import flow as suite_flow
from executorch.backends.test.suite.flow import TestFlow

logger = logging.getLogger(__name__)

# ---- the flows ----------------------------------------------------------------------------------

# The partitioners made since the running test started, in order (one per lowering), so that the
# record can hold their refusals: the suite's TestRunner keeps its results, not its testers.
_partitioners: List[Any] = []


class TbkToEdgeTransformAndLower(ToEdgeTransformAndLower):
    """The suite's to_edge_transform_and_lower stage, partitioned for a tbk backend."""

    def __init__(self, backend: str, partitioners: Optional[List[Any]] = None, edge_compile_config=None):
        import tbk.executorch
        super().__init__(default_partitioner_cls=lambda: tbk.executorch.partitioner(backend),
                         partitioners=partitioners, edge_compile_config=edge_compile_config)
        _partitioners.extend(self.partitioners)


def tester_for(backend: str):
    """A tester factory as TestFlow takes it: the harness's Tester whose ToEdgeTransformAndLower
    stage lowers to `backend` (as XnnpackTester does for XNNPACK); the other stages the harness's."""

    class TbkTester(Tester):
        __test__ = False

        def __init__(self, module: torch.nn.Module, example_inputs, dynamic_shapes=None, **kwargs):
            stages = Tester.default_stage_classes() | {
                StageType.TO_EDGE_TRANSFORM_AND_LOWER:
                    lambda *args, **kw: TbkToEdgeTransformAndLower(backend, *args, **kw)}
            super().__init__(module=module, stage_classes=stages, example_inputs=example_inputs,
                             dynamic_shapes=dynamic_shapes, **kwargs)

    TbkTester.__name__ = TbkTester.__qualname__ = f"TbkTester_{backend}"
    return TbkTester


class CoveringFlow(TestFlow):
    """A flow that runs only the tests named by `covers` (prefixes of test names); the others are
    skipped with `uncovered_reason`. `skip_reasons` (test name prefix -> reason) skips some covered
    tests with a reason of their own."""

    def __init__(self, *args, covers: List[str], uncovered_reason: str,
                 skip_reasons: Optional[Dict[str, str]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.covers = covers
        self.uncovered_reason = uncovered_reason
        self.skip_reasons = dict(skip_reasons or {})

    def should_skip_test(self, test_name: str, params=None):
        for prefix, reason in self.skip_reasons.items():
            if test_name.startswith(prefix):
                return True, reason
        if not any(test_name.startswith(prefix) for prefix in self.covers):
            return True, self.uncovered_reason
        return super().should_skip_test(test_name, params)


# Why custom_backend fails every suite test it runs: a delegate call returns both results.
TWO_OUTPUTS = ("custom_backend's method forward returns two outputs, x0 + x1 and x0 - x1 "
               "(examples/add_sub/add_sub.hpp), and tbk.executorch lowers every subgraph as forward; this test's "
               "graph returns one, so the delegate call fails: 'execute returned 2 output(s), but the method "
               "returns 1'")

# (flow, test name prefix) -> why the test fails: a strict xfail, so that it still runs and a
# fix shows up as an unexpected pass.
KNOWN_FAILURES = {
    ("tbk_custom_backend", "test_add_"): TWO_OUTPUTS,
    ("tbk_custom_backend", "test_subtract_"): TWO_OUTPUTS,
}


def _custom_backend_library() -> str:
    import tbk
    built = os.path.join(os.path.dirname(os.path.abspath(tbk.__file__)), "..", "..", "examples", "add_sub",
                         "libcustom_backend.so")
    return os.path.normpath(os.environ.get("TBK_CUSTOM_BACKEND_LIB") or built)


def _onednn_flow() -> TestFlow:
    import tbk.executorch  # noqa: F401  (raises without tbk's ExecuTorch side)
    import tbk.onednn  # noqa: F401  (registers tbk_onednn)
    return TestFlow("tbk_onednn", backend="tbk_onednn", tester_factory=tester_for("tbk_onednn"))


def _custom_backend_flow() -> TestFlow:
    import tbk.executorch  # noqa: F401
    library = _custom_backend_library()
    if not os.path.exists(library):
        raise FileNotFoundError(f"{library} is missing (set TBK_CUSTOM_BACKEND_LIB)")
    torch.ops.load_library(library)  # registers custom_backend for TorchScript and ExecuTorch
    return CoveringFlow(
        "tbk_custom_backend", backend="custom_backend", tester_factory=tester_for("custom_backend"),
        covers=["test_add_", "test_subtract_"],
        uncovered_reason="custom_backend (examples/add_sub) computes add and sub only",
        skip_reasons={"test_add_f32_alpha": "custom_backend computes x0 + x1 and x0 - x1, without alpha",
                      "test_subtract_f32_alpha": "custom_backend computes x0 + x1 and x0 - x1, without alpha"})


_tbk_flows: Optional[Dict[str, TestFlow]] = None
_left_out: Dict[str, str] = {}  # flow name -> why it is not registered


def tbk_flows() -> Dict[str, TestFlow]:
    """tbk's flows whose backends load, made once (the suite asks for its flows several times)."""
    global _tbk_flows
    if _tbk_flows is None:
        _tbk_flows = {}
        for name, make in (("tbk_onednn", _onednn_flow), ("tbk_custom_backend", _custom_backend_flow)):
            try:
                _tbk_flows[name] = make()
            except Exception as error:  # noqa: BLE001 - any reason a backend does not load
                _left_out[name] = f"{type(error).__name__}: {error}"
                logger.info("Skipping %s flow registration: %s", name, error)
    return _tbk_flows


_suite_all_flows = suite_flow.all_flows


def all_flows() -> Dict[str, TestFlow]:
    """The suite's flows and tbk's."""
    return {**_suite_all_flows(), **tbk_flows()}


suite_flow.all_flows = all_flows  # before the suite's conftest.py does `from ...flow import all_flows`


# ---- pytest hooks -------------------------------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--tbk-record", default=os.environ.get("TBK_SUITE_RECORD"),
                     help="append per-test JSON lines (outcome, delegation, partitioner refusals) to this file")
    parser.addoption("--tbk-seed", type=int, default=None,
                     help="seed Python's random and torch before each test from this and the test's id "
                          "without its flow (the suite draws its run seed from Python's): each test's inputs are "
                          "then the same on every run and for every flow")


def pytest_report_header(config):
    flows = tbk_flows()
    lines = [f"tbk flows: {', '.join(flows) or 'none'}"]
    lines += [f"tbk flow {name} left out: {why}" for name, why in _left_out.items()]
    return lines


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        flow = callspec.params.get("test_runner") if callspec is not None else None
        if not isinstance(flow, TestFlow):
            continue
        name = item.originalname or item.name
        for (flow_name, prefix), reason in KNOWN_FAILURES.items():
            if flow.name == flow_name and name.startswith(prefix):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


class _Recorder:
    """Writes the --tbk-record lines: a start line per test, flushed at once, and a finish line."""

    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8")
        self.tests: Dict[str, Dict[str, Any]] = {}

    def write(self, record: Dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()


_recorder: Optional[_Recorder] = None
_seed: Optional[int] = None


def pytest_configure(config):
    global _recorder, _seed
    _seed = config.getoption("--tbk-seed")
    path = config.getoption("--tbk-record")
    if path:
        _recorder = _Recorder(path)


def pytest_unconfigure(config):
    if _recorder is not None:
        _recorder.file.close()


def _without_flow(nodeid: str) -> str:
    """test_x.py::test_y[flow-float32] -> test_x.py::test_y[float32]: the test, whichever flow runs it."""
    if "[" not in nodeid:
        return nodeid
    base, params = nodeid.split("[", 1)
    return base + "[" + "-".join(params.rstrip("]").split("-")[1:]) + "]"


def pytest_runtest_logstart(nodeid, location):
    _partitioners.clear()
    if _seed is not None:
        random.seed(f"{_seed}:{_without_flow(nodeid)}")
        torch.manual_seed(random.randrange(2 ** 31))  # the inputs a test makes before the suite seeds torch
    if _recorder is not None:
        _recorder.write({"event": "start", "nodeid": nodeid})
        _recorder.tests[nodeid] = {"event": "finish", "nodeid": nodeid, "outcome": "passed", "flow": None,
                                   "subtests": [], "lowerings": [], "reason": "", "stderr": ""}


def _error_text(error: Optional[BaseException]) -> str:
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__ or error.__context__
    while cause is not None and len(text) < 4000:
        text += f"\n  caused by {type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    record = _recorder.tests.get(item.nodeid) if _recorder is not None else None
    if record is not None and call.when == "call":
        runner = item.funcargs.get("test_runner") if hasattr(item, "funcargs") else None
        if runner is not None:
            record["flow"] = runner._flow.name
            record["subtests"] = [{
                "result": summary.result.name,
                "detail": summary.result.to_detail_str(),
                "delegated": bool(summary.is_delegated()),
                "error": _error_text(summary.error),
                "delegated_ops": dict(summary.delegated_op_counts or {}),
                "undelegated_ops": dict(summary.undelegated_op_counts or {}),
            } for summary in runner._results]
        record["lowerings"] = [{"refusals": dict(getattr(p, "refusals", {}) or {})} for p in _partitioners]
    return report


def pytest_runtest_logreport(report):
    record = _recorder.tests.get(report.nodeid) if _recorder is not None else None
    if record is None:
        return
    if record["flow"] is None and "[" in report.nodeid:
        record["flow"] = report.nodeid.split("[", 1)[1].split("-")[0].rstrip("]")
    wasxfail = getattr(report, "wasxfail", None)
    if report.failed:
        record["outcome"] = "failed"
        record["reason"] = str(report.longrepr)[-6000:]
    elif report.skipped and wasxfail is not None:
        record["outcome"] = "xfailed"
        record["reason"] = wasxfail
    elif report.skipped and record["outcome"] == "passed":
        record["outcome"] = "skipped"
        longrepr = report.longrepr
        record["reason"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    elif report.passed and wasxfail is not None and report.when == "call":
        record["outcome"] = "xpassed"
    if report.when == "call":
        record["stderr"] = report.capstderr[-4000:]


def pytest_runtest_logfinish(nodeid, location):
    if _recorder is not None and nodeid in _recorder.tests:
        _recorder.write(_recorder.tests.pop(nodeid))
