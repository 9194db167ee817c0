// layer_norm.hpp: aten::layer_norm in tbk_onednn (ConvNeXt, ViT): which nodes it runs (a constant
// normalized shape, constant or no weight and bias), how one becomes a layer_norm operation over
// the last dimension (a normalized shape of several dimensions is merged into one by reshapes
// around it; no weight is a scale of ones, no bias a shift of zeros), and its oneDNN layer
// normalization primitive. The payload attributes and shape rule: layer_norm_shape.hpp.
#pragma once
#include "layer_norm_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::equal

namespace tbk_onednn::operators::layer_norm {

// layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable)
inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  if (!detail::is_int_list(in[1])) return "normalized_shape must be constant";
  for (std::size_t k : {2, 3}) {
    if (!detail::is_none(in[k]) && !detail::is_float_tensor(in[k])) {
      return "the weight and bias must be constant float tensors (freeze the module: tbk.partition(..., freeze=True))";
    }
  }
  return detail::is_number(in[4]) ? "" : "eps must be a constant number";
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const uint32_t x = t.value(node, in[0]);
  const shape_t sx = t.shape(x);
  const std::vector<int64_t> normalized = detail::constant(in[1])->toIntVector();
  if (normalized.empty() || normalized.size() > sx.size() ||
      !std::equal(normalized.begin(), normalized.end(), sx.end() - static_cast<std::ptrdiff_t>(normalized.size()))) {
    t.refuse(node, "normalized_shape " + shape_text(normalized) + " is not the last dimensions of the input " +
                       shape_text(sx));
  }
  int64_t channels = 1;
  for (int64_t d : normalized) channels *= d;
  shape_t rows(sx.begin(), sx.end() - static_cast<std::ptrdiff_t>(normalized.size()));
  if (rows.empty()) rows.push_back(1);
  rows.push_back(channels);
  if (rows.size() > 5) t.refuse(node, "the input " + shape_text(sx) + " has more than 4 dimensions before the normalized ones");
  auto affine = [&](std::size_t k, float fallback) {
    return t.weight_of(detail::is_none(in[k]) ? at::full({channels}, fallback) : detail::constant(in[k])->toTensor().reshape({-1}));
  };
  const uint32_t merged = rows == sx ? x : t.add(node, op_kind::reshape, {x}, rows);
  const float eps = static_cast<float>(detail::constant(in[4])->toScalar().toDouble());
  const uint32_t y = t.add(node, op_kind::layer_norm, {merged}, {}, {eps}, {affine(2, 1.f), affine(3, 0.f)});
  t.bind(node, rows == sx ? y : t.add(node, op_kind::reshape, {y}, sx));
}

// The input in plain layout (the last dimension dense), normalized by oneDNN's layer
// normalization with scale and shift.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const uint32_t x = op.inputs[0];
  const detail::md data = detail::plain_desc(b.shape(x));
  using lnorm = dnnl::layer_normalization_forward;
  const lnorm::desc d(dnnl::prop_kind::forward_inference, data, op.floats[0],
                      dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift);
  const auto pd = b.choose<lnorm::primitive_desc>([&] { return lnorm::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
  const detail::ref source = b.as(x, data);
  b.add_step(lnorm(pd), pd, b.description(f),
             {{DNNL_ARG_SRC, source},
              {DNNL_ARG_SCALE, b.plain_weight(op.weights[0])},
              {DNNL_ARG_SHIFT, b.plain_weight(op.weights[1])},
              {DNNL_ARG_DST, b.define(f.result, pd.dst_desc())}});
  return true;
}

}  // namespace tbk_onednn::operators::layer_norm
