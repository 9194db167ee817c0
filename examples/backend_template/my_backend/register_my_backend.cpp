// register_my_backend.cpp: the template's backend, "clamp_backend": each lowered method computes
// clamp(x, min, max) of its one float tensor input, min and max from the method's options (floats;
// defaults 0 and 6, ReLU6), in TorchScript, torch.compile, torch.export and, where the build had
// ExecuTorch's runtime (TBK_WITH_EXECUTORCH: tbk.cpp_extension defines it where executorch is
// installed), ExecuTorch programs. Copy the project and replace the policies with your backend's.
#include <ATen/ATen.h>
#include <tbk/backend.hpp>   // tbk::backend, tbk::method_spec
#include <tbk/register.hpp>  // TBK_REGISTER_BACKEND

#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string

struct clamp_handle {
  double min, max;
};

struct clamp_compile {  // load time, once per lowered method
  static clamp_handle compile(const tbk::method_spec& method, const c10::IValue& /*payload*/) {
    const double min = method.get<double>("min", 0.0), max = method.get<double>("max", 6.0);
    if (!(min <= max)) {
      throw std::invalid_argument("option 'min' (" + std::to_string(min) + ") must not exceed 'max' (" +
                                  std::to_string(max) + ")");
    }
    return {min, max};
  }
};

struct clamp_execute {  // call time: the parameters and the result are deduced from this signature
  static at::Tensor execute(const clamp_handle& handle, const at::Tensor& x) {
    return at::clamp(x, handle.min, handle.max);
  }
};

using clamp_backend = tbk::backend<clamp_compile, clamp_execute>;
TBK_REGISTER_BACKEND(clamp_backend, "clamp_backend");

#ifdef TBK_WITH_EXECUTORCH
#include <tbk/executorch.hpp>  // TBK_REGISTER_EXECUTORCH_BACKEND
TBK_REGISTER_EXECUTORCH_BACKEND(clamp_backend, "clamp_backend");
#endif
