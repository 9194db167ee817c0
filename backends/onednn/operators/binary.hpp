// binary.hpp: arithmetic in tbk_onednn (aten::add, sub, mul, div): which nodes it runs, how one
// becomes an operation (with a number: an eltwise affine; with a constant tensor: add or mul of a
// weight; between two computed tensors: a binary operation, broadcasting the second), the
// oneDNN algorithm of each kind (fused as a post-op by fusion.hpp where it can be) and the
// binary primitive otherwise. The payload attributes and shape rule: binary_shape.hpp.
#pragma once
#include "binary_shape.hpp"
#include "eltwise.hpp"  // eltwise::add: arithmetic with a number
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>   // std::max
#include <functional>  // std::multiplies
#include <numeric>     // std::accumulate
#include <utility>     // std::swap

namespace tbk_onednn::operators::binary {

// Where both operands' sizes are known: one of them must have the result's shape (for sub and
// div, the first), the other broadcast to it.
inline std::string broadcast_refusal(const torch::jit::Node& node) {
  const auto a = detail::known_sizes(node.input(0)), b = detail::known_sizes(node.input(1));
  if (!a || !b) return "";
  const std::size_t rank = std::max(a->size(), b->size());
  shape_t out(rank, 1);
  for (std::size_t d = 0; d < rank; ++d) {
    const int64_t da = d + a->size() >= rank ? (*a)[d + a->size() - rank] : 1;
    const int64_t db = d + b->size() >= rank ? (*b)[d + b->size() - rank] : 1;
    if (da != db && da != 1 && db != 1) return "operands " + shape_text(*a) + " and " + shape_text(*b) + " do not broadcast";
    out[d] = std::max(da, db);
  }
  // an operand that broadcasts to the result and has as many elements is the result's shape
  auto elements = [](const std::vector<int64_t>& s) { return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<>()); };
  const bool commutes = node.kind() == c10::aten::add || node.kind() == c10::aten::mul;
  if (elements(*a) == elements(out) || (commutes && elements(*b) == elements(out))) return "";
  return "the operand of shape " + shape_text(*a) + " is broadcast to " + shape_text(out) +
         (commutes ? " and so is the other" : "; tbk_onednn broadcasts only the second operand of sub and div");
}

// The number a constant operand is: a number, or a 0-dim tensor of a number (tracing records
// `x - 0.5` with a float64 one); none otherwise.
inline c10::optional<double> constant_number(const torch::jit::Value* v) {
  auto c = detail::constant(v);
  if (c && (c->isInt() || c->isDouble())) return c->toScalar().toDouble();
  if (c && c->isTensor() && c->toTensor().dim() == 0 && !c->toTensor().is_sparse() &&
      (at::isFloatingType(c->toTensor().scalar_type()) || at::isIntegralType(c->toTensor().scalar_type(), false))) {
    return c->toTensor().item<double>();
  }
  return c10::nullopt;
}

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::div && in.size() != 2) return "rounding modes are not supported";
  if ((kind == aten::add || kind == aten::sub) && (in.size() != 3 || !detail::is_number(in[2]))) return "alpha must be a constant";
  if (detail::constant(in[0])) {  // `self.layer_scale * x` (ConvNeXt): add and mul commute
    if (!(kind == aten::mul || (kind == aten::add && detail::is_constant_equal(in[2], 1)))) {
      return "a constant first operand is supported for add (alpha 1) and mul only";
    }
    if (!detail::is_tensor(in[1]) || detail::constant(in[1])) return "both operands are constant";
    if (!detail::is_float_tensor(in[0]) && !constant_number(in[0])) return "a constant operand must be a float tensor";
    return detail::operand_refusal(in[1]);
  }
  if (!detail::is_tensor(in[1]) && !detail::is_number(in[1])) return "the second operand must be a tensor or a constant number";
  if (detail::is_tensor(in[1]) && detail::constant(in[1]) && !detail::is_float_tensor(in[1]) && !constant_number(in[1])) {
    return "a constant operand must be a float tensor";
  }
  if (detail::is_tensor(in[1]) && !detail::constant(in[1])) {  // two computed tensors
    if (in.size() == 3 && !detail::is_constant_equal(in[2], 1)) return "alpha other than 1 between two tensors is not supported";
    if (auto why = detail::operand_refusal(in[1]); !why.empty()) return why;
    return broadcast_refusal(node);
  }
  return "";
}

// a (op) b for a constant tensor b, stored as a weight of a's rank (leading 1s added).
inline uint32_t add_constant(detail::graph_translator& t, const torch::jit::Node& node, binary_kind kind, uint32_t a,
                             const at::Tensor& b) {
  const shape_t& sa = t.shape(a);
  if (b.dim() > static_cast<int64_t>(sa.size())) t.refuse(node, "the constant operand has more dimensions than the tensor");
  std::vector<int64_t> padded(sa.size() - static_cast<std::size_t>(b.dim()), 1);
  padded.insert(padded.end(), b.sizes().begin(), b.sizes().end());
  return t.add(node, op_kind::binary, {a}, {static_cast<int64_t>(kind)}, {}, {t.weight_of(b.reshape(padded))});
}

// a (op) b for two computed tensors; b gets a's rank (leading 1s added).
inline uint32_t add_values(detail::graph_translator& t, const torch::jit::Node& node, binary_kind kind, uint32_t a,
                           uint32_t b) {
  const shape_t& sa = t.shape(a);
  if (t.shape(b).size() < sa.size()) {
    shape_t padded(sa.size() - t.shape(b).size(), 1);
    padded.insert(padded.end(), t.shape(b).begin(), t.shape(b).end());
    b = t.add(node, op_kind::reshape, {b}, padded);
  }
  return t.add(node, op_kind::binary, {a, b}, {static_cast<int64_t>(kind)});
}

// add(x, y, alpha), sub(x, y, alpha), mul(x, y), div(x, y)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const auto kind = node.kind();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const std::size_t first = detail::constant(in[0]) ? 1 : 0, second = 1 - first;  // the computed one first
  const uint32_t x = t.value(node, in[first]);
  const double alpha = in.size() == 3 ? c(2).toScalar().toDouble() : 1.0;
  const double sign = kind == aten::sub ? -1 : 1;
  if (const auto number = constant_number(in[second])) {
    const double b = *number;
    if (kind == aten::add || kind == aten::sub) {
      return t.bind(node, eltwise::add(t, node, x, eltwise_kind::affine, 1, static_cast<float>(sign * alpha * b)));
    }
    return t.bind(node, eltwise::add(t, node, x, eltwise_kind::affine, static_cast<float>(kind == aten::mul ? b : 1 / b), 0));
  }
  if (detail::constant(in[second])) {  // a constant tensor: add and sub become add, div becomes mul
    const at::Tensor b = c(second).toTensor();
    if (kind == aten::mul || kind == aten::div) {
      return t.bind(node, add_constant(t, node, binary_kind::mul, x, kind == aten::mul ? b : 1.0 / b));
    }
    return t.bind(node, add_constant(t, node, binary_kind::add, x, b * (sign * alpha)));
  }
  // two computed tensors: the full-shaped one goes first for add and mul
  if (alpha != 1) t.refuse(node, "alpha other than 1 between two tensors is not supported");
  uint32_t a = x, b = t.value(node, in[1]);
  if ((kind == aten::add || kind == aten::mul) && element_count(t.shape(b), "b") > element_count(t.shape(a), "a")) {
    std::swap(a, b);
  }
  const binary_kind op = kind == aten::add ? binary_kind::add : kind == aten::sub ? binary_kind::sub
                       : kind == aten::mul ? binary_kind::mul : binary_kind::div;
  t.bind(node, add_values(t, node, op, a, b));
}

inline dnnl::algorithm algorithm(binary_kind kind) {
  switch (kind) {
    case binary_kind::add: return dnnl::algorithm::binary_add;
    case binary_kind::sub: return dnnl::algorithm::binary_sub;
    case binary_kind::mul: return dnnl::algorithm::binary_mul;
    case binary_kind::div: return dnnl::algorithm::binary_div;
  }
  throw std::invalid_argument("unknown binary kind");
}

// a OP b: b a value, or a constant (a weight, plain). When a's layout has only the reference
// implementation, a is reordered into a fallback layout; a value b of a's shape follows it, a
// broadcast value b goes plain (in a's data type), a constant b stays as the payload has it
// (plain, fp32).
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const uint32_t x = op.inputs[0];
  const detail::ref a = b.source(x);
  const bool b_is_value = op.inputs.size() == 2;
  const detail::ref second = b_is_value ? b.source(op.inputs[1]) : b.plain_weight(op.weights[0]);
  detail::step_args args;
  const dnnl::primitive_attr attr = b.attributes(f, args);
  auto make = [&](const detail::md& a_layout) {
    const shape_t b_shape = second.desc.dims();
    const detail::md b_layout = a_layout == a.desc || !b_is_value ? second.desc
                                : b_shape == b.shape(x)           ? a_layout
                                                                  : detail::plain_desc(b_shape, a_layout.data_type());
    const detail::md dst = b.sum_target(f) >= 0 ? b.destination(f) : a_layout;
    const dnnl::binary::desc d(algorithm(static_cast<binary_kind>(op.ints[0])), a_layout, b_layout, dst);
    return b.choose<dnnl::binary::primitive_desc>([&] { return dnnl::binary::primitive_desc(d, attr, cpu_engine()); });
  };
  const auto [pd, a_layout] = b.with_input_layout<dnnl::binary::primitive_desc>(x, make);
  if (b.slow_fusion(f, pd)) return false;
  args.push_back({DNNL_ARG_SRC_0, b.as(x, a_layout)});
  args.push_back({DNNL_ARG_SRC_1, b_is_value ? b.as(op.inputs[1], pd.src1_desc()) : second});
  args.push_back({DNNL_ARG_DST, b.result_ref(f, pd.dst_desc())});
  b.add_step(dnnl::binary(pd), pd, b.description(f), std::move(args));
  return true;
}

}  // namespace tbk_onednn::operators::binary
