// handwritten_add_sub.hpp: the add/sub backend written by hand against PyTorch's
// PyTorchBackendInterface, the way PyTorch's own test backend is, with the checks tbk's version
// gets for free. Kept for comparison (line counts, benchmarks); not part of the library.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/jit/backends/backend.h>
#include <torch/csrc/jit/backends/backend_preprocess.h>

#include <string>

namespace handwritten {

class add_sub_backend : public torch::jit::PyTorchBackendInterface {
 public:
  bool is_available() override { return true; }

  c10::impl::GenericDict compile(c10::IValue /*processed*/,
                                 c10::impl::GenericDict method_compile_spec) override {
    auto handles = c10::Dict<std::string, std::string>();
    for (const auto& entry : method_compile_spec) {
      const std::string& method = entry.key().toStringRef();
      if (method != "forward" && method != "accum" && method != "sub_accum") {
        TORCH_CHECK(false, "handwritten_backend.", method, ": cannot lower method '", method,
                    "'; supported methods: forward, accum, sub_accum");
      }
      handles.insert(method, method);
    }
    return c10::impl::toGenericDict(handles);
  }

  c10::impl::GenericList execute(c10::IValue handle, c10::impl::GenericList inputs) override {
    const std::string& method = handle.toStringRef();
    TORCH_CHECK(inputs.size() > 0, "handwritten_backend.", method,
                "(): expected at least 1 input, got 0");
    for (size_t i = 0; i < inputs.size(); ++i) {
      TORCH_CHECK(inputs.get(i).isTensor(), "handwritten_backend.", method, "(): inputs[", i,
                  "] should be Tensor, got ", inputs.get(i).tagKind());
    }
    at::Tensor accum = inputs.get(0).toTensor().clone();
    at::Tensor sub_accum = inputs.get(0).toTensor().clone();
    for (size_t i = 1; i < inputs.size(); ++i) {
      accum.add_(inputs.get(i).toTensor(), 1.0);
      sub_accum.sub_(inputs.get(i).toTensor(), 1.0);
    }
    c10::List<at::Tensor> outputs;
    if (method == "accum" || method == "forward") outputs.emplace_back(accum);
    if (method == "sub_accum" || method == "forward") outputs.emplace_back(sub_accum);
    return c10::impl::toList(outputs);
  }
};

inline c10::IValue preprocess(const torch::jit::Module& module,
                              const c10::Dict<c10::IValue, c10::IValue>& /*method_compile_spec*/,
                              const torch::jit::BackendDebugHandleGenerator& /*generate*/) {
  return module._ivalue();
}

// Both halves, registered separately; a process that links only one of them half-works.
inline void register_backend(const std::string& name) {
  static auto cls = torch::jit::backend<add_sub_backend>(name);
  static auto pre = torch::jit::backend_preprocess_register(name, preprocess);
}

}  // namespace handwritten
