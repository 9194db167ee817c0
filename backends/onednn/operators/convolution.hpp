// convolution.hpp: aten::conv2d and aten::conv1d, and aten::_convolution as torch.jit.trace records
// it, in tbk_onednn: which nodes it runs (constant weights, constant stride, padding, dilation,
// groups; not transposed), how one becomes a conv2d operation (a 1-D one as a 2-D one of height 1,
// between two reshapes), and its oneDNN
// convolution primitive (activations in oneDNN's choice of layout, weights reordered once, fused
// post-ops), in int8 where PT2E quantization made its input and weight int8 (quantize.hpp). The
// payload attributes and shape rule: convolution_shape.hpp.
#pragma once
#include "convolution_shape.hpp"
#include "quantize.hpp"  // is_channel_weight, channel_weight_for, int8_input_of
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <optional>  // std::optional

namespace tbk_onednn::operators::convolution {

using detail::is_float_tensor;
using detail::is_int_list;
using detail::is_none;
using detail::is_number;

// Where groups is among the arguments: conv2d(x, w, b, stride, padding, dilation, groups), or
// _convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups, benchmark,
// deterministic, cudnn_enabled[, allow_tf32]).
inline std::size_t groups_index(const torch::jit::Node& node) { return node.kind() == c10::aten::_convolution ? 8 : 6; }

inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const bool traced = node.kind() == c10::aten::_convolution;
  const bool quantized = in.size() > 1 && quantize::is_channel_weight(in[1]);
  if (in.size() < (traced ? 12u : 7u) || !(quantized || is_float_tensor(in[1])) || !(is_none(in[2]) || is_float_tensor(in[2]))) {
    return "the weight and bias must be constant float tensors (freeze the module: tbk.partition(..., freeze=True))";
  }
  if (!is_int_list(in[3]) || !is_int_list(in[4]) || !is_int_list(in[5]) || !is_number(in[groups_index(node)])) {
    return "stride, padding (as numbers, not a string), dilation and groups must be constants";
  }
  const int64_t rank = detail::constant(quantized ? in[1]->node()->inputs()[0] : in[1])->toTensor().dim();
  if (rank != 4 && rank != 3) return "only 1-D and 2-D convolutions (a 3-D or 4-D weight)";
  if (node.kind() == c10::aten::conv2d && rank != 4) return "conv2d's weight must be 4-D";
  if (traced) {
    auto transposed = detail::constant(in[6]);
    if (!transposed || !transposed->isBool() || transposed->toBool()) return "transposed convolutions are not supported";
    auto output_padding = detail::constant(in[7]);
    if (!output_padding || !output_padding->isIntList()) return "output_padding must be constant";
    for (int64_t p : output_padding->toIntVector()) {
      if (p != 0) return "output_padding other than 0 is not supported";
    }
  }
  return "";
}

// conv2d(x, weight, bias, stride, padding, dilation, groups), or its traced _convolution
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  uint32_t x = t.value(node, in[0]);
  const auto quantized = quantize::channel_weight_for(t, node, in[1]);
  at::Tensor weight = quantized ? quantized->dequantized() : c(1).toTensor();
  std::vector<int64_t> stride = c(3).toIntVector(), padding = c(4).toIntVector(), dilation = c(5).toIntVector();
  const bool one_d = weight.dim() == 3;
  if (one_d) {  // [N, C, L] as [N, C, 1, L], the kernel [O, I, K] as [O, I, 1, K]
    const shape_t sx = t.shape(x);
    if (sx.size() != 3) t.refuse(node, "a 1-D convolution takes a 3-D input [N, C, L], got " + shape_text(sx));
    x = t.add(node, op_kind::reshape, {x}, {sx[0], sx[1], 1, sx[2]});
    weight = weight.unsqueeze(2);
    auto prefixed = [&](std::vector<int64_t> v, int64_t first) {
      if (v.size() != 1) t.refuse(node, "expects 1-D stride, padding, dilation");
      return std::vector<int64_t>{first, v[0]};
    };
    stride = prefixed(stride, 1), padding = prefixed(padding, 0), dilation = prefixed(dilation, 1);
  } else {
    stride = detail::pair(c(3), 1), padding = detail::pair(c(4), 0), dilation = detail::pair(c(5), 1);
  }
  if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) t.refuse(node, "expects 2-D stride, padding, dilation");
  std::vector<int64_t> ints{stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], c(groups_index(node)).toInt()};
  // int8: a 2-D convolution whose input is a dequantize of a quantize reads the int8 values (a 1-D
  // one, or a quantized weight on an fp32 input, computes in fp32 with the weight dequantized)
  const auto int8_input = quantized && !one_d ? quantize::int8_input_of(in[0]) : std::nullopt;
  if (int8_input) {
    const quantize::per_tensor& q = int8_input->second;
    ints.push_back(static_cast<int64_t>(q.type));
    ints.push_back(q.zero_point);
    const at::Tensor bias = is_none(in[2]) ? at::zeros({weight.size(0)}) : c(2).toTensor();
    return t.bind(node, t.add(node, op_kind::conv2d, {t.value(node, int8_input->first)}, ints, {q.scale},
                              {t.weight_of(quantized->values), t.weight_of(quantized->scales), t.weight_of(bias)}));
  }
  std::vector<uint32_t> weights{t.weight_of(weight)};
  if (!is_none(in[2])) weights.push_back(t.weight_of(c(2).toTensor()));
  const uint32_t y = t.add(node, op_kind::conv2d, {x}, ints, {}, weights);
  if (!one_d) return t.bind(node, y);
  const shape_t sy = t.shape(y);
  t.bind(node, t.add(node, op_kind::reshape, {y}, {sy[0], sy[1], sy[3]}));
}

// The bias of a convolution or linear operation as the payload has it, or none (a zero descriptor).
inline detail::md bias_desc(const detail::method_builder& b, const operation& op) {
  return op.weights.size() == 2 ? detail::plain_desc(b.weight_shape(op.weights[1])) : detail::md();
}

// The step of a convolution or linear operation: its descriptor made by `make_desc(type)` (with
// activations in oneDNN's choice of layout) in the method's precision, or in fp32 where oneDNN
// has only its reference implementation for that precision here (bf16 below AVX-512; a fusion
// first tries unfused in the precision); its implementation (false when the fusion has only the
// reference one: it is built unfused), its input in the layout and data type it asks for, its
// weights reordered (and converted) once, its bias in fp32.
template <class Primitive, class MakeDesc>
bool weighted_step(detail::method_builder& b, const detail::fused_op& f, const MakeDesc& make_desc,
                   const dnnl::primitive_attr& attr, const detail::md& w_plain, detail::step_args args) {
  using primitive_desc = typename Primitive::primitive_desc;
  const operation& op = b.op(f);
  auto chosen_in = [&](detail::dt type) {
    const typename Primitive::desc d = make_desc(type);  // outlives the choice (choose_implementation)
    return b.choose<primitive_desc>([&] { return primitive_desc(d, attr, cpu_engine()); });
  };
  std::optional<primitive_desc> pd;
  bool fp32_instead = false;
  if (b.compute_type() != detail::dt::f32) {
    try {  // below AVX-512, oneDNN 2.6 has no bf16 implementation at all: it cannot make the descriptor
      pd = chosen_in(b.compute_type());
    } catch (const dnnl::error&) {
    }
    // the precision before the fusion: unfused, the step may have a fast kernel in it
    if (pd && detail::is_reference(*pd) && !f.posts.empty()) return false;
    fp32_instead = !pd || detail::is_reference(*pd);
  }
  if (!pd || fp32_instead) pd = chosen_in(detail::dt::f32);
  if (b.slow_fusion(f, *pd)) return false;
  b.note_weighted_step(fp32_instead);
  args.push_back({DNNL_ARG_SRC, b.as(op.inputs[0], pd->src_desc())});
  args.push_back({DNNL_ARG_WEIGHTS, b.weight(op.weights[0], w_plain, pd->weights_desc())});
  if (op.weights.size() == 2) args.push_back({DNNL_ARG_BIAS, b.weight(op.weights[1], bias_desc(b, op), bias_desc(b, op))});
  args.push_back({DNNL_ARG_DST, b.result_ref(f, pd->dst_desc())});
  b.add_step(Primitive(*pd), *pd, b.description(f), std::move(args));
  return true;
}

// The step of an int8 convolution or linear operation (weights: values, per-channel scales,
// bias): its descriptor made by `make_desc(input type, weight type)` (its result in fp32, or in
// int8 where a quantize joined it); oneDNN's output scales input scale x weight scale per output
// channel (`channel_mask` selects the destination's channel dimension), its input zero point, the
// bias divided by those scales (oneDNN adds it before scaling), the weights reordered to s8 once.
// Without VNNI (native_int8), in fp32: the input dequantized by a reorder, the weights
// dequantized once.
template <class Primitive, class MakeDesc>
bool int8_weighted_step(detail::method_builder& b, const detail::fused_op& f, const MakeDesc& make_desc, int channel_mask,
                        dnnl::primitive_attr attr, const detail::md& w_plain, const detail::md& bias_plain,
                        quantized_type type, int64_t zero_point, float scale, detail::step_args args) {
  using primitive_desc = typename Primitive::primitive_desc;
  const operation& op = b.op(f);
  const std::vector<float>& weight_scales = b.weight_values(op.weights[1]);
  std::vector<float>& bias = b.weight_values(op.weights[2]);
  const bool int8 = native_int8();
  std::vector<float> output_scales(weight_scales.size());
  for (std::size_t k = 0; k < output_scales.size(); ++k) output_scales[k] = scale * weight_scales[k];
  if (int8) {
    attr.set_output_scales(channel_mask, output_scales);
    if (zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {static_cast<int32_t>(zero_point)});
  }
  const typename Primitive::desc d = int8 ? make_desc(quantize::data_type(static_cast<int64_t>(type)), detail::dt::s8)
                                          : make_desc(detail::dt::f32, detail::dt::f32);
  const primitive_desc pd = b.choose<primitive_desc>([&] { return primitive_desc(d, attr, cpu_engine()); });
  if (b.slow_fusion(f, pd)) return false;
  // the weights' values change only now that the step is built (a fusion refused is built again unfused)
  if (int8) {
    b.note_weighted_step(false);
    for (std::size_t k = 0; k < bias.size(); ++k) bias[k] /= output_scales[k];
    args.push_back({DNNL_ARG_SRC, b.as(op.inputs[0], pd.src_desc())});
  } else {
    b.note_int8_as_fp32();
    std::vector<float>& values = b.weight_values(op.weights[0]);
    const std::size_t per_channel = values.size() / weight_scales.size();
    for (std::size_t k = 0; k < values.size(); ++k) values[k] *= weight_scales[k / per_channel];
    dnnl::primitive_attr dequantize = detail::user_scratchpad();
    dequantize.set_output_scales(0, {scale});
    if (zero_point != 0) dequantize.set_zero_points(DNNL_ARG_SRC, 0, {static_cast<int32_t>(zero_point)});
    args.push_back({DNNL_ARG_SRC, b.converted(op.inputs[0], pd.src_desc(), dequantize)});
  }
  args.push_back({DNNL_ARG_WEIGHTS, b.weight(op.weights[0], w_plain, pd.weights_desc())});
  args.push_back({DNNL_ARG_BIAS, b.weight(op.weights[2], bias_plain, bias_plain)});
  args.push_back({DNNL_ARG_DST, b.result_ref(f, pd.dst_desc())});
  b.add_step(Primitive(pd), pd, b.description(f), std::move(args));
  return true;
}

inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const shape_t& w = b.weight_shape(op.weights[0]);
  const int64_t groups = op.ints[6];
  const shape_t wdims = groups == 1 ? w : shape_t{groups, w[0] / groups, w[1], w[2], w[3]};
  if (is_int8(op)) {
    detail::step_args args;
    const dnnl::primitive_attr attr = b.attributes(f, args);
    const detail::md bias = detail::plain_desc({w[0]});
    auto make_desc = [&](detail::dt type, detail::dt weight_type) {
      return dnnl::convolution_forward::desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, detail::any_desc(b.shape(op.inputs[0]), type),
          detail::any_desc(wdims, weight_type), bias, b.destination(f, f.result_type), {op.ints[0], op.ints[1]},
          {op.ints[4] - 1, op.ints[5] - 1}, {op.ints[2], op.ints[3]}, {op.ints[2], op.ints[3]});
    };
    return int8_weighted_step<dnnl::convolution_forward>(b, f, make_desc, 1 << 1, attr, detail::plain_desc(wdims), bias,
                                                         static_cast<quantized_type>(op.ints[7]), op.ints[8], op.floats[0],
                                                         std::move(args));
  }
  detail::step_args args;
  const dnnl::primitive_attr attr = b.attributes(f, args);
  // activations in oneDNN's choice of layout (docs/onednn.md, "On every CPU")
  auto make_desc = [&](detail::dt type) {
    return dnnl::convolution_forward::desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, detail::any_desc(b.shape(op.inputs[0]), type),
        detail::any_desc(wdims, type), bias_desc(b, op), b.destination(f, type), {op.ints[0], op.ints[1]},
        {op.ints[4] - 1, op.ints[5] - 1}, {op.ints[2], op.ints[3]}, {op.ints[2], op.ints[3]});
  };
  return weighted_step<dnnl::convolution_forward>(b, f, make_desc, attr, detail::plain_desc(wdims), std::move(args));
}

}  // namespace tbk_onednn::operators::convolution
