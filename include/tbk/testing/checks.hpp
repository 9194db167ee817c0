// tbk/testing/checks.hpp: the conformance kit's checks, one function each, over a backend's
// kit_settings (tbk/testing/kit.hpp) and the scaffold of tbk/testing/scaffold.hpp.
#pragma once

#include <tbk/load.hpp>
#include <tbk/partition.hpp>
#include <tbk/testing/compare.hpp>
#include <tbk/testing/kit.hpp>
#include <tbk/testing/modules.hpp>
#include <tbk/testing/process.hpp>
#include <tbk/testing/scaffold.hpp>

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <atomic>   // std::atomic
#include <map>      // std::map
#include <mutex>    // std::mutex
#include <sstream>  // std::stringstream
#include <string>   // std::string
#include <thread>   // std::thread
#include <vector>   // std::vector

namespace tbk::testing {


inline void check_results(const kit_settings& kit, lowering_path path) {
  if (!ready(kit)) return;
  if (path == lowering_path::fast && !has_fast_path(kit.backend)) {
    FAIL_CHECK(kit.backend << " has no fast path now, although it was registered with one when the "
                           "kit's cases were registered");
    return;
  }
  if (auto module = lowered_or_fail(kit, path)) {
    kit_runnable runnable(*module);
    check_calls(kit, runnable, path_name(path));
  }
}

inline void check_save_load(const kit_settings& kit) {
  for_each_lowered(kit, [&](const torch::jit::Module& module, lowering_path path) {
    for (kit_archive archive :
         {kit_archive::memory, kit_archive::file, kit_archive::lite}) {
      const std::string context = path_name(path) + ", " + archive_name(archive);
      try {
        kit_runnable runnable = through_archive(module, archive, kit.backend);
        check_calls(kit, runnable, context);
      } catch (...) {
        FAIL_CHECK(kit.backend << ", " << context << ": " << detail::current_exception_text());
      }
    }
  });
}

// A call every method must refuse (or, for one input too many, survive).
struct bad_call {
  std::string what;
  std::vector<c10::IValue> args;
  bool must_fail;  // false: the backend may also accept it, as long as it does not crash
};

// The calls every method must refuse (or, for one input too many, survive): none, a str in
// place of its first Tensor, one input more than it takes.
inline std::vector<bad_call> bad_calls_for(const kit_settings& kit, const std::string& method) {
  const std::vector<c10::IValue> inputs = inputs_for(kit, method);
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
inline void check_bad_call(const kit_settings& kit, const torch::jit::Module& module, const std::string& method,
                           const bad_call& call) {
  const std::string site = kit.backend + "." + method;
  const isolated_outcome below =
      run_isolated([&] { call_backend_execute(module, method, call.args); });
  if (below.how == isolated_outcome::crashed || below.how == isolated_outcome::hung) {
    FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe());
  } else if (below.how == isolated_outcome::threw) {
    const std::string problem = names_site(kit, method, below.text);
    CHECK_MESSAGE(problem.empty(), site << ": execute called with " << call.what << ": " << problem);
  } else if (call.must_fail) {
    FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe()
                    << "; it should refuse them with an error naming the backend and method");
  }
  const isolated_outcome through = run_isolated([&] { module.get_method(method)(call.args); });
  CHECK_MESSAGE(through.how == isolated_outcome::threw,
                site << ": the lowered method called with " << call.what << " "
                     << through.describe() << "; it should raise an error");
}

inline void check_bad_calls(const kit_settings& kit) {
  if (!ready(kit)) return;
  const c10::optional<torch::jit::Module> module = lowered_or_fail(kit, lowering_path::native);
  if (!module) return;
  for (const std::string& method : methods(kit)) {
    for (const bad_call& call : bad_calls_for(kit, method)) check_bad_call(kit, *module, method, call);
  }
}

inline void check_concurrent_calls(const kit_settings& kit) {
  for_each_lowered(kit, [&](const torch::jit::Module& module, lowering_path path) {
    // Each thread's own inputs and expected results, made here: inputs() need not be thread-safe.
    struct call { std::string method; std::vector<c10::IValue> inputs; c10::IValue want; };
    std::vector<std::vector<call>> work(static_cast<std::size_t>(kit.threads));
    torch::jit::Module unlowered = kit.make_module();
    for (auto& calls : work) {
      for (const std::string& method : methods(kit)) {
        std::vector<c10::IValue> inputs = inputs_for(kit, method);
        c10::IValue want = reference_for(kit, method, inputs, unlowered);
        calls.push_back({method, std::move(inputs), std::move(want)});
      }
    }
    std::atomic<int> wrong{0};
    std::mutex first_mutex;
    std::string first;
    std::vector<std::thread> threads;
    for (const auto& calls : work) {
      threads.emplace_back([&] {
        for (int i = 0; i < kit.calls_each; ++i) {
          const call& c = calls[static_cast<std::size_t>(i) % calls.size()];
          std::string problem;
          try {
            problem = compare_values(module.get_method(c.method)(c.inputs), c.want, kit.tolerance);
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
                  kit.backend << ", " << path_name(path) << ": " << wrong.load() << " of "
                           << kit.threads * kit.calls_each << " calls from " << kit.threads
                           << " threads on one lowered module went wrong; the first: " << first);
  });
}

inline void check_unavailable(const kit_settings& kit) {
  if (!kit.make_unavailable) {
    FAIL_CHECK(kit.backend << ": no way to make it unavailable was given (.unavailable_when(...))");
    return;
  }
  if (!ready(kit)) return;
  // Archives made while the backend is available, loaded while it is not.
  std::vector<std::pair<lowering_path, std::string>> archives;
  for (lowering_path path : paths(kit)) {
    std::stringstream bytes;
    lowered(kit, path).save(bytes);
    archives.emplace_back(path, bytes.str());
  }
  struct restore_at_exit {
    const std::function<void()>& restore;
    ~restore_at_exit() { restore(); }
  } restore{kit.restore_available};
  kit.make_unavailable();

  auto check_refused = [&](const std::string& what, const std::function<void()>& act) {
    const isolated_outcome outcome = run_isolated(act);
    if (outcome.how != isolated_outcome::threw) {
      FAIL_CHECK(kit.backend << " made unavailable: " << what << " " << outcome.describe()
                          << "; it should fail, giving the reason");
      return;
    }
    CHECK_MESSAGE(outcome.text.find(kit.backend) != std::string::npos,
                  kit.backend << " made unavailable: " << what << ": the error does not name the backend: "
                           << outcome.text);
    CHECK_MESSAGE(outcome.text.find(kit.unavailable_reason) != std::string::npos,
                  kit.backend << " made unavailable: " << what << ": the error does not give the reason \""
                           << kit.unavailable_reason << "\": " << outcome.text);
  };
  for (lowering_path path : paths(kit)) {
    check_refused("lowering on the " + path_name(path), [&] { lowered(kit, path); });
  }
  for (const auto& [path, bytes] : archives) {
    check_refused("loading an archive of the " + path_name(path), [&] {
      std::istringstream in(bytes);
      tbk::load(in);
    });
  }
}

inline void check_memory(const kit_settings& kit) {
  if (!ready(kit)) return;
  if (resident_megabytes() < 0) {
    FAIL_CHECK(kit.backend << ": resident memory cannot be read on this system");
    return;
  }
  std::map<std::string, std::vector<c10::IValue>> inputs;
  for (const std::string& method : methods(kit)) inputs[method] = inputs_for(kit, method);
  const std::vector<lowering_path> all_paths = paths(kit);
  auto cycle = [&] {
    const torch::jit::Module module = kit.make_module();
    for (lowering_path path : all_paths) {
      kit_runnable loaded = through_archive(lower(module, kit.backend, kit.spec, path),
                                                            kit_archive::memory, kit.backend);
      for (const auto& [method, args] : inputs) loaded.run(method, args);
    }
  };
  const int warm_up = 30;
  try {
    for (int i = 0; i < warm_up; ++i) cycle();
    const double before = resident_megabytes();
    for (int i = 0; i < kit.memory_cycles; ++i) cycle();
    const double growth = resident_megabytes() - before;
    CHECK_MESSAGE(growth <= kit.memory_bound_mb,
                  kit.backend << ": resident memory grew by " << growth << " MB over " << kit.memory_cycles
                           << " cycles of lower, save, load and call ("
                           << growth * 1000.0 / kit.memory_cycles << " KB per cycle; bound "
                           << kit.memory_bound_mb << " MB), from " << before << " MB after "
                           << warm_up << " warm-up cycles");
  } catch (...) {
    FAIL_CHECK(kit.backend << ": a lower, save, load and call cycle failed: "
                        << detail::current_exception_text());
  }
}


// ---- partitioned models, for backends that declare supports ---------------------------------------

// The kit's module (in eval mode) partitioned for the backend, with the kit's partitioning
// options; each method's inputs are its example inputs unless the options give some.
inline torch::jit::Module partitioned(const kit_settings& kit, torch::jit::Module module,
                                      const std::map<std::string, std::vector<c10::IValue>>& inputs) {
  partition_options options = kit.partitioning;
  options.methods = methods(kit);
  for (const auto& [method, args] : inputs) options.example_inputs.emplace(method, args);
  module.eval();
  return partition(module, kit.backend, options);
}

// A model made of the nodes the backend claims, partitioned: it claims some node of every
// method, and the results equal the reference, as partitioned and after save and load (memory,
// file, lite interpreter).
inline void check_partitioned(const kit_settings& kit) {
  if (!ready(kit)) return;
  torch::jit::Module unlowered = kit.make_module();
  unlowered.eval();
  std::map<std::string, std::vector<c10::IValue>> inputs;
  for (const std::string& method : methods(kit)) inputs[method] = inputs_for(kit, method);
  torch::jit::Module module;
  try {
    module = partitioned(kit, kit.make_module(), inputs);
  } catch (...) {
    FAIL_CHECK(kit.backend << ": partitioning failed: " << detail::current_exception_text());
    return;
  }
  const std::string placement = report(module);
  for (const std::string& method : methods(kit)) {
    CHECK_MESSAGE(placement.find("method " + method + ": 0 regions") == std::string::npos,
                  kit.backend << "." << method << ": partitioned, the backend runs no node of it (its "
                              "supports hook claims none); the report:\n" << placement);
  }
  for (kit_archive archive : {kit_archive::none, kit_archive::memory, kit_archive::file, kit_archive::lite}) {
    const std::string context = std::string("partitioned, ") + archive_name(archive);
    for (const auto& [method, args] : inputs) {
      try {
        kit_runnable runnable = through_archive(module, archive, kit.backend);
        const c10::IValue want = reference_for(kit, method, args, unlowered);
        const std::string problem = compare_values(runnable.run(method, args), want, kit.tolerance);
        CHECK_MESSAGE(problem.empty(), kit.backend << "." << method << ", " << context << ": " << problem);
      } catch (...) {
        FAIL_CHECK(kit.backend << "." << method << ", " << context << ": " << detail::current_exception_text());
      }
    }
  }
}

// ---- results are new objects on every call ------------------------------------------------------

// One path: a result changed in place and dropped must not reach the next call; two results held
// at once must both stay as they were returned.
inline void check_fresh_results_on(const kit_settings& kit, const torch::jit::Module& module,
                                   const std::string& context) {
  torch::jit::Module unlowered = kit.make_module();
  for (const std::string& method : methods(kit)) {
    const std::string site = kit.backend + "." + method + ", " + context;
    try {
      tamper_with(module.get_method(method)(inputs_for(kit, method)));
      const std::vector<c10::IValue> first_inputs = inputs_for(kit, method);
      const c10::IValue first_want = reference_for(kit, method, first_inputs, unlowered);
      const c10::IValue first = module.get_method(method)(first_inputs);
      std::string problem = compare_values(first, first_want, kit.tolerance);
      if (problem.empty()) problem = requires_grad_problem(first);
      CHECK_MESSAGE(problem.empty(), site << ": after a caller changed an earlier result in place "
                                             "and dropped it: " << problem);
      const std::vector<c10::IValue> second_inputs = inputs_for(kit, method);
      const c10::IValue second_want = reference_for(kit, method, second_inputs, unlowered);
      const c10::IValue second = module.get_method(method)(second_inputs);
      problem = compare_values(first, first_want, kit.tolerance);
      CHECK_MESSAGE(problem.empty(), site << ": a held result changed when the method was called "
                                             "again: " << problem);
      problem = compare_values(second, second_want, kit.tolerance);
      CHECK_MESSAGE(problem.empty(), site << ": the second of two held results: " << problem);
    } catch (...) {
      FAIL_CHECK(site << ": a call failed: " << detail::current_exception_text());
    }
  }
}

inline void check_fresh_results(const kit_settings& kit) {
  for_each_lowered(kit, [&](const torch::jit::Module& module, lowering_path path) {
    check_fresh_results_on(kit, module, path_name(path));
  });
}

}  // namespace tbk::testing
