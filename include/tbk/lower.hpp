// tbk/lower.hpp: lowering a scripted module to a registered backend from C++ (PyTorch's own
// code generation underneath, so the result is an ordinary TorchScript module).
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/errors.hpp>
#include <tbk/detail/registry.hpp>

#include <torch/csrc/jit/api/module.h>               // torch::jit::Module
#include <torch/csrc/jit/backends/backend_detail.h>  // codegen_backend_module

#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk {
namespace detail {

inline std::string method_names_of(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const auto& m : module.get_methods()) names.push_back(m.name());
  return joined_names(names);
}

inline std::string not_registered_hint(const std::string& backend) {
  std::string text = "backend '" + backend +
                     "' is not registered in this process (registered through tbk: " +
                     joined_names(registered_names()) +
                     "); link the library that registers it, or load it first (Python: "
                     "torch.ops.load_library(path))";
  for (const std::string& failure : registration_failures()) text += "\n  note: " + failure;
  return text;
}

inline void check_lowerable(const torch::jit::Module& module, const std::string& backend,
                            const c10::impl::GenericDict& spec) {
  if (torch::getCustomClass(backend_class_name(backend)) == nullptr) {
    raise("tbk::lower: " + not_registered_hint(backend));
  }
  if (spec.empty()) {
    raise("tbk::lower: the compile spec for backend '" + backend +
          "' names no method; add one with tbk::spec().method(\"forward\")");
  }
  for (const auto& entry : spec) {
    if (!entry.key().isString()) {
      raise("tbk::lower: compile spec keys must be method names (str), got " +
            describe(entry.key()));
    }
    const std::string& method = entry.key().toStringRef();
    if (!module.find_method(method)) {
      raise("tbk::lower: the compile spec names method '" + method + "', but module '" +
            module.type()->name()->qualifiedName() +
            "' has no such method (its methods: " + method_names_of(module) + ")");
    }
  }
  if (method_check_function check = method_checks_of(backend)) check(backend, module, spec);
}

}  // namespace detail

// Lowers `module` to the backend registered as `backend`: preprocess runs now, compile runs now
// and again on every load, and each method named in `spec` calls the backend's execute.
inline torch::jit::Module lower(const torch::jit::Module& module, const std::string& backend,
                                const c10::impl::GenericDict& spec) {
  detail::check_lowerable(module, backend, spec);
  return torch::jit::detail::codegen_backend_module(
      backend, module, spec, c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
}

inline torch::jit::Module lower(const torch::jit::Module& module, const std::string& backend,
                                const spec_builder& spec) {
  return lower(module, backend, spec.dict());
}

}  // namespace tbk
