// tbk/testing.hpp: a doctest conformance kit for backend authors. TBK_TEST_BACKEND("name")
// registers the test cases every backend needs: results against a reference on both lowering
// paths, save/load round trips (memory, file, lite interpreter), bad calls, concurrent calls,
// availability, and memory over repeated cycles. See docs/testing.md.
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/kit_compare.hpp>
#include <tbk/detail/kit_modules.hpp>
#include <tbk/detail/kit_process.hpp>
#include <tbk/load.hpp>
#include <tbk/lower.hpp>

#include <torch/script.h>  // torch::jit::Module, torch::jit::load

#include <tbk/detail/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <atomic>      // std::atomic
#include <deque>       // std::deque: names that doctest keeps pointers to
#include <functional>  // std::function
#include <map>         // std::map
#include <mutex>       // std::mutex
#include <string>      // std::string
#include <thread>      // std::thread
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
  void check_calls(detail::kit_runnable& runnable, const std::string& context);
  std::string names_site(const std::string& method, const std::string& text) const;
  std::string why_not_runnable(case_function check, const case_functions& functions) const;
  void check_fresh_results_on(torch::jit::Module& module, const std::string& context);

  std::string backend_;
  module_function make_module_;
  c10::impl::GenericDict spec_ = tbk::spec().method("forward").dict();
  inputs_function default_inputs_;
  std::map<std::string, inputs_function> inputs_;
  reference_function default_reference_;
  std::map<std::string, reference_function> references_;
  detail::kit_tolerance tolerance_;
  int threads_ = 4, calls_each_ = 200;
  std::function<void()> make_unavailable_, restore_available_;
  std::string unavailable_reason_;
  int memory_cycles_ = 200;
  double memory_bound_mb_ = 2.0;
  std::deque<std::string> case_texts_;  // doctest keeps `const char*` to a case's name
};

// How TBK_TEST_BACKEND registers the kit's cases once its chain of setters has run:
// `kit_cases{...} << kit().module(...).inputs(...)` (member calls bind before <<).
struct kit_registration {};
struct kit_cases {
  const char* file;
  unsigned line;
  backend_kit::case_functions functions;
};
inline kit_registration operator<<(const kit_cases& cases, backend_kit& kit) {
  kit.register_cases(cases.file, cases.line, cases.functions);
  return {};
}

// ---- the checks -------------------------------------------------------------------------------

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
  if (detail::has_fast_path(backend_)) return {lowering_path::native, lowering_path::fast};
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
inline void backend_kit::check_calls(detail::kit_runnable& runnable, const std::string& context) {
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
    const std::string problem = detail::compare_values(got, want, tolerance_);
    CHECK_MESSAGE(problem.empty(), backend_ << "." << method << ", " << context << ": " << problem);
  }
}

inline void backend_kit::check_results(lowering_path path) {
  if (!ready()) return;
  if (path == lowering_path::fast && !detail::has_fast_path(backend_)) {
    FAIL_CHECK(backend_ << " has no fast path now, although it was registered with one when the "
                           "kit's cases were registered");
    return;
  }
  if (auto module = lowered_or_fail(path)) {
    detail::kit_runnable runnable(*module);
    check_calls(runnable, path_name(path));
  }
}

inline void backend_kit::check_save_load() {
  if (!ready()) return;
  for (lowering_path path : paths()) {
    const c10::optional<torch::jit::Module> lowered_module = lowered_or_fail(path);
    if (!lowered_module) continue;
    const torch::jit::Module& module = *lowered_module;
    for (detail::kit_archive archive :
         {detail::kit_archive::memory, detail::kit_archive::file, detail::kit_archive::lite}) {
      const std::string context = path_name(path) + ", " + detail::archive_name(archive);
      try {
        detail::kit_runnable runnable = detail::through_archive(module, archive, backend_);
        check_calls(runnable, context);
      } catch (...) {
        FAIL_CHECK(backend_ << ", " << context << ": " << detail::current_exception_text());
      }
    }
  }
}

inline void backend_kit::check_bad_calls() {
  if (!ready()) return;
  const c10::optional<torch::jit::Module> lowered_module = lowered_or_fail(lowering_path::native);
  if (!lowered_module) return;
  const torch::jit::Module& module = *lowered_module;
  using detail::isolated_outcome;
  for (const std::string& method : methods()) {
    const std::vector<c10::IValue> inputs = inputs_for(method);
    std::vector<c10::IValue> none, one_more = inputs, not_a_tensor = inputs;
    if (!inputs.empty()) one_more.push_back(inputs.back());
    bool replaced = false;
    for (c10::IValue& v : not_a_tensor) {
      if (v.isTensor()) {
        v = c10::IValue(std::string("not a tensor"));
        replaced = true;
        break;
      }
    }
    const std::string site = backend_ + "." + method;
    struct bad_call {
      std::string what;
      const std::vector<c10::IValue>& args;
      bool must_fail;
    };
    std::vector<bad_call> calls;
    if (!inputs.empty()) calls.push_back({"no inputs (it takes " + std::to_string(inputs.size()) + ")", none, true});
    if (replaced) calls.push_back({"a str in place of its first Tensor", not_a_tensor, true});
    if (!inputs.empty()) calls.push_back({"one input more than it takes", one_more, false});

    for (const bad_call& call : calls) {
      // Below the lowered method: the backend's execute gets the inputs as they come.
      const isolated_outcome below = detail::run_isolated(
          [&] { detail::call_backend_execute(module, method, call.args); });
      if (below.how == isolated_outcome::crashed || below.how == isolated_outcome::hung) {
        FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe());
      } else if (below.how == isolated_outcome::threw) {
        const std::string problem = names_site(method, below.text);
        CHECK_MESSAGE(problem.empty(), site << ": execute called with " << call.what << ": " << problem);
      } else if (call.must_fail) {
        FAIL_CHECK(site << ": execute called with " << call.what << " " << below.describe()
                        << "; it should refuse them with an error naming the backend and method");
      }
      // Through the lowered method: TorchScript's typed signature answers first.
      const isolated_outcome through = detail::run_isolated(
          [&] { module.get_method(method)(call.args); });
      CHECK_MESSAGE(through.how == isolated_outcome::threw,
                    site << ": the lowered method called with " << call.what << " "
                         << through.describe() << "; it should raise an error");
    }
  }
}

inline void backend_kit::check_concurrent_calls() {
  if (!ready()) return;
  for (lowering_path path : paths()) {
    const c10::optional<torch::jit::Module> lowered_module = lowered_or_fail(path);
    if (!lowered_module) continue;
    const torch::jit::Module& module = *lowered_module;
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
            problem = detail::compare_values(module.get_method(c.method)(c.inputs), c.want, tolerance_);
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
  }
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
    const detail::isolated_outcome outcome = detail::run_isolated(act);
    if (outcome.how != detail::isolated_outcome::threw) {
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
  if (detail::resident_megabytes() < 0) {
    FAIL_CHECK(backend_ << ": resident memory cannot be read on this system");
    return;
  }
  std::map<std::string, std::vector<c10::IValue>> inputs;
  for (const std::string& method : methods()) inputs[method] = inputs_for(method);
  const std::vector<lowering_path> all_paths = paths();
  auto cycle = [&] {
    const torch::jit::Module module = make_module_();
    for (lowering_path path : all_paths) {
      detail::kit_runnable loaded = detail::through_archive(lower(module, backend_, spec_, path),
                                                            detail::kit_archive::memory, backend_);
      for (const auto& [method, args] : inputs) loaded.run(method, args);
    }
  };
  const int warm_up = 30;
  try {
    for (int i = 0; i < warm_up; ++i) cycle();
    const double before = detail::resident_megabytes();
    for (int i = 0; i < memory_cycles_; ++i) cycle();
    const double growth = detail::resident_megabytes() - before;
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
inline void backend_kit::check_fresh_results_on(torch::jit::Module& module,
                                                const std::string& context) {
  torch::jit::Module unlowered = make_module_();
  for (const std::string& method : methods()) {
    const std::string site = backend_ + "." + method + ", " + context;
    try {
      detail::tamper_with(module.get_method(method)(inputs_for(method)));
      const std::vector<c10::IValue> first_inputs = inputs_for(method);
      const c10::IValue first_want = reference_for(method, first_inputs, unlowered);
      const c10::IValue first = module.get_method(method)(first_inputs);
      std::string problem = detail::compare_values(first, first_want, tolerance_);
      if (problem.empty()) problem = detail::requires_grad_problem(first);
      CHECK_MESSAGE(problem.empty(), site << ": after a caller changed an earlier result in place "
                                             "and dropped it: " << problem);
      const std::vector<c10::IValue> second_inputs = inputs_for(method);
      const c10::IValue second_want = reference_for(method, second_inputs, unlowered);
      const c10::IValue second = module.get_method(method)(second_inputs);
      problem = detail::compare_values(first, first_want, tolerance_);
      CHECK_MESSAGE(problem.empty(), site << ": a held result changed when the method was called "
                                             "again: " << problem);
      problem = detail::compare_values(second, second_want, tolerance_);
      CHECK_MESSAGE(problem.empty(), site << ": the second of two held results: " << problem);
    } catch (...) {
      FAIL_CHECK(site << ": a call failed: " << detail::current_exception_text());
    }
  }
}

inline void backend_kit::check_fresh_results() {
  if (!ready()) return;
  for (lowering_path path : paths()) {
    if (auto module = lowered_or_fail(path)) check_fresh_results_on(*module, path_name(path));
  }
}

// ---- registering the cases ------------------------------------------------------------------------

// Why `check` cannot run in this process, "" when it can.
inline std::string backend_kit::why_not_runnable(case_function check,
                                                 const case_functions& functions) const {
  if (check == functions.results_fast && torch::getCustomClass(detail::backend_class_name(backend_)) &&
      !detail::has_fast_path(backend_)) {
    return "the backend has no fast path (its execute policy's result has no typed form, or it "
           "was not registered through tbk)";
  }
  if (check == functions.unavailable && !make_unavailable_) {
    return "no way to make the backend unavailable was given (.unavailable_when(...))";
  }
  if (check == functions.memory) {
#if defined(__SANITIZE_ADDRESS__)
    return "AddressSanitizer keeps freed memory in quarantine, so resident memory says nothing "
           "(LeakSanitizer reports leaks instead)";
#endif
    if (detail::resident_megabytes() < 0) return "resident memory cannot be read on this system";
  }
  return {};
}

inline void backend_kit::register_cases(const char* file, unsigned line,
                                        const case_functions& functions) {
  const std::pair<case_function, const char*> cases[] = {
      {functions.results_native, "results equal the reference (native path)"},
      {functions.results_fast, "results equal the reference (fast path)"},
      {functions.fresh_results, "every call returns new results"},
      {functions.save_load, "save and load keep the results"},
      {functions.bad_calls, "bad calls give clear errors"},
      {functions.concurrent, "concurrent calls give the reference results"},
      {functions.unavailable, "an unavailable backend says why"},
      {functions.memory, "lower, save and load cycles do not grow memory"},
  };
  for (const auto& [function, check] : cases) {
    const std::string reason = why_not_runnable(function, functions);
    const std::string& name = case_texts_.emplace_back(
        "tbk kit: " + backend_ + ": " + check + (reason.empty() ? "" : " [skipped: " + reason + "]"));
    doctest::detail::TestSuite suite;
    suite* doctest::test_suite("tbk kit");
    doctest::detail::TestCase test_case(function, file, line, suite);
    test_case* name.c_str();
    if (!reason.empty()) {
      test_case* doctest::skip(true) * doctest::description(case_texts_.emplace_back(reason).c_str());
    }
    doctest::detail::regTest(test_case);
  }
}
}  // namespace tbk::testing

#define TBK_KIT_CAT_(a, b) a##b
#define TBK_KIT_CAT(a, b) TBK_KIT_CAT_(a, b)

// Registers the conformance test cases of the backend registered as `name` (a string literal),
// and starts the kit's configuration, which the caller continues with chained setters:
//   TBK_TEST_BACKEND("custom_backend")
//       .module("def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:\n"
//               "    return a + b, a - b\n")
//       .inputs([] { return std::vector<c10::IValue>{torch::randn(8), torch::randn(8)}; });
// The test cases are named "tbk kit: <name>: <check>", in the doctest test suite "tbk kit".
#define TBK_TEST_BACKEND(name) TBK_TEST_BACKEND_IMPL(TBK_KIT_CAT(tbk_kit_, __COUNTER__), name)

#define TBK_KIT_CASE(kit, check, call) \
  static void TBK_KIT_CAT(kit, check)() { kit().call; }

#define TBK_TEST_BACKEND_IMPL(kit, name)                                                       \
  static ::tbk::testing::backend_kit& kit() {                                                  \
    static ::tbk::testing::backend_kit instance(name);                                         \
    return instance;                                                                           \
  }                                                                                            \
  TBK_KIT_CASE(kit, _results_native, check_results(::tbk::lowering_path::native))              \
  TBK_KIT_CASE(kit, _results_fast, check_results(::tbk::lowering_path::fast))                  \
  TBK_KIT_CASE(kit, _fresh_results, check_fresh_results())                                     \
  TBK_KIT_CASE(kit, _save_load, check_save_load())                                             \
  TBK_KIT_CASE(kit, _bad_calls, check_bad_calls())                                             \
  TBK_KIT_CASE(kit, _concurrent, check_concurrent_calls())                                     \
  TBK_KIT_CASE(kit, _unavailable, check_unavailable())                                         \
  TBK_KIT_CASE(kit, _memory, check_memory())                                                   \
  [[maybe_unused]] static const ::tbk::testing::kit_registration TBK_KIT_CAT(kit, _registered) = \
      ::tbk::testing::kit_cases{                                                               \
          __FILE__, __LINE__,                                                                  \
          {&TBK_KIT_CAT(kit, _results_native), &TBK_KIT_CAT(kit, _results_fast),               \
           &TBK_KIT_CAT(kit, _fresh_results), &TBK_KIT_CAT(kit, _save_load),                   \
           &TBK_KIT_CAT(kit, _bad_calls), &TBK_KIT_CAT(kit, _concurrent),                      \
           &TBK_KIT_CAT(kit, _unavailable), &TBK_KIT_CAT(kit, _memory)}} << kit()
