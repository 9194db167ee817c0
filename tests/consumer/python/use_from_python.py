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

# The checks.
assert torch.equal(model(torch.ones(5)), torch.full((5,), 3.0)), model(torch.ones(5))
x = torch.randn(5)
assert torch.equal(lowered(x), x * 3.0), (lowered(x), x)
print("consumer from Python: the C++-lowered model and a Python-lowered one give x * 3")
