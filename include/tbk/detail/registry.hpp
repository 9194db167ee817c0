// tbk/detail/registry.hpp: registering a backend's two halves with PyTorch under one name, and
// the list of names this process has. Non-template: the template in tbk/register.hpp only
// hands over a factory and a preprocess function.
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/backend_base.hpp>
#include <tbk/detail/errors.hpp>

#include <ATen/core/jit_type.h>                          // c10::AnyType, c10::BoolType
#include <ATen/core/stack.h>                             // torch::jit::Stack, pop, push
#include <torch/csrc/jit/backends/backend_preprocess.h>  // torch::jit::backend_preprocess_register
#include <torch/custom_class.h>                          // torch::class_, torch::getCustomClass

#include <algorithm>  // std::any_of
#include <cctype>     // std::isalnum
#include <mutex>      // std::mutex, std::lock_guard
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk::detail {

using backend_factory = c10::intrusive_ptr<backend_base> (*)();
using preprocess_function = c10::IValue (*)(const torch::jit::Module&, const compile_spec&);
using method_check_function = void (*)(const std::string& backend, const torch::jit::Module&,
                                       const c10::impl::GenericDict& spec);

// What tbk keeps for each name it registered.
struct registered_backend {
  std::string name;
  method_check_function check_methods;
};

// PyTorch's torchbind namespace for backends: classes are __torch__.torch.classes.__backends__.X
inline const char* backends_namespace() { return "__backends__"; }

inline std::string backend_class_name(const std::string& name) {
  return std::string("__torch__.torch.classes.") + backends_namespace() + "." + name;
}

struct registry_state {
  std::mutex mutex;
  std::vector<registered_backend> backends;
  std::vector<std::string> failures;  // registrations made at load time that failed
};

inline registry_state& registry() {
  static registry_state state;
  return state;
}

inline std::vector<std::string> registered_names() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  std::vector<std::string> names;
  for (const auto& b : registry().backends) names.push_back(b.name);
  return names;
}

// The lowering-time checks of the backend tbk registered as `name`, or nullptr.
inline method_check_function method_checks_of(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (const auto& b : registry().backends) {
    if (b.name == name) return b.check_methods;
  }
  return nullptr;
}

inline std::string joined_names(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string text;
  for (const std::string& n : names) text += (text.empty() ? "" : ", ") + n;
  return text;
}

inline bool is_identifier(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// The backend object inside a torchbind `self`.
inline backend_base& backend_of(const c10::IValue& self) {
  const c10::IValue& slot = self.toObjectRef().getSlot(0);
  const auto* target = static_cast<const c10::intrusive_ptr_target*>(slot.internalToPointer());
  return *static_cast<backend_base*>(
      static_cast<torch::CustomClassHolder*>(const_cast<c10::intrusive_ptr_target*>(target)));
}

// PyTorch's untyped schemas (backend.h), plus an __init__ whose `self` is Any so that one C++
// type can back classes of several names.
inline c10::FunctionSchema untyped_schema(const std::string& name,
                                          std::vector<c10::Argument> arguments,
                                          c10::TypePtr result) {
  arguments.insert(arguments.begin(), c10::Argument("self", c10::AnyType::get()));
  return c10::FunctionSchema(name, "", std::move(arguments), {c10::Argument("", std::move(result))});
}

inline void register_backend_class(const std::string& name, backend_factory make) {
  auto any_dict = c10::DictType::create(c10::StringType::get(), c10::AnyType::get());
  auto any_list = c10::ListType::create(c10::AnyType::get());
  torch::class_<backend_base>(backends_namespace(), name)
      ._def_unboxed(
          "__init__",
          [make, name](torch::jit::Stack& stack) {
            c10::IValue self = torch::jit::pop(stack);
            c10::intrusive_ptr<backend_base> backend = make();
            backend->set_name(name);
            self.toObjectRef().setSlot(0, c10::IValue::make_capsule(std::move(backend)));
            torch::jit::push(stack, c10::IValue());
          },
          untyped_schema("__init__", {}, c10::NoneType::get()))
      ._def_unboxed(
          "is_available",
          // True, or an error that carries the availability policy's reason: PyTorch's lowered
          // modules would otherwise say only "Backend is not available."
          [](torch::jit::Stack& stack) {
            c10::IValue self = torch::jit::pop(stack);
            backend_of(self).require_available();
            torch::jit::push(stack, true);
          },
          untyped_schema("is_available", {}, c10::BoolType::get()))
      ._def_unboxed(
          "compile",
          [](torch::jit::Stack& stack) {
            auto spec = torch::jit::pop(stack).toGenericDict();
            c10::IValue processed = torch::jit::pop(stack);
            c10::IValue self = torch::jit::pop(stack);
            torch::jit::push(stack, backend_of(self).compile(std::move(processed), std::move(spec)));
          },
          untyped_schema("compile",
                         {c10::Argument("processed", c10::AnyType::get()),
                          c10::Argument("method_compile_spec", any_dict)},
                         any_dict))
      ._def_unboxed(
          "execute",
          [](torch::jit::Stack& stack) {
            auto inputs = torch::jit::pop(stack).toList();
            c10::IValue handle = torch::jit::pop(stack);
            c10::IValue self = torch::jit::pop(stack);
            torch::jit::push(stack, backend_of(self).execute(std::move(handle), std::move(inputs)));
          },
          untyped_schema("execute",
                         {c10::Argument("handle", c10::AnyType::get()),
                          c10::Argument("input", any_list)},
                         any_list));
}

// Registers both halves under `name`, or neither: the name is checked before either is made.
inline void register_backend(const std::string& name, backend_factory make,
                             preprocess_function preprocess, method_check_function check) {
  if (!is_identifier(name)) {
    raise("tbk::register_backend: '" + name +
          "' is not a valid backend name; use letters, digits and '_', not starting with a digit");
  }
  std::lock_guard<std::mutex> lock(registry().mutex);
  auto& backends = registry().backends;
  const bool known = std::any_of(backends.begin(), backends.end(),
                                 [&](const registered_backend& b) { return b.name == name; });
  if (known || torch::getCustomClass(backend_class_name(name)) != nullptr) {
    raise("tbk::register_backend: a backend named '" + name +
          "' is already registered in this process; each name can be registered once (drop the "
          "second registration, or give it another name)");
  }
  try {
    torch::jit::backend_preprocess_register(
        name, [name, preprocess](const torch::jit::Module& module,
                                 const c10::Dict<c10::IValue, c10::IValue>& spec,
                                 const torch::jit::BackendDebugHandleGenerator&) {
          return preprocess(module, compile_spec(name, spec));
        });
  } catch (const c10::Error& e) {
    raise("tbk::register_backend: a preprocess function for backend '" + name +
          "' was already registered outside tbk (" + e.what_without_backtrace() +
          "); each name can be registered once");
  }
  register_backend_class(name, make);
  backends.push_back({name, check});
}

// Registration from a static initializer: an exception there would end the process before
// main, so the failure is printed and kept for tbk::lower and tbk::load to report.
inline bool register_at_load(const std::string& name, backend_factory make,
                             preprocess_function preprocess, method_check_function check,
                             const char* where) {
  try {
    register_backend(name, make, preprocess, check);
    return true;
  } catch (const std::exception& e) {
    std::string text = std::string(where) + ": TBK_REGISTER_BACKEND failed: " + e.what();
    TORCH_WARN(text);
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().failures.push_back(std::move(text));
    return false;
  }
}

inline std::vector<std::string> registration_failures() {
  std::lock_guard<std::mutex> lock(registry().mutex);
  return registry().failures;
}

}  // namespace tbk::detail
