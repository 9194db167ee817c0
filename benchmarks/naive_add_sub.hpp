// naive_add_sub.hpp: two kernels behind tbk's policies for the benchmarks. The hand-written
// backend's kernel (clone the first input, then add_/sub_ the rest): with the hand-written backend
// beside it, it isolates what the template layer costs. The scripted module's kernel (a + b,
// a - b): with the scripted module beside it, what a lowering path costs.
#pragma once

#include <ATen/ATen.h>
#include <tbk/backend.hpp>

#include <string>  // std::string
#include <vector>  // std::vector

struct naive_add_sub_compile {
  static std::string compile(const tbk::method_spec& method, const c10::IValue&) {
    return method.name();
  }
};

struct naive_add_sub_execute {
  static std::vector<at::Tensor> execute(const std::string& method, const at::Tensor& first,
                                         tbk::rest<at::Tensor> others) {
    at::Tensor accum = first.clone(), sub_accum = first.clone();
    for (const at::Tensor& x : others) {
      accum.add_(x, 1.0);
      sub_accum.sub_(x, 1.0);
    }
    std::vector<at::Tensor> out;
    if (method == "accum" || method == "forward") out.push_back(accum);
    if (method == "sub_accum" || method == "forward") out.push_back(sub_accum);
    return out;
  }
};

using naive_add_sub_backend = tbk::backend<naive_add_sub_compile, naive_add_sub_execute>;

// The scripted module's own kernel, a + b and a - b (two ATen calls, new outputs), behind tbk's
// policies: with the plain scripted module beside it, it isolates what a lowering path costs.
struct aten_add_sub_execute {
  static std::vector<at::Tensor> execute(const std::string&, const at::Tensor& a, const at::Tensor& b) {
    return {a + b, a - b};
  }
};

using aten_add_sub_backend = tbk::backend<naive_add_sub_compile, aten_add_sub_execute>;
