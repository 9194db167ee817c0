// tbk/detail/backend_base.hpp: the non-template part of every tbk backend: its registered name
// and its availability, shared by the torchbind entry points in tbk/detail/registry.hpp.
#pragma once

#include <tbk/availability.hpp>
#include <tbk/detail/errors.hpp>

#include <torch/csrc/jit/backends/backend_interface.h>  // torch::jit::PyTorchBackendInterface

#include <string>  // std::string

namespace tbk::detail {

class backend_base : public torch::jit::PyTorchBackendInterface {
 public:
  // The name the backend was registered under ("" until tbk's registration sets it).
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // The availability policy's answer, asked once when the instance was made, with its reason.
  const availability& availability_report() const { return availability_; }

  bool is_available() override { return availability_.available(); }

  // Throws "<name> is not available: <reason>" unless available.
  void require_available() const {
    if (!availability_.available()) {
      raise(display_name() + " is not available: " + availability_.reason());
    }
  }

 protected:
  explicit backend_base(availability answer) : availability_(std::move(answer)) {}

  // The name in messages: the registered one, or a placeholder when the class was registered
  // with PyTorch's torch::jit::backend<T> instead of tbk.
  const std::string& display_name() const {
    static const std::string unnamed = "tbk backend";
    return name_.empty() ? unnamed : name_;
  }

 private:
  std::string name_;
  availability availability_;
};

}  // namespace tbk::detail
