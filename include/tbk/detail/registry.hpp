// tbk/detail/registry.hpp: registering a backend's two halves with PyTorch under one name, and
// the list of names this process has. Non-template: the template in tbk/register.hpp only
// hands over a factory and a preprocess function.
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/detail/backend_base.hpp>
#include <tbk/detail/errors.hpp>
#include <tbk/detail/torchbind.hpp>
#include <tbk/signature.hpp>  // tbk::detail::fast_entry_points

#include <ATen/core/jit_type.h>                          // c10::AnyType, c10::BoolType
#include <ATen/core/stack.h>                             // torch::jit::Stack, pop, push
#include <torch/csrc/jit/backends/backend_preprocess.h>  // torch::jit::backend_preprocess_register
#include <torch/custom_class.h>                          // torch::class_, torch::getCustomClass

#include <algorithm>  // std::any_of
#include <functional> // std::function
#include <cctype>     // std::isalnum
#include <mutex>      // std::mutex, std::lock_guard
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk::detail {

using backend_factory = c10::intrusive_ptr<backend_base> (*)();
using preprocess_function = c10::IValue (*)(const torch::jit::Module&, const compile_spec&);
using method_check_function = void (*)(const std::string& backend, const torch::jit::Module&,
                                       const c10::impl::GenericDict& spec);

// What a backend type hands to registration (the template side of tbk::register_backend).
struct backend_parts {
  backend_factory make;
  preprocess_function preprocess;
  method_check_function check_methods;
  fast_entry_points fast_methods;
};

// What tbk keeps for each name it registered.
struct registered_backend {
  std::string name;
  preprocess_function preprocess;
  method_check_function check_methods;
};

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

// What tbk keeps of the backend it registered as `name`; empty when tbk did not register it.
inline c10::optional<registered_backend> find_registered(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  for (const auto& b : registry().backends) {
    if (b.name == name) return b;
  }
  return c10::nullopt;
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

inline void register_backend_class(const std::string& name, const backend_parts& parts) {
  auto any_dict = c10::DictType::create(c10::StringType::get(), c10::AnyType::get());
  auto any_list = c10::ListType::create(c10::AnyType::get());
  const backend_factory make = parts.make;
  auto cls = torch::class_<backend_base>(backends_namespace(), name);
  // The fast path's typed methods: (self, handle, inputs...) -> result.
  for (const auto& [method, entry] : parts.fast_methods) {
    std::vector<c10::Argument> arguments{c10::Argument("handle", c10::AnyType::get())};
    for (std::size_t i = 0; i < method.inputs.size(); ++i) {
      arguments.emplace_back("input" + std::to_string(i), method.inputs[i]);
    }
    cls._def_unboxed(method.name, entry, method_schema(method.name, std::move(arguments), method.result));
  }
  cls
      ._def_unboxed(
          "__init__",
          [make, name](torch::jit::Stack& stack) {
            c10::IValue self = torch::jit::pop(stack);
            c10::intrusive_ptr<backend_base> backend = make();
            backend->set_name(name);
            self.toObjectRef().setSlot(0, c10::IValue::make_capsule(std::move(backend)));
            torch::jit::push(stack, c10::IValue());
          },
          method_schema("__init__", {}, c10::NoneType::get()))
      ._def_unboxed(
          "is_available",
          // True, or an error that carries the availability policy's reason: PyTorch's lowered
          // modules would otherwise say only "Backend is not available."
          [](torch::jit::Stack& stack) {
            c10::IValue self = torch::jit::pop(stack);
            backend_of(self).require_available();
            torch::jit::push(stack, true);
          },
          method_schema("is_available", {}, c10::BoolType::get()))
      ._def_unboxed(
          "compile",
          [](torch::jit::Stack& stack) {
            auto spec = torch::jit::pop(stack).toGenericDict();
            c10::IValue processed = torch::jit::pop(stack);
            c10::IValue self = torch::jit::pop(stack);
            torch::jit::push(stack, backend_of(self).compile(std::move(processed), std::move(spec)));
          },
          method_schema("compile",
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
          method_schema("execute",
                         {c10::Argument("handle", c10::AnyType::get()),
                          c10::Argument("input", any_list)},
                         any_list));
}

// Registers both halves under `name`, or neither: the name is checked before either is made.
inline void register_backend(const std::string& name, const backend_parts& parts) {
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
        name, [name, preprocess = parts.preprocess](const torch::jit::Module& module,
                                 const c10::Dict<c10::IValue, c10::IValue>& spec,
                                 const torch::jit::BackendDebugHandleGenerator&) {
          return preprocess(module, compile_spec(name, spec));
        });
  } catch (const c10::Error& e) {
    raise("tbk::register_backend: a preprocess function for backend '" + name +
          "' was already registered outside tbk (" + e.what_without_backtrace() +
          "); each name can be registered once");
  }
  register_backend_class(name, parts);
  backends.push_back({name, parts.preprocess, parts.check_methods});
}

// Registration from a static initializer: an exception there would end the process before
// main, so the failure is printed and kept for tbk::lower and tbk::load to report.
inline bool register_at_load(const std::string& name, const backend_parts& parts,
                             const char* where) {
  try {
    register_backend(name, parts);
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

// What follows "backend X is not registered" in tbk's errors: what is registered, how to fix
// it, and any TBK_REGISTER_BACKEND that failed when its library was loaded.
inline std::string registration_hint(bool several) {
  std::string text = " (registered through tbk: " + joined_names(registered_names()) +
                     "). Link the library that registers " + (several ? "them" : "it") +
                     " into the program, or load it first (C++: dlopen; Python: "
                     "torch.ops.load_library(path))";
  for (const std::string& failure : registration_failures()) text += "\n  note: " + failure;
  return text;
}

}  // namespace tbk::detail
