"""tbk.testing: the conformance kit's legs for PyTorch 2's runtimes, from Python: a backend put
through the real paths its users take, each leg a list of failures (empty: it passed).

- export: torch.export.export of the module, tbk.export.lower, the program's results against
  eager's at the kit's inputs and at its second inputs (another batch: the program is exported with
  that dimension dynamic), at least `delegated` region calls, and the program saved as a .pt2 and
  run in a fresh process that only loads the backend (`setup`), without preprocess.
- compile: torch.compile(module, backend=NAME, dynamic=True) under torch.no_grad(): results at both
  inputs, one compile for both, at least `delegated` regions.
- executorch: torch.export.export, to_edge_transform_and_lower with tbk.executorch.partitioner(NAME),
  at least `delegated` delegate calls, the .pte run by ExecuTorch's runtime at the kit's inputs
  (a .pte runs at its export's shapes), the results against eager, and no error-level line in
  ExecuTorch's log on the way.

    import tbk.testing
    kit = tbk.testing.Kit("fused_linear", Model().eval(), (x,), other_inputs=(x5,),
                          setup="import tbk; tbk.load_library('libfused_linear.so')")
    assert tbk.testing.check(kit) == []        # every leg; or check_export(kit), ...
    Tests = tbk.testing.test_case(kit)         # a unittest.TestCase with one test per leg

The C++ kit (tbk/testing.hpp, TBK_TEST_BACKEND) checks TorchScript's side and drives the ExecuTorch
delegate as the runtime does; this one goes through torch.export, Edge and the runtime for real,
which only Python can. tests/kit_proof/check_pt2_kit.py proves each leg fails a broken backend.
"""
import os
import subprocess
import sys
import tempfile
import unittest
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

__all__ = ["Kit", "check", "check_export", "check_compile", "check_executorch", "test_case", "LEGS"]

LEGS = ("export", "compile", "executorch")


@dataclass
class Kit:
    """What the legs check a backend with.

    backend: its registered name. module: an nn.Module (put in eval mode). inputs: a tuple of
    tensors. other_inputs: the same with another batch (dimension 0), or None. options: the
    backend's options for every region. delegated: the fewest region or delegate calls the author
    expects (a backend that claims nothing of its own module fails). tolerance: the largest error
    relative to an output's scale. setup: Python code that registers the backend in a fresh process
    (for the .pt2 check), e.g. "import tbk; tbk.load_library('libmy_backend.so')"."""
    backend: str
    module: torch.nn.Module
    inputs: tuple
    other_inputs: Optional[tuple] = None
    options: Dict[str, Any] = field(default_factory=dict)
    delegated: int = 1
    tolerance: float = 1e-5
    setup: str = "import tbk"


def _flat(value: Any) -> List[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat(v)]
    return []


def _compare(what: str, got: Any, want: Any, tolerance: float) -> List[str]:
    """Failures of `got` against `want`: the number of outputs, each one's shape, dtype and values."""
    got, want = _flat(got), _flat(want)
    if len(got) != len(want):
        return [f"{what}: {len(got)} outputs, expected {len(want)}"]
    failures = []
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or g.dtype != w.dtype:
            failures.append(f"{what}: output {i} is {g.dtype} {list(g.shape)}, expected {w.dtype} {list(w.shape)}")
            continue
        scale = w.abs().max().clamp_min(1e-12) if w.numel() else torch.tensor(1.0)
        error = ((g - w).abs().max() / scale).item() if w.numel() else 0.0
        if not error <= tolerance:
            failures.append(f"{what}: output {i}: values differ (largest error {error:.3g} of the output's "
                            f"scale, allowed {tolerance:g})")
    return failures


def _eager(kit: Kit, inputs: tuple) -> Any:
    with torch.no_grad():
        return kit.module(*inputs)


def _region_calls(graph: torch.fx.Graph) -> int:
    return sum(1 for n in graph.nodes if n.op == "call_function" and "call_region" in str(n.target))


def check_export(kit: Kit) -> List[str]:
    """The export leg's failures (see the module's text)."""
    import tbk.export
    kit.module.eval()
    dynamic = ({0: torch.export.Dim.AUTO},) * len(kit.inputs) if kit.other_inputs is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(kit.module, kit.inputs, dynamic_shapes=dynamic)
            lowered = tbk.export.lower(program, kit.backend, kit.options)
    except Exception as error:  # noqa: BLE001 - the backend's failure, any type
        return [f"tbk.export.lower failed: {type(error).__name__}: {error}"]
    failures = []
    calls = _region_calls(lowered.graph)
    if calls < kit.delegated:
        failures.append(f"the program has {calls} region calls, expected at least {kit.delegated}: the backend's "
                        f"supports hook claimed too little of the module:\n{tbk.export.report(lowered)}")
    for name, inputs in (("inputs", kit.inputs), ("other inputs", kit.other_inputs)):
        if inputs is None:
            continue
        try:
            failures += _compare(f"the lowered program at the {name}", lowered.module()(*inputs), _eager(kit, inputs),
                                 kit.tolerance)
        except Exception as error:  # noqa: BLE001
            failures.append(f"the lowered program at the {name} failed: {type(error).__name__}: {error}")
    failures += _fresh_process(kit, lowered)
    return failures


def _fresh_process(kit: Kit, lowered: torch.export.ExportedProgram) -> List[str]:
    """The program saved as a .pt2, loaded and run in a process that only runs `kit.setup`."""
    import tbk.export
    with tempfile.TemporaryDirectory() as directory:
        path, data, out = (os.path.join(directory, n) for n in ("program.pt2", "inputs.pt", "outputs.pt"))
        tbk.export.save(lowered, path)
        torch.save(kit.inputs, data)
        script = (f"{kit.setup}\nimport torch, tbk.export\n"
                  f"torch.save(tbk.export.load({path!r}).module()(*torch.load({data!r})), {out!r})\n")
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        if run.returncode != 0:
            return [f"the .pt2 loaded in a fresh process failed:\n{run.stderr[-2000:]}"]
        return _compare("the .pt2 loaded and run in a fresh process", torch.load(out), _eager(kit, kit.inputs),
                        kit.tolerance)


def check_compile(kit: Kit) -> List[str]:
    """The compile leg's failures (see the module's text)."""
    import tbk.compile
    kit.module.eval()
    graphs, regions = [], []
    backend = tbk.compile.backend(kit.backend, kit.options)

    def counted(gm, example_inputs, **kwargs):
        graphs.append(gm)
        compiled = backend(gm, example_inputs, **kwargs)
        regions.append(len(getattr(compiled, "report").regions) if hasattr(compiled, "report") else 0)
        return compiled
    torch._dynamo.reset()
    compiled = torch.compile(kit.module, backend=counted, dynamic=True)
    failures = []
    for name, inputs in (("inputs", kit.inputs), ("other inputs", kit.other_inputs)):
        if inputs is None:
            continue
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = compiled(*inputs)
            failures += _compare(f"torch.compile at the {name}", got, _eager(kit, inputs), kit.tolerance)
        except Exception as error:  # noqa: BLE001
            failures.append(f"torch.compile at the {name} failed: {type(error).__name__}: {error}")
    if len(graphs) > 1 and kit.other_inputs is not None:
        failures.append(f"torch.compile compiled {len(graphs)} times for two batch sizes with dynamic=True, expected once")
    if sum(regions) < kit.delegated:
        failures.append(f"torch.compile ran {sum(regions)} regions in the backend, expected at least {kit.delegated}: "
                        "the backend's supports hook claimed too little of the module")
    return failures


class _Stderr:
    """What the process writes to file descriptor 2 meanwhile (ExecuTorch's log goes there)."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode(errors="replace")
        self.file.close()


def check_executorch(kit: Kit) -> List[str]:
    """The ExecuTorch leg's failures (see the module's text); raises unittest.SkipTest without the
    executorch package."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tbk.executorch
            from executorch.exir import to_edge_transform_and_lower
            from executorch.runtime import Runtime
    except ImportError as error:
        raise unittest.SkipTest(f"the executorch package does not import beside this torch ({error})")
    kit.module.eval()
    partitioner = tbk.executorch.partitioner(kit.backend, kit.options)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edge = to_edge_transform_and_lower(torch.export.export(kit.module, kit.inputs), partitioner=[partitioner])
            buffer = edge.to_executorch().buffer
    except Exception as error:  # noqa: BLE001
        return [f"lowering to a .pte failed: {type(error).__name__}: {error}"]
    failures = []
    code = edge.exported_program().graph_module.code
    calls = code.count("executorch_call_delegate(")
    if calls < kit.delegated:
        reasons = "\n".join(f"  {n}: {r}" for n, r in list(partitioner.refusals.items())[:8])
        failures.append(f"the .pte has {calls} delegate calls, expected at least {kit.delegated}: the backend's "
                        f"supports hook claimed too little of the Edge graph; its reasons:\n{reasons}")
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "program.pte")
        with open(path, "wb") as f:
            f.write(buffer)
        with _Stderr() as log:
            try:
                method = Runtime.get().load_program(path).load_method("forward")
                got = method.execute(list(kit.inputs))
            except Exception as error:  # noqa: BLE001
                got = error
        if isinstance(got, Exception):
            failures.append(f"the .pte failed to run: {type(got).__name__}: {got}\n{log.text[-2000:]}")
        else:
            failures += _compare("the .pte run by ExecuTorch's runtime", list(got), _eager(kit, kit.inputs), kit.tolerance)
        errors = [line for line in log.text.splitlines() if line.startswith("E ")]
        if errors:
            failures.append(f"ExecuTorch logged {len(errors)} error lines on the way, the first: {errors[0]}")
    return failures


CHECKS: Dict[str, Callable[[Kit], List[str]]] = {"export": check_export, "compile": check_compile,
                                                 "executorch": check_executorch}


def check(kit: Kit, legs: Sequence[str] = LEGS) -> List[str]:
    """Every named leg's failures, each prefixed with its leg."""
    failures = []
    for leg in legs:
        try:
            failures += [f"{leg}: {f}" for f in CHECKS[leg](kit)]
        except unittest.SkipTest:
            pass
    return failures


def test_case(kit: Kit, legs: Sequence[str] = LEGS) -> type:
    """A unittest.TestCase with one test per leg (test_export, test_compile, test_executorch), each
    failing with its failures' text; a leg that cannot run here is skipped with the reason."""
    def test(leg):
        def run(self):
            failures = CHECKS[leg](kit)
            self.assertEqual(failures, [], f"{kit.backend}, {leg} leg:\n" + "\n".join(failures))
        run.__name__ = f"test_{leg}"
        return run
    return type(f"Kit_{kit.backend}", (unittest.TestCase,), {f"test_{leg}": test(leg) for leg in legs})
