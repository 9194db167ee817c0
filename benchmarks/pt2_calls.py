#!/usr/bin/env python3
"""benchmarks/pt2_calls.py: the per-call cost of a tbk backend on PyTorch 2's paths, against
TorchScript's: the seed's add/sub model, f(a, b) = (a + b, a - b), at 4 elements (the cost of a
call, not of the work), one thread, pip's torch.

    PYTHONPATH=build-pip/python python3 benchmarks/pt2_calls.py [--lib LIB] [--repetitions 15] [--smoke] [--out FILE]

Each case is timed as the median of `repetitions` rounds (rounds interleave the cases in random
order), each round the mean of a batch of calls. Prints a table and one line per goal:
`goal NAME: RATIO [95% interval] (bound) PASS|FAIL`, the interval by bootstrap; --out writes the
table and goals (Markdown) into that file between the markers PT2_BEGIN and PT2_END (replacing
what was there), as docs/performance.md keeps them. --smoke runs every case briefly and judges
nothing.
"""
import argparse
import os
import platform
import random
import statistics
import sys
import time

import torch

PT2_BEGIN = "<!-- pt2: begin (benchmarks/pt2_calls.py writes this section) -->"
PT2_END = "<!-- pt2: end -->"


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


def cases(lib):
    """name -> (what it is, a function of no arguments that makes one call)."""
    import tbk
    import tbk.export
    tbk.load_library(lib)
    a, b = torch.randn(4), torch.randn(4)
    model = AddSub().eval()
    scripted = torch.jit.script(model)
    native = tbk.lower(scripted, "custom_backend", {"forward": {}})
    fast = tbk.lower(scripted, "custom_backend", {"forward": {}}, path="fast")
    exported = tbk.export.lower(torch.export.export(model, (a, b)), "custom_backend")
    region = next(v for v in exported.constants.values() if isinstance(v, torch.ScriptObject))
    call_region = torch.ops.tbk.call_region.default
    program = exported.module()
    torch._dynamo.reset()
    compiled_eager = torch.compile(AddSub(), backend=tbk.compile.backend("custom_backend", rest="eager"))
    compiled_inductor = torch.compile(AddSub(), backend="custom_backend")
    inductor = torch.compile(AddSub(), backend="inductor")
    made = {
        "eager": ("the module in eager mode: two ATen calls from Python", lambda: model(a, b)),
        "scripted": ("torch.jit.script of the module (no backend)", lambda: scripted(a, b)),
        "ts_native": ("tbk.lower'ed TorchScript module, native path", lambda: native(a, b)),
        "ts_fast": ("tbk.lower'ed TorchScript module, fast path", lambda: fast(a, b)),
        "call_region": ("torch.ops.tbk.call_region on the tbk.Region, from Python", lambda: call_region([a, b], region)),
        "export_module": ("tbk.export.lower'ed program, .module() (pytree and input checks)", lambda: program(a, b)),
        "compile_eager": ("torch.compile(backend=custom_backend, rest eager)", lambda: compiled_eager(a, b)),
        "compile_inductor": ("torch.compile(backend=custom_backend), the rest in Inductor", lambda: compiled_inductor(a, b)),
        "inductor": ("torch.compile(backend=inductor), no tbk", lambda: inductor(a, b)),
    }
    for _, call in made.values():  # compile and warm up
        for _ in range(20):
            call()
    return made


def time_round(call, calls):
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6  # us per call


def bootstrap(statistic, *samples, resamples=4000, seed=1):
    rng = random.Random(seed)
    values = sorted(statistic(*[[rng.choice(s) for _ in s] for s in samples]) for _ in range(resamples))
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def ratio(top, bottom):
    return statistics.median(top) / statistics.median(bottom)


def goal_line(name, samples, top, bottom, bound):
    value = ratio(samples[top], samples[bottom])
    low, high = bootstrap(ratio, samples[top], samples[bottom])
    verdict = "PASS" if high <= bound else "FAIL"
    return f"goal {name} ({top} / {bottom}, 4 elements): {value:.3f} [{low:.3f}, {high:.3f}] (<= {bound}) {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", default="build-pip/examples/add_sub/libcustom_backend.so")
    parser.add_argument("--repetitions", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    made = cases(args.lib)
    repetitions, calls = (2, 50) if args.smoke else (args.repetitions, args.calls)
    samples = {name: [] for name in made}
    with torch.no_grad():
        for _ in range(repetitions):
            order = list(made)
            random.shuffle(order)
            for name in order:
                samples[name].append(time_round(made[name][1], calls))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [f"Per-call cost on PyTorch 2's paths, the add/sub model at 4 elements, one thread: "
             f"`PYTHONPATH=build-pip/python python3 benchmarks/pt2_calls.py --out docs/performance.md` "
             f"on {cpu}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; median of {repetitions} "
             f"interleaved rounds of {calls} calls.", "", "| case | what | us per call |", "| --- | --- | ---: |"]
    for name, (what, _) in made.items():
        lines.append(f"| `{name}` | {what} | {statistics.median(samples[name]):.2f} |")
    goals = [
        goal_line("a region call costs no more than a tbk.lower'ed TorchScript call", samples, "call_region",
                  "ts_native", 1.0),
        goal_line("a lowered .pt2 program's module costs no more per call than eager PyTorch's module call plus "
                  "100 us", samples, "export_module", "eager", (statistics.median(samples["eager"]) + 100) /
                  statistics.median(samples["eager"])),
        goal_line("torch.compile with the tbk backend no slower than with Inductor alone, the rest eager", samples,
                  "compile_eager", "inductor", 1.0),
    ]
    text = "\n".join(lines) + "\n\n```text\n" + "\n".join(goals) + "\n```\n"
    print(text)
    if args.out and not args.smoke:
        with open(args.out) as f:
            doc = f.read()
        section = PT2_BEGIN + "\n" + text + PT2_END
        if PT2_BEGIN in doc:
            doc = doc[:doc.index(PT2_BEGIN)] + section + doc[doc.index(PT2_END) + len(PT2_END):]
        else:
            doc = doc.rstrip("\n") + "\n\n## PyTorch 2's paths\n\n" + section + "\n"
        with open(args.out, "w") as f:
            f.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
