// tbk/detail/registry.hpp: registering a backend's two halves with PyTorch under one name, and
// finding what any library of this process registered (through PyTorch's process-wide class
// registry). Non-template: the template in tbk/register.hpp only hands over a factory and hooks.
#pragma once

#include <tbk/detail/backend_base.hpp>
#include <tbk/detail/errors.hpp>
#include <tbk/detail/fast_entry.hpp>
#include <tbk/detail/torchbind.hpp>

#include <ATen/core/jit_type.h>                          // c10::AnyType, c10::BoolType
#include <ATen/core/stack.h>                             // torch::jit::Stack, pop, push
#include <torch/csrc/jit/backends/backend_preprocess.h>  // torch::jit::backend_preprocess_register
#include <torch/csrc/jit/ir/ir.h>                        // torch::jit::Node
#include <torch/custom_class.h>                          // torch::class_, torch::getCustomClass

#include <functional> // std::function
#include <cctype>     // std::isalnum
#include <mutex>      // std::mutex, std::lock_guard
#include <string>     // std::string
#include <utility>    // std::pair
#include <vector>     // std::vector

namespace tbk::detail {

using backend_factory = c10::intrusive_ptr<backend_base> (*)();
using preprocess_function = c10::IValue (*)(const std::string& backend, const torch::jit::Module&,
                                            const c10::impl::GenericDict& spec);
using method_check_function = void (*)(const std::string& backend, const torch::jit::Module&,
                                       const c10::impl::GenericDict& spec);

// What a backend type hands to registration (the template side of tbk::register_backend).
struct backend_parts {
  backend_factory make;
  preprocess_function preprocess;
  method_check_function check_methods;
  supports_function supports;  // null: the backend cannot be partitioned for
  fast_entry_points fast_methods;
};

// PyTorch's registry of torchbind classes is process-wide; a static of tbk's would not be (with
// -fvisibility=hidden, as pybind11 and most backend libraries build, every library gets its own
// copy of an inline function's static). So all that tbk needs to know about a backend another
// library registered travels through the backend's class: its lowering-time hooks are methods
// of the class, and the class is found by name. The hooks ignore `self`: tbk calls them with
// None, without making a backend instance.
inline const char* check_methods_hook() { return "__tbk_check_methods"; }
inline const char* preprocess_hook() { return "__tbk_preprocess"; }
inline const char* supports_hook() { return "__tbk_supports"; }

// A graph node, passed to a backend's supports hook as a Capsule (read with static_cast only:
// the libraries of one process may each have their own copy of this type).
struct node_capsule : torch::CustomClassHolder {
  explicit node_capsule(const torch::jit::Node* n) : node(n) {}
  const torch::jit::Node* node;
};

// A hook method of a tbk backend's class, called with `self` None.
inline c10::IValue call_class_hook(const c10::ClassTypePtr& cls, const char* hook,
                                   const torch::jit::Module& module,
                                   const c10::impl::GenericDict& spec) {
  torch::jit::Stack stack{c10::IValue(), c10::IValue(module._ivalue()), c10::IValue(spec)};
  cls->getMethod(hook).run(stack);
  return torch::jit::pop(stack);
}

// A backend registered through tbk, by any library of this process.
struct registered_backend {
  std::string name;
  c10::ClassTypePtr cls;

  // The backend's preprocess hook (what backend_preprocess_register has for it).
  c10::IValue preprocess(const torch::jit::Module& module, const c10::impl::GenericDict& spec) const {
    return call_class_hook(cls, preprocess_hook(), module, spec);
  }
  // Throws when a lowered method does not fit the execute policy's signature.
  void check_methods(const torch::jit::Module& module, const c10::impl::GenericDict& spec) const {
    call_class_hook(cls, check_methods_hook(), module, spec);
  }
  // Whether the backend declares a supports hook (tbk::partition needs one).
  bool has_supports() const { return cls->findMethod(supports_hook()) != nullptr; }
  // The backend's answer for `node`: why it cannot run it, empty when it can (a bool from a
  // library built with an older tbk is read as before).
  std::string refusal(const torch::jit::Node& node) const {
    torch::jit::Stack stack{c10::IValue(),
                            c10::IValue::make_capsule(c10::make_intrusive<node_capsule>(&node))};
    cls->getMethod(supports_hook()).run(stack);
    const c10::IValue answer = torch::jit::pop(stack);
    if (answer.isBool()) return answer.toBool() ? std::string() : "not supported by the backend";
    return answer.toStringRef();
  }
};

// The backend registered through tbk as `name`; empty when none is (or it was registered some
// other way, e.g. with torch::jit::backend<T>).
inline c10::optional<registered_backend> find_registered(const std::string& name) {
  c10::ClassTypePtr cls = torch::getCustomClass(backend_class_name(name));
  if (cls == nullptr || cls->findMethod(check_methods_hook()) == nullptr) return c10::nullopt;
  return registered_backend{name, std::move(cls)};
}

// The classes whose methods include `hook` (their `self` is typed as the class), in the order
// they were registered.
inline std::vector<c10::ClassTypePtr> classes_with_hook(const std::string& hook) {
  std::vector<c10::ClassTypePtr> out;
  for (const c10::FunctionSchema& schema : torch::customClassSchemasForBCCheck()) {
    if (schema.name() != hook || schema.arguments().empty()) continue;
    if (auto cls = schema.arguments()[0].type()->cast<c10::ClassType>()) out.push_back(cls);
  }
  return out;
}

inline std::vector<std::string> registered_names() {
  std::vector<std::string> names;
  for (const auto& cls : classes_with_hook(check_methods_hook())) names.push_back(cls->name()->name());
  return names;
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

// A method schema whose `self` is the class itself, so that the class can be found from the
// schema (classes_with_hook).
inline c10::FunctionSchema hook_schema(const c10::ClassTypePtr& cls, const char* hook,
                                       c10::TypePtr result) {
  const c10::DictTypePtr any_dict = any_dict_type();
  return c10::FunctionSchema(hook, "",
                             {c10::Argument("self", cls), c10::Argument("module", c10::AnyType::get()),
                              c10::Argument("spec", any_dict)},
                             {c10::Argument("", std::move(result))});
}

// One method a backend's class gets: its name, schema and boxed function.
struct class_method {
  std::string name;
  c10::FunctionSchema schema;
  std::function<void(torch::jit::Stack&)> run;
};

// The methods every tbk backend class has: PyTorch's four, with PyTorch's untyped schemas.
inline std::vector<class_method> interface_methods(const std::string& name, backend_factory make) {
  const c10::DictTypePtr any_dict = any_dict_type();
  auto any_list = c10::ListType::create(c10::AnyType::get());
  std::vector<class_method> methods;
  methods.push_back({"__init__", method_schema("__init__", {}, c10::NoneType::get()),
                     [make, name](torch::jit::Stack& stack) {
                       c10::IValue self = torch::jit::pop(stack);
                       c10::intrusive_ptr<backend_base> backend = make();
                       backend->set_name(name);
                       self.toObjectRef().setSlot(0, c10::IValue::make_capsule(std::move(backend)));
                       torch::jit::push(stack, c10::IValue());
                     }});
  // True, or an error that carries the availability policy's reason: PyTorch's lowered modules
  // would otherwise say only "Backend is not available."
  methods.push_back({"is_available", method_schema("is_available", {}, c10::BoolType::get()),
                     [](torch::jit::Stack& stack) {
                       c10::IValue self = torch::jit::pop(stack);
                       backend_of(self).require_available();
                       torch::jit::push(stack, true);
                     }});
  methods.push_back(
      {"compile",
       method_schema("compile",
                     {c10::Argument("processed", c10::AnyType::get()),
                      c10::Argument("method_compile_spec", any_dict)},
                     any_dict),
       [](torch::jit::Stack& stack) {
         auto spec = torch::jit::pop(stack).toGenericDict();
         c10::IValue processed = torch::jit::pop(stack);
         c10::IValue self = torch::jit::pop(stack);
         torch::jit::push(stack, backend_of(self).compile(std::move(processed), std::move(spec)));
       }});
  methods.push_back(
      {"execute",
       method_schema("execute",
                     {c10::Argument("handle", c10::AnyType::get()), c10::Argument("input", any_list)},
                     any_list),
       [](torch::jit::Stack& stack) {
         auto inputs = torch::jit::pop(stack).toList();
         c10::IValue handle = torch::jit::pop(stack);
         c10::IValue self = torch::jit::pop(stack);
         torch::jit::push(stack, backend_of(self).execute(std::move(handle), std::move(inputs)));
       }});
  return methods;
}

// The fast path's typed methods: (self, handle, inputs...) -> result.
inline std::vector<class_method> fast_methods_of(const backend_parts& parts) {
  std::vector<class_method> methods;
  for (const auto& [method, entry] : parts.fast_methods) {
    std::vector<c10::Argument> arguments{c10::Argument("handle", c10::AnyType::get())};
    for (std::size_t i = 0; i < method.inputs.size(); ++i) {
      arguments.emplace_back("input" + std::to_string(i), method.inputs[i]);
    }
    methods.push_back({method.name, method_schema(method.name, std::move(arguments), method.result), entry});
  }
  return methods;
}

// A hook's arguments, (self, module, spec), taken off the stack; self is not read.
inline std::pair<torch::jit::Module, c10::impl::GenericDict> pop_hook_arguments(torch::jit::Stack& stack) {
  auto spec = torch::jit::pop(stack).toGenericDict();
  torch::jit::Module module(torch::jit::pop(stack).toObject());
  torch::jit::drop(stack, 1);
  return {std::move(module), std::move(spec)};
}

// The lowering-time hooks (see check_methods_hook), called with self None.
inline std::vector<class_method> hook_methods(const std::string& name, const c10::ClassTypePtr& cls,
                                              const backend_parts& parts) {
  std::vector<class_method> methods;
  methods.push_back({check_methods_hook(), hook_schema(cls, check_methods_hook(), c10::NoneType::get()),
                     [name, check = parts.check_methods](torch::jit::Stack& stack) {
                       const auto [module, spec] = pop_hook_arguments(stack);
                       check(name, module, spec);
                       torch::jit::push(stack, c10::IValue());
                     }});
  methods.push_back({preprocess_hook(), hook_schema(cls, preprocess_hook(), c10::AnyType::get()),
                     [name, preprocess = parts.preprocess](torch::jit::Stack& stack) {
                       const auto [module, spec] = pop_hook_arguments(stack);
                       torch::jit::push(stack, preprocess(name, module, spec));
                     }});
  if (parts.supports != nullptr) {
    methods.push_back(
        {supports_hook(),
         c10::FunctionSchema(supports_hook(), "",
                             {c10::Argument("self", cls), c10::Argument("node", c10::CapsuleType::get())},
                             {c10::Argument("", c10::StringType::get())}),
         [name, supports = parts.supports](torch::jit::Stack& stack) {
           const c10::IValue capsule = torch::jit::pop(stack);
           torch::jit::drop(stack, 1);
           const auto* node = static_cast<const node_capsule*>(capsule.toCapsule().get())->node;
           torch::jit::push(stack, supports(name, *node));
         }});
  }
  return methods;
}

// Makes the backend's torchbind class. Everything that can fail (schemas, typed methods) is
// made before the class is registered; what follows only adds methods to it.
inline void register_backend_class(const std::string& name, const backend_parts& parts) {
  std::vector<class_method> methods = interface_methods(name, parts.make);
  for (class_method& m : fast_methods_of(parts)) methods.push_back(std::move(m));
  auto cls = torch::class_<backend_base>(backends_namespace(), name);
  const c10::ClassTypePtr type = torch::getCustomClass(backend_class_name(name));
  for (class_method& m : hook_methods(name, type, parts)) methods.push_back(std::move(m));
  for (class_method& m : methods) cls._def_unboxed(m.name, std::move(m.run), std::move(m.schema));
}

// Serializes registrations made through this library (PyTorch's own maps are not guarded: see
// docs/threading.md for what may run at the same time as a registration).
inline std::mutex& registration_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Registers both halves under `name`, or neither: the name is checked against both of PyTorch's
// registries before either half is made, and preprocess (whose registry can only be asked by
// trying) is registered first, so a name taken there leaves nothing behind.
inline void register_parts(const std::string& name, const backend_parts& parts) {
  if (!is_identifier(name)) {
    raise("tbk::register_backend: '" + name +
          "' is not a valid backend name; use letters, digits and '_', not starting with a digit");
  }
  std::lock_guard<std::mutex> lock(registration_mutex());
  if (torch::getCustomClass(backend_class_name(name)) != nullptr) {
    raise("tbk::register_backend: a backend named '" + name +
          "' is already registered in this process; each name can be registered once (drop the "
          "second registration, or give it another name)");
  }
  try {
    torch::jit::backend_preprocess_register(
        name, [name, preprocess = parts.preprocess](const torch::jit::Module& module,
                                 const c10::Dict<c10::IValue, c10::IValue>& spec,
                                 const torch::jit::BackendDebugHandleGenerator&) {
          return preprocess(name, module, spec);
        });
  } catch (const c10::Error& e) {
    raise("tbk::register_backend: a preprocess function for backend '" + name +
          "' was already registered outside tbk (" + e.what_without_backtrace() +
          "); each name can be registered once");
  }
  register_backend_class(name, parts);
}

// A registration that failed at load time, kept where every library of the process finds it:
// a torchbind class of its own whose one method returns the text.
inline const char* failure_hook() { return "__tbk_registration_failure"; }

inline void record_failure(const std::string& text) {
  // (the class is a torchbind class of backend_base, as every backend's: another C++ type
  // would instantiate torch::class_ once more in every translation unit that registers)
  for (int k = 0;; ++k) {
    const std::string cls_name = "failure_" + std::to_string(k);
    const std::string qualified = "__torch__.torch.classes.__tbk_failures__." + cls_name;
    if (torch::getCustomClass(qualified)) continue;
    auto cls = torch::class_<backend_base>("__tbk_failures__", cls_name);
    cls._def_unboxed(failure_hook(),
                     [text](torch::jit::Stack& stack) {
                       torch::jit::drop(stack, 1);
                       torch::jit::push(stack, text);
                     },
                     c10::FunctionSchema(failure_hook(), "",
                                         {c10::Argument("self", torch::getCustomClass(qualified))},
                                         {c10::Argument("", c10::StringType::get())}));
    return;
  }
}

inline std::vector<std::string> registration_failures() {
  std::vector<std::string> out;
  for (const auto& cls : classes_with_hook(failure_hook())) {
    torch::jit::Stack stack{c10::IValue()};
    cls->getMethod(failure_hook()).run(stack);
    out.push_back(torch::jit::pop(stack).toStringRef());
  }
  return out;
}

// Registration from a static initializer: an exception there would end the process before
// main, so the failure is printed and kept for tbk::lower and tbk::load to report.
inline bool register_at_load(const std::string& name, const backend_parts& parts,
                             const char* where) {
  try {
    register_parts(name, parts);
    return true;
  } catch (const std::exception& e) {
    std::string text = std::string(where) + ": TBK_REGISTER_BACKEND failed: " + e.what();
    TORCH_WARN(text);
    std::lock_guard<std::mutex> lock(registration_mutex());
    record_failure(text);
    return false;
  }
}

// What follows "backend X is not registered" in tbk's errors: what is registered, how to fix
// it, and any TBK_REGISTER_BACKEND that failed when its library was loaded.
inline std::string registration_hint(bool several) {
  std::string text = " (registered through tbk: " + joined_names(registered_names()) +
                     "). Link the library that registers " + (several ? "them" : "it") +
                     " into the program, or load it first (C++: dlopen; Python: "
                     "torch.ops.load_library(path)); a library linked only for its registration "
                     "may have been dropped by the linker's --as-needed (see "
                     "docs/serialization.md)";
  for (const std::string& failure : registration_failures()) text += "\n  note: " + failure;
  return text;
}

}  // namespace tbk::detail
