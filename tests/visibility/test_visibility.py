"""test_visibility.py: two tbk backend libraries and a third that asks tbk what is registered,
each built with -fvisibility=hidden, loaded into one Python process with torch.ops.load_library
(which loads them RTLD_LOCAL): every library must see every registration."""
import os
import unittest

import torch

WRONG = "def forward(self, x: int) -> Tensor:\n  return torch.zeros(1)\n"


class SeparateLibraries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for variable in ("TBK_VIS_FIRST", "TBK_VIS_SECOND", "TBK_VIS_PROBE"):
            torch.ops.load_library(os.environ[variable])

    def test_every_library_lists_both_backends(self):
        names = torch.ops.tbk_probe.registered_backends()
        self.assertIn("vis_first", names)
        self.assertIn("vis_second", names)

    def test_fast_path_finds_each_backend(self):
        self.assertEqual(torch.ops.tbk_probe.lower_error(
            "vis_first", "def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:\n"
            "  return a + b, a - b\n", True), "")
        self.assertEqual(torch.ops.tbk_probe.lower_error(
            "vis_second", "def forward(self, x: Tensor) -> Tensor:\n  return x\n", True), "")

    def test_signature_check_runs_for_each_backend(self):
        for name in ("vis_first", "vis_second"):
            text = torch.ops.tbk_probe.lower_error(name, WRONG, False)
            self.assertIn(name + ".forward", text)

    def test_failed_registration_in_another_library_is_reported(self):
        text = torch.ops.tbk_probe.lower_error(
            "vis_missing", "def forward(self, x: Tensor) -> Tensor:\n  return x\n", False)
        self.assertIn("is not registered", text)
        self.assertIn("vis_second.cpp", text)
        self.assertIn("TBK_REGISTER_BACKEND failed", text)

    def test_both_backends_lower_natively_from_python(self):
        class Pair(torch.nn.Module):
            def forward(self, a, b):
                return a + b, a - b

        class Scale(torch.nn.Module):
            def forward(self, x):
                return x * 3.0

        a, b = torch.randn(4), torch.randn(4)
        pair = torch._C._jit_to_backend("vis_first", torch.jit.script(Pair()), {"forward": {"": ""}})
        s, d = pair(a, b)
        self.assertTrue(torch.equal(s, a + b) and torch.equal(d, a - b))
        scale = torch._C._jit_to_backend("vis_second", torch.jit.script(Scale()),
                                         {"forward": {"factor": 3.0}})
        self.assertTrue(torch.allclose(scale(a), a * 3.0))


if __name__ == "__main__":
    unittest.main()
