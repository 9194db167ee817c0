"""test_onednn_zoo_pt2.py: tbk_onednn under torch.compile and in torch.export programs on
torchvision's own networks (random weights, eval mode) at a reduced input size: a subset of the
zoo (residual, inverted residual with relu6, SiLU and squeeze-excite, dense concatenation, channel shuffle, a
transformer) compiled with torch.compile(backend="tbk_onednn", dynamic=True) and called at two
batch sizes with one compile, and lowered with tbk.export: results equal eager within 1e-4 of the
output's scale, every convolution and linear layer in tbk_onednn; and two of them lowered in
TorchScript and as ExecuTorch programs (one delegate call, run by ExecuTorch's runtime; where the
executorch package imports). Needs a torch 2 with torchvision
(torch 2.14.1 + torchvision 0.29.1): skipped (exit 77) without one;
backends/onednn/benchmarks/zoo_pt2.py runs all 17 networks.
"""
import sys
import unittest
import warnings

import torch

try:
    import torchvision
except ImportError:
    torchvision = None
if int(torch.__version__.split(".")[0]) < 2 or torchvision is None:
    print(f"skipped: needs torch 2 with torchvision (torch {torch.__version__}, torchvision "
          f"{'missing' if torchvision is None else torchvision.__version__})")
    sys.exit(77)

import tbk  # noqa: E402
import tbk.export  # noqa: E402
import tbk.onednn  # noqa: E402,F401  (registers tbk_onednn, for torch.compile too)

warnings.filterwarnings("ignore")
NETWORKS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121", "shufflenet_v2_x1_0", "vit_b_16")
SIZE = {"vit_b_16": 224}  # ViT's position embedding fixes its image size
WEIGHTED = ("aten.conv2d", "aten.convolution", "aten.linear", "aten.addmm", "aten.mm", "aten.matmul", "aten.bmm")


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def network(name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    if name == "vit_b_16":  # torchvision starts ViT's head at zero: its output would be zero
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    return model


def weighted_left(graph_module):
    return [str(n.target) for n in graph_module.graph.nodes
            if n.op == "call_function" and any(w in str(n.target) for w in WEIGHTED)]


class ZooUnderTorchCompile(unittest.TestCase):
    def test_compiled_at_two_batches(self):
        for name in NETWORKS:
            with self.subTest(name):
                torch._dynamo.reset()
                model, side = network(name), SIZE.get(name, 64)
                compiled_graphs = []
                backend = tbk.compile.backend("tbk_onednn")

                def recording(gm, example_inputs, **kwargs):
                    compiled = backend(gm, example_inputs, **kwargs)
                    compiled_graphs.append(compiled)
                    return compiled
                compiled = torch.compile(model, backend=recording, dynamic=True)
                with torch.no_grad():
                    for batch in (2, 3):
                        x = torch.randn(batch, 3, side, side)
                        self.assertLessEqual(relative_error(compiled(x), model(x)), 1e-4, f"{name} batch {batch}")
                self.assertEqual(len(compiled_graphs), 1, f"{name}: compiled {len(compiled_graphs)} times")
                left = [op for c in compiled_graphs for op in weighted_left(c.graph_module)]
                self.assertEqual(left, [], f"{name}: weighted layers outside tbk_onednn:\n{compiled_graphs[0].report}")

    def test_exported(self):
        for name in ("resnet18", "mobilenet_v2"):
            with self.subTest(name):
                model, x = network(name), torch.randn(2, 3, 64, 64)
                lowered = tbk.export.lower(torch.export.export(model, (x,)), "tbk_onednn")
                self.assertEqual(weighted_left(lowered.graph_module), [], tbk.export.report(lowered))
                with torch.no_grad():
                    self.assertLessEqual(relative_error(lowered.module()(x), model(x)), 1e-4, name)


class ZooOnTheOtherRuntimes(unittest.TestCase):
    """The same torchvision networks through TorchScript and ExecuTorch, on the stack that has both
    torchvision and a torch 2 (2.14.1): each runtime tbk serves, from the same policies."""

    def test_lowered_in_torchscript(self):
        for name in ("resnet18", "mobilenet_v2"):
            with self.subTest(name):
                model, x = network(name), torch.randn(2, 3, 64, 64)
                lowered = tbk.lower(torch.jit.trace(model, x), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
                with torch.no_grad():
                    self.assertLessEqual(relative_error(lowered(x), model(x)), 1e-4, name)

    def test_as_executorch_programs(self):
        try:
            import tbk.executorch
            from executorch.exir import to_edge_transform_and_lower
            from executorch.runtime import Runtime
        except ImportError as e:
            self.skipTest(f"ExecuTorch's Python package or tbk.executorch is missing: {e}")
        for name in ("resnet18", "mobilenet_v2"):
            with self.subTest(name):
                model, x = network(name), torch.randn(1, 3, 64, 64)
                edge = to_edge_transform_and_lower(torch.export.export(model, (x,)),
                                                   partitioner=[tbk.executorch.partitioner("tbk_onednn")])
                graph = edge.exported_program().graph_module
                self.assertEqual(weighted_left(graph), [], name)
                self.assertEqual(graph.code.count("executorch_call_delegate("), 1, f"{name}: one delegate call")
                buffer = edge.to_executorch().buffer  # kept: the loaded program reads it in place
                method = Runtime.get().load_program(buffer).load_method("forward")
                with torch.no_grad():
                    self.assertLessEqual(relative_error(method.execute([x])[0], model(x)), 1e-4, name)


if __name__ == "__main__":
    unittest.main()
