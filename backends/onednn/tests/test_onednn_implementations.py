"""test_onednn_implementations.py: which oneDNN implementations tbk_onednn runs, at one ISA level.

    test_onednn_implementations.py [SSE41|AVX2|AVX512_CORE|native]

Lowers the networks of backends/onednn/models.py (the MLP, ResNet- and MobileNetV2-style, and the
small networks that use every operator) at batch 1 and 8 with oneDNN capped at the ISA given
(ONEDNN_MAX_CPU_ISA; "native": the CPU's own), and checks that each matches eager and that no
primitive runs oneDNN's reference implementation ("ref:...", correct but up to ~1000x slower),
reading the per-method summary tbk_onednn prints with TBK_ONEDNN_VERBOSE=1. Also, at the native
ISA: the gemm-based inner product and convolution, forced with the compile option
{"implementation": "gemm:jit"}, run and match eager (they failed with "unimplemented" when
oneDNN was not isolated from the one in pip's torch). In the precision "bf16" (every network at
batch 1), the same checks within bf16's tolerance (2e-2 of the output's scale: bf16 keeps 8
significant bits, 3.9e-3 per rounding), convolutions and linear layers in bf16 wherever oneDNN
has an AVX-512 kernel for them and in fp32 (with one warning) below; "auto" is bf16 where the CPU
has bf16 instructions (avx512_bf16, AMX) and fp32 elsewhere.
The work runs in a child process, whose environment sets the ISA before oneDNN starts and whose
stderr holds the summaries.

Run by `meson test` with PYTHONPATH at the build tree's python/ and TBK_ONEDNN_MODELS set.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import unittest

# The ISA level: the first argument (the child is told it through the environment).
ISA = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] != "--child" else os.environ.get("TBK_TEST_ISA", "native")


def child():
    """Lowers the networks, prints {case: relative error} as JSON; summaries go to stderr."""
    import torch
    import tbk
    import tbk.onednn  # noqa: F401 (registers tbk_onednn)
    spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    networks = {k: v for k, v in models.networks(32).items() if k != "with_softplus"}
    networks.update(models.operator_networks())
    cases = [(name, batch, "") for name in networks for batch in (1, 8)]
    cases += [(name, 1, "bf16") for name in networks] + [("mlp", 1, "auto")]
    if ISA == "native":
        cases += [("mlp", 1, "gemm:jit"), ("resnet", 1, "gemm:jit")]
        # the reference implementation asked for (lowered twice: warned once), and a name nothing offers
        cases += [("mlp", 1, "ref"), ("dense_ops", 1, "gemm:jti")]
    errors = {}
    for name, batch, implementation in cases:
        module, x = networks[name]
        xb = torch.cat([x, torch.randn(batch - 1, *x.shape[1:])]) if batch > 1 else x
        precision = implementation if implementation in PRECISIONS else ""
        options = {"precision": precision} if precision else {"implementation": implementation} if implementation else {}
        print(f"case {name} {batch} {implementation}".strip(), file=sys.stderr, flush=True)
        for _ in range(2 if implementation == "ref" else 1):
            lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": options}, example_inputs=(xb,))
        with torch.no_grad():
            want, got = module(xb), lowered(xb)
        pairs = list(zip(got, want)) if isinstance(want, tuple) else [(got, want)]
        if precision == "bf16" and name == "elementwise_ops":  # round(y * 4) jumps where bf16 moves y across a half
            del pairs[2]
        errors[f"{name} {batch} {implementation}".strip()] = max(
            ((g - w).abs().max() / w.abs().max()).item() for g, w in pairs)
    print(json.dumps(errors))


# The precisions a case may ask for (its third word), and bf16's tolerance against eager
PRECISIONS = ("bf16", "auto")
BF16_TOLERANCE = 2e-2

# ISA levels from least to most, as tbk_onednn's summary names them
LEVELS = ["sse41", "avx", "avx2", "avx512_core"]


def level(isa):
    return max(i for i, name in enumerate(LEVELS) if isa.startswith(name))


def run_child():
    """The child's errors and, for each case, the summary lines and warnings: {case: [line, ...]}."""
    env = dict(os.environ, TBK_ONEDNN_VERBOSE="1", TBK_TEST_ISA=ISA)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if ISA != "native":
        env["ONEDNN_MAX_CPU_ISA"] = ISA
    done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"the child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    summaries, case = {}, None
    for line in done.stderr.splitlines():
        if line.startswith("case "):
            case = line[len("case "):]
            summaries[case] = []
        elif case is not None and (line.startswith("tbk_onednn.") or "Warning: tbk_onednn." in line):
            summaries[case].append(line)
    return json.loads(done.stdout.splitlines()[-1]), summaries


class Implementations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.errors, cls.summaries = run_child()

    def test_every_network_matches_eager(self):
        self.assertGreaterEqual(len(self.errors), 12)
        for case, error in self.errors.items():
            if case.endswith(" auto"):
                continue  # fp32 or bf16 by the CPU: test_auto_is_bf16_where_the_cpu_has_bf16_instructions
            with self.subTest(case=case):
                self.assertLessEqual(error, BF16_TOLERANCE if case.endswith(" bf16") else 1e-4)

    def test_bf16_runs_where_onednn_has_it_and_fp32_with_a_warning_below(self):
        used = re.search(r"steps at ISA (\w+)$", self.summaries["mlp 1"][0]).group(1)
        on_avx512 = used.startswith("avx512_core")  # bf16 kernels (emulated without avx512_bf16)
        for case, lines in self.summaries.items():
            if not case.endswith(" bf16"):
                continue
            with self.subTest(case=case):
                self.assertIn("precision bf16, ", next(line for line in lines if "steps at ISA" in line))
                weighted = [line for line in lines if re.search(r": step \d+: (convolution|inner_product) ", line)]
                self.assertTrue(weighted)
                types = {line.rsplit(": ", 1)[0].rsplit(", ", 1)[1] for line in weighted}
                self.assertEqual(types, {"bf16"} if on_avx512 else {"f32"}, weighted)
        warned = [line for lines in self.summaries.values() for line in lines
                  if "convolution and linear steps run in fp32, not bf16 as the option 'precision' asks" in line]
        self.assertEqual(len(warned), 0 if on_avx512 else 1, warned)  # once per process and method
        if not on_avx512:
            self.assertIn(f"oneDNN has no bf16 implementation for them at ISA {used}", warned[0])

    def test_auto_is_bf16_where_the_cpu_has_bf16_instructions(self):
        used = re.search(r"steps at ISA (\w+)$", self.summaries["mlp 1"][0]).group(1)
        native = used in ("avx512_core_bf16", "avx512_core_amx")  # not avx512_core's emulation
        header = next(line for line in self.summaries["mlp 1 auto"] if "steps at ISA" in line)
        self.assertIn("precision bf16, " if native else "precision fp32, ", header)
        self.assertLessEqual(self.errors["mlp 1 auto"], BF16_TOLERANCE if native else 1e-4)

    def test_no_primitive_runs_a_reference_implementation(self):
        for case, lines in self.summaries.items():
            if case.endswith(" ref"):
                continue  # asked for
            with self.subTest(case=case):
                steps = [line for line in lines if ": step " in line]
                self.assertTrue(steps, f"no summary for {case}")
                self.assertEqual([line for line in steps if line.rsplit(": ", 1)[1].startswith("ref")], [])

    def test_the_isa_is_the_one_asked_for(self):
        isa = {"SSE41": "sse41", "AVX2": "avx2", "AVX512_CORE": "avx512_core"}.get(ISA)
        used = re.search(r"steps at ISA (\w+)$", self.summaries["mlp 1"][0]).group(1)  # no warnings: first
        if isa and level(used) < level(isa):
            self.skipTest(f"this CPU has no {ISA}: oneDNN runs {used}")
        for case, lines in self.summaries.items():
            with self.subTest(case=case):
                first = next(line for line in lines if "steps at ISA" in line)
                self.assertRegex(first, r"steps at ISA " + (isa or r"(sse41|avx|avx2\w*|avx512\w*)") + "$")

    def test_convolutions_and_linear_layers_fuse_their_activations(self):
        # flatten, three inner products (two with their ReLU), the output: no ReLU of its own
        mlp = [line for line in self.summaries["mlp 1"] if ": step " in line]
        self.assertEqual(sum("inner_product" in line for line in mlp), 3)
        self.assertEqual(sum("inner_product" in line and "eltwise_relu" in line for line in mlp), 2)
        self.assertFalse(any(" eltwise " in line for line in mlp))

    @unittest.skipUnless(ISA == "native", "the gemm-based implementations are checked at the native ISA")
    def test_gemm_based_implementations_run_when_asked(self):
        for case, kind in (("mlp 1 gemm:jit", "inner_product"), ("resnet 1 gemm:jit", "convolution")):
            with self.subTest(case=case):
                chosen = [line.rsplit(": ", 1)[1] for line in self.summaries[case] if f": {kind} " in line]
                self.assertTrue(chosen)
                self.assertTrue(all("gemm:jit" in implementation for implementation in chosen), chosen)
                self.assertLessEqual(self.errors[case], 1e-4)

    @unittest.skipUnless(ISA == "native", "the warnings are checked at the native ISA")
    def test_the_reference_implementation_is_said_once_and_why(self):
        # (a fusion that runs the reference implementation is built unfused: no "+ eltwise_relu")
        warning = ("Warning: tbk_onednn.forward: oneDNN's reference implementation (ref:any) runs inner_product "
                   "[1, 784] -> [1, 512] at ISA ")
        lines = self.summaries["mlp 1 ref"]  # two lowerings of the same method
        said = [line for line in lines if warning in line]
        self.assertEqual(len(said), 1, lines)  # once per process and operation
        self.assertIn("correctly but slowly: the compile option 'implementation' asked for it", said[0])
        self.assertEqual(sum(line.endswith(": ref:any") and "inner_product" in line for line in lines), 6)
        self.assertLessEqual(self.errors["mlp 1 ref"], 1e-4)

    @unittest.skipUnless(ISA == "native", "the warnings are checked at the native ISA")
    def test_an_implementation_nothing_offers_is_said(self):
        said = [line for line in self.summaries["dense_ops 1 gemm:jti"] if "Warning:" in line]
        self.assertEqual(len(said), 1, said)
        self.assertIn("tbk_onednn.forward: compile spec option 'implementation' is 'gemm:jti', which no step of "
                      "this method offers at ISA ", said[0])
        self.assertRegex(said[0], r"; they run: \S")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        unittest.main()
