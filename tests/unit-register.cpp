// unit-register.cpp: registering backends (tbk/register.hpp): one type under two names, one name
// twice, an invalid name, registrations from several threads at once, and calls on lowered
// modules while backends are registered (docs/threading.md).

#include <ATen/ATen.h>
#include <tbk/tbk.hpp>

#include <algorithm>  // std::count
#include <atomic>     // std::atomic
#include <chrono>     // std::chrono::steady_clock
#include <string>     // std::string, std::to_string
#include <thread>     // std::thread, std::this_thread::yield
#include <vector>     // std::vector

#include "add_sub_modules.hpp"  // pair_source
#include "test_backends.hpp"    // scale_backend, raw_list_backend, affine_backend
#include "support.hpp"          // last: doctest's CHECK macros over glog's

using tbk_test::affine_backend;
using tbk_test::error_of;
using tbk_test::pair_source;
using tbk_test::raw_list_backend;
using tbk_test::round_trip;
using tbk_test::scale_backend;
using tbk_test::scale_source;
using tbk_test::script;

namespace {

// Registers each backend these tests lower to once per process: the shared "tbk_test_scale",
// then the same type again under a second name.
void register_test_backends() {
  tbk_test::register_shared_test_backends();
  static const bool done =
      (tbk::register_backend<scale_backend>("tbk_test_scale_again"), true);  // one type, two names
  (void)done;
}

}  // namespace

TEST_CASE("one backend type registered under two names works under both") {
  register_test_backends();
  auto spec = tbk::spec().method("twice", {{"factor", 3}});  // an int converts to float
  auto first = tbk::lower(script(scale_source), "tbk_test_scale", spec);
  auto second = tbk::lower(script(scale_source), "tbk_test_scale_again", spec);
  auto x = torch::randn({3});
  CHECK(torch::equal(first.run_method("twice", x).toTensor(), x * 3.0));
  CHECK(torch::equal(round_trip(second).run_method("twice", x).toTensor(), x * 3.0));
  auto names = tbk::registered_backends();
  CHECK(std::count(names.begin(), names.end(), "tbk_test_scale_again") == 1);
}

TEST_CASE("registering one name twice is a clear error, and the first registration stays") {
  register_test_backends();
  auto text = error_of([] { tbk::register_backend<raw_list_backend>("tbk_test_scale"); });
  CHECK_CONTAINS(text, "a backend named 'tbk_test_scale' is already registered in this process");
  auto lowered = tbk::lower(script(scale_source), "tbk_test_scale", tbk::spec().method("forward"));
  auto x = torch::ones({2});
  CHECK(torch::equal(lowered.forward({x}).toTensor(), x));
}

TEST_CASE("an invalid backend name is refused before anything is registered") {
  auto text = error_of([] { tbk::register_backend<scale_backend>("my-backend"); });
  CHECK_CONTAINS(text, "'my-backend' is not a valid backend name");
  CHECK(torch::getCustomClass("__torch__.torch.classes.__backends__.my-backend") == nullptr);
}

// ---- registration and threads (docs/threading.md) ------------------------------------------------

TEST_CASE("registrations from several threads at once all take effect, each once") {
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &failed] {
      try {
        tbk::register_backend<affine_backend>("tbk_threaded_" + std::to_string(t));
      } catch (...) {
        ++failed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failed.load() == 0);
  const auto names = tbk::registered_backends();
  for (int t = 0; t < 8; ++t) {
    const std::string name = "tbk_threaded_" + std::to_string(t);
    CHECK_MESSAGE(std::count(names.begin(), names.end(), name) == 1, name);
  }
}

TEST_CASE("calls on lowered modules go on correctly while backends are registered") {
  auto lowered = tbk::lower(script(pair_source), "custom_backend", tbk::spec().method("forward"));
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      const auto a = torch::randn({32}), b = torch::randn({32});
      while (!done) {
        auto out = lowered.forward({a, b}).toTuple();
        if (!torch::equal(out->elements()[0].toTensor(), a + b)) ++wrong;
        ++calls;
      }
    });
  }
  // The callers are calling before the first registration and after the last (on a loaded
  // machine a thread may not run at all for a while: wait for it, with a deadline).
  auto calls_reach = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (calls.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return calls.load() >= n;
  };
  CHECK(calls_reach(4));
  for (int i = 0; i < 20; ++i) tbk::register_backend<affine_backend>("tbk_during_calls_" + std::to_string(i));
  CHECK(calls_reach(calls.load() + 4));
  done = true;
  for (auto& thread : callers) thread.join();
  CHECK(wrong.load() == 0);
}
