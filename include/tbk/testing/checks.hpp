// tbk/testing/checks.hpp: the conformance kit's checks, one member function of
// tbk::testing::backend_kit each, over the scaffold of tbk/testing/kit.hpp.
#pragma once

#include <tbk/load.hpp>
#include <tbk/testing/compare.hpp>
#include <tbk/testing/kit.hpp>
#include <tbk/testing/modules.hpp>
#include <tbk/testing/process.hpp>

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <atomic>   // std::atomic
#include <map>      // std::map
#include <mutex>    // std::mutex
#include <sstream>  // std::stringstream
#include <string>   // std::string
#include <thread>   // std::thread
#include <vector>   // std::vector

namespace tbk::testing {

inline void backend_kit::check_results(lowering_path path) {
  if (!ready()) return;
  if (path == lowering_path::fast && !kit::has_fast_path(backend_)) {
    FAIL_CHECK(backend_ << " has no fast path now, although it was registered with one when the "
                           "kit's cases were registered");
    return;
  }
  if (auto module = lowered_or_fail(path)) {
    kit::kit_runnable runnable(*module);
    check_calls(runnable, path_name(path));
  }
}

inline void backend_kit::check_save_load() {
  for_each_lowered([this](const torch::jit::Module& module, lowering_path path) {
    for (kit::kit_archive archive :
         {kit::kit_archive::memory, kit::kit_archive::file, kit::kit_archive::lite}) {
      const std::string context = path_name(path) + ", " + kit::archive_name(archive);
      try {
        kit::kit_runnable runnable = kit::through_archive(module, archive, backend_);
        check_calls(runnable, context);
      } catch (...) {
        FAIL_CHECK(backend_ << ", " << context << ": " << detail::current_exception_text());
      }
    }
  });
}

// The calls every method must refuse (or, for one input too many, survive): none, a str in
// place of its first Tensor, one input more than it takes.
inline std::vector<backend_kit::bad_call> backend_kit::bad_calls_for(const std::string& method) const {
  const std::vector<c10::IValue> inputs = inputs_for(method);
  std::vector<bad_call> calls;
  if (inputs.empty()) return calls;
  calls.push_back({"no inputs (it takes " + std::to_string(inputs.size()) + ")", {}, true});
  std::vector<c10::IValue> not_a_tensor = inputs;
  for (c10::IValue& v : not_a_tensor) {
    if (v.isTensor()) {
      v = c10::IValue(std::string("not a tensor"));
      calls.push_back({"a str in place of its first Tensor", std::move(not_a_tensor), true});
      break;
    }
  }
  std::vector<c10::IValue> one_more = inputs;
  one_more.push_back(inputs.back());
  calls.push_back({"one input more than it takes", std::move(one_more), false});
  return calls;
}

// One bad call, below the lowered method (the backend's execute gets the inputs as they come)
// and through it (TorchScript's typed signature answers first), each in a child process.
inline void backend_kit::check_bad_call(const torch::jit::Module& module, const std::string& method,
                                        const bad_call& call) {
  using kit::isolated_outcome;
  const std::string site = backend_ + "." + method;
  const isolated_outcome below =
      kit::run_isolated([&] { kit::call_backend_execute(module, method, call.args); });
  if (below.how == isolated_outcome::crashed || below.how == isolated_outcome::hung) {
    FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe());
  } else if (below.how == isolated_outcome::threw) {
    const std::string problem = names_site(method, below.text);
    CHECK_MESSAGE(problem.empty(), site << ": execute called with " << call.what << ": " << problem);
  } else if (call.must_fail) {
    FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe()
                    << "; it should refuse them with an error naming the backend and method");
  }
  const isolated_outcome through = kit::run_isolated([&] { module.get_method(method)(call.args); });
  CHECK_MESSAGE(through.how == isolated_outcome::threw,
                site << ": the lowered method called with " << call.what << " "
                     << through.describe() << "; it should raise an error");
}

inline void backend_kit::check_bad_calls() {
  if (!ready()) return;
  const c10::optional<torch::jit::Module> module = lowered_or_fail(lowering_path::native);
  if (!module) return;
  for (const std::string& method : methods()) {
    for (const bad_call& call : bad_calls_for(method)) check_bad_call(*module, method, call);
  }
}

inline void backend_kit::check_concurrent_calls() {
  for_each_lowered([this](const torch::jit::Module& module, lowering_path path) {
    // Each thread's own inputs and expected results, made here: inputs() need not be thread-safe.
    struct call { std::string method; std::vector<c10::IValue> inputs; c10::IValue want; };
    std::vector<std::vector<call>> work(static_cast<std::size_t>(threads_));
    torch::jit::Module unlowered = make_module_();
    for (auto& calls : work) {
      for (const std::string& method : methods()) {
        std::vector<c10::IValue> inputs = inputs_for(method);
        c10::IValue want = reference_for(method, inputs, unlowered);
        calls.push_back({method, std::move(inputs), std::move(want)});
      }
    }
    std::atomic<int> wrong{0};
    std::mutex first_mutex;
    std::string first;
    std::vector<std::thread> threads;
    for (const auto& calls : work) {
      threads.emplace_back([&, this] {
        for (int i = 0; i < calls_each_; ++i) {
          const call& c = calls[static_cast<std::size_t>(i) % calls.size()];
          std::string problem;
          try {
            problem = kit::compare_values(module.get_method(c.method)(c.inputs), c.want, tolerance_);
          } catch (...) {
            problem = "threw: " + detail::current_exception_text();
          }
          if (!problem.empty()) {
            ++wrong;
            std::lock_guard<std::mutex> lock(first_mutex);
            if (first.empty()) first = c.method + ": " + problem;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK_MESSAGE(wrong.load() == 0,
                  backend_ << ", " << path_name(path) << ": " << wrong.load() << " of "
                           << threads_ * calls_each_ << " calls from " << threads_
                           << " threads on one lowered module went wrong; the first: " << first);
  });
}

inline void backend_kit::check_unavailable() {
  if (!make_unavailable_) {
    FAIL_CHECK(backend_ << ": no way to make it unavailable was given (.unavailable_when(...))");
    return;
  }
  if (!ready()) return;
  // Archives made while the backend is available, loaded while it is not.
  std::vector<std::pair<lowering_path, std::string>> archives;
  for (lowering_path path : paths()) {
    std::stringstream bytes;
    lowered(path).save(bytes);
    archives.emplace_back(path, bytes.str());
  }
  struct restore_at_exit {
    std::function<void()>& restore;
    ~restore_at_exit() { restore(); }
  } restore{restore_available_};
  make_unavailable_();

  auto check_refused = [&](const std::string& what, const std::function<void()>& act) {
    const kit::isolated_outcome outcome = kit::run_isolated(act);
    if (outcome.how != kit::isolated_outcome::threw) {
      FAIL_CHECK(backend_ << " made unavailable: " << what << " " << outcome.describe()
                          << "; it should fail, giving the reason");
      return;
    }
    CHECK_MESSAGE(outcome.text.find(backend_) != std::string::npos,
                  backend_ << " made unavailable: " << what << ": the error does not name the backend: "
                           << outcome.text);
    CHECK_MESSAGE(outcome.text.find(unavailable_reason_) != std::string::npos,
                  backend_ << " made unavailable: " << what << ": the error does not give the reason \""
                           << unavailable_reason_ << "\": " << outcome.text);
  };
  for (lowering_path path : paths()) {
    check_refused("lowering on the " + path_name(path), [&] { lowered(path); });
  }
  for (const auto& [path, bytes] : archives) {
    check_refused("loading an archive of the " + path_name(path), [&] {
      std::istringstream in(bytes);
      tbk::load(in);
    });
  }
}

inline void backend_kit::check_memory() {
  if (!ready()) return;
  if (kit::resident_megabytes() < 0) {
    FAIL_CHECK(backend_ << ": resident memory cannot be read on this system");
    return;
  }
  std::map<std::string, std::vector<c10::IValue>> inputs;
  for (const std::string& method : methods()) inputs[method] = inputs_for(method);
  const std::vector<lowering_path> all_paths = paths();
  auto cycle = [&] {
    const torch::jit::Module module = make_module_();
    for (lowering_path path : all_paths) {
      kit::kit_runnable loaded = kit::through_archive(lower(module, backend_, spec_, path),
                                                            kit::kit_archive::memory, backend_);
      for (const auto& [method, args] : inputs) loaded.run(method, args);
    }
  };
  const int warm_up = 30;
  try {
    for (int i = 0; i < warm_up; ++i) cycle();
    const double before = kit::resident_megabytes();
    for (int i = 0; i < memory_cycles_; ++i) cycle();
    const double growth = kit::resident_megabytes() - before;
    CHECK_MESSAGE(growth <= memory_bound_mb_,
                  backend_ << ": resident memory grew by " << growth << " MB over " << memory_cycles_
                           << " cycles of lower, save, load and call ("
                           << growth * 1000.0 / memory_cycles_ << " KB per cycle; bound "
                           << memory_bound_mb_ << " MB), from " << before << " MB after "
                           << warm_up << " warm-up cycles");
  } catch (...) {
    FAIL_CHECK(backend_ << ": a lower, save, load and call cycle failed: "
                        << detail::current_exception_text());
  }
}


// ---- results are new objects on every call ------------------------------------------------------

// One path: a result changed in place and dropped must not reach the next call; two results held
// at once must both stay as they were returned.
inline void backend_kit::check_fresh_results_on(const torch::jit::Module& module,
                                                const std::string& context) {
  torch::jit::Module unlowered = make_module_();
  for (const std::string& method : methods()) {
    const std::string site = backend_ + "." + method + ", " + context;
    try {
      kit::tamper_with(module.get_method(method)(inputs_for(method)));
      const std::vector<c10::IValue> first_inputs = inputs_for(method);
      const c10::IValue first_want = reference_for(method, first_inputs, unlowered);
      const c10::IValue first = module.get_method(method)(first_inputs);
      std::string problem = kit::compare_values(first, first_want, tolerance_);
      if (problem.empty()) problem = kit::requires_grad_problem(first);
      CHECK_MESSAGE(problem.empty(), site << ": after a caller changed an earlier result in place "
                                             "and dropped it: " << problem);
      const std::vector<c10::IValue> second_inputs = inputs_for(method);
      const c10::IValue second_want = reference_for(method, second_inputs, unlowered);
      const c10::IValue second = module.get_method(method)(second_inputs);
      problem = kit::compare_values(first, first_want, tolerance_);
      CHECK_MESSAGE(problem.empty(), site << ": a held result changed when the method was called "
                                             "again: " << problem);
      problem = kit::compare_values(second, second_want, tolerance_);
      CHECK_MESSAGE(problem.empty(), site << ": the second of two held results: " << problem);
    } catch (...) {
      FAIL_CHECK(site << ": a call failed: " << detail::current_exception_text());
    }
  }
}

inline void backend_kit::check_fresh_results() {
  for_each_lowered([this](const torch::jit::Module& module, lowering_path path) {
    check_fresh_results_on(module, path_name(path));
  });
}

}  // namespace tbk::testing
