#!/usr/bin/env python3
"""check_pt2_kit.py: proves the Python kit's legs (tbk.testing: torch.export, torch.compile,
ExecuTorch) catch what they claim. Usage: check_pt2_kit.py LIBRARY (libkit_proof_pt2.so).

Each backend of the library goes through every leg; each leg must fail exactly where EXPECTED says,
with a failure that carries the fragment saying what broke, and pass everywhere else. Needs torch 2
(exit 77, skipped, on torch 1.13); the ExecuTorch leg is checked where the executorch package
imports.
"""
import sys
import unittest

import torch

if int(torch.__version__.split(".")[0]) < 2:
    print(f"skipped: the Python kit's legs need torch 2 (this is {torch.__version__})")
    sys.exit(77)

import tbk  # noqa: E402
import tbk.testing  # noqa: E402


class AddSub(torch.nn.Module):
    def forward(self, a, b):
        return a + b, a - b


class ScaledAddSub(torch.nn.Module):  # what loses_state lowers, with the option factor 2.0
    def forward(self, a, b):
        return (a + b) * 2.0, (a - b) * 2.0


# backend -> (module, options, {leg: fragment its failure must carry}); the legs not named pass.
EXPECTED = {
    "sound_graph": (AddSub(), {}, {}),
    "sound": (AddSub(), {}, {}),
    "wrong_result": (AddSub(), {}, {"export": "values differ", "compile": "values differ",
                                    "executorch": "values differ"}),
    # the .pt2 is loaded in a fresh process, where the factor preprocess handed over is gone
    "loses_state": (ScaledAddSub(), {"factor": 2.0}, {"export": "the .pt2 loaded and run in a fresh process: output 0: "
                                                                "values differ"}),
    "claims_nothing": (AddSub(), {}, {"export": "the backend's supports hook claimed too little",
                                      "compile": "the backend's supports hook claimed too little",
                                      "executorch": "the backend's supports hook claimed too little"}),
}


def main() -> int:
    library = sys.argv[1]
    tbk.load_library(library)
    legs = list(tbk.testing.LEGS)
    try:
        import executorch.exir  # noqa: F401
    except ImportError:
        legs.remove("executorch")
        print("the ExecuTorch leg is not checked: the executorch package does not import beside this torch")
    problems = []
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    a3, b3 = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    for backend, (module, options, failing) in EXPECTED.items():
        kit = tbk.testing.Kit(backend, module, (a, b), other_inputs=(a3, b3), options=options,
                              setup=f"import tbk; tbk.load_library({library!r})")
        for leg in legs:
            try:
                failures = tbk.testing.CHECKS[leg](kit)
            except unittest.SkipTest as why:
                problems.append(f"{backend}: the {leg} leg was skipped ({why}), but it can run here")
                continue
            text = "\n".join(failures)
            fragment = failing.get(leg)
            if fragment is None and failures:
                problems.append(f"{backend}: the {leg} leg failed, but this backend is sound there:\n{text}")
            elif fragment is not None and fragment not in text:
                problems.append(f"{backend}: the {leg} leg should fail saying '{fragment}', got:\n{text or '(passed)'}")
            else:
                print(f"{backend}: the {leg} leg {'failed' if fragment else 'passed'}, as it should"
                      + (f": ...{fragment}..." if fragment else ""))
    if problems:
        print("\n".join(problems))
        return 1
    print(f"the Python kit's legs caught every fault, and nothing else, in {len(EXPECTED)} backends")
    return 0


if __name__ == "__main__":
    sys.exit(main())
