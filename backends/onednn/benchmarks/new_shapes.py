#!/usr/bin/env python3
"""backends/onednn/benchmarks/new_shapes.py: what calls at other shapes than the example's cost.

    PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 backends/onednn/benchmarks/new_shapes.py \
        [--networks resnet18 ...] [--repetitions 5]

Each torchvision network (random weights, eval mode) is scripted and lowered whole with tbk_onednn
at batch 1, 224x224, then called at other shapes. One row per network and shape: the first call at
the shape (ms: the program for the shape made, from the batch's places or by reading the frozen
graph again, its primitives built, one call run), the calls after it (median ms over
--repetitions) against torch.jit.freeze + optimize_for_inference at the same shape, and the
largest difference from eager relative to the output's scale. Above the rows: the archive's size
(torch.jit.save) with the graph kept for other shapes (dynamic_shapes, the default) and without.
One thread. Needs Debian's python3-torchvision beside Debian's torch.
"""
import argparse
import io
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # noqa: E402  (make: torchvision's networks as the zoo benchmark builds them)

import tbk  # noqa: E402

warnings.filterwarnings("ignore")

SHAPES = [(8, 3, 224, 224), (1, 3, 160, 160), (1, 3, 320, 320), (2, 3, 192, 256)]


def archive_megabytes(module):
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return len(buffer.getvalue()) / 1e6


def median_ms(fn, x, repetitions):
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def rows(name, repetitions):
    module = zoo.make(name)
    x = torch.randn(1, 3, 224, 224)
    scripted = torch.jit.script(module)
    lowered = tbk.lower(scripted, "tbk_onednn", {"forward": {}}, example_inputs=(x,))
    fixed = tbk.lower(scripted, "tbk_onednn", {"forward": {"dynamic_shapes": False}}, example_inputs=(x,))
    sizes = (archive_megabytes(lowered), archive_megabytes(fixed))
    reference = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(module)))
    out = []
    with torch.no_grad():
        lowered(x), reference(x)
        for shape in SHAPES:
            y = torch.randn(*shape)
            started = time.perf_counter()
            got = lowered(y)
            first = (time.perf_counter() - started) * 1e3
            reference(y)
            after = median_ms(lowered, y, repetitions)
            ofi = median_ms(reference, y, repetitions)
            want = module(y)
            error = ((got - want).abs().max() / want.abs().max()).item()
            out.append((shape, first, after, ofi, error))
    return sizes, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", nargs="+", default=["resnet18", "mobilenet_v2", "efficientnet_b0",
                                                           "convnext_tiny"])
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"CPU: {zoo.run_onednn.cpu_model()}; torch {torch.__version__}, one thread")
    print("| network | archive MB (dynamic_shapes / false) | shape | first call ms | then ms | "
          "frozen + ofi ms | error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.networks:
        (dynamic, fixed), out = rows(name, args.repetitions)
        for i, (shape, first, after, ofi, error) in enumerate(out):
            head = f"{name} | {dynamic:.1f} / {fixed:.1f}" if i == 0 else " | "
            print(f"| {head} | {list(shape)} | {first:.1f} | {after:.2f} | {ofi:.2f} | {error:.1e} |", flush=True)


if __name__ == "__main__":
    main()
