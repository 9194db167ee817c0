"""test_onednn_pt2.py: tbk_onednn under torch.compile and in torch.export programs: every network of
models.py (a CNN, ResNet-, MobileNetV2-style networks, one with an operator tbk_onednn does not run)
and every operator network, lowered with tbk.export (a dynamic batch; results against eager within
1e-4 of the output's scale at two batch sizes; every convolution and linear layer in a region; one
program saved as a .pt2 and run in a fresh process) and compiled with torch.compile(backend=
"tbk_onednn", dynamic=True) (two batch sizes, one compile, the rest in Inductor and eagerly).
Needs torch 2 (pip's): skipped (exit 77) on Debian's torch 1.13.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import torch

if int(torch.__version__.split(".")[0]) < 2:
    print(f"skipped: torch.compile and torch.export need torch 2 (this is {torch.__version__})")
    sys.exit(77)

import tbk  # noqa: E402
import tbk.export  # noqa: E402
import tbk.onednn  # noqa: E402,F401  (registers tbk_onednn, for torch.compile too)

warnings.filterwarnings("error", module=r"tbk(\.|$)")  # nothing tbk does may warn here
spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(models)

WEIGHTED = ("aten.conv2d", "aten.convolution", "aten.linear", "aten.addmm", "aten.mm")
TOLERANCE = 1e-4


def relative_error(got, want):
    """The largest error relative to its output's scale, over every output."""
    if isinstance(want, (tuple, list)):
        return max(relative_error(g, w) for g, w in zip(got, want))
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def all_networks():
    made = dict(models.networks(size=32))
    made.update(models.operator_networks())
    return made


def with_batch(x, n):
    return torch.randn(n, *x.shape[1:])


def compiled_with_records(module, **kwargs):
    """torch.compile(module, backend="tbk_onednn", **kwargs), and the list that gains what the
    backend returns for each graph (its graph_module and its report)."""
    torch._dynamo.reset()
    records = []
    backend = tbk.compile.backend("tbk_onednn")

    def recorded(gm, example_inputs, **more):
        records.append(backend(gm, example_inputs, **more))
        return records[-1]
    return torch.compile(module, backend=recorded, **kwargs), records


class Export(unittest.TestCase):
    def test_every_network_as_an_exported_program(self):
        for name, (module, x) in all_networks().items():
            with self.subTest(name):
                x2 = with_batch(x, 2)
                batch = torch.export.Dim("batch", min=1, max=16)
                program = torch.export.export(module, (x2,), dynamic_shapes=({0: batch},))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # with_softplus: a partial delegation
                    lowered = tbk.export.lower(program, "tbk_onednn")
                left = [str(n.target) for n in lowered.graph.nodes if n.op == "call_function"
                        and any(w in str(n.target) for w in WEIGHTED)]
                self.assertEqual(left, [], f"{name}: weighted layers outside tbk_onednn:\n{tbk.export.report(lowered)}")
                for n in (2, 5):
                    y = with_batch(x, n)
                    with torch.no_grad():
                        self.assertLessEqual(relative_error(lowered.module()(y), module(y)), TOLERANCE, f"{name} batch {n}")

    def test_a_pt2_runs_in_a_fresh_process(self):
        module, x = models.networks(size=32)["resnet"]
        lowered = tbk.export.lower(torch.export.export(module, (with_batch(x, 2),)), "tbk_onednn")
        with tempfile.TemporaryDirectory() as directory:
            path, inputs = os.path.join(directory, "resnet.pt2"), os.path.join(directory, "x.pt")
            tbk.export.save(lowered, path)
            y = with_batch(x, 2)
            torch.save(y, inputs)
            script = (f"import torch, tbk.export, tbk.onednn\n"
                      f"y = torch.load({inputs!r})\n"
                      f"torch.save(tbk.export.load({path!r}).module()(y), {inputs!r} + '.out')\n")
            run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr[-3000:])
            with torch.no_grad():
                self.assertLessEqual(relative_error(torch.load(inputs + ".out"), module(y)), TOLERANCE)


class Compile(unittest.TestCase):
    def test_every_network_compiled_at_two_batch_sizes_with_one_compile(self):
        for rest in ("inductor", "eager"):
            for name, (module, x) in all_networks().items():
                if rest == "eager" and name not in ("resnet", "with_softplus"):
                    continue
                with self.subTest(name=name, rest=rest):
                    torch._dynamo.reset()
                    compiles = []
                    backend = tbk.compile.backend("tbk_onednn", rest=rest)

                    def counted(gm, example_inputs, **kwargs):
                        compiles.append(gm)
                        return backend(gm, example_inputs, **kwargs)
                    compiled = torch.compile(module, backend=counted, dynamic=True)
                    with torch.no_grad(), warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        for n in (2, 5):
                            y = with_batch(x, n)
                            self.assertLessEqual(relative_error(compiled(y), module(y)), TOLERANCE,
                                                 f"{name} batch {n}")
                    self.assertEqual(len(compiles), 1, f"{name}: compiled {len(compiles)} times")

    def test_regions_after_a_strided_convolution_under_dynamic_shapes(self):
        # ShuffleNetV2's blocks: a region after a stride-2 convolution reads sizes such as
        # ((s0 - 1) // 2) + 1 and returns tensors whose sizes only a trace from its own inputs can
        # write down; before, its chunk was refused over and over (torch 2.14 never finished) and
        # its convolutions stayed in Inductor. Every convolution in tbk_onednn, one compile.
        class ShuffleBlock(torch.nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.pointwise = torch.nn.Conv2d(channels // 2, channels // 2, 1)
                self.depthwise = torch.nn.Conv2d(channels // 2, channels // 2, 3, padding=1, groups=channels // 2)

            def forward(self, x):
                kept, changed = x.chunk(2, dim=1)
                out = torch.cat((kept, torch.relu(self.depthwise(self.pointwise(changed)))), dim=1)
                n, c, h, w = out.size()
                return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, -1, h, w)

        module = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
                                     torch.nn.MaxPool2d(3, 2, 1), ShuffleBlock(16), ShuffleBlock(16)).eval()
        compiled, compiled_graphs = compiled_with_records(module, dynamic=True)
        with torch.no_grad():
            for n, side in ((2, 32), (3, 40)):
                y = torch.randn(n, 3, side, side)
                self.assertLessEqual(relative_error(compiled(y), module(y)), TOLERANCE, f"batch {n}, {side}x{side}")
        self.assertEqual(len(compiled_graphs), 1)
        code = compiled_graphs[0].graph_module.code
        self.assertNotIn("conv2d", code, compiled_graphs[0].report)

    def test_a_node_refused_at_lowering_stays_outside_with_the_reason(self):
        # issue 33: the region that held the empty slice failed; the slice now stays outside
        module, x = models.EmptySlice().eval(), torch.randn(2, 8)
        lowered = tbk.export.lower(torch.export.export(module, (x,)), "tbk_onednn")
        self.assertNotIn("linear", lowered.graph_module.code)
        self.assertRegex(tbk.export.report(lowered), r"slice\w*: refused by the backend at lowering: "
                                                     r"the slice \[3, 3\) is empty")
        compiled, records = compiled_with_records(module)
        with torch.no_grad():
            for got, want in ((lowered.module()(x), module(x)), (compiled(x), module(x))):
                self.assertEqual([g.shape for g in got], [w.shape for w in want])
                self.assertLessEqual(relative_error(got[0], want[0]), TOLERANCE)
        self.assertNotIn("linear", records[0].graph_module.code)
        self.assertRegex(str(records[0].report), r"slice\w*: refused by the backend at lowering: the slice \[3, 3\)")

    def test_bf16_under_torch_compile_and_in_an_exported_program_as_from_torchscript(self):
        # the option reaches the regions: results are the bf16 TorchScript module's (the same oneDNN
        # program: bf16 where the CPU has AVX-512, fp32 below), eager's within 2e-2
        module, x = models.networks(size=32)["mobilenet_v2"]
        options = {"precision": "bf16"}
        scripted = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": options}, example_inputs=(x,))
        torch._dynamo.reset()
        compiled = torch.compile(module, backend=tbk.compile.backend("tbk_onednn", options))
        exported = tbk.export.lower(torch.export.export(module, (x,)), "tbk_onednn", options).module()
        with torch.no_grad():
            want, reference = module(x), scripted(x)
            for path, got in (("torch.compile", compiled(x)), ("tbk.export", exported(x))):
                with self.subTest(path=path):
                    self.assertTrue(torch.equal(got, reference))
                    self.assertLessEqual(relative_error(got, want), 2e-2)

    def test_a_linear_layer_reshaped_with_minus_one_runs_at_every_batch(self):
        # issue 33: exported with a dynamic batch, it ran only at the example's size
        module, x = models.ReshapedLinear().eval(), torch.randn(4, 32)
        exported = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch", max=64)},))
        lowered = tbk.export.lower(exported, "tbk_onednn")
        self.assertNotIn("linear", lowered.graph_module.code)
        compiled, records = compiled_with_records(module, dynamic=True)
        for n in (1, 4, 7, 9):
            with self.subTest(batch=n), torch.no_grad():
                y = torch.randn(n, 32)
                self.assertLessEqual(relative_error(lowered.module()(y), module(y)), TOLERANCE)
                self.assertLessEqual(relative_error(compiled(y), module(y)), TOLERANCE)
        self.assertTrue(records)
        for record in records:  # (batch 1 is specialized: a graph of its own)
            self.assertNotIn("linear", record.graph_module.code, record.report)


if __name__ == "__main__":
    unittest.main()
