// tbk/testing/kit.hpp: the conformance kit's configuration (tbk::testing::backend_kit and its
// chained setters) and the scaffold its checks share: the paths to check, a module lowered on
// each, inputs and references, one call compared. The checks are in tbk/testing/checks.hpp.
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/lower.hpp>
#include <tbk/testing/compare.hpp>
#include <tbk/testing/modules.hpp>

#include <torch/script.h>  // torch::jit::Module

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <deque>       // std::deque: names that doctest keeps pointers to
#include <functional>  // std::function
#include <map>         // std::map
#include <string>      // std::string
#include <utility>     // std::move
#include <vector>      // std::vector

namespace tbk::testing {

// Makes the inputs of one call; called once per call site (and once per thread), so random
// inputs give each thread its own values.
using inputs_function = std::function<std::vector<c10::IValue>()>;
// What the method should return for these inputs.
using reference_function = std::function<c10::IValue(const std::vector<c10::IValue>&)>;
// Makes the scripted module to lower; called afresh for each lowering.
using module_function = std::function<torch::jit::Module()>;

// The configuration and the checks of one backend under test. TBK_TEST_BACKEND makes one and
// registers a doctest case per check; each setter returns the kit, so they chain.
class backend_kit {
 public:
  explicit backend_kit(std::string backend) : backend_(std::move(backend)) {}

  // The module to lower: the source of its TorchScript methods (a module of class "M"), or a
  // function that makes it. Default: none (the checks fail and say so).
  backend_kit& module(std::string torchscript_source) {
    make_module_ = [source = std::move(torchscript_source)] {
      torch::jit::Module m("M");
      m.define(source);
      return m;
    };
    return *this;
  }
  backend_kit& module(module_function make) {
    make_module_ = std::move(make);
    return *this;
  }

  // The compile spec to lower with; its methods are the ones checked. Default: forward, no options.
  backend_kit& spec(const spec_builder& spec) { return this->spec(spec.dict()); }
  backend_kit& spec(c10::impl::GenericDict spec) {
    spec_ = std::move(spec);
    return *this;
  }

  // The inputs of every method, or of one.
  backend_kit& inputs(inputs_function make) {
    default_inputs_ = std::move(make);
    return *this;
  }
  backend_kit& inputs(const std::string& method, inputs_function make) {
    inputs_[method] = std::move(make);
    return *this;
  }

  // What every method (or one) should return: a callable taking the inputs and returning a
  // Tensor, a tuple, a vector or an IValue. Default: the unlowered module's own result.
  template <class Reference>
  backend_kit& reference(Reference reference) {
    default_reference_ = to_reference_function(std::move(reference));
    return *this;
  }
  template <class Reference>
  backend_kit& reference(const std::string& method, Reference reference) {
    references_[method] = to_reference_function(std::move(reference));
    return *this;
  }

  // How close floating-point results must be to the reference. Default: rtol 1e-5, atol 1e-8.
  backend_kit& tolerance(double rtol, double atol) {
    tolerance_ = {rtol, atol};
    return *this;
  }

  // The concurrency check: `threads` threads, each making `calls_each` calls on one lowered
  // module. Default: 4 x 200.
  backend_kit& threads(int threads, int calls_each) {
    threads_ = threads;
    calls_each_ = calls_each;
    return *this;
  }

  // How to make the backend unavailable and available again, and a part of the reason it must
  // then give. Without it, the availability check is skipped (and says so).
  backend_kit& unavailable_when(std::function<void()> make_unavailable,
                                std::function<void()> restore, std::string reason) {
    make_unavailable_ = std::move(make_unavailable);
    restore_available_ = std::move(restore);
    unavailable_reason_ = std::move(reason);
    return *this;
  }

  // The memory check: `cycles` cycles of lower, save, load and call (after 30 warm-up cycles)
  // may grow resident memory by at most `bound_megabytes`. Default: 200 cycles, 2 MB.
  backend_kit& memory(int cycles, double bound_megabytes) {
    memory_cycles_ = cycles;
    memory_bound_mb_ = bound_megabytes;
    return *this;
  }

  const std::string& backend() const { return backend_; }

  // The kit's doctest cases, one function each (TBK_TEST_BACKEND makes them).
  using case_function = void (*)();
  struct case_functions {
    case_function results_native, results_fast, fresh_results, save_load, bad_calls, concurrent,
        unavailable, memory;
  };
  // Registers the cases with doctest, once the kit is configured (TBK_TEST_BACKEND's chain
  // ends in a kit_registration). A check that cannot run here is registered as skipped, with
  // the reason in its name and description: doctest counts it as skipped, never as passed.
  void register_cases(const char* file, unsigned line, const case_functions& functions);

  // The checks; TBK_TEST_BACKEND calls each from its own test case.
  void check_results(lowering_path path);
  void check_fresh_results();
  void check_save_load();
  void check_bad_calls();
  void check_concurrent_calls();
  void check_unavailable();
  void check_memory();

 private:
  template <class Reference>
  static reference_function to_reference_function(Reference reference) {
    return [reference = std::move(reference)](const std::vector<c10::IValue>& inputs) {
      return c10::IValue(reference(inputs));
    };
  }

  bool ready();
  std::vector<std::string> methods() const;
  std::vector<lowering_path> paths() const;
  static std::string path_name(lowering_path path);
  torch::jit::Module lowered(lowering_path path) const { return lower(make_module_(), backend_, spec_, path); }
  c10::optional<torch::jit::Module> lowered_or_fail(lowering_path path) const;
  std::vector<c10::IValue> inputs_for(const std::string& method) const;
  c10::IValue reference_for(const std::string& method, const std::vector<c10::IValue>& inputs,
                            torch::jit::Module& unlowered) const;
  void check_calls(kit::kit_runnable& runnable, const std::string& context);
  std::string names_site(const std::string& method, const std::string& text) const;
  std::string why_not_runnable(case_function check, const case_functions& functions) const;
  void check_fresh_results_on(const torch::jit::Module& module, const std::string& context);
  // Runs `check` once per lowering path, on a module lowered on it (a failed check when that
  // lowering fails); nothing when the kit is not configured.
  void for_each_lowered(const std::function<void(const torch::jit::Module&, lowering_path)>& check);
  struct bad_call {
    std::string what;
    std::vector<c10::IValue> args;
    bool must_fail;  // false: the backend may also accept it, as long as it does not crash
  };
  std::vector<bad_call> bad_calls_for(const std::string& method) const;
  void check_bad_call(const torch::jit::Module& module, const std::string& method, const bad_call& call);

  std::string backend_;
  module_function make_module_;
  c10::impl::GenericDict spec_ = tbk::spec().method("forward").dict();
  inputs_function default_inputs_;
  std::map<std::string, inputs_function> inputs_;
  reference_function default_reference_;
  std::map<std::string, reference_function> references_;
  kit::kit_tolerance tolerance_;
  int threads_ = 4, calls_each_ = 200;
  std::function<void()> make_unavailable_, restore_available_;
  std::string unavailable_reason_;
  int memory_cycles_ = 200;
  double memory_bound_mb_ = 2.0;
  std::deque<std::string> case_texts_;  // doctest keeps `const char*` to a case's name
};

// ---- the scaffold every check shares ----------------------------------------------------------

inline bool backend_kit::ready() {
  if (!make_module_) {
    FAIL_CHECK(backend_ << ": no module to lower; give one with .module(\"def forward(...)...\")");
    return false;
  }
  for (const std::string& method : methods()) {
    if (!default_inputs_ && inputs_.count(method) == 0) {
      FAIL_CHECK(backend_ << "." << method << ": no inputs; give them with .inputs(...)");
      return false;
    }
  }
  return true;
}

inline std::vector<std::string> backend_kit::methods() const {
  std::vector<std::string> names;
  for (const auto& entry : spec_) names.push_back(entry.key().toStringRef());
  return names;
}

inline std::vector<lowering_path> backend_kit::paths() const {
  if (kit::has_fast_path(backend_)) return {lowering_path::native, lowering_path::fast};
  return {lowering_path::native};
}

inline std::string backend_kit::path_name(lowering_path path) {
  return path == lowering_path::fast ? "fast path" : "native path";
}

inline std::vector<c10::IValue> backend_kit::inputs_for(const std::string& method) const {
  auto found = inputs_.find(method);
  return found != inputs_.end() ? found->second() : default_inputs_();
}

inline c10::IValue backend_kit::reference_for(const std::string& method,
                                              const std::vector<c10::IValue>& inputs,
                                              torch::jit::Module& unlowered) const {
  auto found = references_.find(method);
  if (found != references_.end()) return found->second(inputs);
  if (default_reference_) return default_reference_(inputs);
  return unlowered.get_method(method)(inputs);
}

// "" when `text` names the backend and the method, as every tbk error does; else what is wrong.
inline std::string backend_kit::names_site(const std::string& method,
                                           const std::string& text) const {
  if (text.find(backend_) != std::string::npos && text.find(method) != std::string::npos) return {};
  return "the error does not name backend '" + backend_ + "' and method '" + method + "': " + text;
}

// The module lowered on `path`; a failed check, and nothing, when lowering fails.
inline c10::optional<torch::jit::Module> backend_kit::lowered_or_fail(lowering_path path) const {
  try {
    return lowered(path);
  } catch (...) {
    FAIL_CHECK(backend_ << ", " << path_name(path)
                        << ": lowering failed: " << detail::current_exception_text());
    return c10::nullopt;
  }
}

// Every method once, on fresh inputs, against the reference.
inline void backend_kit::check_calls(kit::kit_runnable& runnable, const std::string& context) {
  torch::jit::Module unlowered = make_module_();
  for (const std::string& method : methods()) {
    const std::vector<c10::IValue> inputs = inputs_for(method);
    c10::IValue want, got;
    try {
      want = reference_for(method, inputs, unlowered);
    } catch (...) {
      FAIL_CHECK(backend_ << "." << method << ": the reference itself failed: "
                          << detail::current_exception_text());
      continue;
    }
    try {
      got = runnable.run(method, inputs);
    } catch (...) {
      FAIL_CHECK(backend_ << "." << method << ", " << context
                          << ": the call failed: " << detail::current_exception_text());
      continue;
    }
    const std::string problem = kit::compare_values(got, want, tolerance_);
    CHECK_MESSAGE(problem.empty(), backend_ << "." << method << ", " << context << ": " << problem);
  }
}

inline void backend_kit::for_each_lowered(
    const std::function<void(const torch::jit::Module&, lowering_path)>& check) {
  if (!ready()) return;
  for (lowering_path path : paths()) {
    if (const c10::optional<torch::jit::Module> module = lowered_or_fail(path)) check(*module, path);
  }
}

}  // namespace tbk::testing
