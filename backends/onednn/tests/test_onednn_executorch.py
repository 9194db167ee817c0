"""test_onednn_executorch.py: tbk_onednn as an ExecuTorch delegate. The networks of ../models.py
(MLP, ResNet-style, MobileNetV2-style, and the operator networks) exported with torch.export,
partitioned with tbk.executorch.partitioner("tbk_onednn"), saved as .pte and run with
executorch.runtime: every convolution and linear layer in tbk_onednn, results equal to eager
within 1e-4 of the output's scale; two of them also run from C++ (run_pte, ExecuTorch's Module
API). Needs pip's torch and executorch==1.5.1 (-Dtorch=python):
skipped (exit 77) otherwise.
"""
import importlib.util
import operator
import os
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

import torch  # noqa: E402

import tbk.onednn  # noqa: E402,F401  (registers tbk_onednn, for TorchScript and ExecuTorch)
try:
    import tbk.executorch  # noqa: E402
except ImportError:
    print("skipped: this build has no ExecuTorch side (-Dexecutorch found nothing)")
    sys.exit(77)
from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower  # noqa: E402
from executorch.runtime import Runtime  # noqa: E402

warnings.filterwarnings("error", module=r"tbk(\.|$)")  # nothing tbk does may warn

spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(models)

WEIGHTED = ("aten.convolution", "aten.addmm", "aten.mm", "aten.linear")


def relative_error(got, want):
    if want.numel() == 0:  # an empty result: its shape is checked by the caller
        return 0.0
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


class OnExecuTorch(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def check(self, name, module, x, whole=False):
        partitioner = tbk.executorch.partitioner("tbk_onednn")
        # adaptive_max_pool2d is outside ExecuTorch's core ATen operator set; tbk_onednn runs it
        config = EdgeCompileConfig(_core_aten_ops_exception_list=[torch.ops.aten.adaptive_max_pool2d.default])
        edge = to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[partitioner],
                                           compile_config=config)
        graph = edge.exported_program().graph_module
        left = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"
                and any(w in str(n.target) for w in WEIGHTED)]
        self.assertEqual(left, [], f"{name}: weighted layers stayed in ExecuTorch's kernels: "
                                   f"{partitioner.refusals}\n{graph.code}")
        self.assertIn("executorch_call_delegate", graph.code, name)
        if whole:  # one delegate call, nothing computed beside it (export's clone for Dropout included)
            outside = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"
                       and n.target is not operator.getitem and "executorch_call_delegate" not in str(n.target)]
            self.assertEqual((graph.code.count("executorch_call_delegate("), outside), (1, []),
                             f"{name}: {partitioner.refusals}\n{graph.code}")
        path = os.path.join(self.dir.name, name + ".pte")
        with open(path, "wb") as f:
            f.write(edge.to_executorch().buffer)
        method = Runtime.get().load_program(path).load_method("forward")
        for _ in range(2):  # the handle runs again on new inputs
            y = torch.randn_like(x)
            with torch.no_grad():
                want = module(y)
            want = list(want) if isinstance(want, tuple) else [want]
            got = method.execute([y])
            self.assertEqual(len(got), len(want), name)
            for g, w in zip(got, want):
                self.assertEqual(g.shape, w.shape, name)
                self.assertLessEqual(relative_error(g, w), 1e-4, name)
        return partitioner

    def check_at_shapes(self, edge, name, module, shapes):
        """Saves `edge` as <name>.pte, runs its forward at each of `shapes` (one input) from
        ExecuTorch's Python runtime: result of eager's shape, within 1e-4 of its scale."""
        path = os.path.join(self.dir.name, name + ".pte")
        with open(path, "wb") as f:
            f.write(edge.to_executorch().buffer)
        method = Runtime.get().load_program(path).load_method("forward")
        for shape in shapes:
            with self.subTest(shape=shape):
                y = torch.randn(*shape)
                with torch.no_grad():
                    want = module(y)
                got = method.execute([y])[0]
                self.assertEqual(got.shape, want.shape)
                self.assertLessEqual(relative_error(got, want), 1e-4)

    def test_the_pte_runs_from_cpp_with_the_module_api(self):
        import subprocess
        for name in ("resnet", "mobilenet_v2"):
            with self.subTest(name):
                module, x = models.networks(size=32)[name]
                edge = to_edge_transform_and_lower(torch.export.export(module, (x,)),
                                                   partitioner=[tbk.executorch.partitioner("tbk_onednn")])
                path = os.path.join(self.dir.name, name + ".pte")
                with open(path, "wb") as f:
                    f.write(edge.to_executorch().buffer)
                y = torch.randn_like(x)
                with torch.no_grad():
                    want = module(y)
                y.numpy().tofile(os.path.join(self.dir.name, "input.f32"))
                want.numpy().tofile(os.path.join(self.dir.name, "expected.f32"))
                run = subprocess.run([os.environ["TBK_ONEDNN_RUN_PTE"], path, os.path.join(self.dir.name, "input.f32"),
                                      os.path.join(self.dir.name, "expected.f32"), *map(str, y.shape)],
                                     capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                self.assertIn("largest difference", run.stdout)

    def test_the_networks_run_from_pte_as_eager(self):
        for name, (module, x) in models.networks(size=32).items():
            with self.subTest(name):
                partitioner = self.check(name, module, x, whole=name != "with_softplus")
                if name == "with_softplus":  # softplus, decomposed by export, stays in ExecuTorch's kernels
                    self.assertEqual(partitioner.refusals.get("aten_log1p_default"),
                                     "not supported by the backend: an operator tbk_onednn does not implement",
                                     partitioner.refusals)

    def test_the_pte_keeps_no_graph_for_other_shapes(self):
        # an ExecuTorch program runs at the shapes it was exported with: tbk.executorch says so
        # (tbk_static_shapes), and tbk_onednn's payload keeps no frozen module beside the program
        module, x = models.networks(size=32)["resnet"]
        edge = to_edge_transform_and_lower(torch.export.export(module, (x,)),
                                           partitioner=[tbk.executorch.partitioner("tbk_onednn")])
        pte = edge.to_executorch().buffer
        weights = sum(p.numel() * 4 for p in module.parameters())
        self.assertNotIn(b":frozen_module", pte)
        self.assertLess(len(pte), 1.5 * weights)

    def test_a_program_exported_with_dynamic_shapes_runs_at_other_sizes(self):
        # torch.export's dynamic_shapes: batch 1 to 8, image sides 17 to 32 (the range export
        # allows for this network), exported at batch 2 and 32x32 (export specialises a size of 1)
        model, _ = models.networks(size=32)["resnet"]
        batch = torch.export.Dim("batch", min=1, max=8)
        side = torch.export.Dim("side", min=17, max=32)  # export checks the range against the model
        x = torch.randn(2, 3, 32, 32)  # export specialises a size of 1: an example of batch 2 or more
        exported = torch.export.export(model.eval(), (x,), dynamic_shapes=({0: batch, 2: side, 3: side},))
        partitioner = tbk.executorch.partitioner("tbk_onednn")
        edge = to_edge_transform_and_lower(exported, partitioner=[partitioner])
        graph = edge.exported_program().graph_module
        left = [str(n.target) for n in graph.graph.nodes if n.op == "call_function"
                and any(w in str(n.target) for w in WEIGHTED)]
        self.assertEqual(left, [], f"{partitioner.refusals}\n{graph.code}")
        # the flatten's size, computed at run time, stays in ExecuTorch with the reason
        self.assertEqual(partitioner.refusals.get("sym_size"),
                         "its result is a size computed at run time, not a tensor; a tbk region takes and "
                         "returns tensors", partitioner.refusals)
        self.check_at_shapes(edge, "dynamic", model, [(n, 3, size, size) for n, size in ((1, 32), (3, 24), (8, 17), (2, 32))])

    def test_a_linear_layer_reshaped_with_minus_one_runs_at_every_batch(self):
        # issue 33: exported with a dynamic batch, it ran only at the example's size
        module, x = models.ReshapedLinear().eval(), torch.randn(4, 32)
        exported = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch", max=64)},))
        partitioner = tbk.executorch.partitioner("tbk_onednn")
        edge = to_edge_transform_and_lower(exported, partitioner=[partitioner])
        graph = edge.exported_program().graph_module
        self.assertNotIn("addmm", graph.code, partitioner.refusals)
        self.check_at_shapes(edge, "reshaped", module, [(n, 32) for n in (1, 4, 7, 9)])

    def test_a_node_refused_at_lowering_stays_in_executorch_with_the_reason(self):
        # issue 33: the partitioner claimed the empty slice, preprocess refused it, and the
        # whole export failed; now the slice runs in ExecuTorch's kernels, the linear in tbk_onednn
        partitioner = self.check("empty_slice", models.EmptySlice().eval(), torch.randn(2, 8))
        self.assertEqual(list(partitioner.refusals.values()),
                         ["refused by the backend at lowering: the slice [3, 3) is empty (tbk's partitioners leave "
                          "such a node outside tbk_onednn: tbk::partition, tbk.partition, tbk.executorch, tbk.export, "
                          "tbk.compile)"], partitioner.refusals)

    def test_bf16_runs_from_the_pte_as_from_torchscript(self):
        # the option reaches the delegate: the .pte's results are the bf16 TorchScript module's
        # (the same oneDNN program: bf16 where the CPU has AVX-512, fp32 below), eager's within 2e-2
        module, x = models.networks(size=32)["resnet"]
        partitioner = tbk.executorch.partitioner("tbk_onednn", {"precision": "bf16"})
        edge = to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[partitioner])
        path = os.path.join(self.dir.name, "bf16.pte")
        with open(path, "wb") as f:
            f.write(edge.to_executorch().buffer)
        scripted = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"precision": "bf16"}},
                             example_inputs=(x,))
        got = Runtime.get().load_program(path).load_method("forward").execute([x])[0]
        with torch.no_grad():
            self.assertTrue(torch.equal(got, scripted(x)))
            self.assertLessEqual(relative_error(got, module(x)), 2e-2)

    def test_a_misspelled_option_is_refused_when_the_program_is_lowered(self):
        # not only when the .pte is loaded, maybe on another machine
        module, x = models.networks(size=32)["mlp"]
        partitioner = tbk.executorch.partitioner("tbk_onednn", {"dynamic_shape": False})
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn: preprocess failed: method forward: unknown option "
                                                  r"'dynamic_shape'; tbk_onednn's method options are implementation"):
            to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[partitioner])

    def test_the_operator_networks_run_from_pte_as_eager(self):
        for name, (module, x) in models.operator_networks().items():
            with self.subTest(name):
                self.check(name, module, x)


if __name__ == "__main__":
    unittest.main()
