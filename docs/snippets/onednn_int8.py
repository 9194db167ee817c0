# onednn_int8.py: docs/onednn.md quotes it (int8, from PT2E quantization); run by
# tests/docs/run_python_snippet.py with PYTHONPATH=build/python on a torch 2 stack with torchao
# and executorch (pip's).
import torch
import tbk.export
import tbk.executorch
import tbk.onednn  # registers the oneDNN backend, tbk_onednn
from executorch.exir import to_edge_transform_and_lower

model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                            torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
                            torch.nn.Flatten(), torch.nn.Linear(16 * 8 * 8, 10))
x = torch.randn(1, 3, 8, 8)

from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, convert_pt2e
import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
quantizer = x86.X86InductorQuantizer()
quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
prepared = prepare_pt2e(torch.export.export(model.eval(), (x,)).module(), quantizer)
prepared(x)                                   # calibration, on representative inputs
quantized = convert_pt2e(prepared)
with torch.no_grad():
    lowered = tbk.export.lower(torch.export.export(quantized, (x,)), "tbk_onednn")
    compiled = torch.compile(quantized, backend="tbk_onednn")
    pte = to_edge_transform_and_lower(torch.export.export(quantized, (x,)),
                                      partitioner=[tbk.executorch.partitioner("tbk_onednn")]).to_executorch()

    want = quantized(x)  # the quantized model in eager: the reference
    for got in (lowered.module()(x), compiled(x)):
        assert ((got - want).abs().max() / want.abs().max()).item() < 5e-2
print(tbk.export.report(lowered))
