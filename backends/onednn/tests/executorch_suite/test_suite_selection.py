"""test_suite_selection.py: a CI-sized selection of ExecuTorch's own operator test suite
(executorch.backends.test.suite.operators, from the executorch wheel) through tbk_flows: for
tbk_onednn, SELECTION's tests pass and each makes a delegate call (but those in STAYS_OUTSIDE,
which tbk_onednn refuses with a reason and the suite then does not run); for custom_backend, the
add and sub tests run as tbk_flows expects (KNOWN_FAILURES: strict expected failures). Any
failure, unexpected pass or missing test fails it; a native crash kills the process, which fails
it too. One thread; a few minutes on two cores.

    PYTHONPATH=build-pip/python TBK_CUSTOM_BACKEND_LIB=build-pip/examples/add_sub/libcustom_backend.so \\
        python3 backends/onednn/tests/executorch_suite/test_suite_selection.py

Skipped (exit 77) without the executorch package, without tbk's ExecuTorch side or tbk_onednn,
or without the custom_backend library. run_suite.py runs the whole suite.
"""
import os
import sys
import tempfile
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def skip(reason: str) -> None:
    print(f"skipped: {reason}")
    sys.exit(77)


try:
    with warnings.catch_warnings():  # ExecuTorch's own notices on import
        warnings.simplefilter("ignore")
        import executorch.backends.test.suite.operators as suite_operators
        import executorch.exir  # noqa: F401
except ImportError as error:
    skip(f"ExecuTorch's backend test suite does not import ({error}); it needs pip's torch 2.13 and "
         "executorch==1.5.1 (-Dtorch=python)")
try:
    import tbk.executorch  # noqa: F401
    import tbk.onednn  # noqa: F401
except ImportError as error:
    skip(f"this tbk build has no ExecuTorch side or no tbk_onednn ({error})")
CUSTOM_BACKEND_LIB = os.environ.get("TBK_CUSTOM_BACKEND_LIB", "")
if not os.path.exists(CUSTOM_BACKEND_LIB):
    skip(f"TBK_CUSTOM_BACKEND_LIB ({CUSTOM_BACKEND_LIB!r}) names no library: the add/sub backend is not built")

import pytest  # noqa: E402

sys.path.insert(0, HERE)
import tbk_flows  # noqa: E402  (before the suite's conftest imports the flows: see tbk_flows)
import run_suite  # noqa: E402  (its record reader)

# Test file -> the tests of it that run for tbk_onednn (the suite's linear tests but these two
# fail in eager with ExecuTorch 1.5.1's shapes, and its in-place activations are skipped by the
# suite: neither is here).
SELECTION = {
    "test_add.py": ["test_add_dtype", "test_add_f32_bcast_first", "test_add_f32_bcast_second",
                    "test_add_f32_bcast_unary", "test_add_f32_alpha"],
    "test_sub.py": ["test_subtract_dtype", "test_subtract_f32_bcast_first", "test_subtract_f32_bcast_second",
                    "test_subtract_f32_bcast_unary"],
    "test_mul.py": ["test_multiply_dtype", "test_multiply_f32_bcast_first", "test_multiply_f32_bcast_second",
                    "test_multiply_f32_bcast_unary"],
    "test_div.py": ["test_divide_dtype", "test_divide_f32_bcast_first", "test_divide_f32_bcast_second",
                    "test_divide_f32_bcast_unary"],
    "test_linear.py": ["test_linear_feature_sizes", "test_linear_unbatched"],
    "test_conv2d.py": ["test_conv2d_basic", "test_conv2d_stride", "test_conv2d_padding", "test_conv2d_dilation",
                       "test_conv2d_groups", "test_conv2d_depthwise", "test_conv2d_no_bias", "test_conv2d_channels"],
    "test_relu.py": ["test_relu_dtype", "test_relu_f32_multi_dim"],
    "test_gelu.py": ["test_gelu_dtype", "test_gelu_f32_tanh_approximation"],
    "test_hardswish.py": ["test_hardswish_dtype", "test_hardswish_f32_multi_dim"],
    "test_hardtanh.py": ["test_hardtanh_f32_custom_range"],
    "test_sigmoid.py": ["test_sigmoid_dtype"],
    "test_silu.py": ["test_silu_dtype"],
    "test_tanh.py": ["test_tanh_dtype"],
    "test_glu.py": ["test_glu_dtype", "test_glu_f32_dim_first"],
    "test_maxpool2d.py": ["test_maxpool2d_dtype", "test_maxpool2d_stride", "test_maxpool2d_kernel_size",
                          "test_maxpool2d_ceil_mode", "test_maxpool2d_return_indices"],
    "test_avgpool2d.py": ["test_avgpool2d_dtype", "test_avgpool2d_stride", "test_avgpool2d_ceil_mode",
                          "test_avgpool2d_count_include_pad"],
    "test_adaptive_avgpool2d.py": ["test_adaptive_avgpool2d_dtype", "test_adaptive_avgpool2d_output_size"],
    "test_cat.py": ["test_cat_dtype", "test_cat_dimensions", "test_cat_negative_dim"],
    "test_permute.py": ["test_permute_dtype", "test_permute_4d"],
    "test_transpose.py": ["test_transpose_4d"],
    "test_view.py": ["test_view_dtype", "test_view_dimensions"],
    "test_reshape.py": ["test_reshape_dtype", "test_reshape_inferred_dimension"],
    "test_split.py": ["test_split_size_uneven"],
    "test_select.py": ["test_select_dimensions"],
    "test_mean.py": ["test_mean_dim", "test_mean_basic"],
}

# Tests of SELECTION tbk_onednn refuses -> words of the reason its partitioner gives: they pass
# with no delegate call (the suite then runs nothing), and the refusal must say so.
STAYS_OUTSIDE = {
    "test_add_f32_bcast_unary": "operands of rank 1 and 3",
    "test_subtract_f32_bcast_unary": "operands of rank 1 and 3",
    "test_multiply_f32_bcast_unary": "operands of rank 1 and 3",
    "test_divide_f32_bcast_unary": "operands of rank 1 and 3",
    "test_subtract_f32_bcast_first": "broadcasts only the second operand",
    "test_divide_f32_bcast_first": "broadcasts only the second operand",
    "test_add_f32_alpha": "alpha other than 1",
    "test_mean_dim": "last two dimensions of an NCHW tensor",
    "test_mean_basic": "the dimensions must be a constant list",
}

# custom_backend's tests: test name -> outcome.
CUSTOM_BACKEND = {name: "xfailed" for name in (
    "test_add_dtype", "test_add_f32_bcast_first", "test_add_f32_bcast_second", "test_add_f32_bcast_unary",
    "test_subtract_dtype", "test_subtract_f32_bcast_first", "test_subtract_f32_bcast_second",
    "test_subtract_f32_bcast_unary")}
CUSTOM_BACKEND.update({"test_add_f32_alpha": "skipped", "test_subtract_f32_alpha": "skipped"})


def base_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[1].split("[", 1)[0]


class SuiteSelection(unittest.TestCase):
    """One pytest run of the selection (both flows), then its records checked per flow."""

    records = {}

    @classmethod
    def setUpClass(cls):
        package_root, suite = run_suite.suite_paths()
        tests = {(file, name) for file, names in SELECTION.items() for name in names}
        tests |= {("test_add.py" if name.startswith("test_add_") else "test_sub.py", name) for name in CUSTOM_BACKEND}
        with tempfile.TemporaryDirectory(prefix="tbk-suite-selection-") as work:
            record = os.path.join(work, "records.jsonl")
            args = ["-p", "no:cacheprovider", "-p", "no:warnings", "-q", "--rootdir", package_root,
                    "--tbk-record", record, "--tbk-seed", "1", "-m", "flow_tbk_onednn or flow_tbk_custom_backend"]
            args += [f"{os.path.join(suite, file)}::{name}" for file, name in sorted(tests)]  # every flow's
            cls.exit_code = pytest.main(args, plugins=[tbk_flows])
            started, finished = run_suite.read_records(record)
        cls.records = {(r["flow"], base_name(r["nodeid"])): r for r in finished.values()}
        cls.unfinished = [nodeid for nodeid in started if nodeid not in finished]

    def test_pytest_run(self):
        self.assertEqual(self.unfinished, [])
        self.assertEqual(self.exit_code, 0, "pytest reported failures (printed above)")

    def test_tbk_onednn(self):
        for file, names in SELECTION.items():
            for name in names:
                with self.subTest(test=f"{file}::{name}"):
                    record = self.records.get(("tbk_onednn", name))
                    self.assertIsNotNone(record, "the test did not run")
                    self.assertEqual(record["outcome"], "passed", record["reason"])
                    made_call = any(s["delegated"] for s in record["subtests"])
                    refusals = {k: v for lowering in record["lowerings"] for k, v in lowering["refusals"].items()}
                    if name in STAYS_OUTSIDE:
                        self.assertFalse(made_call, f"{name} is delegated now: take it out of STAYS_OUTSIDE")
                        self.assertTrue(any(STAYS_OUTSIDE[name] in reason for reason in refusals.values()), refusals)
                    else:
                        self.assertTrue(made_call, f"nothing delegated; the partitioner's refusals: {refusals}")

    def test_custom_backend(self):
        for name, outcome in CUSTOM_BACKEND.items():
            with self.subTest(test=name):
                record = self.records.get(("tbk_custom_backend", name))
                self.assertIsNotNone(record, "the test did not run")
                self.assertEqual(record["outcome"], outcome, record["reason"])
                if outcome == "xfailed":  # it fails where tbk_flows.KNOWN_FAILURES says: at the delegate call
                    self.assertEqual([s["result"] for s in record["subtests"]], ["PTE_RUN_FAIL"], record["subtests"])
                    self.assertTrue(all(s["delegated"] for s in record["subtests"]))
                    self.assertIn("execute returned 2 output(s), but the method returns 1", record["stderr"])


if __name__ == "__main__":
    unittest.main()
