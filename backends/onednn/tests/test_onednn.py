"""test_onednn.py: the oneDNN backend (backends/onednn) from Python through the tbk package: the
networks of backends/onednn/models.py lowered with tbk.lower and checked against eager at
batch 1 and 8, and its small networks that use every operator tbk_onednn runs; save and load in Python and the lite interpreter; whole-method lowering refusing
softplus by name and line; tbk.partition running the rest in TorchScript; a method lowered at
one batch and image size called at others (and the refusals of sizes a network cannot take).

Run by `meson test` with PYTHONPATH at the build tree's python/ (import tbk.onednn registers
the backend) and TBK_ONEDNN_MODELS set to backends/onednn/models.py.
"""
import importlib.util
import io
import itertools
import os
import unittest

import torch
from torch.jit.mobile import _load_for_lite_interpreter

import tbk
import tbk.onednn  # registers tbk_onednn
_spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)

NETWORKS = models.networks(64)


def relative_error(got, want):
    return ((got - want).abs().max() / want.abs().max()).item()


def wrong_shapes_from_threads(lowered, module, shapes, calls):
    """One thread per shape, each calling `lowered` `calls` times with inputs of its shape at once
    with the others: the shapes whose results differ from `module`'s."""
    import threading
    wrong = []

    def call(shape):
        for _ in range(calls):
            y = torch.randn(*shape)
            with torch.no_grad():
                if relative_error(lowered(y), module(y)) > 1e-4:
                    wrong.append(shape)

    threads = [threading.Thread(target=call, args=(shape,)) for shape in shapes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong


def batch_of(x, batch):
    return torch.cat([x, torch.randn(batch - 1, *x.shape[1:])]) if batch > 1 else x


class AdaptivePools(torch.nn.Module):
    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        y = torch.relu(x)
        return torch.nn.functional.adaptive_max_pool2d(y, self.size), torch.nn.functional.adaptive_avg_pool2d(y, self.size)


class CeilAvgPool(torch.nn.Module):
    def __init__(self, kernel, stride, padding, count_include_pad):
        super().__init__()
        self.pool = torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode=True, count_include_pad=count_include_pad)

    def forward(self, x):
        return self.pool(torch.relu(x))


class OneDnnFromPython(unittest.TestCase):
    def test_networks_match_eager_at_batch_1_and_8(self):
        for name in ("mlp", "resnet", "mobilenet_v2"):
            module, x = NETWORKS[name]
            for batch in (1, 8):
                with self.subTest(network=name, batch=batch):
                    xb = batch_of(x, batch)
                    lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}},
                                        example_inputs=(xb,))
                    with torch.no_grad():
                        self.assertLessEqual(relative_error(lowered(xb), module(xb)), 1e-4)

    def test_every_operator_matches_eager_scripted_and_traced(self):
        for name, (module, x) in models.operator_networks().items():
            for how, made in (("scripted", torch.jit.script(module)), ("traced", torch.jit.trace(module, (x,)))):
                with self.subTest(network=name, how=how):
                    lowered = tbk.lower(made, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
                    with torch.no_grad():
                        want = module(x)
                    got = lowered(x)
                    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
                        self.assertLessEqual(relative_error(g, w), 1e-4)

    def test_adaptive_pools_of_any_size_match_eager(self):
        # PyTorch's windows: regular ones (13 to 6) are one pooling window, the others composed;
        # more outputs than inputs (5 to 7) make windows that overlap
        for (h, oh), (w, ow) in itertools.product([(7, 3), (10, 4), (11, 5), (5, 7), (13, 6)], [(6, 4), (8, 3), (3, 5)]):
            with self.subTest(input=(h, w), output=(oh, ow)):
                module = AdaptivePools([oh, ow])
                x = torch.randn(2, 3, h, w)
                lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
                for got, want in zip(lowered(x), module(x)):
                    self.assertTrue(torch.allclose(got, want, atol=1e-6), (got, want))

    def test_avg_pool_in_ceil_mode_matches_eager_for_many_sizes(self):
        # a last window that overhangs the padded input, counting padding or not
        for size, (kernel, stride, padding), count_include_pad in itertools.product(
                (5, 6, 7, 9), ((2, 2, 0), (3, 2, 1), (3, 3, 1)), (True, False)):
            with self.subTest(size=size, window=(kernel, stride, padding), count_include_pad=count_include_pad):
                module = CeilAvgPool(kernel, stride, padding, count_include_pad)
                x = torch.randn(1, 2, size, size + 1)
                lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
                self.assertTrue(torch.allclose(lowered(x), module(x), atol=1e-6))

    def test_save_load_and_lite_interpreter(self):
        module, x = NETWORKS["resnet"]
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        with torch.no_grad():
            want = module(x)
        saved = io.BytesIO()
        torch.jit.save(lowered, saved)
        saved.seek(0)
        self.assertLessEqual(relative_error(torch.jit.load(saved)(x), want), 1e-4)
        lite = io.BytesIO(lowered._save_to_buffer_for_lite_interpreter())
        self.assertLessEqual(relative_error(_load_for_lite_interpreter(lite)(x), want), 1e-4)

    def test_whole_lowering_names_the_unsupported_operator_and_its_line(self):
        module, x = NETWORKS["with_softplus"]
        with self.assertRaises(RuntimeError) as caught:
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        message = str(caught.exception)
        self.assertIn("tbk_onednn cannot run aten::softplus (", message)
        self.assertIn("models.py:", message)

    def test_whole_lowering_names_an_output_it_does_not_compute(self):
        class ReturnsAConstant(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 3)
                self.c = torch.nn.Parameter(torch.ones(3))

            def forward(self, x):
                return self.fc(x), self.c, self.c * 2

        x = torch.randn(2, 4)
        with self.assertRaisesRegex(RuntimeError, r"method forward: output 1 of the method \(self\.c, a Tensor\) is a "
                                                  r"constant, which tbk_onednn does not compute"):
            tbk.lower(torch.jit.script(ReturnsAConstant().eval()), "tbk_onednn", {"forward": {}}, example_inputs=(x,))

    def test_partition_runs_the_rest_in_torchscript(self):
        module, x = NETWORKS["with_softplus"]
        for batch in (1, 8):
            with self.subTest(batch=batch):
                xb = batch_of(x, batch)
                parted = tbk.partition(torch.jit.script(module), "tbk_onednn", example_inputs=(xb,),
                                       freeze=True)
                with torch.no_grad():
                    self.assertLessEqual(relative_error(parted(xb), module(xb)), 1e-4)
                report = tbk.report(parted)
                self.assertIn("method forward: 2 regions", report)
                self.assertRegex(report, r"aten::softplus \(.*models.py:\d+\): not supported by the backend: "
                                         r"an operator tbk_onednn does not implement")

    def test_the_report_says_why_a_node_stays_in_torchscript(self):
        module, x = NETWORKS["mlp"]
        report = tbk.report(tbk.partition(torch.jit.script(module), "tbk_onednn", example_inputs=(x,)))
        # without freeze=True the weights are parameters the method reads, not constants
        self.assertRegex(report, r"aten::linear \(.*\): not supported by the backend: the weight and bias "
                                 r"must be constant float tensors \(freeze the module: "
                                 r"tbk.partition\(\.\.\., freeze=True\)\)")

    def test_a_clone_into_channels_last_stays_in_torchscript_with_the_reason(self):
        class Clones(torch.nn.Module):
            def forward(self, x):
                return torch.relu(x).clone() * 2, torch.relu(x).clone(memory_format=torch.channels_last)

        x = torch.randn(1, 3, 4, 4)
        parted = tbk.partition(torch.jit.script(Clones()), "tbk_onednn", example_inputs=(x,))
        self.assertRegex(tbk.report(parted), r"aten::clone \(.*test_onednn.py:\d+\): not supported by the backend: "
                                             r"memory_format must be torch.contiguous_format or torch.preserve_format, got "
                                             r"torch.channels_last")
        for got, want in zip(parted(x), Clones()(x)):
            self.assertTrue(torch.equal(got, want))
        self.assertTrue(parted(x)[1].is_contiguous(memory_format=torch.channels_last))

    def test_example_inputs_are_required(self):
        module, _ = NETWORKS["mlp"]
        with self.assertRaises(RuntimeError) as caught:
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}})
        self.assertIn("method 'forward' needs example inputs (compile spec option 'example_inputs')",
                      str(caught.exception))


class ViewOfBatch(torch.nn.Module):
    """A classifier head flattened with x.view(x.size(0), -1): the batch size as a size."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.view(x.size(0), -1))


class TwiceTheBatch(torch.nn.Module):
    """A size computed from the batch size (x.size(0) * 2): it takes its example batch only."""

    def forward(self, x):
        return torch.relu(x.view(x.size(0) * 2, -1))


class AnyBatch(unittest.TestCase):
    """A method lowered at batch 1 is called with the batches serving code sends."""

    def check_batches(self, lowered, module, x, batches):
        for batch in batches:
            with self.subTest(batch=batch):
                y = torch.randn(batch, *x.shape[1:])
                with torch.no_grad():
                    self.assertLessEqual(relative_error(lowered(y), module(y)), 1e-4)

    def test_the_networks_take_any_batch_on_both_paths(self):
        for name in ("mlp", "resnet", "mobilenet_v2"):
            module, x = NETWORKS[name]
            for path in ("native", "fast"):
                with self.subTest(network=name, path=path):
                    lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}},
                                        example_inputs=(x,), path=path)
                    self.check_batches(lowered, module, x, (3, 1, 8, 3))

    def test_a_view_by_the_batch_size_takes_any_batch(self):
        module, x = ViewOfBatch().eval(), torch.randn(1, 3, 8, 8)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        self.check_batches(lowered, module, x, (2, 5, 1))

    def test_saved_and_loaded_it_still_takes_any_batch(self):
        module, x = ViewOfBatch().eval(), torch.randn(2, 3, 8, 8)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        buffer = io.BytesIO()
        torch.jit.save(lowered, buffer)
        buffer.seek(0)
        self.check_batches(torch.jit.load(buffer), module, x, (7, 1))

    def test_more_batches_than_the_cache_keeps_all_run_right(self):
        module, x = NETWORKS["mlp"]
        # 4 are kept by default; "batch_cache" is the option's older name
        for options in ({}, {"shape_cache": 1}, {"shape_cache": 0}, {"batch_cache": 1}):
            with self.subTest(options=options):
                lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": options}, example_inputs=(x,))
                self.check_batches(lowered, module, x, list(range(2, 9)) + [2, 8, 2])

    def test_a_misspelled_option_is_refused_by_name(self):
        module, x = NETWORKS["mlp"]
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn: preprocess failed: method forward: unknown option "
                                                  r"'dynamic_shape'; tbk_onednn's method options are implementation "
                                                  r"\(str\), precision \(\"fp32\", \"bf16\" or \"auto\"\), "
                                                  r"dynamic_shapes \(bool\) and shape_cache \(int\)"):
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"dynamic_shape": False}}, example_inputs=(x,))

    def test_a_precision_other_than_fp32_bf16_auto_is_refused_by_name(self):
        module, x = NETWORKS["mlp"]
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn: preprocess failed: method forward: .*option "
                                                  r"'precision' must be \"fp32\", \"bf16\" or \"auto\", got \"half\""):
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"precision": "half"}}, example_inputs=(x,))

    def test_a_negative_cache_size_is_refused(self):
        module, x = NETWORKS["mlp"]
        for option in ("shape_cache", "batch_cache"):
            with self.assertRaisesRegex(RuntimeError, f"option '{option}' must be 0 or more, got -1"):
                tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {option: -1}}, example_inputs=(x,))

    def test_threads_with_different_batches_get_their_own_results(self):
        module, x = NETWORKS["mlp"]
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        shapes = [(batch, *x.shape[1:]) for batch in (1, 2, 3, 4, 5, 6)]
        self.assertEqual(wrong_shapes_from_threads(lowered, module, shapes, calls=20), [])

    def test_a_size_computed_from_the_batch_is_read_again_at_other_batches(self):
        module, x = TwiceTheBatch(), torch.randn(2, 4, 6)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        self.check_batches(lowered, module, x, (2, 3, 1))

    def test_a_branch_on_the_batch_size_is_read_again_at_each_batch(self):
        # read at 8 and 9 the programs are the same but for the batch: the comparison that chose
        # the branch keeps the batch places out, so batch 1 takes its own branch
        module, x = BranchOnTheBatch().eval(), torch.randn(8, 3, 8, 8)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        self.check_batches(lowered, module, x, (1, 3, 8, 1))
        fixed = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"dynamic_shapes": False}},
                          example_inputs=(x,))
        with self.assertRaisesRegex(RuntimeError, r"this method was compiled for batch 8 and takes no other"):
            fixed(torch.randn(1, 3, 8, 8))

    def test_without_dynamic_shapes_a_size_computed_from_the_batch_takes_its_example_batch_only(self):
        module, x = TwiceTheBatch(), torch.randn(2, 4, 6)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"dynamic_shapes": False}},
                            example_inputs=(x,))
        self.check_batches(lowered, module, x, (2,))
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn.forward: .*input 0 has shape \[3, 4, 6\]; this "
                                                  r"method was compiled for batch 2 and takes no other: its graph "
                                                  r"reads differently at another batch \(it computes other sizes "
                                                  r"from the batch size.*; it is not read again at other shapes: it "
                                                  r"was lowered with the option dynamic_shapes false$"):
            lowered(torch.randn(3, 4, 6))


class BranchOnTheBatch(torch.nn.Module):
    """A branch on the batch size that reads the same at batches 8 and 9 and another at batch 1."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        if x.size(0) == 1:
            return torch.relu(y)
        return torch.sigmoid(y)


class PositionEmbedding(torch.nn.Module):
    """A learned position embedding of the example's spatial size, added to the features: the
    network takes no other spatial size (as ViT's)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.position = torch.nn.Parameter(torch.randn(1, 4, 8, 8))

    def forward(self, x):
        return torch.relu(self.conv(x)) + self.position


class OtherSpatialSizes(unittest.TestCase):
    """A method lowered at one image size is called at others: its graph, which the payload keeps,
    is read again at the new shapes on their first call."""

    def check_shapes(self, lowered, module, shapes):
        for shape in shapes:
            with self.subTest(shape=shape):
                y = torch.randn(*shape)
                with torch.no_grad():
                    self.assertLessEqual(relative_error(lowered(y), module(y)), 1e-4)

    def test_the_networks_take_other_image_sizes_on_both_paths(self):
        for name in ("resnet", "mobilenet_v2"):
            module, x = NETWORKS[name]
            for path in ("native", "fast"):
                with self.subTest(network=name, path=path):
                    lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}},
                                        example_inputs=(x,), path=path)
                    self.check_shapes(lowered, module, ((1, 3, 32, 32), (2, 3, 96, 80), (1, 3, 64, 64),
                                                        (1, 3, 33, 47), (1, 3, 32, 32)))

    def test_every_operator_network_at_other_sizes_runs_as_torchscript_does_traced_and_scripted(self):
        # where the TorchScript module runs at the new shape, the lowered method gives its results;
        # where it raises (a constant of the example's size, a split into a fixed number of
        # pieces), the lowered method refuses the shape
        took = set()
        for name, (module, x) in models.operator_networks().items():
            if x.dim() == 3:  # [N, L, C]: another sequence length
                others = [(x.shape[0], x.shape[1] + 3, x.shape[2])]
            else:  # NCHW: other spatial sizes (PoolOps' adaptive windows and ceil-mode pools among them)
                others = [(x.shape[0], x.shape[1], x.shape[2] + 6, x.shape[3] + 4), (1, x.shape[1], 24, 30)]
            for how, make in (("scripted", torch.jit.script), ("traced", lambda m: torch.jit.trace(m, x))):
                scripted = make(module)
                lowered = tbk.lower(scripted, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
                for other in others:
                    with self.subTest(network=name, how=how, shape=other):
                        y = torch.randn(*other)
                        try:
                            with torch.no_grad():
                                want = scripted(y)
                        except (RuntimeError, ValueError):
                            with self.assertRaisesRegex(RuntimeError, r"this method was compiled for"):
                                lowered(y)
                            continue
                        with torch.no_grad():
                            got = lowered(y)
                        took.add(name)
                        for g, w in zip(got if isinstance(got, tuple) else (got,),
                                        want if isinstance(want, tuple) else (want,)):
                            self.assertEqual(g.shape, w.shape)
                            self.assertLessEqual(relative_error(g, w), 1e-4)
        self.assertTrue({"conv_ops", "conv_ops_odd", "pool_ops", "attention_ops"} <= took, took)

    def test_saved_and_loaded_and_in_the_lite_interpreter_it_takes_other_sizes(self):
        module, x = NETWORKS["mobilenet_v2"]
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        buffer = io.BytesIO()
        torch.jit.save(lowered, buffer)
        buffer.seek(0)
        self.check_shapes(torch.jit.load(buffer), module, ((1, 3, 48, 48), (3, 3, 80, 64)))
        lite = io.BytesIO(lowered._save_to_buffer_for_lite_interpreter())
        self.check_shapes(_load_for_lite_interpreter(lite), module, ((2, 3, 40, 56),))

    def test_a_partitioned_model_takes_other_sizes(self):
        module, x = NETWORKS["with_softplus"]
        partitioned = tbk.partition(torch.jit.script(module), "tbk_onednn", example_inputs=(x,), freeze=True)
        self.check_shapes(partitioned, module, ((1, 3, 48, 40), (2, 3, 96, 96)))

    def test_threads_with_different_sizes_get_their_own_results(self):
        module, x = NETWORKS["resnet"]
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"shape_cache": 2}},
                            example_inputs=(x,))
        shapes = [(1, 3, size, size) for size in (32, 40, 48, 64)]
        self.assertEqual(wrong_shapes_from_threads(lowered, module, shapes, calls=4), [])

    def test_threads_calling_at_one_new_size_at_once_build_it_once(self):
        # TBK_ONEDNN_VERBOSE prints each build: in a child process, four threads released at
        # once call at one new size; one builds, the others wait for it and get its results
        import subprocess
        import sys
        script = """
import os, sys, threading, torch, importlib.util
import tbk, tbk.onednn
spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(models)
module, x = models.networks(64)["resnet"]
lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
y = torch.randn(1, 3, 48, 48)
with torch.no_grad():
    want = module(y)
start = threading.Barrier(4)
wrong = []
def call():
    start.wait()
    with torch.no_grad():
        got = lowered(y)
    if ((got - want).abs().max() / want.abs().max()).item() > 1e-4:
        wrong.append(1)
threads = [threading.Thread(target=call) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print("wrong", len(wrong))
"""
        env = dict(os.environ, TBK_ONEDNN_VERBOSE="1")
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        self.assertIn("wrong 0", run.stdout)
        self.assertEqual(run.stderr.count("built for input shapes [1, 3, 48, 48]"), 1, run.stderr[-2000:])

    def test_a_network_that_takes_one_size_says_why_at_another(self):
        module, x = PositionEmbedding().eval(), torch.randn(1, 3, 8, 8)
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        self.check_shapes(lowered, module, ((3, 3, 8, 8),))  # other batches: yes
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn.forward: .*input 0 has shape \[1, 3, 16, 8\]; this "
                                                  r"method was compiled for \[1, 3, 8, 8\] and takes other batch "
                                                  r"sizes only .*; it is not read again at other shapes: read at "
                                                  r"input shapes \[1, 3, 16, 16\] when it was lowered, tbk_onednn "
                                                  r"cannot run aten::add \(.*test_onednn.py:\d+\): .*operand[^(]*$"):
            lowered(torch.randn(1, 3, 16, 8))

    def test_sizes_that_are_related_take_the_shapes_eager_takes(self):
        # doubling every size after N and C gives no valid shape for these: each dimension is
        # probed alone too (issue 33's reports, with the shapes eager takes)
        class LastDimNorm(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.norm = torch.nn.LayerNorm(8)

            def forward(self, x):
                return self.norm(x)

        class MatmulOfComputed(torch.nn.Module):
            def forward(self, a, b):
                return torch.matmul(torch.relu(a), b * 2)

        norm, x = LastDimNorm().eval(), torch.randn(2, 3, 4, 8)
        lowered = tbk.lower(torch.jit.script(norm), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        self.check_shapes(lowered, norm, ((1, 3, 6, 8), (2, 5, 4, 8), (4, 3, 4, 8)))
        matmul, a, b = MatmulOfComputed().eval(), torch.randn(1, 5, 6), torch.randn(4, 6, 7)
        lowered = tbk.lower(torch.jit.script(matmul), "tbk_onednn", {"forward": {}}, example_inputs=(a, b))
        for a_shape, b_shape in (((1, 5, 6), (6, 6, 7)), ((3, 5, 6), (3, 6, 7)), ((1, 9, 6), (4, 6, 2))):
            with self.subTest(a=a_shape, b=b_shape):
                a2, b2 = torch.randn(*a_shape), torch.randn(*b_shape)
                self.assertLessEqual(relative_error(lowered(a2, b2), matmul(a2, b2)), 1e-4)

    def test_a_linear_layer_reshaped_with_minus_one_takes_every_batch(self):
        # issue 33's report: lowered at batch 4, the reshape's -1 is the batch at every call
        module, x = models.ReshapedLinear().eval(), torch.randn(4, 32)
        for source in (torch.jit.script(module), torch.jit.trace(module, (x,))):
            lowered = tbk.lower(source, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
            self.check_shapes(lowered, module, ((1, 32), (7, 32), (9, 32)))

    def test_a_size_the_network_cannot_take_is_refused_by_its_node_and_line(self):
        module, x = NETWORKS["resnet"]
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
        with self.assertRaisesRegex(RuntimeError, r"tbk_onednn.forward: .*input 0 has shape \[1, 4, 64, 64\]; this "
                                                  r"method was compiled for \[1, 3, 64, 64\], and read again at the "
                                                  r"shapes of this call, tbk_onednn cannot run aten::conv2d "
                                                  r"\(.*conv.py:\d+\): .*weight \[64, 3, 7, 7\] does not fit input "
                                                  r"channels 4 in 1 groups$"):
            lowered(torch.randn(1, 4, 64, 64))

    def test_without_dynamic_shapes_the_archive_keeps_no_graph_and_other_sizes_are_refused(self):
        module, x = NETWORKS["resnet"]
        sizes = {}
        for dynamic in (True, False):
            lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {"dynamic_shapes": dynamic}},
                                example_inputs=(x,))
            buffer = io.BytesIO()
            torch.jit.save(lowered, buffer)
            sizes[dynamic] = len(buffer.getvalue())
        self.assertLess(sizes[False], 0.6 * sizes[True])  # the frozen module is about the weights' size
        with self.assertRaisesRegex(RuntimeError, r"input 0 has shape \[1, 3, 32, 32\]; this method was compiled "
                                                  r"for \[1, 3, 64, 64\] and takes other batch sizes only"):
            lowered(torch.randn(1, 3, 32, 32))


if __name__ == "__main__":
    unittest.main()
