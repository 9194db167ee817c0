// tbk/testing/scaffold.hpp: what the conformance kit's checks share, over a backend's
// kit_settings: whether the kit is configured, the methods and lowering paths to check, a module
// lowered on each, inputs and references, every method called once and compared.
#pragma once

#include <tbk/detail/errors.hpp>  // current_exception_text
#include <tbk/lower.hpp>
#include <tbk/testing/compare.hpp>
#include <tbk/testing/kit.hpp>
#include <tbk/testing/modules.hpp>

#include <torch/script.h>  // torch::jit::Module

#include <tbk/testing/doctest_over_glog.hpp>  // after libtorch: doctest's CHECK, not glog's

#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

namespace tbk::testing {

inline std::vector<std::string> methods(const kit_settings& kit);

inline torch::jit::Module lowered(const kit_settings& kit, lowering_path path) {
  return lower(kit.make_module(), kit.backend, kit.spec, path);
}

inline bool ready(const kit_settings& kit) {
  if (!kit.make_module) {
    FAIL_CHECK(kit.backend << ": no module to lower; give one with .module(\"def forward(...)...\")");
    return false;
  }
  for (const std::string& method : methods(kit)) {
    if (!kit.default_inputs && kit.inputs.count(method) == 0) {
      FAIL_CHECK(kit.backend << "." << method << ": no inputs; give them with .inputs(...)");
      return false;
    }
  }
  return true;
}

inline std::vector<std::string> methods(const kit_settings& kit) {
  std::vector<std::string> names;
  for (const auto& entry : kit.spec) names.push_back(entry.key().toStringRef());
  return names;
}

inline std::vector<lowering_path> paths(const kit_settings& kit) {
  if (has_fast_path(kit.backend)) return {lowering_path::native, lowering_path::fast};
  return {lowering_path::native};
}

inline std::string path_name(lowering_path path) {
  return path == lowering_path::fast ? "fast path" : "native path";
}

inline std::vector<c10::IValue> inputs_for(const kit_settings& kit, const std::string& method) {
  auto found = kit.inputs.find(method);
  return found != kit.inputs.end() ? found->second() : kit.default_inputs();
}

inline c10::IValue reference_for(const kit_settings& kit, const std::string& method,
                                 const std::vector<c10::IValue>& inputs,
                                 torch::jit::Module& unlowered) {
  auto found = kit.references.find(method);
  if (found != kit.references.end()) return found->second(inputs);
  if (kit.default_reference) return kit.default_reference(inputs);
  return unlowered.get_method(method)(inputs);
}

// "" when `text` names the backend and the method, as every tbk error does; else what is wrong.
inline std::string names_site(const kit_settings& kit, const std::string& method,
                              const std::string& text) {
  if (text.find(kit.backend) != std::string::npos && text.find(method) != std::string::npos) return {};
  return "the error does not name backend '" + kit.backend + "' and method '" + method + "': " + text;
}

// The module lowered on `path`; a failed check, and nothing, when lowering fails.
inline c10::optional<torch::jit::Module> lowered_or_fail(const kit_settings& kit, lowering_path path) {
  try {
    return lowered(kit, path);
  } catch (...) {
    FAIL_CHECK(kit.backend << ", " << path_name(path)
                        << ": lowering failed: " << detail::current_exception_text());
    return c10::nullopt;
  }
}

// Every method once, on fresh inputs, against the reference.
inline void check_calls(const kit_settings& kit, kit_runnable& runnable, const std::string& context) {
  torch::jit::Module unlowered = kit.make_module();
  for (const std::string& method : methods(kit)) {
    const std::vector<c10::IValue> inputs = inputs_for(kit, method);
    c10::IValue want, got;
    try {
      want = reference_for(kit, method, inputs, unlowered);
    } catch (...) {
      FAIL_CHECK(kit.backend << "." << method << ": the reference itself failed: "
                          << detail::current_exception_text());
      continue;
    }
    try {
      got = runnable.run(method, inputs);
    } catch (...) {
      FAIL_CHECK(kit.backend << "." << method << ", " << context
                          << ": the call failed: " << detail::current_exception_text());
      continue;
    }
    const std::string problem = compare_values(got, want, kit.tolerance);
    CHECK_MESSAGE(problem.empty(), kit.backend << "." << method << ", " << context << ": " << problem);
  }
}

inline void for_each_lowered(const kit_settings& kit, 
                             const std::function<void(const torch::jit::Module&, lowering_path)>& check) {
  if (!ready(kit)) return;
  for (lowering_path path : paths(kit)) {
    if (const c10::optional<torch::jit::Module> module = lowered_or_fail(kit, path)) check(*module, path);
  }
}

}  // namespace tbk::testing
