// bench_add_sub.cpp: (a + b, a - b) on float tensors of several sizes, seven ways, in one run:
//   1 aten        at::add and at::sub called from C++
//   2 scripted    the plain scripted module, not lowered
//   3 handwritten a hand-written PyTorchBackendInterface backend, lowered natively
//   4 tbk_naive   the same kernel behind tbk's policies, lowered natively
//   5 tbk_native  the tbk add/sub reference backend, lowered natively
//   6 tbk_fast    the tbk add/sub reference backend, fast lowering path
//   7 floor       streaming floor: copy two inputs into two warm outputs (memcpy)
#include <benchmark/benchmark.h>
#include <torch/script.h>

#include <tbk/lower.hpp>
#include <tbk/register.hpp>

#include "add_sub.hpp"
#include "handwritten_add_sub.hpp"
#include "naive_add_sub.hpp"

#include <cstring>  // std::memcpy

namespace {

torch::jit::Module scripted() {
  torch::jit::Module m("AddSub");
  m.define(R"(
    def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
        return a + b, a - b
  )");
  return m;
}

void register_backends() {
  static const bool done = [] {
    handwritten::register_backend("handwritten_backend");
    tbk::register_backend<naive_add_sub_backend>("tbk_naive_backend");
    tbk::register_backend<add_sub_backend>("tbk_add_sub_backend");
    return true;
  }();
  (void)done;
}

torch::jit::Module model(const std::string& which) {
  register_backends();
  if (which == "scripted") return scripted();
  c10::impl::GenericDict spec = tbk::spec().method("forward").dict();
  if (which == "handwritten") {
    return torch::jit::detail::codegen_backend_module(
        "handwritten_backend", scripted(), spec,
        c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
  }
  if (which == "tbk_naive") return tbk::lower(scripted(), "tbk_naive_backend", spec);
  if (which == "tbk_native") return tbk::lower(scripted(), "tbk_add_sub_backend", spec);
  return tbk::lower(scripted(), "tbk_add_sub_backend", spec, tbk::lowering_path::fast);
}

void bench_module(benchmark::State& state, const std::string& which) {
  auto m = model(which);
  auto a = torch::randn({state.range(0)}), b = torch::randn({state.range(0)});
  for (auto _ : state) {
    auto out = m.forward({a, b});
    benchmark::DoNotOptimize(out);
  }
}

void bench_aten(benchmark::State& state) {
  auto a = torch::randn({state.range(0)}), b = torch::randn({state.range(0)});
  for (auto _ : state) {
    auto sum = at::add(a, b);
    auto difference = at::sub(a, b);
    benchmark::DoNotOptimize(sum);
    benchmark::DoNotOptimize(difference);
  }
}

void bench_floor(benchmark::State& state) {
  const auto n = state.range(0);
  auto a = torch::randn({n}), b = torch::randn({n});
  auto s = torch::zeros({n}), d = torch::zeros({n});  // warm: written before the loop
  for (auto _ : state) {
    std::memcpy(s.data_ptr<float>(), a.data_ptr<float>(), n * sizeof(float));
    std::memcpy(d.data_ptr<float>(), b.data_ptr<float>(), n * sizeof(float));
    benchmark::ClobberMemory();
  }
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {4, 4096, 1048576, 16777216}) b->Arg(n);
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(bench_aten)->Name("1_aten")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, scripted, "scripted")->Name("2_scripted")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, handwritten, "handwritten")->Name("3_handwritten")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_naive, "tbk_naive")->Name("4_tbk_naive")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_native, "tbk_native")->Name("5_tbk_native")->Apply(sizes);
BENCHMARK_CAPTURE(bench_module, tbk_fast, "tbk_fast")->Name("6_tbk_fast")->Apply(sizes);
BENCHMARK(bench_floor)->Name("7_floor")->Apply(sizes);

BENCHMARK_MAIN();
