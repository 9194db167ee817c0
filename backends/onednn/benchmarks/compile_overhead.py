#!/usr/bin/env python3
"""backends/onednn/benchmarks/compile_overhead.py: where a torch.compile(backend="tbk_onednn") call
spends the time its regions do not, layer by layer, against tbk_onednn's TorchScript module.

    PYTHONPATH=build-214/python V/bin/python backends/onednn/benchmarks/compile_overhead.py \
        [--networks mobilenet_v2 shufflenet_v2_x1_0] [--calls 60]

Needs a torch with torchvision (torch 2.14.1 + torchvision 0.29.1 in a venv, tbk built against it).
For each network (random weights, eval mode, batch 1, 224x224, one thread, torch.no_grad(),
compiled without dynamic shapes so that it is one region), median ms per call, the layers taken in
random turns:
- region: torch.ops.tbk.call_region on the region's handle alone (tbk_onednn's program);
- graph: the delegated graph module tbk.compile runs (the region call and its outputs' getitems);
- backend: the callable tbk.compile's backend returned to Dynamo, called with Dynamo's inputs
  (every weight among them: the check that none changed since lowering, then the graph);
- torch.compile: the compiled module's call (Dynamo's guards and argument gathering, then backend);
- TorchScript: tbk_onednn's TorchScript module (tbk.lower of the traced module);
and Dynamo's own cost with a backend that computes nothing (returns a fixed tensor), in microseconds,
warm and after 16 MB of other memory traffic (as a real network's call leaves the caches).
"""
import argparse
import random
import statistics
import time
import warnings

import torch
import torchvision

import tbk
import tbk.compile
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")


def median_ms(calls, turns):
    """Median ms per call of each callable in `calls`, `turns` rounds, the callables in random order
    in each round."""
    times = {name: [] for name in calls}
    for _ in range(turns):
        for name in random.sample(list(calls), len(calls)):
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def dynamo_cost_us(model, x, turns, flush):
    """Median microseconds of a torch.compile call whose backend computes nothing."""
    fixed = model(x)
    compiled = torch.compile(model, backend=lambda gm, example_inputs: (lambda *args: (fixed,)))
    compiled(x)
    traffic = torch.randn(4 * 1024 * 1024)
    times = []
    for _ in range(turns):
        if flush:
            traffic.mul_(1.0001)
        start = time.perf_counter()
        compiled(x)
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["resnet18", "mobilenet_v2", "shufflenet_v2_x1_0",
                                                          "efficientnet_b0"])
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, one thread, batch 1, median ms of {args.calls} calls per layer")
    print("| network | region | graph | backend | torch.compile | TorchScript | Dynamo warm (us) | Dynamo after traffic (us) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.networks:
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        returned = []
        inner = tbk.compile.backend("tbk_onednn")

        def recording(gm, example_inputs, **kwargs):
            compiled_graph = inner(gm, example_inputs, **kwargs)
            returned.append((compiled_graph, list(example_inputs)))
            return compiled_graph

        with torch.no_grad():
            compiled = torch.compile(model, backend=recording)
            compiled(x)
            (backend_call, dynamo_inputs), = returned
            graph = backend_call.graph_module
            region_names = [n.target for n in graph.graph.nodes if n.op == "get_attr"]
            if len(region_names) != 1:
                raise SystemExit(f"{name}: {len(region_names)} regions; this breakdown is for one")
            handle = getattr(graph, region_names[0])
            passed = [dynamo_inputs[i] for i in backend_call.inputs.passed]
            scripted = tbk.lower(torch.jit.trace(model, x), "tbk_onednn", {"forward": {}}, example_inputs=(x,))
            calls = {"region": lambda: torch.ops.tbk.call_region.default(passed, handle),
                     "graph": lambda: graph(*passed),
                     "backend": lambda: backend_call(*dynamo_inputs),
                     "torch.compile": lambda: compiled(x),
                     "TorchScript": lambda: scripted(x)}
            for call in calls.values():
                call()
            ms = median_ms(calls, args.calls)
            warm = dynamo_cost_us(model, x, 20 * args.calls, flush=False)
            cold = dynamo_cost_us(model, x, 5 * args.calls, flush=True)
        print(f"| {name} | " + " | ".join(f"{ms[k]:.2f}" for k in calls) + f" | {warm:.0f} | {cold:.0f} |", flush=True)


if __name__ == "__main__":
    main()
