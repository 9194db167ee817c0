// naive_add_sub.hpp: the hand-written backend's kernel (clone the first input, then add_/sub_
// the rest) behind tbk's policies: with the hand-written backend beside it, it isolates what
// the template layer costs.
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
