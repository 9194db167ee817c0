"""test_custom_backend.py: PyTorch's own test of a custom to_backend delegate
(test/custom_backend/test_custom_backend.py and backend.py in PyTorch's sources), run unchanged in
substance against tbk's libcustom_backend.so: load the library, lower
forward(a, b) -> (a + b, a - b) with {"forward": {"": ""}}, run, save, load, run. PyTorch's
version uses torch.testing._internal, which does not import with Debian's torch; this one uses
unittest. TBK_CUSTOM_BACKEND_LIB names the library.
"""
import os
import tempfile
import unittest

import torch


class Model(torch.nn.Module):
    """The module PyTorch's test lowers."""

    def forward(self, a, b):
        return (a + b, a - b)


def to_custom_backend(module):
    """Lowers `module` to "custom_backend", exactly as PyTorch's test does."""
    return torch._C._jit_to_backend("custom_backend", module, {"forward": {"": ""}})


class TestCustomBackend(unittest.TestCase):
    def setUp(self):
        self.library_path = os.environ["TBK_CUSTOM_BACKEND_LIB"]
        torch.ops.load_library(self.library_path)
        self.model = to_custom_backend(torch.jit.script(Model()))

    def test_execute(self):
        a, b = torch.randn(4), torch.randn(4)
        expected = (a + b, a - b)
        out = self.model(a, b)
        self.assertTrue(expected[0].allclose(out[0]))
        self.assertTrue(expected[1].allclose(out[1]))

    def test_save_load(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.pt")
            torch.jit.save(self.model, path)
            self.model = torch.jit.load(path)
        self.test_execute()


if __name__ == "__main__":
    unittest.main()
