// linear.hpp: aten::linear, and the forms of x @ W a frozen graph has (matmul, mm, addmm), in
// tbk_onednn: which nodes it runs (a constant 2-D weight), how one becomes a linear operation
// (inputs of more than 2 dimensions reshaped around it), and its oneDNN inner product primitive;
// in int8 where PT2E quantization made its 2-D input and its weight int8 (quantize.hpp), a matmul
// primitive (oneDNN 2.6's inner product takes no input zero point). The payload attributes and
// shape rule: linear_shape.hpp.
#pragma once
#include "convolution.hpp"  // weighted_step, bias_desc: the same step as a convolution's
#include "linear_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

namespace tbk_onednn::operators::linear {

using detail::is_float_tensor;
using detail::is_none;

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::linear) {
    const bool quantized = quantize::is_channel_weight(in[1]);
    if (!(quantized || is_float_tensor(in[1])) || !(is_none(in[2]) || is_float_tensor(in[2]))) {
      return "the weight and bias must be constant float tensors (freeze the module: tbk.partition(..., freeze=True))";
    }
  } else if (kind == aten::addmm) {
    if (!is_float_tensor(in[0]) || !detail::is_tensor(in[1]) || !is_float_tensor(in[2]) ||
        !detail::is_constant_equal(in[3], 1) || !detail::is_constant_equal(in[4], 1)) {
      return "supported as bias + x @ W with constant bias and W, beta = alpha = 1";
    }
  } else if (!is_float_tensor(in[1]) || detail::constant(in[1])->toTensor().dim() != 2) {  // matmul, mm
    return "the second operand must be a constant 2-D float tensor";
  }
  // where the input's type says (tbk.partition's example run, the export paths), as lowering would refuse
  const auto sizes = detail::known_sizes(in[kind == aten::addmm ? 1 : 0]);
  if (sizes && sizes->size() < 2) return "the input must have 2 or more dimensions";
  return "";
}

// A linear operation (attributes `ints`, `floats`, `weights`) with `out` features on x [..., in]:
// on x viewed as [rows, in], its result viewed back as [..., out].
inline uint32_t add_on_rows(detail::graph_translator& t, const torch::jit::Node& node, uint32_t input, int64_t out,
                            std::vector<int64_t> ints, std::vector<float> floats, std::vector<uint32_t> weights) {
  const shape_t si = t.shape(input);
  if (si.size() < 2) t.refuse(node, "the input must have 2 or more dimensions");
  int64_t rows = 1;
  for (std::size_t d = 0; d + 1 < si.size(); ++d) rows *= si[d];
  const uint32_t flat = si.size() == 2 ? input : t.add(node, op_kind::reshape, {input}, {rows, si.back()});
  const uint32_t y = t.add(node, op_kind::linear, {flat}, std::move(ints), std::move(floats), std::move(weights));
  if (si.size() == 2) return y;
  shape_t back(si.begin(), si.end() - 1);
  back.push_back(out);
  return t.add(node, op_kind::reshape, {y}, back);
}

// x @ w^T + b for a constant w [out, in] (and b [out], when defined) on x [..., in] (add_on_rows).
inline uint32_t add(detail::graph_translator& t, const torch::jit::Node& node, uint32_t input, const at::Tensor& w,
                    const at::Tensor& b) {
  if (w.dim() != 2) t.refuse(node, "the weight must be 2-D");
  std::vector<uint32_t> weights{t.weight_of(w)};
  if (b.defined()) weights.push_back(t.weight_of(b));
  return add_on_rows(t, node, input, w.size(0), {}, {}, std::move(weights));
}

// linear(x, W, b), matmul(x, W^T), mm(x, W^T), addmm(b, x, W^T, beta=1, alpha=1)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const auto kind = node.kind();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const uint32_t input = t.value(node, in[kind == aten::addmm ? 1 : 0]);
  at::Tensor w, b;
  if (kind == aten::linear) {
    const auto quantized = quantize::channel_weight_for(t, node, in[1]);
    w = quantized ? quantized->dequantized() : c(1).toTensor();
    if (!is_none(in[2])) b = c(2).toTensor();
    // int8: an input that is a dequantize of a quantize, read as its int8 values (viewed as
    // [rows, in], as in fp32); else fp32, with the weight dequantized
    const auto int8_input = quantized && w.dim() == 2 ? quantize::int8_input_of(in[0]) : std::nullopt;
    if (int8_input) {
      const quantize::per_tensor& q = int8_input->second;
      const at::Tensor bias = b.defined() ? b : at::zeros({w.size(0)});
      return t.bind(node, add_on_rows(t, node, t.value(node, int8_input->first), w.size(0),
                                      {static_cast<int64_t>(q.type), q.zero_point}, {q.scale},
                                      {t.weight_of(quantized->values), t.weight_of(quantized->scales), t.weight_of(bias)}));
    }
  } else if (kind == aten::addmm) {
    w = c(2).toTensor().t();
    b = c(0).toTensor().reshape({-1});
  } else {
    w = c(1).toTensor().t();
  }
  t.bind(node, add(t, node, input, w, b));
}

inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const shape_t& w = b.weight_shape(op.weights[0]);
  if (is_int8(op)) {  // x [N, in] @ W^T [in, out]: the payload's W [out, in] read transposed
    detail::step_args args;
    const dnnl::primitive_attr attr = b.attributes(f, args);
    const detail::md bias = detail::plain_desc({1, w[0]});
    auto make_desc = [&](detail::dt type, detail::dt weight_type) {
      return dnnl::matmul::desc(detail::plain_desc(b.shape(op.inputs[0]), type), detail::any_desc({w[1], w[0]}, weight_type),
                                bias, b.destination(f, f.result_type));
    };
    const detail::md w_plain({w[1], w[0]}, detail::dt::f32, dnnl::memory::format_tag::ba);
    return convolution::int8_weighted_step<dnnl::matmul>(b, f, make_desc, 1 << 1, attr, w_plain, bias,
                                                         static_cast<quantized_type>(op.ints[0]), op.ints[1], op.floats[0],
                                                         std::move(args));
  }
  detail::step_args args;
  const dnnl::primitive_attr attr = b.attributes(f, args);
  auto make_desc = [&](detail::dt type) {
    return dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference, detail::any_desc(b.shape(op.inputs[0]), type),
                                             detail::any_desc(w, type), convolution::bias_desc(b, op), b.destination(f, type));
  };
  return convolution::weighted_step<dnnl::inner_product_forward>(b, f, make_desc, attr, detail::plain_desc(w),
                                                                 std::move(args));
}

}  // namespace tbk_onednn::operators::linear
