// pooling.hpp: aten::max_pool2d, avg_pool2d and adaptive_avg_pool2d in tbk_onednn: which nodes it
// runs, how one becomes a pool operation (PyTorch's output size, ceil mode as extra bottom/right
// padding; an adaptive pool as a fixed window where the output size divides the input), and its
// oneDNN pooling primitive. The payload attributes and shape rule: pooling_shape.hpp.
#pragma once
#include "pooling_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::max

namespace tbk_onednn::operators::pooling {

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::adaptive_avg_pool2d) {
    // constant, or F.adaptive_avg_pool2d's list_with_default of a constant (known when lowering)
    const torch::jit::Node* list = in[1]->node();
    return detail::is_int_list(in[1]) ||
                   (list->kind() == detail::list_with_default() && detail::is_int_list(list->input(0)))
               ? "" : "the output size must be constant";
  }
  for (std::size_t k = 1; k < 4; ++k) {
    if (!detail::is_int_list(in[k])) return "kernel, stride and padding must be constant";
  }
  if (kind == aten::max_pool2d) {
    auto dilation = detail::constant(in[4]);
    if (!dilation || !dilation->isIntList()) return "dilation must be constant";
    for (int64_t d : dilation->toIntVector()) {
      if (d != 1) return "dilation other than 1 is not supported";
    }
    if (!detail::constant(in[5])) return "ceil_mode must be constant";
  } else {
    auto ceil = detail::constant(in[4]);
    if (!ceil || !ceil->isBool() || ceil->toBool()) return "ceil_mode=True is not supported";
    if (!detail::constant(in[5]) || !detail::is_none(in[6])) return "divisor_override is not supported";
  }
  return "";
}

// adaptive_avg_pool2d(x, output_size): a window of input / output where that divides.
inline void translate_adaptive(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  const shape_t sx = t.shape(x);
  const auto size = detail::pair(c10::IValue(t.known_int_list(node, node.inputs()[1])), 1);
  if (sx.size() != 4 || sx[2] % size[0] != 0 || sx[3] % size[1] != 0) {
    t.refuse(node, "supported when the output size divides the input's " + shape_text(sx));
  }
  const int64_t kh = sx[2] / size[0], kw = sx[3] / size[1];
  t.bind(node, t.add(node, op_kind::pool, {x}, {static_cast<int64_t>(pool_kind::avg_exclude_padding), kh, kw, kh, kw, 0, 0, 0, 0}));
}

// max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
// avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const auto kind = node.kind();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const uint32_t x = t.value(node, in[0]);
  if (kind == aten::adaptive_avg_pool2d) return translate_adaptive(t, node, x);
  const shape_t sx = t.shape(x);
  if (sx.size() != 4) t.refuse(node, "the input must be 4-D (NCHW)");
  const auto kernel = detail::pair(c(1), 1);
  const auto stride = c(2).toIntVector().empty() ? kernel : detail::pair(c(2), 1);
  const auto padding = detail::pair(c(3), 0);
  const bool ceil = kind == aten::max_pool2d && c(5).toBool();
  std::vector<int64_t> ints{kind == aten::max_pool2d ? static_cast<int64_t>(pool_kind::max)
                            : c(5).toBool() ? static_cast<int64_t>(pool_kind::avg_include_padding)
                                            : static_cast<int64_t>(pool_kind::avg_exclude_padding),
                            kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
  for (std::size_t d = 0; d < 2; ++d) {
    // PyTorch's output size, then the bottom/right padding that gives it
    const int64_t span = sx[2 + d] + 2 * padding[d] - kernel[d];
    if (span < 0 || stride[d] < 1) t.refuse(node, "the window is larger than the padded input");
    int64_t out = (ceil ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
    if (ceil && (out - 1) * stride[d] >= sx[2 + d] + padding[d]) --out;
    ints.push_back(std::max<int64_t>(padding[d], (out - 1) * stride[d] + kernel[d] - sx[2 + d] - padding[d]));
  }
  t.bind(node, t.add(node, op_kind::pool, {x}, ints));
}

inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  static const dnnl::algorithm algorithms[] = {dnnl::algorithm::pooling_max, dnnl::algorithm::pooling_avg_include_padding,
                                               dnnl::algorithm::pooling_avg_exclude_padding};
  const operation& op = b.op(f);
  const auto& i = op.ints;
  auto make = [&](const detail::md& src) {
    const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, algorithms[i[0]], src,
                                        detail::any_desc(b.shape(f.result)), {i[3], i[4]}, {i[1], i[2]}, {i[5], i[6]},
                                        {i[7], i[8]});
    return b.choose<dnnl::pooling_forward::primitive_desc>(
        [&] { return dnnl::pooling_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
  };
  const auto [pd, src] = b.with_input_layout<dnnl::pooling_forward::primitive_desc>(op.inputs[0], make);
  b.add_step(dnnl::pooling_forward(pd), pd, b.description(f),
             {{DNNL_ARG_SRC, b.as(op.inputs[0], src)}, {DNNL_ARG_DST, b.define(f.result, pd.dst_desc())}});
  return true;
}

}  // namespace tbk_onednn::operators::pooling
