// eltwise.hpp: element-by-element functions in tbk_onednn (aten::relu, relu6, hardtanh, clamp,
// hardswish, sigmoid, hardsigmoid, tanh, gelu exact and tanh, silu, elu, leaky_relu, abs, neg, exp,
// log, log2, log10, sqrt, rsqrt, pow by a constant, round): which nodes it runs, how one
// becomes an eltwise operation, the oneDNN algorithms of each kind (fused as post-ops by
// fusion.hpp where they can be) and the eltwise primitive otherwise. The payload attributes and
// shape rule: eltwise_shape.hpp.
#pragma once
#include "eltwise_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::any_of, std::min
#include <cmath>    // INFINITY
#include <tuple>    // std::tuple
#include <vector>   // std::vector

namespace tbk_onednn::operators::eltwise {

// aten::gelu's `approximate` argument when constant; empty otherwise.
inline std::string approximation(const torch::jit::Node& node) {
  auto approximate = detail::constant(node.inputs()[1]);
  return approximate && approximate->isString() ? approximate->toStringRef() : "";
}

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::gelu && in.size() > 1 && approximation(node) != "none" && approximation(node) != "tanh") {
    return "approximate must be a constant 'none' or 'tanh'";
  }
  if (kind == aten::hardtanh || kind == aten::clamp) {
    for (std::size_t k = 1; k < in.size(); ++k) {
      if (!detail::is_number(in[k]) && !detail::is_none(in[k])) return "the bounds must be constant numbers";
    }
  }
  if (kind == aten::pow && (in.size() != 2 || !detail::is_number(in[1]))) return "the exponent must be a constant number";
  if (kind == aten::leaky_relu && in.size() > 1 && !detail::is_number(in[1])) return "the slope must be a constant number";
  if (kind == aten::elu) {  // elu(x, alpha, scale, input_scale)
    if (in.size() > 1 && !detail::is_number(in[1])) return "alpha must be a constant number";
    for (std::size_t k = 2; k < in.size(); ++k) {
      if (!detail::is_constant_equal(in[k], 1)) return "scale and input_scale other than 1 are not supported";
    }
  }
  if (kind == aten::round && in.size() > 1 && !detail::is_constant_equal(in[1], 0)) {
    return "decimals other than 0 are not supported";
  }
  return "";
}

// Whether a node is aten::gelu with approximate='tanh'.
inline bool gelu_tanh(const torch::jit::Node& node) {
  return node.kind() == c10::aten::gelu && node.inputs().size() > 1 && approximation(node) == "tanh";
}

// An eltwise operation on value x; its result's value.
inline uint32_t add(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x, eltwise_kind kind,
                    float alpha = 0, float beta = 0) {
  return t.add(node, op_kind::eltwise, {x}, {static_cast<int64_t>(kind)}, {alpha, beta});
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const auto kind = node.kind();
  const uint32_t x = t.value(node, in[0]);
  if (kind == aten::hardtanh || kind == aten::clamp) {  // hardtanh(x, -1, 1), clamp(x, None, None)
    const float inf = INFINITY;
    auto bound = [&](std::size_t k, float fallback) {
      return k < in.size() && !detail::is_none(in[k]) ? static_cast<float>(detail::constant(in[k])->toScalar().toDouble())
                                                      : fallback;
    };
    const bool hardtanh = kind == aten::hardtanh;
    const float low = bound(1, hardtanh ? -1.f : -inf), high = bound(2, hardtanh ? 1.f : inf);
    // min > max: PyTorch's min(max(x, min), max) is max everywhere, and so is clamp(x, max, max)
    return t.bind(node, add(t, node, x, eltwise_kind::clamp, std::min(low, high), high));
  }
  if (kind == aten::relu6) return t.bind(node, add(t, node, x, eltwise_kind::clamp, 0, 6));
  auto number = [&](std::size_t k, double fallback) {
    return static_cast<float>(k < in.size() ? detail::constant(in[k])->toScalar().toDouble() : fallback);
  };
  if (kind == aten::neg) return t.bind(node, add(t, node, x, eltwise_kind::affine, -1, 0));
  if (kind == aten::elu) return t.bind(node, add(t, node, x, eltwise_kind::elu, number(1, 1.0)));
  if (kind == aten::leaky_relu) return t.bind(node, add(t, node, x, eltwise_kind::leaky_relu, number(1, 0.01)));
  if (kind == aten::pow) return t.bind(node, add(t, node, x, eltwise_kind::pow, 1, number(1, 1.0)));
  if (kind == aten::rsqrt) return t.bind(node, add(t, node, x, eltwise_kind::pow, 1, -0.5f));
  const eltwise_kind which = kind == aten::relu        ? eltwise_kind::relu
                             : kind == aten::hardswish ? eltwise_kind::hardswish
                             : kind == aten::sigmoid   ? eltwise_kind::sigmoid
                             : kind == aten::hardsigmoid ? eltwise_kind::hardsigmoid
                             : kind == aten::tanh      ? eltwise_kind::tanh
                             : kind == aten::silu      ? eltwise_kind::silu
                             : kind == aten::abs       ? eltwise_kind::abs
                             : kind == aten::exp       ? eltwise_kind::exp
                             : kind == aten::log       ? eltwise_kind::log
                             : kind == aten::log2      ? eltwise_kind::log2
                             : kind == aten::log10     ? eltwise_kind::log10
                             : kind == aten::sqrt      ? eltwise_kind::sqrt
                             : kind == aten::round     ? eltwise_kind::round
                             : gelu_tanh(node)         ? eltwise_kind::gelu_tanh
                                                       : eltwise_kind::gelu;
  t.bind(node, add(t, node, x, which));
}

// The oneDNN eltwise pieces of a kind: (algorithm, alpha, beta); hardsigmoid takes two.
inline std::vector<std::tuple<dnnl::algorithm, float, float>> pieces(eltwise_kind kind, float alpha, float beta) {
  using a = dnnl::algorithm;
  switch (kind) {
    case eltwise_kind::relu: return {{a::eltwise_relu, 0.f, 0.f}};
    case eltwise_kind::clamp: return {{a::eltwise_clip, alpha, beta}};
    case eltwise_kind::hardswish: return {{a::eltwise_hardswish, 0.f, 0.f}};
    case eltwise_kind::sigmoid: return {{a::eltwise_logistic, 0.f, 0.f}};
    case eltwise_kind::hardsigmoid: return {{a::eltwise_linear, 1.f / 6, 0.5f}, {a::eltwise_clip, 0.f, 1.f}};
    case eltwise_kind::tanh: return {{a::eltwise_tanh, 0.f, 0.f}};
    case eltwise_kind::affine: return {{a::eltwise_linear, alpha, beta}};
    case eltwise_kind::gelu: return {{a::eltwise_gelu_erf, 0.f, 0.f}};
    case eltwise_kind::silu: return {{a::eltwise_swish, 1.f, 0.f}};  // x * sigmoid(alpha * x)
    case eltwise_kind::gelu_tanh: return {{a::eltwise_gelu_tanh, 0.f, 0.f}};
    case eltwise_kind::abs: return {{a::eltwise_abs, 0.f, 0.f}};
    case eltwise_kind::exp: return {{a::eltwise_exp, 0.f, 0.f}};
    case eltwise_kind::log: return {{a::eltwise_log, 0.f, 0.f}};
    case eltwise_kind::sqrt: return {{a::eltwise_sqrt, 0.f, 0.f}};
    case eltwise_kind::elu: return {{a::eltwise_elu, alpha, 0.f}};
    case eltwise_kind::leaky_relu: return {{a::eltwise_relu, alpha, 0.f}};
    case eltwise_kind::pow: return {{a::eltwise_pow, alpha, beta}};  // alpha * x ** beta
    case eltwise_kind::round: return {{a::eltwise_round, 0.f, 0.f}};
    case eltwise_kind::log2: return {{a::eltwise_log, 0.f, 0.f}, {a::eltwise_linear, 1.4426950408889634f, 0.f}};
    case eltwise_kind::log10: return {{a::eltwise_log, 0.f, 0.f}, {a::eltwise_linear, 0.4342944819032518f, 0.f}};
  }
  throw std::invalid_argument("unknown eltwise kind");
}

// One step per piece: the first writes the result's slot, later ones work in place. The pieces run
// on the input's layout, or, when oneDNN has only its reference implementation for the first
// piece there, on the first fallback layout (then in fp32, for a bf16 input) that has another.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const auto all = pieces(static_cast<eltwise_kind>(op.ints[0]), op.floats[0], op.floats[1]);
  auto chosen = [&](const detail::md& src, dnnl::algorithm algorithm, float alpha, float beta) {
    const dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, algorithm, src, alpha, beta);
    return b.choose<dnnl::eltwise_forward::primitive_desc>(
        [&] { return dnnl::eltwise_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
  };
  const auto& [first, first_alpha, first_beta] = all.front();
  const auto layout = b.with_input_layout<dnnl::eltwise_forward::primitive_desc>(
      op.inputs[0], [&](const detail::md& src) { return chosen(src, first, first_alpha, first_beta); }).second;
  detail::ref current = b.as(op.inputs[0], layout);
  for (auto [algorithm, alpha, beta] : all) {
    const auto pd = chosen(current.desc, algorithm, alpha, beta);
    const detail::ref to = b.defined(f.result) ? b.source(f.result) : b.define(f.result, pd.dst_desc());
    b.add_step(dnnl::eltwise_forward(pd), pd,
               shape_text(b.shape(f.result)) + " " + dnnl_alg_kind2str(dnnl::convert_to_c(algorithm)),
               {{DNNL_ARG_SRC, current}, {DNNL_ARG_DST, to}});
    current = to;
  }
  return true;
}

}  // namespace tbk_onednn::operators::eltwise
