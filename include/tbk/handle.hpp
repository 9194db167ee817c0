// tbk/handle.hpp: typed handles. Whatever a compile policy returns for a method is boxed in a
// capsule together with the method's name, and handed back to execute as `const Handle&`.
#pragma once

#include <tbk/detail/errors.hpp>

#include <ATen/core/ivalue.h>  // c10::IValue::make_capsule
#include <torch/custom_class.h>  // torch::CustomClassHolder

#include <string>   // std::string
#include <utility>  // std::move
#include <vector>   // std::vector

namespace tbk::detail {

// Non-template part of every boxed handle: which method it was compiled for, so that call-time
// errors can name the method (PyTorch's execute() is only given the handle).
// The outputs the method declares are kept too (empty when unknown), so that call-time results
// can be checked against them.
struct handle_box_base : torch::CustomClassHolder {
  handle_box_base(std::string method_name, std::vector<c10::TypePtr> declared_outputs)
      : method(std::move(method_name)), outputs(std::move(declared_outputs)) {}
  std::string method;
  std::vector<c10::TypePtr> outputs;
  std::string origin;  // a region of tbk::partition: which, and its nodes (tbk::region_option)
};

template <class Handle>
struct handle_box final : handle_box_base {
  handle_box(std::string method_name, std::vector<c10::TypePtr> declared_outputs, Handle handle)
      : handle_box_base(std::move(method_name), std::move(declared_outputs)),
        value(std::move(handle)) {}
  Handle value;
};

template <class Handle>
c10::IValue box_handle(std::string method, std::vector<c10::TypePtr> outputs, Handle&& handle,
                       std::string origin = {}) {
  auto box = c10::make_intrusive<handle_box<std::decay_t<Handle>>>(std::move(method), std::move(outputs),
                                                                   std::forward<Handle>(handle));
  box->origin = std::move(origin);
  return c10::IValue::make_capsule(std::move(box));
}

[[noreturn]] inline void raise_foreign_handle(const std::string& backend,
                                              const c10::IValue& handle) {
  raise(backend + ": execute was given a handle (" + describe(handle) +
        ") that this backend's compile did not make; call the lowered module's methods "
        "instead of the backend's execute directly");
}

// The typed handle inside `handle`; a clear error when it was made by anything else. (On every
// call: one cast, straight to the final type.)
template <class Handle>
const handle_box<Handle>& unbox_handle(const c10::IValue& handle, const std::string& backend) {
  if (!handle.isCapsule()) raise_foreign_handle(backend, handle);
  const auto* box = dynamic_cast<const handle_box<Handle>*>(
      static_cast<const c10::intrusive_ptr_target*>(handle.internalToPointer()));
  if (box == nullptr) raise_foreign_handle(backend, handle);
  return *box;
}

}  // namespace tbk::detail
