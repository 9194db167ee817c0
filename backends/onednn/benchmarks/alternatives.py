#!/usr/bin/env python3
"""backends/onednn/benchmarks/alternatives.py: what a user picks instead of tbk_onednn, measured: ONNX Runtime and
OpenVINO on the same networks and inputs, one thread, with TorchScript's frozen +
optimize_for_inference for reference.

    backends/onednn/benchmarks/alternatives.py [--networks NAME ...] [--batches 1 8] [--repetitions 15]
                               [--calls 5] [--dir DIR]

prints a table of medians (ms per call) and each path's error against torch eager. Two Pythons
take part, as the runtimes and Debian's torch do not share one:
- Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14) builds the networks
  (torchvision's with random weights, no download, and the MLP of backends/onednn/models.py),
  runs them eagerly for the expected outputs, exports them to ONNX (torch.onnx.export, opset
  13, fixed shapes) and times TorchScript;
- the python3 on PATH (pip's onnxruntime and openvino) times the runtimes, in a child.
A runtime that is not installed is reported as missing, with the pip command that installs it.

Modes, for run_onednn and for running one step alone:
    /usr/bin/python3 alternatives.py --export DIR [--networks ..] [--batches ..]
        writes DIR/<network>.b<batch>.{onnx,input.npy,expected.npy} and DIR/manifest.json
    python3 alternatives.py --measure DIR/manifest.json [--repetitions 15] [--calls 5]
        prints the result as JSON: {"versions": {runtime: version}, "missing": {runtime: pip
        command}, "cases": {"<network>/<batch>": {"onnxruntime": [ms, ...], "openvino": [ms,
        ...], "errors": {runtime: max |out - eager| / max |eager|}, "failed": {runtime: why}}}}
    python3 alternatives.py --serve DIR/manifest.json
        one timed sample per request (the Runtimes class speaks this): to take turns with
        one's own paths, as run_onednn takes its paths in turns
In Python: export_onnx(networks, cases, directory) -> manifest (Debian's torch);
measure_onnx(cases, repetitions, calls) -> result (in the runtimes' Python);
measure_onnx_child(manifest_path, repetitions, calls) -> result and Runtimes(manifest_path)
(from any Python). A sample is the mean time of `calls` calls, after warm-up.
"""
import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEBIAN_PYTHON = "/usr/bin/python3"  # python3-torch, python3-torchvision
RUNTIMES_PYTHON = os.environ.get("TBK_RUNTIMES_PYTHON", "python3")  # pip's onnxruntime, openvino
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
OPSET = 13
TORCHVISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large"]
NETWORKS = [f"torchvision.{name}" for name in TORCHVISION] + ["mlp"]
# runtime -> pip package (and module); openvino_default: OpenVINO at its own default precision
# (bf16 on CPUs it runs bf16 on), the others f32
RUNTIMES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino_default": "openvino"}
DEFAULT_RUNTIMES = ["onnxruntime", "openvino"]  # what a child loads unless told (--runtimes)
OPENVINO_CONFIG = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                   "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
WARM_UP_CALLS = 3


def case_key(network, batch):
    return f"{network}/{batch}"


def install_hint(package):
    return f"not installed in {RUNTIMES_PYTHON}: {RUNTIMES_PYTHON} -m pip install {package}"


# ---- Debian's torch: networks, expected outputs, ONNX files ---------------------------------

def one_thread():
    import torch
    os.environ.update(ONE_THREAD)
    torch.set_num_threads(1)


def build_networks(names=NETWORKS, size=224):
    """name -> (module in eval mode, batch-1 input): torchvision's networks with random weights
    ("torchvision.resnet18", ...) at size x size, and those of backends/onednn/models.py ("mlp",
    "mobilenet_v2", ...)."""
    import torch
    made = {}
    for name in (n for n in names if n.startswith("torchvision.")):
        import torchvision
        torch.manual_seed(20261201)
        module = getattr(torchvision.models, name.split(".", 1)[1])()  # no weights: nothing downloaded
        made[name] = (module.eval(), torch.randn(1, 3, size, size))
    own = [name for name in names if not name.startswith("torchvision.")]
    if own:
        spec = importlib.util.spec_from_file_location("models", os.path.join(ROOT, "backends", "onednn", "models.py"))
        models = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(models)
        theirs = models.networks(size)
        unknown = [name for name in own if name not in theirs]
        if unknown:
            sys.exit(f"alternatives.py: unknown network(s) {unknown}: torchvision.<name> or one of {sorted(theirs)}")
        made.update({name: theirs[name] for name in own})
    return {name: made[name] for name in names}


def batched(x, batch):
    return x.repeat(batch, *([1] * (x.dim() - 1)))


def export_onnx(networks, cases, directory):
    """Exports each (network, batch) of `cases` to directory/<network>.b<batch>.onnx (fixed shape),
    with its input and eager output as .npy files; writes and returns the manifest: {"torch":
    version, "opset": OPSET, "cases": {"<network>/<batch>": {"onnx", "input", "expected"} or
    {"error"}}}. networks: name -> (module, batch-1 input), as build_networks gives them."""
    import numpy
    import torch
    os.makedirs(directory, exist_ok=True)
    manifest = {"torch": torch.__version__, "opset": OPSET, "cases": {}}
    for name, batch in cases:
        module, x = networks[name]
        xb = batched(x, batch)
        stem = os.path.join(os.path.abspath(directory), f"{name}.b{batch}")
        case = {"onnx": stem + ".onnx", "input": stem + ".input.npy", "expected": stem + ".expected.npy"}
        try:
            with torch.no_grad():
                numpy.save(case["expected"], module(xb).numpy())
                torch.onnx.export(module, (xb,), case["onnx"], opset_version=OPSET, do_constant_folding=True,
                                  input_names=["input"], output_names=["output"])
            numpy.save(case["input"], xb.numpy())
        except Exception as e:  # an operator the exporter does not know, say: reported, not fatal
            case = {"error": f"torch.onnx.export failed: {type(e).__name__}: {e}"}
        manifest["cases"][case_key(name, batch)] = case
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


# ---- the runtimes' Python: sessions, samples ------------------------------------------------

def onnxruntime_runner(path):
    """ONNX Runtime's CPU provider, all graph optimizations, one thread, sequential."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]  # the first output: the networks have one


def openvino_runner(path, precision="f32"):
    """OpenVINO's CPU plugin, one thread, one stream, latency hint, no pinning; fp32 (not bf16
    where the CPU has it), or, with precision None, at OpenVINO's default inference precision."""
    import openvino
    config = dict(OPENVINO_CONFIG)
    if precision is None:
        del config["INFERENCE_PRECISION_HINT"]
    request = openvino.Core().compile_model(path, "CPU", config).create_infer_request()
    return lambda x: request.infer({0: x})[0]


RUNNERS = {"onnxruntime": onnxruntime_runner, "openvino": openvino_runner,
           "openvino_default": lambda path: openvino_runner(path, precision=None)}


def installed_runtimes(selected=DEFAULT_RUNTIMES):
    """({runtime: version} of the `selected` that import, {runtime or "numpy": install hint} of the
    others)."""
    versions, missing = {}, {}
    for runtime, package in {"numpy": "numpy", **{r: RUNTIMES[r] for r in selected}}.items():
        try:
            versions[runtime] = importlib.import_module(package).__version__
        except ImportError:
            missing[runtime] = install_hint(package)
    if "numpy" in missing:
        return {}, missing
    return {r: v for r, v in versions.items() if r != "numpy"}, missing


def relative_error(got, want):
    import numpy
    got = numpy.asarray(got)
    if got.shape != want.shape:
        return float("inf")
    return float(numpy.abs(got - want).max() / max(numpy.abs(want).max(), 1e-30))


def load_cases(cases, versions):
    """For each case: its input, {runtime: warmed-up runner}, {runtime: error}, {runtime: why it
    failed to load or run}."""
    loaded = {key: {"input": None, "runners": {}, "errors": {}, "failed": {}} for key in cases}
    if not versions:
        return loaded
    import numpy
    for key, case in cases.items():
        entry = loaded[key]
        if "error" in case:
            entry["failed"] = {runtime: case["error"] for runtime in versions}
            continue
        entry["input"], want = numpy.load(case["input"]), numpy.load(case["expected"])
        for runtime in versions:
            try:
                run = RUNNERS[runtime](case["onnx"])
                for _ in range(WARM_UP_CALLS):
                    got = run(entry["input"])
                entry["runners"][runtime], entry["errors"][runtime] = run, relative_error(got, want)
            except Exception as e:  # an operator the runtime does not take: reported, not fatal
                entry["failed"][runtime] = f"{type(e).__name__}: {e}".splitlines()[0]
    return loaded


def sample_ms(run, x, calls):
    start = time.perf_counter()
    for _ in range(calls):
        run(x)
    return (time.perf_counter() - start) / calls * 1e3


def take_turns(samplers, repetitions, calls):
    """{name: [ms per call, ...]}: each repetition takes every sampler (name -> f(calls) -> mean
    ms per call) once, in random order, so that the paths share the machine's drifts alike."""
    times = {name: [] for name in samplers}
    for _ in range(repetitions):
        for name in random.sample(list(samplers), len(samplers)):
            times[name].append(samplers[name](calls))
    return times


def measure_onnx(cases, repetitions=15, calls=5):
    """cases: a manifest's {"<network>/<batch>": {"onnx", "input", "expected"}}. Each repetition
    takes the runtimes in random order; returns the result described at the top."""
    versions, missing = installed_runtimes()
    result = {"versions": versions, "missing": missing, "cases": {}}
    for key, entry in load_cases(cases, versions).items():
        samplers = {r: (lambda calls, f=f: sample_ms(f, entry["input"], calls)) for r, f in entry["runners"].items()}
        times = take_turns(samplers, repetitions, calls)
        result["cases"][key] = {**times, "errors": entry["errors"], "failed": entry["failed"]}
    return result


def protocol_stdout():
    """The real stdout for our JSON; the libraries' own prints go to stderr from here on."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def serve(cases, selected=DEFAULT_RUNTIMES):
    """One JSON line with versions, missing, and each case's errors and failures; then, for each
    request line {"case", "runtime", "calls"}, one line {"ms": mean ms per call}."""
    out = protocol_stdout()
    versions, missing = installed_runtimes(selected)
    loaded = load_cases(cases, versions)
    ready = {"versions": versions, "missing": missing,
             "cases": {key: {"errors": e["errors"], "failed": e["failed"]} for key, e in loaded.items()}}
    print(json.dumps(ready), file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        entry = loaded[request["case"]]
        ms = sample_ms(entry["runners"][request["runtime"]], entry["input"], request["calls"])
        print(json.dumps({"ms": ms}), file=out, flush=True)


# ---- any Python: the child that holds the runtimes ------------------------------------------

def runtimes_command(mode, manifest_path, *extra):
    return [RUNTIMES_PYTHON, os.path.abspath(__file__), mode, manifest_path, *extra]


def everything_missing(why, selected=DEFAULT_RUNTIMES):
    return {"versions": {}, "missing": {runtime: why for runtime in selected}, "cases": {}}


def measure_onnx_child(manifest_path, repetitions=15, calls=5):
    """measure_onnx in a child of the runtimes' Python (python3 on PATH, or $TBK_RUNTIMES_PYTHON)."""
    command = runtimes_command("--measure", manifest_path, "--repetitions", str(repetitions), "--calls", str(calls))
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **ONE_THREAD))
    except OSError as e:
        return everything_missing(f"{RUNTIMES_PYTHON} did not start: {e}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return everything_missing(f"{' '.join(command)} failed: {last}")
    return json.loads(done.stdout)


class Runtimes:
    """The runtimes of a manifest's cases, loaded and warmed up in a child of the runtimes' Python,
    timed one sample at a time: sample(case, runtime, calls) -> mean ms per call. errors,
    failed: {case: {runtime: ...}}; available(case): the runtimes that run it; missing: {runtime:
    install hint}. A context manager; close() ends the child."""

    def __init__(self, manifest_path, runtimes=DEFAULT_RUNTIMES):
        command, self.child_ = runtimes_command("--serve", manifest_path, "--runtimes", *runtimes), None
        try:
            self.child_ = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           env=dict(os.environ, **ONE_THREAD))
            line = self.child_.stdout.readline()
            ready = json.loads(line) if line else everything_missing(f"{' '.join(command)} failed (see above)",
                                                                     runtimes)
        except OSError as e:
            ready = everything_missing(f"{RUNTIMES_PYTHON} did not start: {e}", runtimes)
        self.versions, self.missing = ready["versions"], ready["missing"]
        self.errors = {key: c["errors"] for key, c in ready["cases"].items()}
        self.failed = {key: c["failed"] for key, c in ready["cases"].items()}

    def available(self, case):
        return list(self.errors.get(case, {}))

    def sample(self, case, runtime, calls):
        print(json.dumps({"case": case, "runtime": runtime, "calls": calls}), file=self.child_.stdin, flush=True)
        return json.loads(self.child_.stdout.readline())["ms"]

    def close(self):
        if self.child_ is not None:
            self.child_.stdin.close()
            self.child_.wait()
            self.child_ = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- the comparison (Debian's torch, the runtimes in a child) ------------------------------

def frozen_ofi(module):
    import torch
    return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(module)))


def compare_case(key, module, x, runtimes, repetitions, calls):
    """One case: TorchScript frozen + optimize_for_inference here and each runtime in its child,
    taken in turns in random order in each repetition: {path: [ms, ...], "errors", "failed"}."""
    import torch
    with torch.no_grad():
        want, reference = module(x).numpy(), frozen_ofi(module)
        for _ in range(WARM_UP_CALLS):
            got = reference(x)
        run = {"frozen_ofi": lambda calls: sample_ms(reference, x, calls),
               **{r: (lambda calls, r=r: runtimes.sample(key, r, calls)) for r in runtimes.available(key)}}
        times = take_turns(run, repetitions, calls)
    errors = {"frozen_ofi": relative_error(got.numpy(), want), **runtimes.errors.get(key, {})}
    return {**times, "errors": errors, "failed": runtimes.failed.get(key, {})}


def compare(names, batches, directory, repetitions, calls):
    """Exports the networks, then compares them case by case (compare_case): {"torch", "opset",
    "versions", "missing", "cases": {case: {path: [ms, ...], "errors": {path: e}, "failed":
    {path: why}}}}."""
    import torch
    one_thread()
    made = build_networks(names)
    export_onnx(made, [(name, batch) for name in made for batch in batches], directory)
    results = {"torch": torch.__version__, "opset": OPSET, "cases": {}}
    with Runtimes(os.path.join(directory, "manifest.json")) as runtimes:
        results.update(versions=runtimes.versions, missing=runtimes.missing)
        for name, (module, x) in made.items():
            for batch in batches:
                key = case_key(name, batch)
                case = results["cases"][key] = compare_case(key, module, batched(x, batch), runtimes,
                                                            repetitions, calls)
                print(f"{key}: " + ", ".join(f"{p} {statistics.median(case[p]):.3f} ms"
                                             for p in case if p not in ("errors", "failed")),
                      file=sys.stderr, flush=True)
    return results


PATH_TITLES = {"frozen_ofi": "TorchScript frozen + optimize_for_inference", "onnxruntime": "ONNX Runtime",
               "openvino": "OpenVINO"}


def table(results):
    """Markdown: ms per call (median) of each case on each path, then each path's error against
    eager (max |out - eager| / max |eager|), then what failed or is missing."""
    paths = list(PATH_TITLES)
    head = "| network | batch | " + " | ".join(PATH_TITLES[p] for p in paths) + " |"
    rule = "| --- | ---: |" + " ---: |" * len(paths)
    times, errors, notes = [head, rule], [head, rule], []
    cells = lambda row, values: row + " | ".join(values) + " |"
    for key, case in results["cases"].items():
        row = "| {} | {} | ".format(*key.rsplit("/", 1))
        times.append(cells(row, (f"{statistics.median(case[p]):,.3f}" if p in case else "-" for p in paths)))
        errors.append(cells(row, (f"{case['errors'][p]:.1e}" if p in case["errors"] else "-" for p in paths)))
        notes += [f"- {key}, {PATH_TITLES.get(p, p)}: {why}" for p, why in case["failed"].items()]
    notes += [f"- {runtime}: {hint}" for runtime, hint in results["missing"].items()]
    return "\n".join(["ms per call, median:", "", *times, "", "error against eager:", "", *errors] +
                     (["", *notes] if notes else []))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=NETWORKS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repetitions", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5, help="calls per timed sample")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "tbk-alternatives"),
                        help="where the .onnx and .npy files go")
    parser.add_argument("--export", metavar="DIR", help="Debian's torch: export only, into DIR")
    parser.add_argument("--measure", metavar="MANIFEST", help="the runtimes' Python: print the result as JSON")
    parser.add_argument("--serve", metavar="MANIFEST", help="the runtimes' Python: one sample per request")
    parser.add_argument("--runtimes", nargs="+", default=DEFAULT_RUNTIMES, choices=list(RUNTIMES),
                        help="with --serve: the runtimes to load")
    parser.add_argument("--compare", metavar="OUT", help=argparse.SUPPRESS)  # Debian's torch: the whole run
    args = parser.parse_args()
    if args.export:
        one_thread()
        made = build_networks(args.networks)
        cases = [(name, batch) for name in made for batch in args.batches]
        return print(json.dumps(export_onnx(made, cases, args.export), indent=1))
    if args.measure or args.serve:
        with open(args.measure or args.serve) as f:
            cases = json.load(f)["cases"]
        if args.serve:
            return serve(cases, args.runtimes)
        out = protocol_stdout()
        return print(json.dumps(measure_onnx(cases, args.repetitions, args.calls)), file=out, flush=True)
    if args.compare:
        results = compare(args.networks, args.batches, args.dir, args.repetitions, args.calls)
        with open(args.compare, "w") as f:
            return json.dump(results, f)
    out = os.path.join(args.dir, "alternatives.json")
    os.makedirs(args.dir, exist_ok=True)
    done = subprocess.run([DEBIAN_PYTHON, os.path.abspath(__file__), "--compare", out, "--dir", args.dir,
                           "--networks", *args.networks, "--batches", *map(str, args.batches),
                           "--repetitions", str(args.repetitions), "--calls", str(args.calls)],
                          env=dict(os.environ, PYTHONWARNINGS="ignore", **ONE_THREAD))
    if done.returncode != 0:
        return done.returncode
    with open(out) as f:
        results = json.load(f)
    versions = ", ".join(f"{r} {v}" for r, v in results["versions"].items())
    print(f"torch {results['torch']} (ONNX opset {results['opset']}); {versions}; one thread; "
          f"medians of {args.repetitions} samples of {args.calls} calls, ms per call")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
