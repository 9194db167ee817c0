"""test_executorch.py: the add/sub backend as an ExecuTorch delegate, from the same policies: the
model exported with torch.export, lowered with tbk.executorch.partitioner("custom_backend"), saved
as .pte, run with executorch.runtime (Python) and add_sub_executorch_run (ExecuTorch's C++ Module
API), equal to eager; options reach the compile policy; a refusal at init is an error with tbk's
text. Needs pip's torch and executorch==1.5.1 (-Dtorch=python): skipped (exit 77) otherwise.
"""
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

try:
    with warnings.catch_warnings():  # ExecuTorch's own deprecation notices on import
        warnings.simplefilter("ignore")
        import executorch.exir  # noqa: F401
        import executorch.runtime  # noqa: F401
except ImportError:
    print("skipped: the executorch package does not import beside this torch (ExecuTorch 1.5.1 "
          "needs pip's torch 2.13: build with -Dtorch=python)")
    sys.exit(77)
if not os.environ.get("TBK_ADD_SUB_EXECUTORCH_RUN"):
    print("skipped: this build has no ExecuTorch side (-Dexecutorch found nothing)")
    sys.exit(77)

import torch  # noqa: E402

import tbk.executorch  # noqa: E402
from executorch.exir import to_edge_transform_and_lower  # noqa: E402
from executorch.runtime import Runtime  # noqa: E402

warnings.filterwarnings("error", module=r"tbk(\.|$)")  # nothing tbk does may warn
torch.ops.load_library(os.environ["TBK_CUSTOM_BACKEND_LIB"])


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


def lowered(spec=None):
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    edge = to_edge_transform_and_lower(torch.export.export(AddSub(), (a, b)),
                                       partitioner=[tbk.executorch.partitioner("custom_backend", spec)])
    return edge


def saved(edge, directory):
    path = os.path.join(directory, "add_sub.pte")
    with open(path, "wb") as f:
        f.write(edge.to_executorch().buffer)
    return path


class StderrCapture:
    """What the process writes to file descriptor 2 meanwhile (ExecuTorch's log goes there)."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode(errors="replace")
        self.file.close()
        return False


class AddSubOnExecuTorch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_the_whole_graph_is_one_custom_backend_delegate(self):
        graph = lowered().exported_program().graph_module
        delegates = [n for n in graph.graph.nodes if n.op == "call_function"
                     and "executorch_call_delegate" in str(n.target)]
        self.assertEqual(len(delegates), 1, graph.code)
        self.assertEqual(graph.lowered_module_0.backend_id, "custom_backend")
        others = [n for n in graph.graph.nodes if n.op == "call_function" and n not in delegates
                  and "getitem" not in str(n.target)]
        self.assertEqual(others, [], graph.code)

    def test_the_pte_runs_in_python_as_eager(self):
        method = Runtime.get().load_program(saved(lowered(), self.dir.name)).load_method("forward")
        for _ in range(3):
            a, b = torch.randn(2, 3), torch.randn(2, 3)
            got = method.execute([a, b])
            self.assertEqual(len(got), 2)
            self.assertTrue(torch.equal(got[0], a + b))
            self.assertTrue(torch.equal(got[1], a - b))

    def test_the_pte_runs_in_cpp_with_the_module_api(self):
        path = saved(lowered(), self.dir.name)
        run = subprocess.run([os.environ["TBK_ADD_SUB_EXECUTORCH_RUN"], path], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("forward(a, b) = (a + b, a - b)", run.stdout)

    def test_options_reach_the_compile_policy(self):
        method = Runtime.get().load_program(
            saved(lowered({"recycle_outputs": True}), self.dir.name)).load_method("forward")
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        got = method.execute([a, b])
        self.assertTrue(torch.equal(got[0], a + b) and torch.equal(got[1], a - b))

    def test_a_refusal_at_init_is_an_error_with_tbks_text(self):
        program = Runtime.get().load_program(saved(lowered({"recycle_outputs": "yes"}), self.dir.name))
        with StderrCapture() as log:
            with self.assertRaises(RuntimeError):
                program.load_method("forward")
        self.assertRegex(log.text, r"tbk init: custom_backend\.forward: .*'recycle_outputs'.*bool", log.text)

    def test_an_unregistered_backend_is_named(self):
        with self.assertRaisesRegex(RuntimeError, r"tbk.executorch.partitioner: backend 'no_such_backend' "
                                                  r"is not registered in this process"):
            tbk.executorch.partitioner("no_such_backend")

    def test_options_are_torch_save_bytes(self):
        value = {"threads": 2, "scale": 0.5, "name": "x", "flags": [True, False], "t": torch.ones(2)}
        back = tbk.executorch.decode_option(tbk.executorch.encode_option(value))
        self.assertEqual({k: v for k, v in back.items() if k != "t"}, {k: v for k, v in value.items() if k != "t"})
        self.assertTrue(torch.equal(back["t"], value["t"]))


if __name__ == "__main__":
    unittest.main()
