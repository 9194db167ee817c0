// add_sub.hpp: the add/sub reference backend: for inputs x0, x1, ... it computes
// accum = x0 + x1 + ... and sub_accum = x0 - x1 - ..., as PyTorch's test custom backend does.
#pragma once
#include <tbk/backend.hpp>   // what a backend author needs: the adapter ...
#include <tbk/register.hpp>  // ... and TBK_REGISTER_BACKEND

#include "add_sub_kernel.hpp"

#include <stdexcept>  // std::invalid_argument
#include <vector>     // std::vector

struct add_sub_handle {
  bool accum, sub_accum;  // which outputs the method returns
  bool recycle_outputs;   // option "recycle_outputs": reuse large outputs' memory (per thread)
};

struct add_sub_compile {  // load time, once per lowered method
  static add_sub_handle compile(const tbk::method_spec& method, const c10::IValue& /*payload*/) {
    const bool recycle = method.get<bool>("recycle_outputs", false);
    if (method.name() == "forward") return {true, true, recycle};
    if (method.name() == "accum") return {true, false, recycle};
    if (method.name() == "sub_accum") return {false, true, recycle};
    throw std::invalid_argument("cannot lower method '" + method.name() +
                                "'; supported methods: forward, accum, sub_accum");
  }
};

struct add_sub_execute {  // call time: parameters and result deduced from this signature
  static std::vector<at::Tensor> execute(const add_sub_handle& handle, const at::Tensor& first,
                                         tbk::rest<at::Tensor> others) {
    auto [accum, sub_accum] = add_sub_kernel::accumulate(first, others, handle.recycle_outputs);  // add_sub_kernel.hpp
    std::vector<at::Tensor> out;
    if (handle.accum) out.push_back(accum);
    if (handle.sub_accum) out.push_back(sub_accum);
    return out;
  }
};

using add_sub_backend = tbk::backend<add_sub_compile, add_sub_execute>;
