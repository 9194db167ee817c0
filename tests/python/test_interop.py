"""test_interop.py: the add/sub backend from Python, and models crossing between Python and C++
in both directions, as full TorchScript archives and as lite interpreter archives.

Run by `meson test`, with TBK_CUSTOM_BACKEND_LIB (libcustom_backend.so), TBK_ADD_SUB_RUN
(the add_sub_run program) and TBK_EXPORT_MODEL (examples/add_sub/export_model.py) set.
"""
import importlib.util
import os
import subprocess
import tempfile
import unittest

import torch
from torch.jit.mobile import _load_for_lite_interpreter

LIB = os.environ["TBK_CUSTOM_BACKEND_LIB"]
ADD_SUB_RUN = os.environ["TBK_ADD_SUB_RUN"]
EXPORT_MODEL = os.environ["TBK_EXPORT_MODEL"]

torch.ops.load_library(LIB)

_spec = importlib.util.spec_from_file_location("export_model", EXPORT_MODEL)
export_model = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_model)

ALL_METHODS = ["forward", "accum", "sub_accum"]


def call(model, method, *args):
    """model.method(*args) for a ScriptModule and a LiteScriptModule (run_method) alike."""
    if hasattr(model, method):
        return getattr(model, method)(*args)
    return model.run_method(method, *args)


class AddSubChecks:
    """Checks of a model that has the add/sub methods, whatever loaded it."""

    def check_model(self, model, methods=ALL_METHODS, shape=(3, 4)):
        a, b = torch.randn(shape), torch.randn(shape)
        if "forward" in methods:
            total, difference = call(model, "forward", a, b)
            self.assertTrue(torch.equal(total, a + b))
            self.assertTrue(torch.equal(difference, a - b))
        if "accum" in methods:
            self.assertTrue(torch.equal(call(model, "accum", a, b), a + b))
        if "sub_accum" in methods:
            self.assertTrue(torch.equal(call(model, "sub_accum", a, b), a - b))

    def run_cpp(self, *args):
        """Runs add_sub_run; fails the test with its output when it exits non-zero."""
        run = subprocess.run([ADD_SUB_RUN, *args], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, f"add_sub_run {' '.join(args)} failed:\n"
                                            f"{run.stdout}{run.stderr}")
        self.assertIn("all results correct", run.stdout)
        return run.stdout


class PythonLowering(AddSubChecks, unittest.TestCase):
    def test_jit_to_backend_matches_eager(self):
        lowered = torch._C._jit_to_backend(
            "custom_backend", torch.jit.script(export_model.AddSub()), {"forward": {"": ""}})
        for shape in [(4,), (2, 3), (0,), ()]:
            self.check_model(lowered, ["forward"], shape)

    def test_multi_method_module(self):
        self.check_model(export_model.lower(ALL_METHODS))

    def test_save_and_load_in_python(self):
        lowered = export_model.lower(ALL_METHODS)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pt")
            torch.jit.save(lowered, path)
            self.check_model(torch.jit.load(path))

    def test_lite_interpreter_in_python(self):
        lowered = export_model.lower(ALL_METHODS)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.ptl")
            lowered._save_for_lite_interpreter(path)
            self.check_model(_load_for_lite_interpreter(path))

    def test_unsupported_method_is_a_clear_error(self):
        class Mul(torch.nn.Module):
            def forward(self, a: torch.Tensor, b: torch.Tensor):
                return a * b

            @torch.jit.export
            def mul(self, a: torch.Tensor, b: torch.Tensor):
                return a * b

        with self.assertRaisesRegex(RuntimeError,
                                    "custom_backend.mul: compile policy failed: cannot lower "
                                    "method 'mul'; supported methods: forward, accum, sub_accum"):
            torch._C._jit_to_backend("custom_backend", torch.jit.script(Mul()), {"mul": {"": ""}})

    def test_mismatching_signature_is_a_clear_error_at_lowering(self):
        class Odd(torch.nn.Module):
            def forward(self, a: torch.Tensor, n: int):
                return a, a

        with self.assertRaisesRegex(RuntimeError,
                                    r"custom_backend.forward: the method's TorchScript signature "
                                    r"does not fit the execute policy: argument 'n' \(inputs\[1\]\) "
                                    r"is int, the execute policy takes Tensor there"):
            torch._C._jit_to_backend("custom_backend", torch.jit.script(Odd()),
                                     {"forward": {"": ""}})


class AcrossLanguages(AddSubChecks, unittest.TestCase):
    """lowered in {Python, C++} x run in {Python, C++} x {full, lite} archive."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def export_python(self, name, lite, selective=False):
        path = self.path(name)
        args = ["--out", path, "--lib", LIB] + (["--lite"] if lite else [])
        self.assertEqual(export_model.main(args + (["--selective"] if selective else [])), 0)
        return path

    def export_cpp(self, name, lite, selective=False):
        path = self.path(name)
        flags = (["--lite"] if lite else []) + (["--selective"] if selective else [])
        self.run_cpp(*flags, "--save", path)
        return path

    def test_selectively_lowered_in_python_runs_in_both(self):
        path = self.export_python("s.pt", lite=False, selective=True)
        model = torch.jit.load(path)
        self.assertIn("LoweredWrapper", str(model.inner._c._type()))
        self.check_model(model)
        self.run_cpp(path)

    def test_selectively_lowered_in_cpp_runs_in_both(self):
        path = self.export_cpp("s.pt", lite=False, selective=True)
        model = torch.jit.load(path)
        self.assertIn("LoweredWrapper", str(model.inner._c._type()))
        self.assertNotIn("Lowered", str(model._c._type()))  # the parent stays TorchScript
        self.check_model(model)
        self.run_cpp(path)

    def test_python_lowered_runs_in_python(self):
        self.check_model(torch.jit.load(self.export_python("p.pt", lite=False)))

    def test_python_lowered_runs_in_cpp(self):
        out = self.run_cpp(self.export_python("p.pt", lite=False))
        self.assertIn("sub_accum(a, b) == a-b   ok", out)

    def test_cpp_lowered_runs_in_python(self):
        self.check_model(torch.jit.load(self.export_cpp("c.pt", lite=False)))

    def test_cpp_lowered_runs_in_cpp(self):
        self.run_cpp(self.export_cpp("c.pt", lite=False))

    def test_python_lowered_lite_runs_in_python(self):
        self.check_model(_load_for_lite_interpreter(self.export_python("p.ptl", lite=True)))

    def test_python_lowered_lite_runs_in_cpp(self):
        self.run_cpp("--lite", self.export_python("p.ptl", lite=True))

    def test_cpp_lowered_lite_runs_in_python(self):
        self.check_model(_load_for_lite_interpreter(self.export_cpp("c.ptl", lite=True)))

    def test_cpp_lowered_lite_runs_in_cpp(self):
        self.run_cpp("--lite", self.export_cpp("c.ptl", lite=True))


if __name__ == "__main__":
    unittest.main(verbosity=2)
