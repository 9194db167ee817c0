// unit-fast-path.cpp: the fast lowering path (tbk::lowering_path::fast: typed methods, no
// List[Any], no execute) with the add/sub reference backend: the native path's results, saved and
// loaded in full and lite archives; what it refuses; one lowered module called from 8 threads.
// (Parameter defaults and a module parameter not named self, on both paths: unit-lower.cpp.)

#include <ATen/ATen.h>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <atomic>   // std::atomic
#include <sstream>  // std::stringstream
#include <string>   // std::string, std::to_string
#include <thread>   // std::thread
#include <vector>   // std::vector

#include "add_sub_modules.hpp"  // two_input_source, three_method_source
#include "support.hpp"          // last: doctest's CHECK macros over glog's

using tbk_test::check_same;
using tbk_test::error_of;
using tbk_test::round_trip;
using tbk_test::script;
using tbk_test::three_method_source;
using tbk_test::two_input_source;

TEST_CASE("the fast path gives the same results, saved and loaded, in full and lite archives") {
  auto lowered = tbk::lower(script(three_method_source), "custom_backend",
                            tbk::spec().method("forward").method("accum").method("sub_accum"),
                            tbk::lowering_path::fast);
  auto a = torch::randn({2, 3}), b = torch::randn({2, 3}), c = torch::randn({2, 3});
  auto check_model = [&](auto& model) {
    auto out = model.forward({a, b, c}).toTuple();
    check_same(out->elements()[0].toTensor(), a + b + c);
    check_same(out->elements()[1].toTensor(), a - b - c);
    check_same(model.run_method("accum", a, b, c).toTensor(), a + b + c);
    check_same(model.run_method("sub_accum", a, b, c).toTensor(), a - b - c);
  };
  check_model(lowered);
  auto loaded = round_trip(lowered);
  check_model(loaded);
  std::stringstream lite;
  lowered._save_for_mobile(lite);
  auto mobile = tbk::load_for_mobile(lite);
  check_model(mobile);
  // The lowered methods call the typed method directly: no List[Any], no execute.
  const std::string code = lowered.get_method("forward").function().qualname().qualifiedName();
  CHECK_CONTAINS(code, "FastLowered");
}

TEST_CASE("the fast path refuses what it cannot serve, clearly") {
  std::string many = "def forward(self";
  for (int i = 0; i < 10; ++i) many += ", x" + std::to_string(i) + ": Tensor";
  many += ") -> Tuple[Tensor, Tensor]:\n  return x0, x1\n";
  auto text = error_of([&] {
    tbk::lower(script(many), "custom_backend", tbk::spec().method("forward"), tbk::lowering_path::fast);
  });
  CHECK_CONTAINS(text, "custom_backend.forward: the fast path has no typed method for 10 inputs");
  // the native path serves it
  CHECK_NOTHROW(tbk::lower(script(many), "custom_backend", tbk::spec().method("forward")));
}

TEST_CASE("fast path: one lowered module from 8 threads, 10,000 calls each") {
  auto lowered = tbk::lower(script(two_input_source), "custom_backend",
                            tbk::spec().method("forward"), tbk::lowering_path::fast);
  constexpr int threads = 8, calls = 10000;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto a = torch::full({64}, float(t)), b = torch::full({64}, 0.5f);
      try {
        for (int i = 0; i < calls; ++i) {
          auto out = lowered.forward({a, b}).toTuple();
          if (!torch::equal(out->elements()[0].toTensor(), a + b) ||
              !torch::equal(out->elements()[1].toTensor(), a - b)) {
            ++wrong;
          }
        }
      } catch (...) {
        ++failed;
      }
    });
  }
  for (auto& thread : pool) thread.join();
  CHECK(wrong.load() == 0);
  CHECK(failed.load() == 0);
}
