# pt2_from_python.py: README.md and docs/torch-compile.md quote it; run by
# tests/docs/run_python_snippet.py from a directory where build/ is the build directory, with
# PYTHONPATH=build/python (pip's torch: torch.compile and torch.export need torch 2).
import subprocess
import sys

import torch

if int(torch.__version__.split(".")[0]) < 2:
    print("skipped: torch.compile and torch.export need torch 2")
    sys.exit(77)

import tbk
import tbk.export
import tbk.onednn  # registers tbk_onednn, for TorchScript, ExecuTorch and torch.compile


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.mean((2, 3)))


net = Net().eval()
x = torch.randn(8, 3, 32, 32)

# torch.compile: the backend runs what it supports, Inductor the rest
compiled = torch.compile(net, backend="tbk_onednn", dynamic=True)
with torch.no_grad():
    y = compiled(x)

# torch.export: an ExportedProgram whose regions call the backend, saved as a .pt2
batch = torch.export.Dim("batch", min=1, max=64)
program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},))
lowered = tbk.export.lower(program, "tbk_onednn")
print(tbk.export.report(lowered))
tbk.export.save(lowered, "net.pt2")
# ... and loaded in another process, which loads the backend's library first
loaded = tbk.export.load("net.pt2").module()

# The checks.
with torch.no_grad():
    for batch_size in (8, 3):
        x = torch.randn(batch_size, 3, 32, 32)
        expected = net(x)
        for model in (compiled, lowered.module(), loaded):
            assert (model(x) - expected).abs().max() <= 1e-4 * expected.abs().max()
assert "tbk_onednn: 1 region" in tbk.export.report(lowered), tbk.export.report(lowered)
script = "import torch, tbk.export, tbk.onednn\nprint(tbk.export.load('net.pt2').module()(torch.randn(2, 3, 32, 32)).shape)"
assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout.strip() == \
    "torch.Size([2, 10])"
print("pt2_from_python: torch.compile and the .pt2 give eager's results")
