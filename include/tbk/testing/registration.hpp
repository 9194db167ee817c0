// tbk/testing/registration.hpp: TBK_TEST_BACKEND, and how it registers the kit's checks with
// doctest once the chained setters have run (a check that cannot run here registers as skipped).
#pragma once

#include <tbk/detail/preprocessor.hpp>  // TBK_DETAIL_CONCAT
#include <tbk/detail/registry.hpp>      // find_registered
#include <tbk/detail/torchbind.hpp>     // backend_class_name
#include <tbk/testing/checks.hpp>
#include <tbk/testing/kit.hpp>
#include <tbk/testing/modules.hpp>
#include <tbk/testing/process.hpp>

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <deque>    // std::deque
#include <map>      // std::map (the kits by backend)
#include <string>   // std::string
#include <utility>  // std::pair

namespace tbk::testing {

// How TBK_TEST_BACKEND registers the kit's cases once its chain of setters has run:
// `kit_cases{...} << kit().module(...).inputs(...)` (member calls bind before <<).
struct kit_registration {};

// The kit's doctest cases, one function each (TBK_TEST_BACKEND makes them).
using case_function = void (*)();
struct case_functions {
  case_function results_native, results_fast, fresh_results, save_load, bad_calls, concurrent,
      unavailable, memory, partitioned;
};
struct kit_cases {
  const char* file;
  unsigned line;
  case_functions functions;
};

// The kits TBK_TEST_BACKEND configured, by backend name (the ExecuTorch leg,
// tbk/testing/executorch.hpp, finds its kit here when its case runs).
inline std::map<std::string, const kit_settings*>& kits_by_backend() {
  static std::map<std::string, const kit_settings*> kits;
  return kits;
}

// Names and descriptions of the registered cases: doctest keeps `const char*` to them.
inline std::deque<std::string>& case_texts() {
  static std::deque<std::string> texts;
  return texts;
}

// Why `check` cannot run in this process, "" when it can.
inline std::string why_not_runnable(const kit_settings& kit, case_function check,
                                    const case_functions& functions) {
  if (check == functions.results_fast && torch::getCustomClass(detail::backend_class_name(kit.backend)) &&
      !has_fast_path(kit.backend)) {
    return "the backend has no fast path (its execute policy's result has no typed form, or it "
           "was not registered through tbk)";
  }
  if (check == functions.partitioned) {
    if (!torch::getCustomClass(detail::backend_class_name(kit.backend))) {
      if (kit.partitioning_given) return {};
      return "the backend was not registered yet when the kit registered its cases, so whether it has "
             "a supports hook is unknown: register it first (a library linked, or an earlier "
             "translation unit), or give .partitioning(...) to run this check";
    }
    const auto registered = detail::find_registered(kit.backend);
    if (!registered) return "the backend was not registered through tbk, so tbk::partition cannot ask it";
    if (!registered->has_supports()) return "the backend declares no supports hook, so it cannot be partitioned for";
  }
  if (check == functions.unavailable && !kit.make_unavailable) {
    return "no way to make the backend unavailable was given (.unavailable_when(...))";
  }
  if (check == functions.memory) {
#if defined(__SANITIZE_ADDRESS__)
    return "AddressSanitizer keeps freed memory in quarantine, so resident memory says nothing "
           "(LeakSanitizer reports leaks instead)";
#endif
    if (resident_megabytes() < 0) return "resident memory cannot be read on this system";
  }
  return {};
}

// Registers one kit case with doctest: "tbk kit: <backend>: <check>", in the test suite "tbk
// kit"; skipped, with `reason` in its name and description, when there is one.
inline void register_case(const std::string& backend, const std::string& check, case_function function,
                          const char* file, unsigned line, const std::string& reason = {}) {
  const std::string& name = case_texts().emplace_back(
      "tbk kit: " + backend + ": " + check + (reason.empty() ? "" : " [skipped: " + reason + "]"));
  doctest::detail::TestSuite suite;
  suite* doctest::test_suite("tbk kit");
  doctest::detail::TestCase test_case(function, file, line, suite);
  test_case* name.c_str();
  if (!reason.empty()) {
    test_case* doctest::skip(true) * doctest::description(case_texts().emplace_back(reason).c_str());
  }
  doctest::detail::regTest(test_case);
}

// Registers the cases with doctest, once the kit is configured. A check that cannot run here
// is registered as skipped, with the reason in its name and description: doctest counts it as
// skipped, never as passed.
inline void register_cases(const kit_settings& kit, const char* file, unsigned line,
                           const case_functions& functions) {
  kits_by_backend()[kit.backend] = &kit;
  const std::pair<case_function, const char*> cases[] = {
      {functions.results_native, "results equal the reference (native path)"},
      {functions.results_fast, "results equal the reference (fast path)"},
      {functions.fresh_results, "every call returns new results"},
      {functions.save_load, "save and load keep the results"},
      {functions.bad_calls, "bad calls give clear errors"},
      {functions.concurrent, "concurrent calls give the reference results"},
      {functions.unavailable, "an unavailable backend says why"},
      {functions.memory, "lower, save and load cycles do not grow memory"},
      {functions.partitioned, "a partitioned model gives the reference results, saved and loaded too"},
  };
  for (const auto& [function, check] : cases) {
    register_case(kit.backend, check, function, file, line, why_not_runnable(kit, function, functions));
  }
}

inline kit_registration operator<<(const kit_cases& cases, backend_kit& kit) {
  register_cases(kit.settings(), cases.file, cases.line, cases.functions);
  return {};
}
}  // namespace tbk::testing

// Registers the conformance test cases of the backend registered as `name` (a string literal),
// and starts the kit's configuration, which the caller continues with chained setters:
//   TBK_TEST_BACKEND("custom_backend")
//       .module("def forward(self, a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:\n"
//               "    return a + b, a - b\n")
//       .inputs([] { return std::vector<c10::IValue>{torch::randn(8), torch::randn(8)}; });
// The test cases are named "tbk kit: <name>: <check>", in the doctest test suite "tbk kit"; a
// check that cannot run here is registered as skipped, its name ending in " [skipped: <reason>]".
#define TBK_TEST_BACKEND(name) TBK_TEST_BACKEND_IMPL(TBK_DETAIL_CONCAT(tbk_kit_, __COUNTER__), name)

#define TBK_DETAIL_KIT_CASE(kit, check, call) \
  static void TBK_DETAIL_CONCAT(kit, check)() { ::tbk::testing::call; }

#define TBK_TEST_BACKEND_IMPL(kit, name)                                                         \
  static ::tbk::testing::backend_kit& kit() {                                                    \
    static ::tbk::testing::backend_kit instance(name);                                           \
    return instance;                                                                             \
  }                                                                                              \
  TBK_DETAIL_KIT_CASE(kit, _results_native,                                                      \
                      check_results(kit().settings(), ::tbk::lowering_path::native))             \
  TBK_DETAIL_KIT_CASE(kit, _results_fast, check_results(kit().settings(), ::tbk::lowering_path::fast)) \
  TBK_DETAIL_KIT_CASE(kit, _fresh_results, check_fresh_results(kit().settings()))                \
  TBK_DETAIL_KIT_CASE(kit, _save_load, check_save_load(kit().settings()))                        \
  TBK_DETAIL_KIT_CASE(kit, _bad_calls, check_bad_calls(kit().settings()))                        \
  TBK_DETAIL_KIT_CASE(kit, _concurrent, check_concurrent_calls(kit().settings()))                \
  TBK_DETAIL_KIT_CASE(kit, _unavailable, check_unavailable(kit().settings()))                    \
  TBK_DETAIL_KIT_CASE(kit, _memory, check_memory(kit().settings()))                              \
  TBK_DETAIL_KIT_CASE(kit, _partitioned, check_partitioned(kit().settings()))                    \
  [[maybe_unused]] static const ::tbk::testing::kit_registration                                 \
      TBK_DETAIL_CONCAT(kit, _registered) = ::tbk::testing::kit_cases{                           \
          __FILE__, __LINE__,                                                                    \
          {&TBK_DETAIL_CONCAT(kit, _results_native), &TBK_DETAIL_CONCAT(kit, _results_fast),     \
           &TBK_DETAIL_CONCAT(kit, _fresh_results), &TBK_DETAIL_CONCAT(kit, _save_load),         \
           &TBK_DETAIL_CONCAT(kit, _bad_calls), &TBK_DETAIL_CONCAT(kit, _concurrent),            \
           &TBK_DETAIL_CONCAT(kit, _unavailable), &TBK_DETAIL_CONCAT(kit, _memory),              \
           &TBK_DETAIL_CONCAT(kit, _partitioned)}} << kit()
