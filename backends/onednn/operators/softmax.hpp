// softmax.hpp: aten::softmax in tbk_onednn: which nodes it runs (constant dim, no dtype), how one
// becomes a softmax operation, and its oneDNN softmax primitive. The payload attributes and
// shape rule: softmax_shape.hpp.
#pragma once
#include "softmax_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

namespace tbk_onednn::operators::softmax {

inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  return detail::is_number(in[1]) && (in.size() < 3 || detail::is_none(in[2])) ? "" : "dim must be constant and dtype None";
}

// softmax(x, dim, dtype=None)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const uint32_t x = t.value(node, node.inputs()[0]);
  t.bind(node, t.add(node, op_kind::softmax, {x}, {t.dim_of(node, detail::constant(node.inputs()[1])->toInt(), t.shape(x).size())}));
}

inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  auto make = [&](const detail::md& src) {
    const dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, src, static_cast<int>(op.ints[0]));
    return b.choose<dnnl::softmax_forward::primitive_desc>(
        [&] { return dnnl::softmax_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
  };
  const auto [pd, src] = b.with_input_layout<dnnl::softmax_forward::primitive_desc>(op.inputs[0], make);
  b.add_step(dnnl::softmax_forward(pd), pd, b.description(f),
             {{DNNL_ARG_SRC, b.as(op.inputs[0], src)}, {DNNL_ARG_DST, b.define(f.result, pd.dst_desc())}});
  return true;
}

}  // namespace tbk_onednn::operators::softmax
