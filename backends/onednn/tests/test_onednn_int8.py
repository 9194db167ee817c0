"""test_onednn_int8.py: tbk_onednn on models quantized with PT2E, at one ISA level.

    test_onednn_int8.py [SSE41|AVX2|AVX512_CORE|AVX512_CORE_VNNI|native]

Quantizes the networks of backends/onednn/models.py (the MLP, ResNet- and MobileNetV2-style
networks and the small networks of every operator) the way users quantize for CPU today:
torch.export, then torchao's prepare_pt2e (calibrated on five random batches) and convert_pt2e,
with torchao's X86InductorQuantizer (uint8 activations, int8 per-channel weights) and ExecuTorch's
XNNPACKQuantizer (int8 activations; per-channel and per-tensor weights). Each quantized program is
lowered with tbk.export at oneDNN's ISA capped as asked (ONEDNN_MAX_CPU_ISA; "native": the CPU's
own), and checked against the quantized model run in eager (the reference):
- every output within 5e-2 of its scale. The two compute the same integers but sum in another
  order, so a value tbk_onednn requantizes can land one step (one scale) on the other side of a
  rounding tie; one such step of an intermediate moves these small networks' outputs by up to
  2e-2 (measured; most cases agree to 1e-6). For scale: the quantized model itself is 1e-3 to 4e-2
  off the fp32 model;
- top-1 agreement with the reference on 16 random inputs, for the classification networks, at
  least 15 of 16 (printed);
- no oneDNN reference implementation anywhere;
- where oneDNN's ISA has VNNI (avx512_core_vnni, avx2_vnni and above), every convolution and
  linear layer of the classification networks reads int8, and the quantize after one is fused
  into it; below, they compute in fp32 from the dequantized input and weights, with one warning
  (precision.hpp, native_int8).
At the native ISA also: one network through torch.compile(backend="tbk_onednn") and through
tbk.executorch as a .pte run by executorch.runtime, within the same tolerance.
X86InductorQuantizer is not asked to quantize the ResNet-style network: torchao 0.18's
prepare_pt2e fails on it ("Input partition has more than one output node"), before tbk sees it.
The work runs in a child process, whose environment sets the ISA before oneDNN starts and whose
stderr holds the summaries (TBK_ONEDNN_VERBOSE=1). Needs torch 2 with torchao and executorch
(pip's stack): skipped (exit 77) without them.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import unittest

ISA = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] != "--child" else os.environ.get("TBK_TEST_ISA", "native")
TOLERANCE = 5e-2
CLASSIFIERS = ("mlp", "resnet", "mobilenet_v2")
# ISAs where oneDNN's int8 kernels have VNNI (precision.hpp, native_int8)
VNNI_ISAS = ("avx512_core_vnni", "avx512_core_bf16", "avx512_core_amx", "avx2_vnni")


def quantizer(kind):
    """A PT2E quantizer: "x86" (torchao's X86InductorQuantizer), "xnnpack" (per-channel weights) or
    "xnnpack_per_tensor" (ExecuTorch's XNNPACKQuantizer)."""
    if kind == "x86":
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        q = x86.X86InductorQuantizer()
        q.set_global(x86.get_default_x86_inductor_quantization_config())
        return q
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                       get_symmetric_quantization_config)
    q = XNNPACKQuantizer()
    q.set_global(get_symmetric_quantization_config(is_per_channel=kind == "xnnpack"))
    return q


def quantized(module, x, kind):
    """The PT2E-quantized module (torchao's prepare_pt2e and convert_pt2e), calibrated on x and
    four random batches like it."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    prepared = prepare_pt2e(torch.export.export(module, (x,)).module(), quantizer(kind))
    torch.manual_seed(1)
    for sample in [x] + [torch.randn_like(x) for _ in range(4)]:
        prepared(sample)
    return convert_pt2e(prepared)


def relative_error(got, want):
    if isinstance(want, (tuple, list)):
        return max(relative_error(g, w) for g, w in zip(got, want))
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def child():
    """Quantizes and lowers every case, prints {case: [error, top-1 agreement]} as JSON; the
    summaries go to stderr, each case's after a "case NAME" line."""
    import torch
    import tbk.export
    import tbk.onednn  # noqa: F401 (registers tbk_onednn)
    spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    networks = {k: v for k, v in models.networks(32).items() if k != "with_softplus"}
    operators = models.operator_networks()
    for name in ("conv_ops", "dense_ops", "pool_ops", "layout_ops", "attention_ops"):
        networks[name] = operators[name]
    cases = [(name, kind) for name in networks for kind in ("x86", "xnnpack", "xnnpack_per_tensor")
             if not (name == "resnet" and kind == "x86")]
    results = {}
    with torch.no_grad():
        for name, kind in cases:
            module, x = networks[name]
            reference = quantized(module, x, kind)
            print(f"case {name} {kind}", file=sys.stderr, flush=True)
            lowered = tbk.export.lower(torch.export.export(reference, (x,)), "tbk_onednn").module()
            error = relative_error(lowered(x), reference(x))
            agree = None
            if name in CLASSIFIERS:
                torch.manual_seed(2)
                samples = [torch.randn_like(x) for _ in range(16)]
                agree = sum(int(lowered(s).argmax() == reference(s).argmax()) for s in samples)
            results[f"{name} {kind}"] = [error, agree]
        if ISA == "native":  # the other runtimes, on one network
            import tbk.executorch
            from executorch.exir import to_edge_transform_and_lower
            from executorch.runtime import Runtime
            module, x = networks["mobilenet_v2"]
            reference = quantized(module, x, "x86")
            want = reference(x)
            print("case mobilenet_v2 x86 torch.compile", file=sys.stderr, flush=True)
            compiled = torch.compile(reference, backend="tbk_onednn")
            results["mobilenet_v2 x86 torch.compile"] = [relative_error(compiled(x), want), None]
            print("case mobilenet_v2 x86 .pte", file=sys.stderr, flush=True)
            program = to_edge_transform_and_lower(torch.export.export(reference, (x,)),
                                                  partitioner=[tbk.executorch.partitioner("tbk_onednn")]).to_executorch()
            delegates = program.executorch_program.execution_plan[0].delegates
            pte = program.buffer  # alive while the runtime reads it
            method = Runtime.get().load_program(pte).load_method("forward")
            results["mobilenet_v2 x86 .pte"] = [relative_error(method.execute([x])[0], want), len(delegates)]
    print(json.dumps(results))


class Int8(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, TBK_ONEDNN_VERBOSE="1", TBK_TEST_ISA=ISA, OMP_NUM_THREADS="1")
        if ISA != "native":
            env["ONEDNN_MAX_CPU_ISA"] = ISA
        done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"the child failed:\n{done.stderr[-4000:]}")
        cls.results = json.loads(done.stdout.strip().splitlines()[-1])
        cls.stderr = done.stderr
        cls.summaries = {}  # case -> its summary lines
        case = None
        for line in done.stderr.splitlines():
            if line.startswith("case "):
                case = line[len("case "):]
                cls.summaries[case] = []
            elif case and line.startswith("tbk_onednn."):
                cls.summaries[case].append(line)
        found = re.search(r"steps at ISA (\S+)", done.stderr)
        cls.isa = found.group(1) if found else "unknown"
        print(f"oneDNN ISA {cls.isa} (capped at {ISA})", file=sys.stderr)

    def test_results_match_the_quantized_model(self):
        for case, (error, agree) in sorted(self.results.items()):
            print(f"{case}: error {error:.2e}" + (f", top-1 agreement {agree}/16" if agree is not None and
                                                  not case.endswith(".pte") else ""), file=sys.stderr)
            with self.subTest(case=case):
                self.assertLessEqual(error, TOLERANCE)
                if agree is not None and not case.endswith(".pte"):
                    self.assertGreaterEqual(agree, 15)

    def test_no_reference_implementation(self):
        for case, lines in self.summaries.items():
            with self.subTest(case=case):
                self.assertFalse([line for line in lines if ": ref:" in line or ",ref:" in line])

    def test_layers_run_in_int8_where_onednn_has_vnni(self):
        for case, lines in self.summaries.items():
            if case.split()[0] not in CLASSIFIERS or case.endswith(".pte") or case.endswith("torch.compile"):
                continue
            layers = [line for line in lines if re.search(r": (convolution|matmul|inner_product) ", line)]
            with self.subTest(case=case):
                self.assertTrue(layers)
                if self.isa in VNNI_ISAS:
                    fp32 = [line for line in layers if re.search(r", f32: ", line)]
                    self.assertFalse(fp32, "layers in fp32 at an ISA with VNNI")
                    # the quantize after a layer joins it: requantized by an eltwise_linear post-op
                    self.assertTrue([line for line in layers if "eltwise_linear" in line])
                else:
                    int8 = [line for line in layers if re.search(r", [us]8", line)]
                    self.assertFalse(int8, "int8 layers below VNNI")
        if self.isa not in VNNI_ISAS:
            self.assertIn("int8 convolution and linear steps run in fp32", self.stderr)

    def test_other_runtimes(self):
        if ISA != "native":
            self.skipTest("the other runtimes run at the native ISA")
        self.assertIn("mobilenet_v2 x86 torch.compile", self.results)
        self.assertEqual(self.results["mobilenet_v2 x86 .pte"][1], 1)  # one delegate: the whole network


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
        sys.exit(0)
    import torch
    if int(torch.__version__.split(".")[0]) < 2:
        print(f"skipped: PT2E quantization needs torch 2 (this is {torch.__version__})")
        sys.exit(77)
    missing = [m for m in ("torchao", "executorch") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (pip install torchao executorch==1.5.1)")
        sys.exit(77)
    unittest.main()
