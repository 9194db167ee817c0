// constant.hpp: constant tensors as values in tbk_onednn: aten::expand of a constant (ViT's
// class token, expanded to the batch before it is concatenated with the patches) and a constant
// part of a cat's list: which nodes it runs (a constant expanded to sizes known when lowering; a
// computed tensor is refused), how one becomes a constant operation (the tensor as a weight), and
// the oneDNN reorder that copies it into its value on each call. The payload attributes and shape
// rule: constant_shape.hpp.
#pragma once
#include "constant_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

namespace tbk_onednn::operators::constant {

// expand(x, size, implicit): x a constant. Lowering a whole method also takes sizes computed from
// the example inputs' shapes (`x.size(0)`).
inline std::string constant_refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  if (!detail::is_float_tensor(node.inputs()[0])) return "supported for a constant float tensor (a computed one is not expanded)";
  return "";
}
inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = constant_refusal(node); !why.empty()) return why;
  return detail::is_int_list(node.inputs()[1]) ? "" : "the size must be constant (partitioning cannot see sizes)";
}

// A constant tensor as a program value: a constant operation of its float32 copy.
inline uint32_t constant_value(detail::graph_translator& t, const torch::jit::Node& node, const at::Tensor& x) {
  return t.add(node, op_kind::constant, {}, {}, {}, {t.weight_of(x)});
}

// Whether value_or_constant has a program value for `v`.
inline bool has_value_or_constant(const detail::graph_translator& t, const torch::jit::Value* v) {
  return detail::is_float_tensor(v) || t.computed(v);
}

// The program value of `v`: computed by the program, or a constant float tensor made one.
inline uint32_t value_or_constant(detail::graph_translator& t, const torch::jit::Node& node, const torch::jit::Value* v) {
  if (detail::is_float_tensor(v)) return constant_value(t, node, detail::constant(v)->toTensor());
  return t.value(node, v);
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, constant_refusal(node));  // sizes may be computed
  const at::Tensor x = detail::constant(node.inputs()[0])->toTensor();
  const std::vector<int64_t> size = t.known_int_list(node, node.inputs()[1]);
  at::Tensor expanded;
  try {
    expanded = x.expand(size).contiguous();
  } catch (const c10::Error&) {
    t.refuse(node, "the constant " + shape_text(x.sizes().vec()) + " does not expand to " + shape_text(size));
  }
  t.bind(node, constant_value(t, node, expanded));
}

// A copy of the weight into the value's memory.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const detail::md plain = detail::plain_desc(b.shape(f.result));
  const dnnl::reorder::primitive_desc pd(cpu_engine(), plain, cpu_engine(), plain, detail::user_scratchpad());
  b.add_step(dnnl::reorder(pd), pd, b.description(f),
             {{DNNL_ARG_FROM, b.plain_weight(b.op(f).weights[0])}, {DNNL_ARG_TO, b.define(f.result, plain)}});
  return true;
}

}  // namespace tbk_onednn::operators::constant
