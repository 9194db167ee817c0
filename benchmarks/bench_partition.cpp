// bench_partition.cpp: what tbk::partition costs, with the add/sub backend for partitioned models
// (add_sub_graph), in one run:
//   partition_500/R      tbk::partition of a method of 500 nodes whose add/sub nodes form R
//                        regions (a relu, which the backend does not run, between regions),
//                        milliseconds per partition (planning, lowering every region, rewriting)
//   regions_scripted     a method of 16 steps `x = relu(x + y)`, not lowered
//   regions_native       the same method partitioned: 16 regions of one add, native lowering
//   regions_fast         the same, fast lowering path
//   single_scripted      a method `x + y`, not lowered
//   single_fast          the same method lowered whole to add_sub_graph on the fast path
// benchmarks/run turns them into: the extra cost per region call ((regions_* - regions_scripted)
// / 16) against the fast path's own per-call cost (single_fast - single_scripted), at 4 elements.
#include <benchmark/benchmark.h>
#include <torch/script.h>

#include <tbk/lower.hpp>
#include <tbk/partition.hpp>
#include <tbk/register.hpp>

#include "add_sub_graph.hpp"

#include <string>  // std::string

namespace {

constexpr int region_calls = 16;

void register_backend() {
  static const bool done = [] {
    tbk::register_backend<add_sub_graph_backend>("add_sub_graph");
    return true;
  }();
  (void)done;
}

torch::jit::Module script(const std::string& source) {
  torch::jit::Module m("Bench");
  m.define(source);
  return m;
}

// forward(x, y) of `nodes` nodes: runs of add/sub, a relu closing each of `regions` runs.
std::string long_method(int nodes, int regions) {
  const int per_region = nodes / regions;
  std::string body;
  for (int i = 0; i < nodes; ++i) {
    if (i % per_region == per_region - 1) {
      body += "    x = torch.relu(x)\n";
    } else {
      body += i % 2 == 0 ? "    x = x + y\n" : "    x = x - y\n";
    }
  }
  return "def forward(self, x: Tensor, y: Tensor) -> Tensor:\n" + body + "    return x\n";
}

std::string steps_method(int steps) {
  std::string body;
  for (int i = 0; i < steps; ++i) body += "    x = torch.relu(x + y)\n";
  return "def forward(self, x: Tensor, y: Tensor) -> Tensor:\n" + body + "    return x\n";
}

void bench_partition(benchmark::State& state) {
  register_backend();
  const torch::jit::Module m = script(long_method(500, static_cast<int>(state.range(0))));
  std::size_t regions = 0;
  for (auto _ : state) {
    torch::jit::Module p = tbk::partition(m, "add_sub_graph");
    regions = p.named_children().size();
    benchmark::DoNotOptimize(p);
  }
  state.counters["regions"] = static_cast<double>(regions);
}

void run_calls(benchmark::State& state, torch::jit::Module m) {
  std::vector<c10::IValue> inputs{at::randn({4}), at::randn({4})};
  for (int i = 0; i < 100; ++i) m.forward(inputs);  // warm the interpreter
  for (auto _ : state) benchmark::DoNotOptimize(m.forward(inputs));
}

void bench_regions(benchmark::State& state, const char* how) {
  register_backend();
  torch::jit::Module m = script(steps_method(region_calls));
  if (std::string(how) != "scripted") {
    tbk::partition_options o;
    o.path = std::string(how) == "fast" ? tbk::lowering_path::fast : tbk::lowering_path::native;
    m = tbk::partition(m, "add_sub_graph", o);
    if (m.named_children().size() != static_cast<std::size_t>(region_calls)) {
      state.SkipWithError("the partitioned method does not have the regions it should");
      return;
    }
  }
  run_calls(state, m);
}

void bench_single(benchmark::State& state, const char* how) {
  register_backend();
  torch::jit::Module m = script("def forward(self, x: Tensor, y: Tensor) -> Tensor:\n    return x + y\n");
  if (std::string(how) == "fast") {
    m = tbk::lower(m, "add_sub_graph", tbk::spec().method("forward"), tbk::lowering_path::fast);
  }
  run_calls(state, m);
}

}  // namespace

BENCHMARK(bench_partition)->Name("partition_500")->Arg(1)->Arg(20)->Arg(100)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bench_regions, scripted, "scripted")->Name("regions_scripted")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bench_regions, native, "native")->Name("regions_native")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bench_regions, fast, "fast")->Name("regions_fast")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bench_single, scripted, "scripted")->Name("single_scripted")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(bench_single, fast, "fast")->Name("single_fast")->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
