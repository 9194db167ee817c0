# lower_from_python.py: README.md and docs/lowering.md quote the two lines that lower; run by
# tests/docs/run_python_snippet.py from a directory where build/ is the build directory.
import torch


class AddSub(torch.nn.Module):
    def forward(self, a, b):
        return a + b, a - b


model = AddSub()
torch.ops.load_library("build/examples/add_sub/libcustom_backend.so")
lowered = torch._C._jit_to_backend("custom_backend", torch.jit.script(model), {"forward": {"": ""}})

a, b = torch.randn(4), torch.randn(4)
got = lowered(a, b)
assert torch.equal(got[0], a + b) and torch.equal(got[1], a - b), got
print("lower_from_python: the lowered model gives (a + b, a - b)")
