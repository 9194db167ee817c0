// unit-add-sub.cpp: the add/sub reference backend, registered as "custom_backend" by the
// example's own registration library, against eager ATen. (Its fast lowering path:
// unit-fast-path.cpp.)

#include "add_sub.hpp"  // the example backend itself, for calls below the lowered module

#include <tbk/lower.hpp>
#include <tbk/register.hpp>
#include <tbk/testing.hpp>  // TBK_TEST_BACKEND
#ifdef TBK_TESTS_WITH_EXECUTORCH  // tests/meson.build sets it when ExecuTorch is found
#include <tbk/testing/executorch.hpp>  // TBK_TEST_EXECUTORCH_BACKEND
#endif

#include <algorithm>   // std::find
#include <atomic>      // std::atomic
#include <cstdio>      // std::remove
#include <filesystem>  // std::filesystem::temp_directory_path
#include <string>      // std::string
#include <thread>      // std::thread
#include <vector>      // std::vector

#include "add_sub_modules.hpp"  // two_input_source, three_method_source, lowered_two_input
#include "support.hpp"          // last: doctest's CHECK macros over glog's

using tbk_test::check_same;
using tbk_test::error_of;
using tbk_test::lowered_two_input;
using tbk_test::round_trip;
using tbk_test::script;
using tbk_test::three_method_source;
using tbk_test::two_input_source;

namespace {

at::Tensor random_tensor(at::IntArrayRef shape, at::ScalarType dtype) {
  if (at::isFloatingType(dtype)) return torch::randn(shape, torch::dtype(dtype));
  return torch::randint(-100, 100, shape, torch::dtype(dtype));
}

}  // namespace

TEST_CASE("custom_backend is registered by linking the example's registration library") {
  auto names = tbk::registered_backends();
  CHECK(std::find(names.begin(), names.end(), "custom_backend") != names.end());
}

TEST_CASE("forward(a, b) equals eager (a + b, a - b) for several shapes and dtypes") {
  auto lowered = lowered_two_input();
  const std::vector<std::vector<int64_t>> shapes = {{}, {4}, {2, 3}, {3, 1, 5}, {0}, {1000}};
  const std::vector<at::ScalarType> dtypes = {at::kFloat, at::kDouble, at::kInt, at::kLong};
  for (const auto& shape : shapes) {
    for (at::ScalarType dtype : dtypes) {
      std::string input = c10::str("shape ", at::IntArrayRef(shape), ", dtype ", dtype);
      CAPTURE(input);
      auto a = random_tensor(shape, dtype);
      auto b = random_tensor(shape, dtype);
      auto out = lowered.forward({a, b}).toTuple();
      REQUIRE(out->elements().size() == 2);
      check_same(out->elements()[0].toTensor(), a + b);
      check_same(out->elements()[1].toTensor(), a - b);
    }
  }
}

TEST_CASE("the backend does not modify or alias its inputs") {
  auto lowered = lowered_two_input();
  auto a = torch::randn({8});
  auto b = torch::randn({8});
  auto a_before = a.clone(), b_before = b.clone();
  auto out = lowered.forward({a, b}).toTuple();
  CHECK(torch::equal(a, a_before));
  CHECK(torch::equal(b, b_before));
  CHECK(out->elements()[0].toTensor().data_ptr() != a.data_ptr());

  auto single = tbk::lower(script("def accum(self, x: Tensor) -> Tensor:\n  return x\n"),
                           "custom_backend", tbk::spec().method("accum"));
  auto copy = single.run_method("accum", a).toTensor();
  check_same(copy, a);
  CHECK(copy.data_ptr() != a.data_ptr());
}

TEST_CASE("three inputs: forward, accum and sub_accum lowered together") {
  auto lowered = tbk::lower(script(three_method_source), "custom_backend",
                            tbk::spec().method("forward").method("accum").method("sub_accum"));
  auto a = torch::randn({2, 5}), b = torch::randn({2, 5}), c = torch::randn({2, 5});
  auto out = lowered.forward({a, b, c}).toTuple();
  check_same(out->elements()[0].toTensor(), a + b + c);
  check_same(out->elements()[1].toTensor(), a - b - c);
  check_same(lowered.run_method("accum", a, b, c).toTensor(), a + b + c);
  check_same(lowered.run_method("sub_accum", a, b, c).toTensor(), a - b - c);
}

TEST_CASE("a lowered model survives save and load, in memory and on disk") {
  auto lowered = tbk::lower(script(three_method_source), "custom_backend",
                            tbk::spec().method("forward").method("accum").method("sub_accum"));
  auto a = torch::randn({3}), b = torch::randn({3}), c = torch::randn({3});

  SUBCASE("in memory") {
    auto loaded = round_trip(lowered);
    auto out = loaded.forward({a, b, c}).toTuple();
    check_same(out->elements()[0].toTensor(), a + b + c);
    check_same(out->elements()[1].toTensor(), a - b - c);
    check_same(loaded.run_method("accum", a, b, c).toTensor(), a + b + c);
    // and again: a loaded model saves like any other
    check_same(round_trip(loaded).run_method("sub_accum", a, b, c).toTensor(), a - b - c);
  }
  SUBCASE("on disk") {
    auto path = (std::filesystem::temp_directory_path() / "tbk_unit_add_sub.pt").string();
    lowered.save(path);
    auto loaded = torch::jit::load(path);
    std::remove(path.c_str());
    check_same(loaded.run_method("sub_accum", a, b, c).toTensor(), a - b - c);
    auto out = loaded.forward({a, b, c}).toTuple();
    check_same(out->elements()[0].toTensor(), a + b + c);
  }
}

TEST_CASE("PyTorch's usual compile spec {\"forward\": {\"\": \"\"}} works too") {
  c10::Dict<std::string, std::string> options;
  options.insert("", "");
  c10::impl::GenericDict spec(c10::StringType::get(), c10::AnyType::get());
  spec.insert("forward", options);
  auto lowered = tbk::lower(script(two_input_source), "custom_backend", spec);
  auto a = torch::randn({4}), b = torch::randn({4});
  check_same(lowered.forward({a, b}).toTuple()->elements()[1].toTensor(), a - b);
}

TEST_CASE("lowering a method the add/sub backend does not support names the supported ones") {
  auto module = script("def mul(self, a: Tensor, b: Tensor) -> Tensor:\n  return a * b\n");
  auto text = error_of([&] { tbk::lower(module, "custom_backend", tbk::spec().method("mul")); });
  CHECK_CONTAINS(text, "custom_backend.mul: compile policy failed");
  CHECK_CONTAINS(text, "supported methods: forward, accum, sub_accum");
}

TEST_CASE("a method with no inputs is refused at lowering, showing both signatures") {
  auto module = script("def accum(self) -> Tensor:\n  return torch.zeros(1)\n");
  auto text = error_of([&] { tbk::lower(module, "custom_backend", tbk::spec().method("accum")); });
  CHECK_CONTAINS(text, "custom_backend.accum: the method's TorchScript signature does not fit the "
                       "execute policy: the method takes 0 inputs, the execute policy at least 1 "
                       "input.\n    method:         accum() -> Tensor\n"
                       "    execute policy: (Tensor, *rest: Tensor) -> List[Tensor]");
}

TEST_CASE("wrong inputs reaching execute get the pybind11-style message the README shows") {
  // What a lowered module that escaped the lowering-time checks (e.g. made with another
  // preprocess) would hit: the backend's own execute, called as PyTorch calls it.
  auto backend = c10::make_intrusive<add_sub_backend>();
  backend->set_name("custom_backend");
  auto handles = backend->compile(c10::IValue(), tbk::spec().method("forward").method("accum"));
  auto list = [](std::initializer_list<c10::IValue> values) {
    c10::impl::GenericList out(c10::AnyType::get());
    for (const auto& v : values) out.push_back(v);
    return out;
  };
  auto text = error_of([&] {
    backend->execute(handles.at("forward"), list({torch::ones({4}), int64_t(3)}));
  });
  CHECK(text ==
        "custom_backend.forward(): incompatible inputs for the execute policy: inputs[1] should "
        "be Tensor, got int(3).\nThe execute policy accepts:\n    (Tensor, *rest: Tensor) -> "
        "List[Tensor]\nInvoked with:\n    (Tensor(dtype=Float, shape=[4]), int(3))");
  text = error_of([&] { backend->execute(handles.at("accum"), list({})); });
  CHECK_CONTAINS(text, "custom_backend.accum(): incompatible inputs for the execute policy: "
                       "expected at least 1 input, got 0");
}

// ---- inputs users will feed it ----------------------------------------------------------------

TEST_CASE("unusual tensors give the same results as eager ATen") {
  auto lowered = lowered_two_input();
  auto check_forward = [&](const at::Tensor& a, const at::Tensor& b) {
    auto out = lowered.forward({a, b}).toTuple();
    check_same(out->elements()[0].toTensor(), a + b);
    check_same(out->elements()[1].toTensor(), a - b);
  };
  SUBCASE("empty") { check_forward(torch::empty({0, 3}), torch::empty({0, 3})); }
  SUBCASE("0-dim") { check_forward(torch::tensor(2.5), torch::tensor(-1.0)); }
  SUBCASE("non-contiguous (transposed)") {
    auto a = torch::randn({4, 6}).t(), b = torch::randn({6, 4});
    REQUIRE_FALSE(a.is_contiguous());
    check_forward(a, b);
  }
  SUBCASE("strided views") {
    auto base = torch::randn({10, 10});
    check_forward(base.slice(0, 0, 9, 3), base.slice(0, 1, 9, 3));
    check_forward(base.diagonal(), base.select(1, 2));
  }
  SUBCASE("broadcasting shapes") { check_forward(torch::randn({3, 1}), torch::randn({1, 4})); }
  SUBCASE("mixed dtypes follow PyTorch's type promotion") {
    check_forward(torch::randint(0, 10, {5}, torch::kInt), torch::randn({5}));
    check_forward(torch::randn({5}, torch::kDouble), torch::randn({5}, torch::kFloat));
    check_forward(torch::randint(-5, 5, {5}, torch::kChar), torch::randint(0, 10, {5}, torch::kLong));
  }
  SUBCASE("large (16M elements)") {
    check_forward(torch::randn({1 << 24}), torch::randn({1 << 24}));
  }
}

TEST_CASE("shapes that do not broadcast give ATen's message, prefixed with backend and method") {
  auto lowered = lowered_two_input();
  auto text = error_of([&] { lowered.forward({torch::ones({3}), torch::ones({4})}); });
  CHECK_CONTAINS(text, "custom_backend.forward: execute policy failed: The size of tensor a (3) "
                       "must match the size of tensor b (4) at non-singleton dimension 0");
}

TEST_CASE("a non-tensor input is refused by the lowered method's own TorchScript signature") {
  // The lowered method keeps the module's typed signature, so TorchScript names the argument
  // before the backend is reached; below it, execute's own check says the same (see above).
  auto lowered = lowered_two_input();
  for (const c10::IValue& bad : {c10::IValue(int64_t(3)), c10::IValue(2.5), c10::IValue("s"),
                                 c10::IValue(), c10::IValue(std::vector<int64_t>{1, 2})}) {
    auto text = error_of([&] { lowered.forward({torch::ones({2}), bad}); });
    CHECK_CONTAINS(text, "forward() Expected a value of type 'Tensor' for argument 'b'");
  }
  CHECK_CONTAINS(error_of([&] { lowered.forward({torch::ones({2})}); }),
                 "forward() is missing value for argument 'b'");
  CHECK_CONTAINS(error_of([&] { lowered.forward({torch::ones(1), torch::ones(1), torch::ones(1)}); }),
                 "Expected at most 3 argument(s) for operator 'forward', but received 4 argument(s)");
}

// ---- concurrency ------------------------------------------------------------------------------

TEST_CASE("one lowered module called from 8 threads, 10,000 calls each: every result right") {
  auto lowered = tbk::lower(script(three_method_source), "custom_backend",
                            tbk::spec().method("forward").method("accum").method("sub_accum"));
  constexpr int threads = 8, calls = 10000;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto a = torch::full({4}, float(t)), b = torch::full({4}, 1.0f), c = torch::full({4}, 2.0f);
      const auto sum = a + b + c, difference = a - b - c;
      try {
        for (int i = 0; i < calls; ++i) {
          auto out = lowered.forward({a, b, c}).toTuple();
          bool ok = torch::equal(out->elements()[0].toTensor(), sum) &&
                    torch::equal(out->elements()[1].toTensor(), difference);
          if (i % 3 == 0) ok = ok && torch::equal(lowered.run_method("accum", a, b, c).toTensor(), sum);
          if (!ok) ++wrong;
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

// ---- fresh results, and the opt-in recycling of large outputs' memory --------------------------

namespace {

// What a caller may do to a result it got: change its values, its strides and its autograd
// flag in place. None of it may reach the next call's results.
void tamper_with(const c10::IValue& result) {
  auto out = result.toTuple();
  out->elements()[0].toTensor().t_().add_(1000);
  out->elements()[1].toTensor().requires_grad_();
}

void check_fresh_results(torch::jit::Module& lowered, const at::Tensor& a, const at::Tensor& b) {
  tamper_with(lowered.forward({a, b}));  // dropped at once, after the changes
  auto again = lowered.forward({a, b}).toTuple();
  const at::Tensor sum = again->elements()[0].toTensor(), difference = again->elements()[1].toTensor();
  CHECK(sum.strides() == (a + b).strides());
  CHECK_FALSE(difference.requires_grad());
  CHECK(torch::equal(sum, a + b));
  CHECK(torch::equal(difference, a - b));
  // Two results held at once: the second call changes neither of the first's tensors.
  auto third = lowered.forward({b, a}).toTuple();
  CHECK(torch::equal(sum, a + b));
  CHECK(torch::equal(difference, a - b));
  CHECK(torch::equal(third->elements()[0].toTensor(), b + a));
  CHECK(torch::equal(third->elements()[1].toTensor(), b - a));
}

}  // namespace

TEST_CASE("every call returns new tensors: a caller's in-place changes never reach later results") {
  for (const auto path : {tbk::lowering_path::native, tbk::lowering_path::fast}) {
    for (const bool recycle : {false, true}) {
      CAPTURE(static_cast<int>(path));
      CAPTURE(recycle);
      auto spec = tbk::spec().method("forward", {{"recycle_outputs", recycle}});
      auto lowered = tbk::lower(script(two_input_source), "custom_backend", spec, path);
      for (const int64_t side : {4, 64, 1024}) {  // 1024 x 1024 floats: large enough to recycle
        CAPTURE(side);
        check_fresh_results(lowered, torch::randn({side, side}), torch::randn({side, side}));
      }
    }
  }
}

TEST_CASE("recycle_outputs reuses a large output's memory once nothing holds it, and only then") {
  auto lowered = tbk::lower(script(two_input_source), "custom_backend",
                            tbk::spec().method("forward", {{"recycle_outputs", true}}));
  auto a = torch::randn({1 << 18}), b = torch::randn({1 << 18});  // 1 MiB each
  const void* first_sum;
  {
    auto out = lowered.forward({a, b}).toTuple();
    first_sum = out->elements()[0].toTensor().data_ptr();
  }  // dropped: the next call may write into the same memory
  auto held = lowered.forward({a, b}).toTuple();
  const auto held_sum = held->elements()[0].toTensor();
  CHECK(held_sum.data_ptr() == first_sum);
  const auto held_view = held->elements()[1].toTensor().view({512, 512});
  held = {};  // only a view of the difference is left, and the sum tensor
  auto c = torch::randn({1 << 18});
  auto next = lowered.forward({a, c}).toTuple();  // must not write into what is still held
  CHECK(next->elements()[0].toTensor().data_ptr() != held_sum.data_ptr());
  CHECK(next->elements()[1].toTensor().data_ptr() != held_view.data_ptr());
  CHECK(torch::equal(held_sum, a + b));
  CHECK(torch::equal(held_view.reshape({1 << 18}), a - b));
  check_same(next->elements()[0].toTensor(), a + c);
}

// The conformance kit on the reference backend: every generic check, on both lowering paths.

TBK_TEST_BACKEND("custom_backend")
    .module(three_method_source)
    .spec(tbk::spec().method("forward").method("accum").method("sub_accum"))
    .inputs([] {
      return std::vector<c10::IValue>{torch::randn({64}), torch::randn({64}), torch::randn({64})};
    })
    .reference("forward", [](const std::vector<c10::IValue>& in) {
      const at::Tensor &a = in[0].toTensor(), &b = in[1].toTensor(), &c = in[2].toTensor();
      return std::make_tuple(a + b + c, a - b - c);
    });

#ifdef TBK_TESTS_WITH_EXECUTORCH
// The same kit through the ExecuTorch delegate libcustom_backend registers.
TBK_TEST_EXECUTORCH_BACKEND("custom_backend");
#endif
