"""test_package.py: the Python package tbk, imported from the build tree: lowering with compile
specs of mixed types, partitioning (results, report, save and load in Python and the lite
interpreter), tbk.load's diagnostics, and the errors of each function.

Run by `meson test` with PYTHONPATH at the build tree's python/ and TBK_ADD_SUB_GRAPH_LIB,
TBK_SCALED_ACTIVATION_LIB and TBK_MODEL_RUNNER_LIB set to the example backends' libraries.
"""
import io
import os
import subprocess
import sys
import tempfile
import unittest

import torch
from torch.jit.mobile import _load_for_lite_interpreter

import tbk

for variable in ("TBK_ADD_SUB_GRAPH_LIB", "TBK_SCALED_ACTIVATION_LIB", "TBK_MODEL_RUNNER_LIB"):
    torch.ops.load_library(os.environ[variable])


class Mixed(torch.nn.Module):
    """add and sub mixed with matmul, relu, a list, a for loop and an if."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, 3))

    def forward(self, x, y, n: int):
        a = x + y
        b = a - x
        c = torch.relu(torch.matmul(b, self.w)) + b
        for _ in range(n):
            c = c + y
            c = torch.relu(c)
        if n > 2:
            z = c + 1 - y
        else:
            z = c * 2
        return z, torch.cat([x + y, x - y])

    @torch.jit.export
    def helper(self, x):
        return x + self.w - 1


class Scale(torch.nn.Module):
    def forward(self, x):
        return x * 2.0


def inputs(n=3):
    return torch.randn(3, 3), torch.randn(3, 3), n


def same(a, b):
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return torch.equal(a, b)


class Lowering(unittest.TestCase):
    def test_registered_backends_lists_the_loaded_libraries(self):
        self.assertTrue({"add_sub_graph", "scaled_activation", "model_runner"} <=
                        set(tbk.registered_backends()))

    def test_a_spec_of_mixed_types_lowers_where_jit_to_backend_refuses_it(self):
        scripted = torch.jit.script(Scale())
        spec = {"forward": {"scale": 3.0, "activation": "relu"}}
        with self.assertRaises(Exception):  # PyTorch's own entry point cannot type the dict
            torch._C._jit_to_backend("scaled_activation", scripted, spec)
        x = torch.randn(8)
        for path in ("native", "fast"):
            lowered = tbk.lower(scripted, "scaled_activation", spec, path=path)
            self.assertIsInstance(lowered, torch.jit.ScriptModule)
            self.assertTrue(torch.allclose(lowered(x), torch.relu(x * 3.0)))

    def test_example_inputs_become_the_methods_option(self):
        scripted = torch.jit.script(Scale())
        x = torch.ones(2, 5)
        lowered = tbk.lower(scripted, "model_runner", {"forward": {}}, example_inputs=(x,))
        spec = getattr(getattr(lowered, "__loweredModule__"), "__method_compile_spec")
        self.assertTrue(torch.equal(spec["forward"]["example_inputs"][0], x))

    def test_lowering_errors_are_python_exceptions_with_tbks_message(self):
        scripted = torch.jit.script(Scale())
        with self.assertRaisesRegex(TypeError, r"^tbk.lower: expected a torch.jit.ScriptModule, got "
                                    r"Scale; script it first"):
            tbk.lower(Scale(), "scaled_activation", {"forward": {}})
        with self.assertRaisesRegex(ValueError, r'^tbk.lower: path must be "native" or "fast", '
                                    r"got 'quick'"):
            tbk.lower(scripted, "scaled_activation", {"forward": {}}, path="quick")
        with self.assertRaisesRegex(TypeError, r"^tbk.lower: spec\['forward'\]\['scale'\] has "
                                    r"type object; options may be bool, int, float, str"):
            tbk.lower(scripted, "scaled_activation", {"forward": {"scale": object()}})
        with self.assertRaisesRegex(RuntimeError, r"^scaled_activation.forward: the compile spec "
                                    r"of method 'forward' needs option 'scale' \(float\), which is "
                                    r"missing$") as caught:
            tbk.lower(scripted, "scaled_activation", {"forward": {}})
        self.assertNotIn("Exception raised from", str(caught.exception))  # no C++ backtrace
        with self.assertRaisesRegex(RuntimeError, r"^tbk::lower: backend 'nope' is not registered"):
            tbk.lower(scripted, "nope", {"forward": {}})


class Partitioning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.scripted = torch.jit.script(Mixed())

    def test_partitioned_results_equal_the_scripted_modules_on_both_paths(self):
        for path in ("native", "fast"):
            partitioned = tbk.partition(self.scripted, "add_sub_graph",
                                        methods=("forward", "helper"), path=path)
            self.assertIsInstance(partitioned, torch.jit.ScriptModule)
            for n in (0, 3):
                args = inputs(n)
                self.assertTrue(same(self.scripted(*args), partitioned(*args)))
            x = torch.randn(3, 3)
            self.assertTrue(same(self.scripted.helper(x), partitioned.helper(x)))

    def test_the_report_says_where_each_node_went(self):
        report = tbk.report(tbk.partition(self.scripted, "add_sub_graph"))
        self.assertIn("method forward: 4 regions, 8 of 18 nodes in the backend", report)
        self.assertIn("region 0 (_tbk_region_forward_0): 4 nodes [aten::add x2, aten::sub x2], "
                      "2 inputs, 3 outputs", report)
        self.assertRegex(report, r"aten::matmul \(.*test_package.py:\d+\): not supported by the backend")
        self.assertIn("note: kept apart from the region of aten::sub", report)
        report = tbk.report(tbk.partition(self.scripted, "add_sub_graph", min_nodes=3))
        self.assertIn("method forward: 1 region, 4 of 18 nodes in the backend", report)
        self.assertRegex(report, r"its region has 2 nodes, below min_nodes \(3\)")

    def test_a_partitioned_model_saves_and_loads_in_python_and_the_lite_interpreter(self):
        partitioned = tbk.partition(self.scripted, "add_sub_graph", methods=["forward", "helper"])
        args = inputs()
        expected = self.scripted(*args)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "partitioned.pt")
            partitioned.save(path)
            for loaded in (torch.jit.load(path), tbk.load(path)):
                self.assertTrue(same(expected, loaded(*args)))
                self.assertEqual(tbk.report(loaded), tbk.report(partitioned))
            lite = io.BytesIO(partitioned._save_to_buffer_for_lite_interpreter())
            mobile = _load_for_lite_interpreter(lite)
            self.assertTrue(same(expected, mobile(*args)))
            self.assertTrue(same(self.scripted.helper(args[0]), mobile.run_method("helper", args[0])))

    def test_tbk_load_names_a_backend_this_process_lacks(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "partitioned.pt")
            tbk.partition(self.scripted, "add_sub_graph").save(path)
            code = ("import sys, tbk\n"
                    "try:\n    tbk.load(sys.argv[1])\n"
                    "except RuntimeError as e:\n    print(e)\n")
            out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONWARNINGS="ignore"), check=True).stdout
            self.assertIn("add_sub_graph", out)
            self.assertIn("not registered", out)

    def test_example_inputs_reach_the_regions(self):
        x, y = torch.ones(3, 3), torch.zeros(3, 3)
        partitioned = tbk.partition(self.scripted, "add_sub_graph", example_inputs=(x, y, 2),
                                    spec={"forward": {"note": "mixed", "level": 2}})
        spec = getattr(getattr(partitioned._tbk_region_forward_0, "__loweredModule__"),
                       "__method_compile_spec")
        self.assertEqual(spec["forward"]["note"], "mixed")
        self.assertEqual(spec["forward"]["level"], 2)
        self.assertTrue(same(spec["forward"]["example_inputs"], [x, y]))

    def test_freeze_makes_parameters_constants_of_their_regions(self):
        frozen = tbk.partition(self.scripted.eval(), "add_sub_graph", methods=["helper"], freeze=True)
        self.assertIn("2 nodes [aten::add x1, aten::sub x1], 1 input, 1 output", tbk.report(frozen))
        x = torch.randn(3, 3)
        self.assertTrue(same(self.scripted.helper(x), frozen.helper(x)))

    def test_freeze_refuses_a_module_in_training_mode(self):
        training = torch.jit.script(Mixed())  # scripted modules start in training mode
        with self.assertRaisesRegex(RuntimeError, r"freeze needs the module in eval mode, as torch.jit.freeze "
                                                  r"does; module '__torch__\.\S+' is in training mode: call "
                                                  r"\.eval\(\) on it first"):
            tbk.partition(training, "add_sub_graph", methods=["helper"], freeze=True)

    def test_a_supports_override_gives_the_capability_and_its_reasons(self):
        def no_matmul(node):
            if node.kind() == "aten::matmul":
                return tbk.unsupported("matmul waits for a tiled kernel")
            return node.kind() in ("aten::add", "aten::sub")
        partitioned = tbk.partition(self.scripted, "model_runner", supports=no_matmul)
        args = inputs(3)
        self.assertTrue(same(self.scripted(*args), partitioned(*args)))
        report = tbk.report(partitioned)
        self.assertRegex(report, r"aten::matmul \(.*test_package.py:\d+\): not supported by the backend: "
                                 r"matmul waits for a tiled kernel")
        self.assertRegex(report, r"\n    aten::relu \([^)]*test_package.py:\d+\): not supported by the backend\n")
        with self.assertRaisesRegex(TypeError, r"^tbk.partition: supports returned str for aten::\w+; "
                                    r"return True, False or tbk.unsupported\(reason\)"):
            tbk.partition(self.scripted, "model_runner", supports=lambda node: "yes")
        with self.assertRaisesRegex(TypeError, r"^tbk.partition: supports must be None or a callable"):
            tbk.partition(self.scripted, "model_runner", supports="aten::add")

    def test_partition_errors_are_python_exceptions_with_tbks_message(self):
        with self.assertRaisesRegex(TypeError, "^tbk.partition: expected a torch.jit.ScriptModule"):
            tbk.partition(Mixed(), "add_sub_graph")
        with self.assertRaisesRegex(ValueError, r"^tbk.partition: min_nodes must be an int of at "
                                    r"least 1, got 0"):
            tbk.partition(self.scripted, "add_sub_graph", min_nodes=0)
        with self.assertRaisesRegex(ValueError, "^tbk.partition: max_regions must be None or an int"):
            tbk.partition(self.scripted, "add_sub_graph", max_regions=-2)
        with self.assertRaisesRegex(RuntimeError, r"^tbk::partition\(add_sub_graph\): module "
                                    r"'.*Mixed' has no method 'backward'"):
            tbk.partition(self.scripted, "add_sub_graph", methods="backward")
        with self.assertRaisesRegex(RuntimeError, r"^tbk::partition: backend 'model_runner' does "
                                    r"not say which nodes it supports: .*Python: "
                                    r"tbk.partition\(..., supports=callable\)"):
            tbk.partition(self.scripted, "model_runner")
        with self.assertRaisesRegex(ValueError, r"^tbk.partition: example_inputs is a tuple, but "
                                    r"the methods are \['helper', 'other'\]"):
            tbk.partition(self.scripted, "add_sub_graph", methods=["helper", "other"],
                          example_inputs=(torch.ones(3),))
        with self.assertRaisesRegex(RuntimeError, r"method 'forward' takes 3 inputs, but 1 example "
                                    r"input was given"):
            tbk.partition(self.scripted, "add_sub_graph", example_inputs=torch.ones(3, 3))
        with self.assertRaisesRegex(RuntimeError, "^tbk::report: module .* was not made by tbk::partition"):
            tbk.report(self.scripted)


if __name__ == "__main__":
    unittest.main()
