// tbk/lower.hpp: lowering a scripted module, or some of its submodules, to a registered backend
// from C++: PyTorch's own code generation (native path) or tbk's typed calls (fast path); either
// way the result is an ordinary TorchScript module.
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/errors.hpp>
#include <tbk/detail/fast_module.hpp>
#include <tbk/detail/registry.hpp>

#include <torch/csrc/jit/api/module.h>               // torch::jit::Module
#include <torch/csrc/jit/backends/backend_detail.h>  // codegen_backend_module

#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <unordered_set>  // std::unordered_set
#include <vector>         // std::vector

namespace tbk {
namespace detail {

inline std::string method_names_of(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const auto& m : module.get_methods()) names.push_back(m.name());
  return joined_names(names);
}

// Raises "<function>: backend 'B' is not registered in this process (...)" with the fix, unless
// a backend of that name is registered (through tbk or not).
inline void require_registered(const std::string& function, const std::string& backend) {
  if (torch::getCustomClass(backend_class_name(backend)) == nullptr) {
    raise(function + ": backend '" + backend + "' is not registered in this process" +
          registration_hint(false));
  }
}

inline void check_lowerable(const torch::jit::Module& module, const std::string& backend,
                            const c10::impl::GenericDict& spec) {
  require_registered("tbk::lower", backend);
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
  if (auto registered = find_registered(backend)) registered->check_methods(module, spec);
}

// PyTorch's code generation (the native path) writes each method's parameters after a `self` of
// its own, so a method that names its module parameter otherwise (`def forward(s, x)`) would come
// out as `forward(self, s: __torch__.M, x)`, which does not compile. The fast path takes any name.
inline void check_native_parameter_names(const torch::jit::Module& module, const c10::impl::GenericDict& spec) {
  for (const auto& entry : spec) {
    const std::string& method = entry.key().toStringRef();
    const auto& arguments = module.get_method(method).function().getSchema().arguments();
    if (!arguments.empty() && arguments[0].name() != "self") {
      raise("tbk::lower: method '" + method + "' names its module parameter '" + arguments[0].name() +
            "'; PyTorch's code generation (the native path, as torch._C._jit_to_backend) needs it "
            "named 'self': rename it, or lower on the fast path (tbk::lowering_path::fast), which "
            "takes any name");
    }
  }
}

// Lowering runs compile inside TorchScript (the lowered module's __setstate__), which puts
// PyTorch's interpreter traceback before the error; a C++ caller gets tbk's own message alone
// ("B.M: compile policy failed: ...", "B is not available: ..."). Others pass through unchanged.
template <class Lowering>
torch::jit::Module without_interpreter_traceback(const std::string& backend, Lowering&& lowering) {
  try {
    return lowering();
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    const std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
    const std::string marker = "RuntimeError: " + backend;
    const std::size_t at = text.rfind(marker);
    const std::size_t after = at + marker.size();
    if (at == std::string::npos || after >= text.size() ||
        (text[after] != '.' && text[after] != ':' && text[after] != ' ')) {
      throw;
    }
    std::string line = text.substr(at + std::string("RuntimeError: ").size());
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    raise(std::move(line));
  }
}

}  // namespace detail

// Which code lowering generates.
enum class lowering_path {
  // PyTorch's own code generation (codegen_backend_module): what torch._C._jit_to_backend makes.
  native,
  // tbk's lean module: each method calls the backend's typed method directly. Needs an execute
  // policy whose result has a typed form; see docs/lowering.md.
  fast,
};

// Lowers `module` to the backend registered as `backend`: preprocess runs now, compile runs now
// and again on every load, and each method named in `spec` calls the backend's execute.
inline torch::jit::Module lower(const torch::jit::Module& module, const std::string& backend,
                                const c10::impl::GenericDict& spec,
                                lowering_path path = lowering_path::native) {
  detail::check_lowerable(module, backend, spec);
  if (path == lowering_path::native) detail::check_native_parameter_names(module, spec);
  return detail::without_interpreter_traceback(backend, [&] {
    torch::jit::Module lowered =
        path == lowering_path::fast
            ? detail::codegen_fast_module(backend, module, spec)
            : torch::jit::detail::codegen_backend_module(backend, module, spec,
                                                         detail::any_dict_type());
    // Neither code generation can spell every default; the lowered methods get them back.
    detail::keep_parameter_defaults(lowered, module, spec);
    return lowered;
  });
}

inline torch::jit::Module lower(const torch::jit::Module& module, const std::string& backend,
                                const spec_builder& spec,
                                lowering_path path = lowering_path::native) {
  return lower(module, backend, spec.dict(), path);
}

namespace detail {

// Module types that more than one module in the hierarchy rooted at `root` has.
inline std::unordered_set<c10::ClassTypePtr> shared_module_types(const torch::jit::Module& root) {
  std::unordered_set<c10::ClassTypePtr> seen, shared;
  for (const torch::jit::Module& m : root.modules()) {
    if (!seen.insert(m.type()).second) shared.insert(m.type());
  }
  return shared;
}

// The submodule at dotted `path` below `root`, and its parent; clear errors on the way.
inline std::pair<torch::jit::Module, torch::jit::Module> find_submodule(
    const torch::jit::Module& root, const std::string& path) {
  if (path.empty()) raise("tbk::lower_submodules: a submodule path cannot be empty");
  torch::jit::Module parent = root, current = root;
  std::string walked = "the root module";
  std::size_t begin = 0;
  while (begin <= path.size()) {
    const std::size_t end = std::min(path.find('.', begin), path.size());
    const std::string atom = path.substr(begin, end - begin);
    if (!current.hasattr(atom)) {
      raise("tbk::lower_submodules: '" + path + "' does not exist: " + walked + " (" +
            current.type()->name()->qualifiedName() + ") has no attribute '" + atom + "'");
    }
    const c10::IValue value = current.attr(atom);
    if (!value.isModule()) {
      raise("tbk::lower_submodules: '" + path + "' is not a module: attribute '" + atom + "' of " +
            walked + " is " + describe(value));
    }
    parent = current;
    current = value.toModule();
    walked = "'" + path.substr(0, end) + "'";
    begin = end + 1;
  }
  return {parent, current};
}

}  // namespace detail

// Lowers only the submodules at the given dotted paths ("encoder.block1") to `backend`; the rest
// of the module keeps running as TorchScript. Works on a clone: `module` is not changed. As with
// PyTorch's own selective lowering, `module` must not contain lowered modules already (their
// handles cannot be deep-copied): lower every path for one backend in one call.
inline torch::jit::Module lower_submodules(const torch::jit::Module& module,
                                           const std::vector<std::string>& paths,
                                           const std::string& backend,
                                           const c10::impl::GenericDict& spec) {
  if (paths.empty()) detail::raise("tbk::lower_submodules: no submodule path given");
  torch::jit::Module root = module.clone();
  const auto shared = detail::shared_module_types(root);
  std::unordered_map<c10::TypePtr, c10::TypePtr> lowered_types;

  for (const std::string& path : paths) {
    detail::find_submodule(module, path);  // errors name the caller's types, not the clone's
    auto [parent, child] = detail::find_submodule(root, path);
    for (const auto& [role, m] : {std::pair<const char*, torch::jit::Module>{"its parent", parent},
                                  {"the submodule", child}}) {
      if (shared.count(m.type()) != 0) {
        detail::raise("tbk::lower_submodules: cannot lower '" + path + "': the type of " + role +
                      " (" + m.type()->name()->qualifiedName() +
                      ") is shared by several submodules, and lowering changes it for all of "
                      "them; give each submodule on the path its own type");
      }
    }
    torch::jit::Module lowered = lower(child, backend, spec);
    const std::string attribute = path.substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1);
    parent.type()->unsafeChangeAttributeType(attribute, lowered.type());
    parent.setattr(attribute, lowered._ivalue());
    lowered_types[child.type()] = lowered.type();
  }

  // Every graph and schema in the hierarchy that mentions a lowered submodule's old type now
  // names its new one.
  auto remap = [&](c10::TypePtr type) {
    auto found = lowered_types.find(type);
    return found == lowered_types.end() ? type : found->second;
  };
  for (const torch::jit::Module& m : root.modules()) {
    for (torch::jit::Function* fn : m.type()->methods()) {
      toGraphFunction(*fn).graph()->remapTypes(remap);
      fn->setSchema(fn->getSchema().cloneWithRemappedTypes(remap));
    }
  }
  return root;
}

inline torch::jit::Module lower_submodules(const torch::jit::Module& module,
                                           const std::vector<std::string>& paths,
                                           const std::string& backend, const spec_builder& spec) {
  return lower_submodules(module, paths, backend, spec.dict());
}

}  // namespace tbk
