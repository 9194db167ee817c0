// tbk/testing/compare.hpp: how the conformance kit (tbk/testing.hpp) compares what a lowered
// module returned with the reference: structure first, then dtype, shape and device, then values
// within a tolerance; and what a caller may do to a result in place. Non-template; returns what
// differs as text, or "" when nothing does.
#pragma once

#include <tbk/detail/errors.hpp>  // tbk::detail::describe

#include <ATen/ATen.h>         // at::allclose, at::equal
#include <ATen/core/ivalue.h>  // c10::IValue

#include <cmath>    // std::abs, std::isnan, INFINITY
#include <sstream>  // std::ostringstream
#include <string>   // std::string
#include <vector>   // std::vector

namespace tbk::testing {

// How close floating-point results must be: |got - want| <= atol + rtol * |want|, elementwise.
struct kit_tolerance {
  double rtol = 1e-5;
  double atol = 1e-8;
};

inline std::string compare_tensors(const at::Tensor& got, const at::Tensor& want,
                                   const kit_tolerance& tol, const std::string& where) {
  std::ostringstream out;
  if (got.scalar_type() != want.scalar_type()) {
    out << where << ": dtype " << got.scalar_type() << ", expected " << want.scalar_type();
  } else if (got.sizes() != want.sizes()) {
    out << where << ": shape " << got.sizes() << ", expected " << want.sizes();
  } else if (got.device() != want.device()) {
    out << where << ": device " << got.device() << ", expected " << want.device();
  } else if (got.numel() != 0) {
    const bool inexact = at::isFloatingType(want.scalar_type()) || at::isComplexType(want.scalar_type());
    const bool same = inexact ? at::allclose(got, want, tol.rtol, tol.atol, /*equal_nan=*/true)
                              : at::equal(got, want);
    if (!same) {
      const at::Tensor diff = (got.to(at::kDouble) - want.to(at::kDouble)).abs().flatten();
      const int64_t at_index = diff.nan_to_num(/*nan=*/INFINITY).argmax().item<int64_t>();
      out << where << ": values differ; the largest difference is " << diff[at_index].item<double>()
          << " at flat index " << at_index << " (got " << got.flatten()[at_index].item<double>()
          << ", expected " << want.flatten()[at_index].item<double>() << "; rtol " << tol.rtol
          << ", atol " << tol.atol << ")";
    }
  }
  return out.str();
}

// What differs between `got` and `want`, "" when they match. `where` names the value in the
// message ("result", "result[1]").
inline std::string compare_values(const c10::IValue& got, const c10::IValue& want,
                                  const kit_tolerance& tol, const std::string& where = "result") {
  if (want.isTensor()) {
    if (!got.isTensor()) return where + ": got " + detail::describe(got) + ", expected a Tensor";
    return compare_tensors(got.toTensor(), want.toTensor(), tol, where);
  }
  const bool want_tuple = want.isTuple(), want_list = want.isList();
  if (want_tuple || want_list) {
    if ((want_tuple && !got.isTuple()) || (want_list && !got.isList())) {
      return where + ": got " + detail::describe(got) + ", expected " + detail::describe(want);
    }
    const auto got_items = want_tuple ? got.toTupleRef().elements() : got.toListRef();
    const auto want_items = want_tuple ? want.toTupleRef().elements() : want.toListRef();
    if (got_items.size() != want_items.size()) {
      return where + ": " + std::to_string(got_items.size()) + " elements, expected " +
             std::to_string(want_items.size());
    }
    for (std::size_t i = 0; i < want_items.size(); ++i) {
      std::string problem =
          compare_values(got_items[i], want_items[i], tol, where + "[" + std::to_string(i) + "]");
      if (!problem.empty()) return problem;
    }
    return {};
  }
  if (want.isDouble() && got.isDouble()) {
    const double g = got.toDouble(), w = want.toDouble();
    if (std::abs(g - w) <= tol.atol + tol.rtol * std::abs(w) || (std::isnan(g) && std::isnan(w))) {
      return {};
    }
  }
  std::ostringstream got_text, want_text;
  got_text << got;
  want_text << want;
  if (got.tagKind() == want.tagKind() && got_text.str() == want_text.str()) return {};
  return where + ": got " + detail::describe(got) + " " + got_text.str() + ", expected " + detail::describe(want) +
         " " + want_text.str();
}

// Every tensor in a result (a Tensor, or tuples and lists of them, nested).
inline void collect_tensors(const c10::IValue& value, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const c10::IValue& v : value.toTupleRef().elements()) collect_tensors(v, out);
  } else if (value.isList()) {
    for (const c10::IValue& v : value.toListRef()) collect_tensors(v, out);
  }
}

// What a caller may do to a result it holds: change its values, its shape and strides, and its
// autograd flag, all in place.
inline void tamper_with(const c10::IValue& result) {
  std::vector<at::Tensor> tensors;
  collect_tensors(result, tensors);
  for (at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (t.numel() > 0 && t.scalar_type() != at::kBool) t.fill_(7);
    if (t.dim() >= 2) t.t_();
    else t.unsqueeze_(0);
    if (at::isFloatingType(t.scalar_type()) && t.is_leaf()) t.requires_grad_(true);
  }
}

// "" when no tensor of `got` requires grad; else which one does.
inline std::string requires_grad_problem(const c10::IValue& got) {
  std::vector<at::Tensor> tensors;
  collect_tensors(got, tensors);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].defined() && tensors[i].requires_grad()) {
      return "tensor " + std::to_string(i) + " of the result requires grad, as a caller set an "
             "earlier result to";
    }
  }
  return {};
}

}  // namespace tbk::testing
