"""test_onednn_zoo.py: tbk_onednn on torchvision's own networks (random weights, eval mode), at a
reduced input size: scripted and traced, partitioned with tbk.partition, the results equal eager
within 1e-4 of the output's scale, every convolution and linear layer in tbk_onednn; traced
networks also lowered whole, and the networks that need permute, chunk, layer_norm and lists
grown by append (shufflenet, convnext, densenet) whole scripted and traced; each also called at
other batch and image sizes than it was lowered at; a small VisionTransformer traced whole (other
batches, and another image size refused) and scripted partitioned with its attention in the
backend; one saved, loaded and run in the lite interpreter. Needs
torchvision (Debian's python3-torchvision beside Debian's torch); skipped without it.
"""
import io
import re
import unittest
import warnings

import torch

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")
try:
    import torchvision
except ImportError:  # pip's torchvision does not import beside pip's torch
    torchvision = None

# A representative subset of the zoo: residual (resnet18), inverted residual with relu6
# (mobilenet_v2), SiLU and squeeze-excite with mean (efficientnet_b0), dense concatenation
# (densenet121), a plain stack with an adaptive pool (alexnet).
NETWORKS = ("resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121", "alexnet")
SIZE = 64
WEIGHTED = ("aten::conv2d", "aten::_convolution", "aten::linear", "aten::addmm", "aten::matmul")


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


@unittest.skipIf(torchvision is None, "torchvision does not import beside this torch")
class Zoo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.x = torch.randn(2, 3, SIZE, SIZE)

    def network(self, name):
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval()

    def check_partitioned(self, name, mode):
        module = self.network(name)
        made = torch.jit.script(module) if mode == "scripted" else torch.jit.trace(module, self.x)
        model = tbk.partition(made, "tbk_onednn", example_inputs=(self.x,), freeze=True)
        for x in (self.x, torch.randn(1, 3, SIZE + 16, SIZE + 32)):  # and at another batch and image size
            with torch.no_grad():
                error = relative_error(model(x), module(x))
            self.assertLessEqual(error, 1e-4, f"{name} {mode} {list(x.shape)}")
        report = tbk.report(model)
        left = report.split("in TorchScript:")[-1] if "in TorchScript:" in report else ""
        for kind in WEIGHTED:
            self.assertNotIn(kind + " ", left, f"{name} {mode}: a weighted layer stayed in TorchScript:\n{report}")
        self.assertRegex(report, r"method forward: \d+ regions?, \d+ of \d+ nodes in the backend")
        return model

    def test_each_network_partitions_scripted_and_traced(self):
        for name in NETWORKS:
            for mode in ("scripted", "traced"):
                with self.subTest(network=name, mode=mode):
                    self.check_partitioned(name, mode)

    def test_traced_networks_lower_whole(self):
        for name in ("resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121"):
            with self.subTest(network=name):
                module = self.network(name)
                lowered = tbk.lower(torch.jit.trace(module, self.x), "tbk_onednn", {"forward": {}},
                                    example_inputs=(self.x,))
                with torch.no_grad():
                    self.assertLessEqual(relative_error(lowered(self.x), module(self.x)), 1e-4)

    def test_channel_shuffle_channels_last_blocks_and_appended_features_lower_whole_scripted_and_traced_at_any_size(self):
        # shufflenet: chunk unpacked, view-transpose-view channel shuffle, sizes traced as
        # tensors; convnext: permute, layer_norm, gelu, a constant first operand of mul;
        # densenet: scripted, its features a list grown by append and read by cat
        for name in ("shufflenet_v2_x1_0", "convnext_tiny", "densenet121"):
            module = self.network(name)
            for mode, made in (("scripted", torch.jit.script(module)), ("traced", torch.jit.trace(module, self.x))):
                with self.subTest(network=name, mode=mode):
                    lowered = tbk.lower(made, "tbk_onednn", {"forward": {}}, example_inputs=(self.x,))
                    for x in (self.x, torch.randn(1, 3, 96, 80), torch.randn(3, 3, 48, 48)):
                        with torch.no_grad():
                            self.assertLessEqual(relative_error(lowered(x), module(x)), 1e-4, list(x.shape))

    def test_a_vision_transformer_traced_lowers_whole_and_scripted_runs_its_attention_in_regions(self):
        # torchvision's own VisionTransformer class, small: its head starts at zero, so it is set
        torch.manual_seed(0)
        module = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                      hidden_dim=32, mlp_dim=64).eval()
        torch.nn.init.normal_(module.heads.head.weight)
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            want = module(x)
            traced = tbk.lower(torch.jit.trace(module, x, check_trace=False), "tbk_onednn", {"forward": {}},
                               example_inputs=(x,))
            self.assertLessEqual(relative_error(traced(x), want), 1e-4)
            scripted = tbk.partition(torch.jit.script(module), "tbk_onednn", example_inputs=(x,), freeze=True)
            self.assertLessEqual(relative_error(scripted(x), want), 1e-4)
            self.assertLessEqual(relative_error(traced(torch.cat([x, x])), module(torch.cat([x, x]))), 1e-4)
        self.assertIn("[aten::_native_multi_head_attention x1]", tbk.report(scripted))
        # its position embedding has the example's number of patches: another batch, yes; another
        # image size is refused, saying why
        with self.assertRaisesRegex(RuntimeError, r"input 0 has shape \[2, 3, 48, 48\]; this method was compiled "
                                                  r"for \[2, 3, 32, 32\], and read again at the shapes of this call, "
                                                  r"tbk_onednn cannot run aten::add \(.*vision_transformer.py:\d+\): "
                                                  r".*operand \[1, 17, 32\] does not broadcast to \[2, 37, 32\]$"):
            traced(torch.randn(2, 3, 48, 48))

    def test_a_partitioned_network_saves_loads_and_runs_in_the_lite_interpreter(self):
        module = self.network("mobilenet_v2")
        model = self.check_partitioned("mobilenet_v2", "scripted")
        with torch.no_grad():
            want = module(self.x)
        buffer = io.BytesIO()
        torch.jit.save(model, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        with torch.no_grad():
            self.assertLessEqual(relative_error(loaded(self.x), want), 1e-4)
        from torch.jit.mobile import _load_for_lite_interpreter
        lite = io.BytesIO(model._save_to_buffer_for_lite_interpreter())
        with torch.no_grad():
            self.assertLessEqual(relative_error(_load_for_lite_interpreter(lite)(self.x), want), 1e-4)
        self.assertTrue(re.search(r"region", tbk.report(loaded)))


if __name__ == "__main__":
    unittest.main()
