# partition_from_python.py: README.md and docs/partitioning.md quote it; run by
# tests/docs/run_python_snippet.py from a directory where build/ is the build directory, with
# PYTHONPATH=build/python; tools/draw_partition.py draws docs/partitioning-*.png from it.
import torch
import tbk


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x, y):
        h = x + y
        h = torch.relu(self.linear(h)) - y
        return h + 1, torch.cat([x - y, h])


torch.ops.load_library("build/examples/add_sub/libadd_sub_graph.so")
scripted = torch.jit.script(Block())
partitioned = tbk.partition(scripted, "add_sub_graph")
print(tbk.report(partitioned))
partitioned.save("block.pt")  # an ordinary TorchScript archive

# The checks.
x, y = torch.randn(2, 4), torch.randn(2, 4)
expected = scripted(x, y)
for model in (partitioned, tbk.load("block.pt")):
    got = model(x, y)
    assert all(torch.equal(a, b) for a, b in zip(got, expected)), (got, expected)
assert "method forward: 2 regions, 4 of 9 nodes in the backend" in tbk.report(partitioned)
print("partition_from_python: the partitioned model gives the scripted model's results")
