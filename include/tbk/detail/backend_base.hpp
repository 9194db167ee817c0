// tbk/detail/backend_base.hpp: the non-template part of every tbk backend: its registered name
// and its availability, shared by the torchbind entry points in tbk/detail/registry.hpp.
#pragma once

#include <tbk/detail/errors.hpp>

#include <torch/csrc/jit/backends/backend_interface.h>  // torch::jit::PyTorchBackendInterface
#include <torch/csrc/jit/ir/ir.h>                        // torch::jit::Node

#include <string>  // std::string

namespace tbk::detail {

// A backend's capability hook as registration keeps it: why `backend` cannot run the node, as
// tbk::partition's report says it ("not supported by the backend: <its reason>"); empty when it
// can.
using supports_function = std::string (*)(const std::string& backend, const torch::jit::Node&);

// An availability policy's answer, as the backend instance keeps it.
struct availability_answer {
  bool available;
  std::string reason;  // why not, when not
};

class backend_base : public torch::jit::PyTorchBackendInterface {
 public:
  // The name the backend was registered under ("" until tbk's registration sets it).
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // The availability policy's answer, asked once when the instance was made, and its reason.
  bool is_available() override { return answer_.available; }
  const availability_answer& availability_answer_of_instance() const { return answer_; }

  // Throws "<name> is not available: <reason>" unless available.
  void require_available() const {
    if (!answer_.available) raise(display_name() + " is not available: " + answer_.reason);
  }

 protected:
  explicit backend_base(availability_answer answer) : answer_(std::move(answer)) {}

  // The name in messages: the registered one, or a placeholder when the class was registered
  // with PyTorch's torch::jit::backend<T> instead of tbk.
  const std::string& display_name() const {
    static const std::string unnamed = "tbk backend";
    return name_.empty() ? unnamed : name_;
  }

 private:
  std::string name_;
  availability_answer answer_;
};

}  // namespace tbk::detail
