# onednn_from_python.py: README.md and docs/onednn.md quote it; run by
# tests/docs/run_python_snippet.py from a directory where build/ is the build directory, with
# PYTHONPATH=build/python.
import torch
import tbk
import tbk.onednn  # registers the oneDNN backend, tbk_onednn


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x))) + x.mean(1, keepdim=True)
        return self.fc(torch.flatten(torch.nn.functional.avg_pool2d(y, 32), 1))


net = Net().eval()
x = torch.randn(8, 3, 32, 32)
try:  # x.mean is not an operator tbk_onednn runs: whole-method lowering names it
    tbk.lower(torch.jit.script(net), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
except RuntimeError as e:
    print(e)  # ... tbk_onednn cannot run aten::mean (onednn_from_python.py:17) ...
# Partitioning gives tbk_onednn the rest; the shapes come from the example inputs
model = tbk.partition(torch.jit.script(net), "tbk_onednn", example_inputs=(x,), freeze=True)
print(tbk.report(model))
torch.jit.save(model, "net.pt")  # an ordinary TorchScript archive

# The checks.
with torch.no_grad():
    expected = net(x)
for m in (model, tbk.load("net.pt")):
    assert (m(x) - expected).abs().max() <= 1e-4 * expected.abs().max()
assert "method forward: 1 region, 6 of 7 nodes in the backend" in tbk.report(model)
# Precision: "auto" is bf16 where the CPU has bf16 instructions, else fp32 (the default)
fast = tbk.partition(torch.jit.script(net), "tbk_onednn", {"forward": {"precision": "auto"}},
                     example_inputs=(x,), freeze=True)
with torch.no_grad():
    assert (fast(x) - expected).abs().max() <= 2e-2 * expected.abs().max()  # bf16: 8 significant bits
print("onednn_from_python: the partitioned model gives eager's results")
