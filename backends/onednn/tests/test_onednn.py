"""test_onednn.py: the oneDNN backend (backends/onednn) from Python through the tbk package: the
networks of backends/onednn/models.py lowered with tbk.lower and checked against eager at
batch 1 and 8, and its small networks that use every operator tbk_onednn runs; save and load in Python and the lite interpreter; whole-method lowering refusing
softplus by name and line; tbk.partition running the rest in TorchScript.

Run by `meson test` with PYTHONPATH at the build tree's python/ (import tbk.onednn registers
the backend) and TBK_ONEDNN_MODELS set to backends/onednn/models.py.
"""
import importlib.util
import io
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


def batch_of(x, batch):
    return torch.cat([x, torch.randn(batch - 1, *x.shape[1:])]) if batch > 1 else x


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

    def test_every_operator_matches_eager(self):
        for name, (module, x) in models.operator_networks().items():
            with self.subTest(network=name):
                lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}},
                                    example_inputs=(x,))
                with torch.no_grad():
                    want = module(x)
                got = lowered(x)
                for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
                    self.assertLessEqual(relative_error(g, w), 1e-4)

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

    def test_example_inputs_are_required(self):
        module, _ = NETWORKS["mlp"]
        with self.assertRaises(RuntimeError) as caught:
            tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}})
        self.assertIn("method 'forward' needs example inputs (compile spec option 'example_inputs')",
                      str(caught.exception))


if __name__ == "__main__":
    unittest.main()
