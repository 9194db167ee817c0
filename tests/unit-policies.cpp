// unit-policies.cpp: policies of every kind (stateless and stateful, struct and IValue handles),
// a handle the backend did not make, errors thrown by policies, and availability
// (tbk/policy.hpp, tbk/handle.hpp, tbk/availability.hpp, tbk/backend.hpp).

#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

#include <atomic>     // std::atomic
#include <sstream>    // std::stringstream
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string
#include <thread>     // std::thread
#include <tuple>      // std::tuple
#include <vector>     // std::vector

#include "test_backends.hpp"  // scale_backend, name_compile, compile_directly
#include "support.hpp"        // last: doctest's CHECK macros over glog's

using tbk_test::compile_directly;
using tbk_test::error_of;
using tbk_test::inputs;
using tbk_test::name_compile;
using tbk_test::round_trip;
using tbk_test::scale_backend;
using tbk_test::scale_source;
using tbk_test::script;

namespace {

// ---- a stateful backend: one policy object for compile and execute, per backend instance ----

std::atomic<int> stateful_instances{0};

struct counting_policy {
  counting_policy() { ++stateful_instances; }
  int64_t compiled = 0;  // state written at load time ...
  int64_t calls = 0;     // ... and at call time

  int64_t compile(const tbk::method_spec&, const c10::IValue&) { return ++compiled; }
  std::tuple<int64_t, int64_t> execute(const int64_t& handle) { return {handle, ++calls}; }
};

using counting_backend = tbk::backend<counting_policy, counting_policy>;

// A stateful policy whose execute may run on many threads at once: per-instance state read by
// every call (the offset, set at compile time) and updated atomically (the call count).
struct offset_policy {
  std::atomic<int64_t> calls{0};
  double offset = 0;
  int64_t compile(const tbk::method_spec& method, const c10::IValue&) {
    offset = method.get<double>("offset", 0.0);  // load time: no call runs yet
    return 0;
  }
  std::tuple<at::Tensor, int64_t> execute(const int64_t&, const at::Tensor& x) {
    return {x + offset, ++calls};
  }
};
using offset_backend = tbk::backend<offset_policy, offset_policy>;

// ---- IValue handles: compile returns c10::IValue or std::string --------------------------------

struct ivalue_handle_compile {
  static c10::IValue compile(const tbk::method_spec& method, const c10::IValue&) {
    return c10::IValue(method.name() + "!");
  }
};
struct ivalue_handle_execute {
  static std::string execute(const c10::IValue& handle) { return handle.toStringRef(); }
};
using ivalue_handle_backend = tbk::backend<ivalue_handle_compile, ivalue_handle_execute>;

// ---- policies that throw, and an availability policy with a reason ----------------------------

struct throwing_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    if (method.name() == "bad_compile") throw std::runtime_error("no kernel for this method");
    if (method.name() == "bad_compile_odd") throw 42;
    return method.name();
  }
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    if (spec.contains("bad_preprocess")) TORCH_CHECK(false, "the module is too large");
    return module._ivalue();
  }
};
struct throwing_execute {
  static at::Tensor execute(const std::string& method, const at::Tensor& x) {
    if (method == "runtime") throw std::runtime_error("kernel launch failed");
    if (method == "c10") TORCH_CHECK(false, "device lost");
    if (method == "odd") throw 7;
    return x;
  }
};
using throwing_backend = tbk::backend<throwing_compile, throwing_execute>;

struct needs_avx_availability {
  static tbk::availability is_available() { return tbk::unavailable("needs AVX-1024"); }
};
using unavailable_backend = tbk::backend<name_compile, throwing_execute, needs_avx_availability>;

std::atomic<bool> switchable_available{true};
struct switchable_availability {
  static tbk::availability is_available() {
    return switchable_available ? tbk::available() : tbk::unavailable("the device is switched off");
  }
};
using switchable_backend = tbk::backend<name_compile, throwing_execute, switchable_availability>;

// Registers each backend these tests lower to once per process: the shared "tbk_test_scale",
// then this file's own.
void register_test_backends() {
  tbk_test::register_shared_test_backends();
  static const bool done = [] {
    tbk::register_backend<counting_backend>("tbk_test_counting");
    tbk::register_backend<offset_backend>("tbk_test_offset");
    tbk::register_backend<ivalue_handle_backend>("tbk_test_ivalue_handle");
    tbk::register_backend<throwing_backend>("tbk_test_throwing");
    tbk::register_backend<unavailable_backend>("tbk_test_unavailable");
    tbk::register_backend<switchable_backend>("tbk_test_switchable");
    return true;
  }();
  (void)done;
}

}  // namespace

TEST_CASE("stateless policies, a struct handle and typed spec options") {
  register_test_backends();
  auto lowered = tbk::lower(script(scale_source), "tbk_test_scale",
                            tbk::spec().method("forward").method("twice", {{"factor", 2.0}}));
  auto x = torch::randn({5});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x * 1.0));
  CHECK(torch::equal(lowered.run_method("twice", x).toTensor(), x * 2.0));
  auto loaded = round_trip(lowered);  // compile runs again on load, with the saved spec
  CHECK(torch::equal(loaded.run_method("twice", x).toTensor(), x * 2.0));
}

TEST_CASE("stateful policies: one object per backend instance, shared by compile and execute") {
  register_test_backends();
  auto module = script(R"(
    def forward(self) -> Tuple[int, int]:
        return 0, 0
    def other(self) -> Tuple[int, int]:
        return 0, 0
  )");
  int before = stateful_instances.load();
  auto lowered = tbk::lower(module, "tbk_test_counting", tbk::spec().method("forward").method("other"));
  CHECK(stateful_instances.load() == before + 1);
  // compile ran once per method on this instance: handles 1 and 2 (dict order: forward, other)
  auto first = lowered.forward({}).toTuple();
  CHECK(first->elements()[0].toInt() == 1);
  CHECK(first->elements()[1].toInt() == 1);
  auto second = lowered.run_method("other").toTuple();
  CHECK(second->elements()[0].toInt() == 2);
  CHECK(second->elements()[1].toInt() == 2);  // execute's state persists across calls

  auto loaded = round_trip(lowered);  // a new instance, with fresh state
  CHECK(stateful_instances.load() == before + 2);
  CHECK(loaded.forward({}).toTuple()->elements()[1].toInt() == 1);
}

TEST_CASE("a stateful policy called from 8 threads, 10,000 calls each") {
  register_test_backends();
  auto lowered = tbk::lower(
      script("def forward(self, x: Tensor) -> Tuple[Tensor, int]:\n  return x, 0\n"),
      "tbk_test_offset", tbk::spec().method("forward", {{"offset", 0.5}}));
  constexpr int threads = 8, calls = 10000;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto x = torch::full({3}, double(t), torch::kDouble);
      try {
        for (int i = 0; i < calls; ++i) {
          auto out = lowered.forward({x}).toTuple();
          if (!torch::equal(out->elements()[0].toTensor(), x + 0.5)) ++wrong;
        }
      } catch (...) {
        ++failed;
      }
    });
  }
  for (auto& thread : pool) thread.join();
  CHECK(wrong.load() == 0);
  CHECK(failed.load() == 0);
  // every call was counted once: the next call is number threads * calls + 1
  CHECK(lowered.forward({torch::zeros(1)}).toTuple()->elements()[1].toInt() == threads * calls + 1);
}

TEST_CASE("IValue handles and a result type added through tbk::result_caster") {
  register_test_backends();
  auto module = script("def hello(self) -> str:\n  return ''\n");
  auto lowered = tbk::lower(module, "tbk_test_ivalue_handle", tbk::spec().method("hello"));
  CHECK(lowered.run_method("hello").toStringRef() == "hello!");
  CHECK(round_trip(lowered).run_method("hello").toStringRef() == "hello!");
}

TEST_CASE("a handle the backend did not make is refused clearly") {
  auto c = compile_directly<scale_backend>("tbk_test_scale", {"forward"},
                                           script(scale_source)._ivalue());
  auto text = error_of([&] { c.backend->execute(c10::IValue("forward"), inputs({torch::ones(1)})); });
  CHECK_CONTAINS(text, "tbk_test_scale: execute was given a handle (str) that this backend's "
                       "compile did not make");
  auto other = compile_directly<ivalue_handle_backend>("tbk_test_ivalue_handle", {"forward"});
  text = error_of([&] { c.backend->execute(other.handles.at("forward"), inputs({torch::ones(1)})); });
  CHECK_CONTAINS(text, "execute was given a handle (Capsule)");
}

TEST_CASE("errors thrown by policies reach the caller prefixed with backend and method") {
  register_test_backends();
  auto identity = [](const std::string& method) {
    return script("def " + method + "(self, x: Tensor) -> Tensor:\n  return x\n");
  };
  auto lower = [&](const std::string& method) {
    return tbk::lower(identity(method), "tbk_test_throwing", tbk::spec().method(method));
  };
  auto x = torch::ones({1});

  SUBCASE("std::runtime_error in execute") {
    auto lowered = lower("runtime");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("runtime", x); }),
                   "tbk_test_throwing.runtime: execute policy failed: kernel launch failed");
  }
  SUBCASE("c10::Error in execute") {
    auto lowered = lower("c10");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("c10", x); }),
                   "tbk_test_throwing.c10: execute policy failed: device lost");
  }
  SUBCASE("a non-std::exception in execute") {
    auto lowered = lower("odd");
    CHECK_CONTAINS(error_of([&] { lowered.run_method("odd", x); }),
                   "tbk_test_throwing.odd: execute policy failed: an exception that is not a "
                   "std::exception");
  }
  SUBCASE("std::runtime_error in compile") {
    CHECK_CONTAINS(error_of([&] { lower("bad_compile"); }),
                   "tbk_test_throwing.bad_compile: compile policy failed: no kernel for this method");
  }
  SUBCASE("a non-std::exception in compile") {
    CHECK_CONTAINS(error_of([&] { lower("bad_compile_odd"); }),
                   "tbk_test_throwing.bad_compile_odd: compile policy failed: an exception that "
                   "is not a std::exception");
  }
  SUBCASE("c10::Error in preprocess") {
    CHECK_CONTAINS(error_of([&] { lower("bad_preprocess"); }),
                   "tbk_test_throwing: preprocess failed: the module is too large");
  }
}

TEST_CASE("an unavailable backend says why, at lowering and at load time") {
  register_test_backends();
  auto backend = c10::make_intrusive<unavailable_backend>();
  CHECK_FALSE(backend->is_available());
  CHECK(backend->availability_report().reason() == "needs AVX-1024");

  auto module = script("def forward(self, x: Tensor) -> Tensor:\n  return x\n");
  CHECK_CONTAINS(error_of([&] {
                   tbk::lower(module, "tbk_test_unavailable", tbk::spec().method("forward"));
                 }),
                 "tbk_test_unavailable is not available: needs AVX-1024");

  switchable_available = true;
  auto lowered = tbk::lower(module, "tbk_test_switchable", tbk::spec().method("forward"));
  std::stringstream saved;
  lowered.save(saved);
  switchable_available = false;  // as on a machine without the device
  CHECK_CONTAINS(error_of([&] { torch::jit::load(saved); }),
                 "tbk_test_switchable is not available: the device is switched off");
  // The instance made while available keeps its answer: availability is asked once per instance.
  auto x = torch::ones({2});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
  switchable_available = true;
}
