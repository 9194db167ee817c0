// quantize.hpp: PT2E quantization's operators in tbk_onednn (quantized_decomposed's
// quantize_per_tensor, dequantize_per_tensor and dequantize_per_channel, as
// torch.ao/torchao's convert_pt2e writes them around each quantized layer): which nodes it runs,
// how a quantize or dequantize becomes an operation (a oneDNN reorder with a scale and a zero
// point), and what a convolution or linear layer asks of them to run in int8 (convolution.hpp,
// linear.hpp): its input a dequantize of a quantize, its weight a dequantize_per_channel of
// constant int8 values with zero points 0. PyTorch's constant folding (at freezing) would turn
// such a weight into fp32 values, so preprocess first writes each as tbk_onednn::quantized_weight
// (keep_quantized_weights), an operator folding leaves alone. The payload attributes and shape
// rule: quantize_shape.hpp.
#pragma once
#include "quantize_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <cmath>     // std::isfinite
#include <optional>  // std::optional

namespace tbk_onednn::operators::quantize {

inline c10::Symbol quantize_per_tensor() {
  static const c10::Symbol s = c10::Symbol::fromQualString("quantized_decomposed::quantize_per_tensor");
  return s;
}
inline c10::Symbol dequantize_per_tensor() {
  static const c10::Symbol s = c10::Symbol::fromQualString("quantized_decomposed::dequantize_per_tensor");
  return s;
}
inline c10::Symbol dequantize_per_channel() {
  static const c10::Symbol s = c10::Symbol::fromQualString("quantized_decomposed::dequantize_per_channel");
  return s;
}
// tbk_onednn::quantized_weight(Tensor values, Tensor scales) -> Tensor: a dequantize_per_channel
// whose zero points are 0 along dimension 0, as tbk_onednn keeps it through freezing (registered
// by register_onednn.cpp with side effects, so that constant folding never evaluates it; run, it
// dequantizes: dequantized_weight).
inline c10::Symbol quantized_weight() {
  static const c10::Symbol s = c10::Symbol::fromQualString("tbk_onednn::quantized_weight");
  return s;
}

// A tensor's per-tensor quantization: x_int = clamp(round(x / scale) + zero_point) in `type`.
struct per_tensor {
  quantized_type type;
  int64_t zero_point;
  float scale;
};

// The quantization a quantize_per_tensor or dequantize_per_tensor node (x, scale, zero_point,
// quant_min, quant_max, dtype[, out_dtype]) states, or why tbk_onednn cannot take it.
inline std::string per_tensor_refusal(const torch::jit::Node& node, per_tensor* out = nullptr) {
  const auto in = node.inputs();
  if (in.size() < 6 || !detail::is_number(in[1]) || !detail::is_number(in[2]) || !detail::is_number(in[3]) ||
      !detail::is_number(in[4]) || !detail::constant(in[5]) || !detail::constant(in[5])->isInt()) {
    return "its scale, zero point, range and dtype must be constant numbers (the .tensor overloads are not supported)";
  }
  const auto dtype = static_cast<at::ScalarType>(detail::constant(in[5])->toInt());
  if (dtype != at::kByte && dtype != at::kChar) {
    return "it quantizes to " + std::string(c10::toString(dtype)) + "; tbk_onednn runs uint8 and int8";
  }
  const quantized_type type = dtype == at::kByte ? quantized_type::u8 : quantized_type::s8;
  const int64_t low = detail::constant(in[3])->toInt(), high = detail::constant(in[4])->toInt();
  if (low != quantized_min(type) || high != quantized_max(type)) {
    return "its range [" + std::to_string(low) + ", " + std::to_string(high) + "] is narrower than " +
           std::string(c10::toString(dtype)) + "'s (tbk_onednn saturates to the type's whole range)";
  }
  const double scale = detail::constant(in[1])->toDouble();
  const int64_t zero_point = detail::constant(in[2])->toInt();
  if (!std::isfinite(scale) || !(scale > 0) || zero_point < low || zero_point > high) {
    return "its scale must be finite and above 0 and its zero point within the range";
  }
  if (out) *out = {type, zero_point, static_cast<float>(scale)};
  return "";
}

// A quantized weight: a dequantize_per_channel of constant int8 values along dimension 0 with
// constant scales and zero points 0 (symmetric, as PT2E's quantizers make weights).
struct channel_weight {
  at::Tensor values;  // int8, [OC, ...]
  at::Tensor scales;  // float, [OC]
  at::Tensor dequantized() const {
    std::vector<int64_t> shape(static_cast<std::size_t>(values.dim()), 1);
    shape[0] = -1;
    return values.to(at::kFloat) * scales.to(at::kFloat).reshape(shape);
  }
};

// Whether a node dequantizes a weight: a dequantize_per_channel, or a dequantize_per_tensor of a
// constant (XNNPACKQuantizer's per-tensor weights), or tbk_onednn::quantized_weight.
inline bool is_weight_dequantize(const torch::jit::Node& node) {
  if (node.kind() == dequantize_per_channel() || node.kind() == quantized_weight()) return true;
  return node.kind() == dequantize_per_tensor() && node.inputs()[0]->node()->kind() == c10::prim::Constant;
}

// The quantized weight a dequantize_per_channel (values, scales, zero_points, axis, quant_min,
// quant_max, dtype) or a dequantize_per_tensor of a constant (values, scale, zero_point, ...: its
// scale for every output channel) states, or why tbk_onednn cannot take it as one. Without `out`
// (supports), from dtypes, shapes and constness alone: an ExecuTorch partitioner may show
// stand-ins of the weights' shapes and dtypes; the values (scales above 0, zero points 0) are
// checked where `out` is asked for (lowering).
inline std::string channel_weight_refusal(const torch::jit::Node& node, channel_weight* out = nullptr) {
  const auto in = node.inputs();
  auto tensor = [&](std::size_t k) -> std::optional<at::Tensor> {
    auto c = detail::constant(in[k]);
    if (!c || !c->isTensor()) return std::nullopt;
    return c->toTensor();
  };
  if (node.kind() == dequantize_per_tensor()) {
    const auto values = in.size() >= 6 ? tensor(0) : std::nullopt;
    if (!values || values->scalar_type() != at::kChar || values->dim() < 1 || !detail::is_number(in[1])) {
      return "the weight must be a constant int8 tensor with a constant scale";
    }
    if (!detail::is_number(in[2])) return "the weight's zero point must be a constant";
    if (!out) return "";
    if (!detail::is_constant_equal(in[2], 0)) return "the weight's zero point must be 0 (symmetric)";
    const double scale = detail::constant(in[1])->toDouble();
    if (!std::isfinite(scale) || !(scale > 0)) return "the weight's scale must be finite and above 0";
    *out = {*values, at::full({values->size(0)}, scale, at::kFloat)};
    return "";
  }
  if (in.size() > 7 && !detail::is_none(in[7])) {  // out_dtype
    auto out_dtype = detail::constant(in[7]);
    if (!out_dtype || !out_dtype->isInt() || static_cast<at::ScalarType>(out_dtype->toInt()) != at::kFloat) {
      return "the weight is dequantized to another dtype than float32";
    }
  }
  const auto values = in.size() >= 7 ? tensor(0) : std::nullopt;
  const auto scales = values ? tensor(1) : std::nullopt;
  if (!values || !scales || values->scalar_type() != at::kChar || values->dim() < 1) {
    return "the weight must be a constant int8 tensor with constant scales";
  }
  const bool no_zero_points = in[2]->type()->kind() == c10::TypeKind::NoneType;
  const auto zero_points = no_zero_points ? std::nullopt : tensor(2);
  if (!no_zero_points && !zero_points) return "the weight's zero points must be constant";
  if (!detail::is_constant_equal(in[3], 0)) return "the weight must be quantized along dimension 0 (its output channels)";
  if (scales->dim() != 1 || scales->size(0) != values->size(0)) return "the weight's scales must be one per output channel";
  if (!out) return "";
  if (zero_points && zero_points->ne(0).any().item<bool>()) return "the weight's zero points must be 0 (symmetric)";
  if (!scales->isfinite().all().item<bool>() || !scales->gt(0).all().item<bool>()) {
    return "the weight's scales must be finite and above 0";
  }
  *out = {*values, *scales};
  return "";
}

// tbk_onednn::quantized_weight's implementation: values [OC, ...] (int8) times scales [OC] along dimension 0.
inline at::Tensor dequantized_weight(const at::Tensor& values, const at::Tensor& scales) {
  return channel_weight{values, scales}.dequantized();
}

// The weight argument `w` of a convolution or linear node as a quantized weight, when it is one (a
// dequantize_per_channel that channel_weight_refusal accepts, or a tbk_onednn::quantized_weight of
// constants).
inline std::optional<channel_weight> channel_weight_of(const torch::jit::Value* w) {
  const torch::jit::Node& node = *w->node();
  channel_weight found;
  if (node.kind() == quantized_weight()) {
    auto values = detail::constant(node.inputs()[0]), scales = detail::constant(node.inputs()[1]);
    if (!values || !scales || !values->isTensor() || !scales->isTensor()) return std::nullopt;
    return channel_weight{values->toTensor(), scales->toTensor()};
  }
  if (!is_weight_dequantize(node) || !channel_weight_refusal(node, &found).empty()) return std::nullopt;
  return found;
}

// Whether `w` is a quantized weight tbk_onednn takes, from dtypes, shapes and constness (supports).
inline bool is_channel_weight(const torch::jit::Value* w) {
  const torch::jit::Node& node = *w->node();
  if (!is_weight_dequantize(node)) return false;
  if (node.kind() == quantized_weight()) return channel_weight_of(w).has_value();
  return channel_weight_refusal(node).empty();
}

// For a translator: the weight `w` of a convolution or linear node as a quantized weight, or
// nothing for another weight; refuses the node for a quantized weight whose values tbk_onednn
// cannot take (scales not above 0, zero points other than 0).
inline std::optional<channel_weight> channel_weight_for(detail::graph_translator& t, const torch::jit::Node& node,
                                                        const torch::jit::Value* w) {
  if (!is_weight_dequantize(*w->node())) return std::nullopt;
  if (auto found = channel_weight_of(w)) return found;
  channel_weight ignored;
  const std::string why = channel_weight_refusal(*w->node(), &ignored);
  t.refuse(node, why.empty() ? "its quantized weight's values and scales must be constant tensors" : why);
}

// Before freezing: each dequantize_per_channel of constants that tbk_onednn takes as a quantized
// weight becomes tbk_onednn::quantized_weight(values, scales) (where the backend's library has
// registered that operator), so that the convolution or linear layer reading it still sees the
// int8 values after PyTorch's constant folding.
inline void keep_quantized_weights(torch::jit::Graph& graph) {
  if (!c10::Dispatcher::singleton().findSchema({"tbk_onednn::quantized_weight", ""})) return;
  std::vector<torch::jit::Node*> found;
  for (torch::jit::Node* node : graph.nodes()) {
    if (is_weight_dequantize(*node) && node->kind() != quantized_weight() && channel_weight_refusal(*node).empty()) {
      found.push_back(node);
    }
  }
  for (torch::jit::Node* node : found) {
    channel_weight weight;
    if (!channel_weight_refusal(*node, &weight).empty()) continue;  // its values: lowering refuses the layer
    torch::jit::WithInsertPoint here(node);
    torch::jit::Node* kept = graph.insertNode(graph.create(
        quantized_weight(), {graph.insertConstant(weight.values), graph.insertConstant(weight.scales)}, 1));
    kept->output()->setType(node->output()->type());
    kept->copyMetadata(node);
    node->output()->replaceAllUsesWith(kept->output());
    node->destroy();
  }
}

// The int8 input of a convolution or linear node whose input `x` is a dequantize_per_tensor of a
// quantize_per_tensor (and what it states), when it is one: the layer then reads the int8 values.
inline std::optional<std::pair<const torch::jit::Value*, per_tensor>> int8_input_of(const torch::jit::Value* x) {
  const torch::jit::Node& dq = *x->node();
  per_tensor q{};
  if (dq.kind() != dequantize_per_tensor() || !per_tensor_refusal(dq, &q).empty() ||
      dq.inputs()[0]->node()->kind() != quantize_per_tensor()) {
    return std::nullopt;
  }
  return std::make_pair(dq.inputs()[0], q);
}

inline bool is_weight_reader(const torch::jit::Use& use) {
  const auto kind = use.user->kind();
  return use.offset == 1 && (kind == c10::aten::conv2d || kind == c10::aten::conv1d || kind == c10::aten::_convolution ||
                             kind == c10::aten::linear);
}

// Why tbk_onednn cannot run a dequantize_per_tensor of an activation (its parameters checked).
inline std::string dequantize_refusal(const torch::jit::Node& node) {
  if (node.inputs().size() > 6 && !detail::is_none(node.inputs()[6])) {
    auto out_dtype = detail::constant(node.inputs()[6]);
    if (!out_dtype || !out_dtype->isInt() || static_cast<at::ScalarType>(out_dtype->toInt()) != at::kFloat) {
      return "it dequantizes to another dtype than float32";
    }
  }
  if (node.inputs()[0]->node()->kind() != quantize_per_tensor()) return "its input is not quantized by a quantize_per_tensor";
  return "";
}

inline std::string refusal(const torch::jit::Node& node) {
  if (is_weight_dequantize(node)) {
    if (node.kind() != quantized_weight()) {
      if (auto why = channel_weight_refusal(node); !why.empty()) return why;
    } else if (!is_channel_weight(node.output())) {
      return "its values and scales must be constant tensors";
    }
    for (const auto& use : node.output()->uses()) {
      if (!is_weight_reader(use)) return "tbk_onednn reads a quantized weight only as a convolution's or linear layer's weight";
    }
    return "";
  }
  if (auto why = per_tensor_refusal(node); !why.empty()) return why;
  if (node.kind() == quantize_per_tensor()) {
    if (auto why = detail::operand_refusal(node.inputs()[0]); !why.empty()) return why;
    // (never an int8 result out of tbk_onednn: every reader is a dequantize it runs)
    for (const auto& use : node.output()->uses()) {
      if (use.user->kind() != dequantize_per_tensor() || !per_tensor_refusal(*use.user).empty() ||
          !dequantize_refusal(*use.user).empty()) {
        return "tbk_onednn reads its int8 result only through a dequantize_per_tensor it runs";
      }
    }
    return "";
  }
  return dequantize_refusal(node);
}

// quantize_per_tensor, dequantize_per_tensor: a quantize or dequantize operation; a dequantize
// that only int8 layers read is dropped after translation (they read its int8 input).
// a weight's dequantize: nothing; the convolution or linear layer reading it takes its weight.
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  if (is_weight_dequantize(node)) return;
  per_tensor q{};
  per_tensor_refusal(node, &q);
  const uint32_t x = t.value(node, node.inputs()[0]);
  t.bind(node, t.add(node, node.kind() == quantize_per_tensor() ? op_kind::quantize : op_kind::dequantize, {x},
                     {static_cast<int64_t>(q.type), q.zero_point}, {q.scale}));
}

inline detail::dt data_type(int64_t type) {
  return static_cast<quantized_type>(type) == quantized_type::u8 ? detail::dt::u8 : detail::dt::s8;
}

// A reorder between fp32 and int8 in the value's layout. quantize: x * (1 / scale) (in fp32, as
// PyTorch computes it), rounded half to even, plus the zero point, saturated. dequantize:
// (x - zero point) * scale.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const bool quantize = op.kind == op_kind::quantize;
  const detail::md from = b.layout(op.inputs[0]);
  const detail::md to = detail::with_data_type(from, quantize ? data_type(op.ints[0]) : detail::dt::f32);
  dnnl::primitive_attr attr = detail::user_scratchpad();
  const float scale = op.floats[0];
  attr.set_output_scales(0, {quantize ? static_cast<float>(1.0 / static_cast<double>(scale)) : scale});
  if (op.ints[1] != 0) attr.set_zero_points(quantize ? DNNL_ARG_DST : DNNL_ARG_SRC, 0, {static_cast<int32_t>(op.ints[1])});
  const dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, attr);
  b.add_step(dnnl::reorder(pd), pd, b.description(f),
             {{DNNL_ARG_FROM, b.source(op.inputs[0])}, {DNNL_ARG_TO, b.define(f.result, to)}});
  return true;
}

}  // namespace tbk_onednn::operators::quantize
