"""test_pt2.py: tbk backends under torch.compile and in torch.export programs, and the bridge every
path shares. The seed's add/sub backend (custom_backend, whole methods) and the fused linear backend
(fused_linear: a supports hook that reads a node's producer) through tbk.export (results, dynamic
shapes, .pt2 saved and loaded in a fresh process, a missing backend named), torch.compile (by name,
with options, eager and Inductor for the rest, a second batch without recompiling, graph breaks,
tuple outputs, training graphs left to Inductor, weights changed after compiling), and the same
hook deciding the same way under tbk.partition, tbk.export, torch.compile and tbk.executorch. Needs
torch 2 (pip's): skipped (exit 77) on Debian's torch 1.13.
"""
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import torch

if int(torch.__version__.split(".")[0]) < 2:
    print(f"skipped: torch.compile and torch.export need torch 2 (this is {torch.__version__}): build with -Dtorch=python")
    sys.exit(77)

import tbk  # noqa: E402
import tbk.bridge  # noqa: E402
import tbk.export  # noqa: E402
import tbk.testing  # noqa: E402

warnings.filterwarnings("error", module=r"tbk(\.|$)")  # nothing tbk does may warn unless a test expects it
tbk.load_library(os.environ["TBK_CUSTOM_BACKEND_LIB"])
tbk.load_library(os.environ["TBK_FUSED_LINEAR_LIB"])
for library in ("TBK_ADD_SUB_GRAPH_LIB", "TBK_SCALED_ACTIVATION_LIB", "TBK_MODEL_RUNNER_LIB"):
    tbk.load_library(os.environ[library])
HERE = os.path.abspath(__file__)


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


class Fused(torch.nn.Module):
    """Linear layers with a relu and a gelu right after two of them, and a relu after a product,
    which fused_linear refuses: its hook claims an activation only right after a linear layer."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = torch.nn.Linear(8, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)

    def forward(self, x):
        h = torch.relu(self.a(x))
        h = torch.nn.functional.gelu(self.b(h))
        return torch.relu(self.c(h) * 2)


def compiles(counter):
    """A torch.compile backend that counts its calls, then hands the graph to `counter.inner`."""
    def backend(gm, example_inputs, **kwargs):
        counter.count += 1
        return counter.inner(gm, example_inputs, **kwargs)
    return backend


class Counter:
    def __init__(self, inner):
        self.inner, self.count = inner, 0


class AddSubBackend(unittest.TestCase):
    def test_torch_compile_by_name(self):
        torch._dynamo.reset()
        compiled = torch.compile(AddSub(), backend="custom_backend")
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        got = compiled(a, b)
        torch.testing.assert_close(got, (a + b, a - b))

    def test_export_save_and_load_in_a_fresh_process(self):
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        lowered = tbk.export.lower(torch.export.export(AddSub(), (a, b)), "custom_backend")
        calls = [n for n in lowered.graph.nodes if n.op == "call_function" and "call_region" in str(n.target)]
        self.assertEqual(len(calls), 1, lowered.graph_module.code)
        self.assertEqual(tbk.export.backends_of(lowered), ["custom_backend"])
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "add_sub.pt2")
            tbk.export.save(lowered, path)
            torch.save((a, b), os.path.join(directory, "inputs.pt"))
            script = (
                "import sys, torch, tbk, tbk.export\n"
                f"torch.ops.load_library({os.environ['TBK_CUSTOM_BACKEND_LIB']!r})\n"
                f"a, b = torch.load({os.path.join(directory, 'inputs.pt')!r})\n"
                f"out = tbk.export.load({path!r}).module()(a, b)\n"
                "torch.testing.assert_close(out, (a + b, a - b))\n"
                # plain torch.export.load works as well once the library is there
                f"torch.testing.assert_close(torch.export.load({path!r}).module()(a, b), (a + b, a - b))\n"
                "print('ok')\n")
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
            self.assertEqual(run.returncode, 0, run.stderr[-3000:])
            self.assertIn("ok", run.stdout)
            # without the backend's library: tbk.export.load names the backend
            script = f"import tbk.export\ntbk.export.load({path!r})\n"
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ))
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("backend 'custom_backend', not registered in this process", run.stderr)

    def test_dynamic_shapes_carry_over(self):
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        batch = torch.export.Dim("batch", min=1, max=16)
        program = torch.export.export(AddSub(), (a, b), dynamic_shapes=({0: batch}, {0: batch}))
        lowered = tbk.export.lower(program, "custom_backend")
        for n in (1, 5, 16):
            a, b = torch.randn(n, 3), torch.randn(n, 3)
            torch.testing.assert_close(lowered.module()(a, b), (a + b, a - b))


class TheOtherExampleBackends(unittest.TestCase):
    """add_sub_graph (regions of add and sub), scaled_activation (options, no graph) and
    model_runner (any module, frozen and optimized) on PT2's paths."""

    def test_add_sub_graph_runs_the_adds_and_subs(self):
        class Mixed(torch.nn.Module):
            def forward(self, x, y):
                return torch.relu(x + y) - y * 2 + 1
        model, x, y = Mixed(), torch.randn(3, 4), torch.randn(3, 4)
        lowered = tbk.export.lower(torch.export.export(model, (x, y)), "add_sub_graph")
        self.assertIn("add_sub_graph: 2 regions", tbk.export.report(lowered))
        torch.testing.assert_close(lowered.module()(x, y), model(x, y))
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(model, backend="add_sub_graph")(x, y), model(x, y))

    def test_scaled_activation_takes_its_options(self):
        class Scaled(torch.nn.Module):
            def forward(self, x):
                return torch.relu(x * 2.0 + 1.0)
        model, x = Scaled(), torch.randn(3, 4)
        options = {"scale": 2.0, "bias": 1.0, "activation": "relu"}
        lowered = tbk.export.lower(torch.export.export(model, (x,)), "scaled_activation", options)
        torch.testing.assert_close(lowered.module()(x), model(x))
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(model, backend="scaled_activation", options=options)(x), model(x))
        with self.assertRaisesRegex(Exception, "option 'activation' is 'gelu'"):
            tbk.export.lower(torch.export.export(model, (x,)), "scaled_activation", dict(options, activation="gelu"))

    def test_model_runner_runs_a_network(self):
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
        x = torch.randn(2, 3, 16, 16)
        lowered = tbk.export.lower(torch.export.export(model, (x,)), "model_runner")
        with torch.no_grad():
            torch.testing.assert_close(lowered.module()(x), model(x), rtol=1e-4, atol=1e-5)
            torch._dynamo.reset()
            torch.testing.assert_close(torch.compile(model, backend="model_runner")(x), model(x), rtol=1e-4, atol=1e-5)


class OneHookEveryPath(unittest.TestCase):
    """fused_linear's hook, written once against TorchScript nodes, decides alike on every path."""

    def setUp(self):
        torch.manual_seed(0)
        self.model, self.x = Fused().eval(), torch.randn(2, 8)
        with torch.no_grad():
            self.want = self.model(self.x)

    def test_torchscript(self):
        partitioned = tbk.partition(torch.jit.script(self.model), "fused_linear", freeze=True)
        report = tbk.report(partitioned)
        self.assertIn("5 of 7 nodes in the backend", report)
        self.assertIn("an activation is fused only right after a linear layer", report)
        torch.testing.assert_close(partitioned(self.x), self.want)

    def test_export(self):
        lowered = tbk.export.lower(torch.export.export(self.model, (self.x,)), "fused_linear")
        report = tbk.export.report(lowered)
        self.assertIn("region 0: 5 nodes [linear, relu, linear_1, gelu, linear_2]", report)
        # the refusal names the user's line (export's stack trace), not torch's files
        self.assertIn("relu_1: not supported by the backend: an activation is fused only right after a linear layer",
                      report)
        torch.testing.assert_close(lowered.module()(self.x), self.want)

    def test_torch_compile(self):
        torch._dynamo.reset()
        for rest in ("eager", "inductor"):
            with self.subTest(rest=rest), torch.no_grad():
                compiled = torch.compile(self.model, backend=tbk.compile.backend("fused_linear", rest=rest))
                torch.testing.assert_close(compiled(self.x), self.want)

    def test_a_refusal_names_the_users_line(self):
        lowered = tbk.export.lower(torch.export.export(self.model, (self.x,)), "fused_linear")
        del lowered
        program = torch.export.export(self.model, (self.x,)).run_decompositions({})
        relu = [n for n in program.graph.nodes if n.name == "relu_1"][0]
        where = tbk.bridge.source_of(relu)
        self.assertEqual((os.path.abspath(where[0]), where[2]), (HERE, "return torch.relu(self.c(h) * 2)"))

    def test_executorch(self):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import tbk.executorch
                from executorch.exir import to_edge_transform_and_lower
                from executorch.runtime import Runtime
        except ImportError:
            self.skipTest("the executorch package does not import beside this torch")
        if not os.environ.get("TBK_EXECUTORCH_SIDE"):
            self.skipTest("this build has no ExecuTorch side")
        partitioner = tbk.executorch.partitioner("fused_linear")
        ops, keep = partitioner.ops_to_not_decompose(torch.export.export(self.model, (self.x,)).run_decompositions({}))
        self.assertIn(torch.ops.aten.linear.default, ops)  # kept as written, not permute_copy + addmm
        edge = to_edge_transform_and_lower(torch.export.export(self.model, (self.x,)), partitioner=[partitioner])
        code = edge.exported_program().graph_module.code
        self.assertEqual(code.count("executorch_call_delegate("), 1, code)
        self.assertNotIn("linear", code.replace("lowered_module", ""))
        self.assertEqual(partitioner.refusals["aten_relu_default_1"],
                         "not supported by the backend: an activation is fused only right after a linear layer "
                         "fused_linear runs")
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "fused.pte")
            with open(path, "wb") as f:
                f.write(edge.to_executorch().buffer)
            got = Runtime.get().load_program(path).load_method("forward").execute([self.x])[0]
        torch.testing.assert_close(got, self.want)


class AOTInductor(unittest.TestCase):
    @unittest.skipUnless(os.environ.get("TBK_RUN_AOTI_PACKAGE"), "this torch has no AOTInductor package loader in C++")
    def test_a_package_with_tbk_regions_runs_from_cpp(self):
        torch.manual_seed(0)
        model, x = Fused().eval(), torch.randn(3, 8)
        lowered = tbk.export.lower(torch.export.export(model, (x,)), "fused_linear")
        with tempfile.TemporaryDirectory() as directory:
            package = torch._inductor.aoti_compile_and_package(lowered, package_path=os.path.join(directory, "fused.pt2"))
            torch.testing.assert_close(torch._inductor.aoti_load_package(package)(x), model(x))  # from Python
            inputs, outputs = os.path.join(directory, "in.pt"), os.path.join(directory, "out.pt")
            torch.save([x], inputs)
            run = subprocess.run([os.environ["TBK_RUN_AOTI_PACKAGE"], package, os.environ["TBK_FUSED_LINEAR_LIB"],
                                  inputs, outputs], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr[-3000:])
            got = torch.load(outputs)
        torch.testing.assert_close(got[0], model(x))


class TorchCompile(unittest.TestCase):
    def setUp(self):
        torch._dynamo.reset()

    def test_a_second_batch_does_not_recompile(self):
        model = Fused().eval()
        counter = Counter(tbk.compile.backend("fused_linear"))
        compiled = torch.compile(model, backend=compiles(counter), dynamic=True)
        with torch.no_grad():
            for n in (2, 3, 7):
                x = torch.randn(n, 8)
                torch.testing.assert_close(compiled(x), model(x))
        self.assertEqual(counter.count, 1)

    def test_graph_breaks_tuples_scalars_and_buffers(self):
        class Broken(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 4)
                self.register_buffer("shift", torch.randn(4))

            def forward(self, x, scale: float):
                h = torch.relu(self.fc(x))
                print("a graph break")  # Dynamo splits the method here
                return h * scale + self.shift, h.sum()
        model = Broken().eval()
        counter = Counter(tbk.compile.backend("fused_linear"))
        compiled = torch.compile(model, backend=compiles(counter))
        x = torch.randn(3, 4)
        with torch.no_grad():
            got, want = compiled(x, 0.5), model(x, 0.5)
        torch.testing.assert_close(got, want)
        self.assertEqual(counter.count, 2)  # two graphs, each through the backend

    def test_options_reach_the_backend(self):
        class Model(torch.nn.Module):
            def forward(self, a, b):
                return a + b, a - b
        compiled = torch.compile(Model(), backend="custom_backend", options={"recycle_outputs": True})
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        torch.testing.assert_close(compiled(a, b), (a + b, a - b))
        with self.assertRaisesRegex(Exception, "rest must be one of"):
            tbk.compile.backend("custom_backend", rest="onnx")
        with self.assertRaisesRegex(ValueError, "backend 'nope' is not registered through tbk"):
            tbk.compile.backend("nope")

    def test_training_graphs_go_to_inductor_with_a_warning(self):
        model = Fused()
        compiled = torch.compile(model, backend="fused_linear")
        x = torch.randn(2, 8)
        with self.assertWarnsRegex(UserWarning, "the graph needs autograd"):
            y = compiled(x)
        y.sum().backward()  # autograd works: Inductor compiled the graph
        self.assertIsNotNone(model.a.weight.grad)

    def test_changed_weights_are_not_used_stale(self):
        model = Fused().eval()
        compiled = torch.compile(model, backend="fused_linear")
        x = torch.randn(2, 8)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x))
            model.a.weight.mul_(2)  # in place: its version counter moves
            with self.assertWarnsRegex(UserWarning, "a weight changed since the graph was lowered"):
                got = compiled(x)
            torch.testing.assert_close(got, model(x))

    def test_nothing_delegated_warns_with_the_reasons(self):
        class Sine(torch.nn.Module):
            def forward(self, x):
                return torch.sin(x) + 1
        with torch.no_grad(), self.assertWarnsRegex(UserWarning, "delegated none of the graph's 2 nodes; the "
                                                                 "backend's reasons: not supported by the backend: "
                                                                 "fused_linear runs aten::linear and the relu or gelu "
                                                                 r"right after one \(add, sin\)"):
            torch.compile(Sine(), backend="fused_linear")(torch.randn(3))


# The Python kit's legs (torch.export with a .pt2 in a fresh process, torch.compile, ExecuTorch) on a
# sound backend: every leg passes.
torch.manual_seed(0)
FusedKit = tbk.testing.test_case(tbk.testing.Kit(
    "fused_linear", Fused().eval(), (torch.randn(4, 8),), other_inputs=(torch.randn(6, 8),),
    setup=f"import tbk; tbk.load_library({os.environ['TBK_FUSED_LINEAR_LIB']!r})"),
    legs=tbk.testing.LEGS if os.environ.get("TBK_EXECUTORCH_SIDE") else ("export", "compile"))


if __name__ == "__main__":
    unittest.main()
