"""test_onednn_partition.py: tbk.partition with tbk_onednn on models nobody wrote for it: nodes
the backend refuses only once it sees their shapes (at lowering) stay in TorchScript with the
backend's reason, the rest runs in tbk_onednn, and the results equal eager; in-place activations
join their convolution's region. Run with the Python whose torch the build uses, PYTHONPATH
holding the built tbk package.
"""
import re
import unittest
import warnings

import torch

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore", category=UserWarning)


def partitioned(module, *inputs, **options):
    scripted = torch.jit.script(module.eval())
    return tbk.partition(scripted, "tbk_onednn", example_inputs=inputs, freeze=True, **options)


class ConvRelu(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.relu(self.conv(x))


class Relu(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x)


class MeanOverChannels(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(1)


class AdaptivePool(torch.nn.Module):
    """Adaptive pools whose windows (PyTorch's rule) from 10 to 4 differ in spacing: both are
    composed; a max over more than 64 such windows along a dimension stays in TorchScript."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return (torch.nn.functional.adaptive_avg_pool2d(y, (4, 4)), torch.nn.functional.adaptive_max_pool2d(y, (4, 4)),
                torch.nn.functional.adaptive_max_pool2d(y, (65, 1)))


class MatmulRanks(torch.nn.Module):
    def forward(self, x, y):
        return torch.matmul(torch.relu(x), torch.relu(y))


class ChunksToCat(torch.nn.Module):
    """chunk's list read by cat rather than unpacked."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return torch.cat(torch.relu(self.conv(x)).chunk(2, 1), 0) * 2.0


class ConstantMinusTensor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3)
        self.c = torch.nn.Parameter(torch.randn(3))

    def forward(self, x):
        return torch.sub(self.c, self.a(x))


class Attention(torch.nn.Module):
    """A transformer block's attention, as torchvision's ViT has it: in eval mode,
    torch.nn.MultiheadAttention takes its fast path, aten::_native_multi_head_attention."""

    def __init__(self, read_weights=False):
        super().__init__()
        self.read_weights = read_weights
        self.norm = torch.nn.LayerNorm(16)
        self.attention = torch.nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x):
        y = self.norm(x)
        out, weights = self.attention(y, y, y, need_weights=self.read_weights)
        if self.read_weights:
            return x + out, weights
        return x + out, x


class SubAlpha(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3)
        self.b = torch.nn.Linear(3, 3)

    def forward(self, x):
        return torch.sub(self.a(x), self.b(x), alpha=2)


class BroadcastFirst(torch.nn.Module):
    """y - x and y / x where y is the one broadcast ([1, 3] against [2, 3])."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3)

    def forward(self, x, y):
        h = torch.relu(self.a(x))
        g = torch.relu(self.a(y))
        return g - h, g / (h + 1.0)


class ClampEmpty(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3)

    def forward(self, x):
        return torch.clamp(self.a(x), min=1.0, max=0.0)


class Dense(torch.nn.Module):
    """densenet's pattern: a list built with append, then cat."""

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(3 * (k + 1), 3, 1) for k in range(3)])

    def forward(self, x):
        features = [x]
        for conv in self.convs:
            features.append(torch.relu(conv(torch.cat(features, 1))))
        return torch.cat(features, 1)


class InPlace(torch.nn.Module):
    """torchvision's habit: activations with inplace=True, a residual added in place."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.act = torch.nn.Hardswish(inplace=True)

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.act(out)


class Branches(torch.nn.Module):
    """A layer in each branch of an `if` on an input (torchvision's ViT has its attention's
    projections in such branches): the example run takes one of them. The other's layer reads a
    value made in its branch, which the run never saw."""

    def __init__(self):
        super().__init__()
        self.taken = torch.nn.Linear(3, 4)
        self.other = torch.nn.Linear(3, 4)

    def forward(self, x, flag: bool):
        if flag:
            y = torch.relu(self.taken(x))
        else:
            y = torch.sigmoid(self.other(x.flip([0])))  # flip: not in tbk_onednn
        return y * 2.0


class ZeroWidthPieces(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return torch.cat([y[:, :2], y[:, 2:2], y[:, 2:]], 1)


class CatWithAnEmptyTensor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 6)

    def forward(self, x):
        h = self.fc(x)
        return torch.cat([h[4:], h[:4], torch.empty(0)])


class NeverAborts(unittest.TestCase):
    """Each case: partition returns, results equal eager, and the report says why the node the
    backend refused stays in TorchScript."""

    def check(self, module, inputs, refused_kind, reason):
        model = partitioned(module, *inputs)
        with torch.no_grad():
            want = module(*inputs)
            got = model(*inputs)
        for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
            self.assertTrue(torch.allclose(g, w, rtol=1e-4, atol=1e-5), (g, w))
        report = tbk.report(model)
        self.assertRegex(report, re.escape(refused_kind) + r" \([^\n]*\): [^\n]*" + reason, report)
        return report

    def test_weights_left_as_attributes_warn_once_to_freeze(self):
        class Linear(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x)
        scripted = torch.jit.script(Linear().eval())
        with self.assertWarnsRegex(UserWarning, "every reason the backend gave is about constants: .*freeze=True"):
            model = tbk.partition(scripted, "tbk_onednn", example_inputs=(torch.randn(2, 4),))
        self.assertIn("0 regions", tbk.report(model))

    def test_adaptive_pools_with_irregular_windows(self):
        report = self.check(AdaptivePool(), (torch.randn(1, 3, 100, 10),), "aten::adaptive_max_pool2d",
                            r"PyTorch's windows from \[1, 4, 100, 10\] to \[65, 1\] differ in size or spacing, "
                            r"and the max composed of them would join more than 64 windows")
        self.assertRegex(report, r"\[aten::conv2d x1, aten::relu x1, aten::adaptive_avg_pool2d x1, "
                                 r"aten::adaptive_max_pool2d x1\]")

    def test_matmul_of_operands_of_two_ranks_is_refused_at_lowering(self):
        # supports() cannot tell (both operands computed); lowering says why, and only it stays
        report = self.check(MatmulRanks(), (torch.randn(2, 3, 4), torch.randn(4, 5)), "aten::matmul",
                            r"refused by the backend at lowering: .*supported between operands of one rank, 2 or "
                            r"more; they are \[2, 3, 4\] and \[4, 5\]")
        self.assertIn("method forward: 2 regions, 2 of 3 nodes in the backend", report)

    def test_sub_with_alpha_between_two_computed_tensors(self):
        self.check(SubAlpha(), (torch.randn(2, 3),), "aten::sub", "alpha other than 1 between two tensors")

    def test_a_chunk_whose_pieces_are_not_unpacked(self):
        report = self.check(ChunksToCat(), (torch.randn(1, 3, 4, 4),), "aten::chunk",
                            "its list of pieces must be read by one prim::ListUnpack only")
        self.assertRegex(report, r"\[aten::conv2d x1, aten::relu x1\]")

    def test_a_constant_minus_a_tensor(self):
        self.check(ConstantMinusTensor(), (torch.randn(2, 3),), "aten::sub",
                   r"a constant first operand is supported for add \(alpha 1\) and mul only")

    @unittest.skipIf(int(torch.__version__.split(".")[0]) >= 2,
                     "torch 2's torch.jit.freeze leaves MultiheadAttention's in_proj_weight an attribute, not a "
                     "constant, so tbk_onednn refuses its fast path (the weights must be constant)")
    def test_multi_head_attention_runs_in_the_backend_and_its_unread_weights_are_dropped(self):
        module = Attention().eval()
        x = torch.randn(2, 7, 16)
        with torch.no_grad():
            model = partitioned(module, x)
            want, got = module(x)[0], model(x)[0]
        self.assertLessEqual(((got - want).abs().max() / want.abs().max()).item(), 1e-5)
        self.assertIn("1 node [aten::_native_multi_head_attention x1]", tbk.report(model))

    def test_multi_head_attention_whose_weights_are_read_stays_in_torchscript(self):
        with torch.no_grad():
            self.check(Attention(read_weights=True).eval(), (torch.randn(2, 7, 16),),
                       "aten::_native_multi_head_attention",
                       r"its attention weights are used \(tbk_onednn computes the output only\)")

    def test_the_first_operand_is_the_one_broadcast(self):
        report = self.check(BroadcastFirst(), (torch.randn(2, 3), torch.randn(1, 3)), "aten::sub",
                            r"the operand of shape \[1, 3\] is broadcast to \[2, 3\]; tbk_onednn broadcasts "
                            r"only the second operand of sub and div")
        self.assertIn("aten::div", report)

    def test_other_dtypes_stay_in_torchscript(self):
        module = ConvRelu().double()
        self.check(module, (torch.randn(1, 3, 4, 4, dtype=torch.float64),), "aten::conv2d", "float")

    def test_an_empty_batch_stays_in_torchscript(self):
        self.check(ConvRelu(), (torch.randn(0, 3, 4, 4),), "aten::conv2d", r"has no elements")

    def test_a_0_dim_input_stays_in_torchscript_and_lowering_says_why(self):
        module = Relu()
        x = torch.tensor(-2.0)
        self.check(module, (x,), "aten::relu", "a 0-dim tensor")
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn cannot run aten::relu \(.*\): its input is a "
                                    r"0-dim tensor; tbk_onednn runs tensors of 1 or more dimensions"):
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))

    def test_clamp_with_min_above_max_is_max_everywhere_as_in_eager(self):
        model = partitioned(ClampEmpty(), torch.randn(4, 3))
        x = torch.randn(4, 3)
        with torch.no_grad():
            self.assertTrue(torch.equal(model(x), torch.zeros(4, 3)))
        self.assertIn("1 region", tbk.report(model))

    def test_zero_width_pieces_of_a_cat_are_left_out_and_the_rest_runs_as_eager(self):
        # issue 33: the region ended in the cat's list and failed ("output 0 of the method is
        # List[Tensor]"); the list is now built in TorchScript from the region's tensors
        for module, x, refused, reason in ((ZeroWidthPieces(), torch.randn(1, 3, 8, 8), "aten::slice",
                                            r"the slice \[2, 2\) is empty"),
                                           (CatWithAnEmptyTensor(), torch.randn(6, 8), "aten::cat",
                                            r"its input \[0\] has no elements")):
            module.eval()
            for how, source in (("scripted", torch.jit.script(module)), ("traced", torch.jit.trace(module, (x,)))):
                with self.subTest(type(module).__name__, how=how):
                    model = tbk.partition(source, "tbk_onednn", example_inputs=(x,), freeze=True)
                    y = torch.randn_like(x)
                    with torch.no_grad():
                        self.assertTrue(torch.allclose(model(y), module(y), rtol=1e-4, atol=1e-5))
                    report = tbk.report(model)
                    self.assertIn("1 region", report)
                    self.assertRegex(report, re.escape(refused) + r" \([^\n]*\): [^\n]*" + reason, report)
                    self.assertIn("prim::ListConstruct: a list the region would return is built outside it", report)

    def test_cat_of_a_list_built_by_append(self):
        module = Dense()
        x = torch.randn(1, 3, 6, 6)
        model = partitioned(module, x)
        with torch.no_grad():
            self.assertTrue(torch.allclose(model(x), module(x), atol=1e-5))


class SiluMeanNet(torch.nn.Module):
    """efficientnet's pieces: convolution, SiLU (in place), global average pooling by mean."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.act = torch.nn.SiLU(inplace=True)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        h = self.act(self.conv(x))
        return self.fc(h.mean([2, 3])), h.mean((-1, -2), keepdim=True)


class TracedAndNewOperators(unittest.TestCase):
    def test_a_traced_network_lowers_whole_and_partitions(self):
        module = InPlace().eval()
        x = torch.randn(2, 4, 8, 8)
        traced = torch.jit.trace(module, x)
        lowered = tbk.lower(traced, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        parted = tbk.partition(traced, "tbk_onednn", example_inputs=(x,), freeze=True)
        with torch.no_grad():
            self.assertTrue(torch.allclose(lowered(x), module(x), atol=1e-5))
            self.assertTrue(torch.allclose(parted(x), module(x), atol=1e-5))
        report = tbk.report(parted)
        self.assertIn("method forward: 1 region", report)
        self.assertIn("aten::_convolution x2", report)

    def test_silu_and_mean_over_the_plane(self):
        module = SiluMeanNet().eval()
        x = torch.randn(2, 3, 6, 5)
        for make in (torch.jit.script, lambda m: torch.jit.trace(m, x)):
            lowered = tbk.lower(make(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
            with torch.no_grad():
                for got, want in zip(lowered(x), module(x)):
                    self.assertEqual(got.shape, want.shape)
                    self.assertTrue(torch.allclose(got, want, rtol=1e-4, atol=1e-5))

    def test_mean_over_other_dimensions_stays_in_torchscript_with_the_reason(self):
        report = tbk.report(partitioned(MeanOverChannels(), torch.randn(1, 3, 4, 4)))
        self.assertRegex(report, r"aten::mean \([^\n]*\): not supported by the backend: supported over the "
                                 r"last two dimensions")


class MlpWithBatchNorm1d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.bn = torch.nn.BatchNorm1d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.fc(x)))


class BatchNorm1dOnSequences(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(4)

    def forward(self, x):
        return torch.relu(self.bn(x))


class BatchStatistics(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.bn = torch.nn.BatchNorm2d(3, track_running_stats=False)

    def forward(self, x):
        return self.bn(self.conv(x))


class Messages(unittest.TestCase):
    def test_batch_norm_1d_lowers_whole_on_2_d_and_3_d_inputs(self):
        for module, x in ((MlpWithBatchNorm1d(), torch.randn(4, 8)), (BatchNorm1dOnSequences(), torch.randn(2, 4, 5))):
            module.eval()
            with torch.no_grad():  # running statistics other than the initial ones
                module.bn.running_mean.uniform_(-1, 1)
                module.bn.running_var.uniform_(0.5, 2)
            lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
            with torch.no_grad():
                self.assertTrue(torch.allclose(lowered(x), module(x), atol=1e-5))

    def test_batch_norm_without_running_statistics_says_so(self):
        module = BatchStatistics().eval()
        x = torch.randn(2, 3, 4, 4)
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn cannot run aten::batch_norm \(.*\): without running "
                                    r"statistics \(track_running_stats=False\) it normalizes with each batch's own "
                                    r"mean and variance"):
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))


class InPlaceOperations(unittest.TestCase):
    def test_a_call_time_error_names_the_region_and_the_lines_of_its_nodes(self):
        model = partitioned(ConvRelu(), torch.randn(1, 3, 8, 8))  # (the conv2d's line is torch's conv.py)
        with self.assertRaises(RuntimeError) as caught:
            model(torch.randn(1, 4, 8, 8))  # another number of channels than the convolution takes
        self.assertRegex(str(caught.exception),
                         r"tbk_onednn\.forward \(region 0 of method forward: aten::conv2d \([^)]*conv\.py:\d+\), "
                         r"aten::relu \([^)]*test_onednn_partition\.py:\d+\)\): execute policy failed: "
                         r"input 0 has shape \[1, 4, 8, 8\]; this method was compiled for \[1, 3, 8, 8\], and read again "
                         r"at the shapes of this call, tbk_onednn cannot run aten::conv2d")

    def test_a_region_inside_a_branch_gets_its_example_inputs_and_an_untaken_one_stays(self):
        module = Branches()
        x = torch.randn(2, 3)
        model = partitioned(module, x, True)
        with torch.no_grad():
            for flag in (True, False):
                self.assertTrue(torch.allclose(model(x, flag), module(x, flag), atol=1e-6), flag)
        report = tbk.report(model)
        self.assertRegex(report, r"region \d+ \(_tbk_region_forward_\d+\) \(inside prim::If [^\n]*\): 2 nodes "
                                 r"\[aten::linear x1, aten::relu x1\]")
        self.assertRegex(report, r"aten::linear \([^\n]*\) \(inside prim::If[^\n]*: refused by the backend at "
                                 r"lowering: the example run never reached it \(a branch not taken\)")

    def test_in_place_activations_and_residual_join_the_convolutions_region(self):
        module = InPlace()
        x = torch.randn(1, 4, 8, 8)
        model = partitioned(module, x)
        with torch.no_grad():
            self.assertTrue(torch.allclose(model(x), module(x), atol=1e-5))
        report = tbk.report(model)
        self.assertIn("method forward: 1 region", report)
        self.assertNotIn("writes memory in place", report)
        self.assertNotIn("modified in place later", report)
        y = torch.randn(3, 4, 8, 8)  # the region takes other batches than its example's
        with torch.no_grad():
            self.assertTrue(torch.allclose(model(y), module(y), atol=1e-5))


if __name__ == "__main__":
    unittest.main()
