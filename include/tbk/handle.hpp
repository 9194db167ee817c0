// tbk/handle.hpp: typed handles. Whatever a compile policy returns for a method is boxed in a
// capsule together with the method's name, and handed back to execute as `const Handle&`.
#pragma once

#include <tbk/detail/errors.hpp>

#include <ATen/core/ivalue.h>  // c10::IValue::make_capsule
#include <torch/custom_class.h>  // torch::CustomClassHolder

#include <string>   // std::string
#include <utility>  // std::move

namespace tbk::detail {

// Non-template part of every boxed handle: which method it was compiled for, so that call-time
// errors can name the method (PyTorch's execute() is only given the handle).
struct handle_box_base : torch::CustomClassHolder {
  explicit handle_box_base(std::string method_name) : method(std::move(method_name)) {}
  std::string method;
};

template <class Handle>
struct handle_box final : handle_box_base {
  handle_box(std::string method_name, Handle handle)
      : handle_box_base(std::move(method_name)), value(std::move(handle)) {}
  Handle value;
};

template <class Handle>
c10::IValue box_handle(std::string method, Handle&& handle) {
  return c10::IValue::make_capsule(c10::make_intrusive<handle_box<std::decay_t<Handle>>>(
      std::move(method), std::forward<Handle>(handle)));
}

// The boxed handle inside `handle`'s capsule, or nullptr when `handle` is not a capsule.
inline const handle_box_base* peek_handle(const c10::IValue& handle) {
  if (!handle.isCapsule()) return nullptr;
  const auto* target = static_cast<const c10::intrusive_ptr_target*>(handle.internalToPointer());
  return dynamic_cast<const handle_box_base*>(target);
}

[[noreturn]] inline void raise_foreign_handle(const std::string& backend,
                                              const c10::IValue& handle) {
  raise(backend + ": execute was given a handle (" + describe(handle) +
        ") that this backend's compile did not make; call the lowered module's methods "
        "instead of the backend's execute directly");
}

// The typed handle inside `handle`; a clear error when it was made by anything else.
template <class Handle>
const handle_box<Handle>& unbox_handle(const c10::IValue& handle, const std::string& backend) {
  const auto* box = dynamic_cast<const handle_box<Handle>*>(peek_handle(handle));
  if (box == nullptr) raise_foreign_handle(backend, handle);
  return *box;
}

}  // namespace tbk::detail
