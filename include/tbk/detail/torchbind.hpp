// tbk/detail/torchbind.hpp: the torchbind side of a backend: its class name, the backend object
// inside a torchbind `self`, and the schemas of the methods tbk registers.
#pragma once

#include <tbk/detail/backend_base.hpp>

#include <ATen/core/Dict.h>             // c10::impl::GenericDict
#include <ATen/core/function_schema.h>  // c10::FunctionSchema
#include <ATen/core/ivalue.h>           // c10::IValue
#include <ATen/core/jit_type.h>         // c10::AnyType
#include <torch/custom_class.h>         // torch::CustomClassHolder

#include <string>  // std::string
#include <vector>  // std::vector

namespace tbk::detail {

// PyTorch's torchbind namespace for backends: classes are __torch__.torch.classes.__backends__.X
inline const char* backends_namespace() { return "__backends__"; }

inline std::string backend_class_name(const std::string& name) {
  return std::string("__torch__.torch.classes.") + backends_namespace() + "." + name;
}

// The backend object inside a torchbind `self` (slot 0 holds it as a capsule).
inline backend_base& backend_of(const c10::IValue& self) {
  const c10::IValue& slot = self.toObjectRef().getSlot(0);
  const auto* target = static_cast<const c10::intrusive_ptr_target*>(slot.internalToPointer());
  return *static_cast<backend_base*>(
      static_cast<torch::CustomClassHolder*>(const_cast<c10::intrusive_ptr_target*>(target)));
}

// PyTorch's spelling of compile specs and handle dicts: Dict[str, Any], as a type and empty.
inline c10::DictTypePtr any_dict_type() {
  return c10::DictType::create(c10::StringType::get(), c10::AnyType::get());
}
inline c10::impl::GenericDict make_any_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

// A method schema with `self: Any` first, as PyTorch's backend schemas have.
inline c10::FunctionSchema method_schema(const std::string& name,
                                         std::vector<c10::Argument> arguments,
                                         c10::TypePtr result) {
  arguments.insert(arguments.begin(), c10::Argument("self", c10::AnyType::get()));
  return c10::FunctionSchema(name, "", std::move(arguments), {c10::Argument("", std::move(result))});
}

}  // namespace tbk::detail
