# use_from_python.py: the consumer's model in Python (docs/getting-started.md, step 5, quotes
# the part up to the checks). Run from the consumer's directory after its C++ program made
# scale.pt, with build/ its build directory.
import torch
torch.ops.load_library("build/libconsumer_scale.so")
model = torch.jit.load("scale.pt")            # lowered in C++, runs in Python
print(model(torch.ones(5)))

class Scale(torch.nn.Module):
    def forward(self, x):
        return x
lowered = torch._C._jit_to_backend("consumer_scale", torch.jit.script(Scale()),
                                   {"forward": {"factor": 3.0}})

# With tbk's Python package (built with -Dtorch-backend-kit:python=enabled), on either path:
import tbk
fast = tbk.lower(torch.jit.script(Scale()), "consumer_scale", {"forward": {"factor": 3.0}},
                 path="fast")

# The checks.
assert torch.equal(model(torch.ones(5)), torch.full((5,), 3.0)), model(torch.ones(5))
x = torch.randn(5)
assert torch.equal(lowered(x), x * 3.0), (lowered(x), x)
assert torch.equal(fast(x), x * 3.0), (fast(x), x)
assert "consumer_scale" in tbk.registered_backends(), tbk.registered_backends()
print("consumer from Python: the C++-lowered model and the Python-lowered ones give x * 3")
