// matmul.hpp: products of two computed tensors in tbk_onednn (aten::bmm, and aten::matmul whose
// second operand is computed: attention's scores and context): which nodes it runs, how one
// becomes a matmul operation, and oneDNN's matmul primitive (the second operand may be read
// transposed in place, through strides; a scale as oneDNN's output scale). aten::matmul with a
// constant second operand is a linear layer (linear.hpp). The payload attributes and shape rule:
// matmul_shape.hpp.
#pragma once
#include "linear.hpp"  // aten::matmul with a constant second operand
#include "matmul_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <numeric>  // std::iota

namespace tbk_onednn::operators::matmul {

// Whether a matmul node's second operand is a constant (then it is a linear layer).
inline bool by_constant(const torch::jit::Node& node) { return detail::constant(node.inputs()[1]).has_value(); }

// bmm(a, b), matmul(a, b) of two computed float tensors
inline std::string refusal(const torch::jit::Node& node) {
  if (node.kind() == c10::aten::matmul && by_constant(node)) return linear::refusal(node);
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  if (!detail::is_tensor(node.inputs()[1])) return "the second operand must be a tensor";
  if (detail::constant(node.inputs()[0]) || detail::constant(node.inputs()[1])) {
    return "supported between two computed tensors, or as matmul(x, W) with a constant 2-D weight W";
  }
  return detail::operand_refusal(node.inputs()[1]);
}

// A matmul operation: scale * a @ b (b read as its transpose where transpose_b).
inline uint32_t add(detail::graph_translator& t, const torch::jit::Node& node, uint32_t a, uint32_t b,
                    bool transpose_b = false, float scale = 1.f) {
  return t.add(node, op_kind::matmul, {a, b}, {transpose_b ? 1 : 0}, {scale});
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  if (node.kind() == c10::aten::matmul && by_constant(node)) return linear::translate(t, node);
  t.refuse_if(node, refusal(node));
  const uint32_t a = t.value(node, node.inputs()[0]), b = t.value(node, node.inputs()[1]);
  if (t.shape(a).size() != t.shape(b).size() || t.shape(a).size() < 2) {
    t.refuse(node, "supported between operands of one rank, 2 or more; they are " + shape_text(t.shape(a)) + " and " +
                       shape_text(t.shape(b)));
  }
  t.bind(node, add(t, node, a, b));
}

// oneDNN's matmul on plain operands; a transposed second operand is its plain memory described
// with the last two dimensions swapped.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const uint32_t a = op.inputs[0], w = op.inputs[1];
  const detail::md a_plain = detail::plain_desc(b.shape(a)), w_plain = detail::plain_desc(b.shape(w));
  detail::md w_read = w_plain;
  if (op.ints[0] == 1) {
    std::vector<int> swap_last(b.shape(w).size());
    std::iota(swap_last.begin(), swap_last.end(), 0);
    std::swap(swap_last[swap_last.size() - 1], swap_last[swap_last.size() - 2]);
    w_read = w_plain.permute_axes(swap_last);
  }
  const detail::md dst = detail::plain_desc(b.shape(f.result));
  dnnl::primitive_attr attr = detail::user_scratchpad();
  if (op.floats[0] != 1.f) attr.set_output_scales(0, {op.floats[0]});
  const dnnl::matmul::desc d(a_plain, w_read, dst);
  const auto pd = b.choose<dnnl::matmul::primitive_desc>([&] { return dnnl::matmul::primitive_desc(d, attr, cpu_engine()); });
  detail::ref weights = b.as(w, w_plain);
  weights.desc = w_read;
  b.add_step(dnnl::matmul(pd), pd, b.description(f),
             {{DNNL_ARG_SRC, b.as(a, a_plain)}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, b.define(f.result, dst)}});
  return true;
}

}  // namespace tbk_onednn::operators::matmul
