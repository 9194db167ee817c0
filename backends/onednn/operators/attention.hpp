// attention.hpp: aten::_native_multi_head_attention in tbk_onednn (torch.nn.MultiheadAttention's
// inference fast path, which torchvision's ViT takes in eval mode), composed of operations the
// backend has: which nodes it runs (constant weights, no mask, the attention weights unused),
// and how one becomes linear projections, permutes, two matmuls and a softmax. No primitive of
// its own: each piece builds with its family's.
#pragma once
#include "matmul.hpp"
#include "../lowering.hpp"

#include <cmath>  // std::sqrt

namespace tbk_onednn::operators::attention {

inline c10::Symbol native_multi_head_attention() {
  static const c10::Symbol symbol = c10::Symbol::fromQualString("aten::_native_multi_head_attention");
  return symbol;
}

// _native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
// proj_weight, proj_bias, mask=None, need_weights=True, average_attn_weights=True, mask_type=None)
// -> (output, attention weights)
inline std::string refusal(const torch::jit::Node& node) {
  const auto in = node.inputs();
  if (in.size() < 10 || node.outputs().size() != 2) return "an unknown form of this operator";
  if (!node.outputs()[1]->uses().empty()) return "its attention weights are used (tbk_onednn computes the output only)";
  for (std::size_t k = 0; k < 3; ++k) {
    if (!detail::is_tensor(in[k])) return "query, key and value must be tensors";
    if (auto why = detail::operand_refusal(in[k]); !why.empty()) return why;
  }
  if (!detail::is_number(in[3]) || !detail::is_number(in[4])) return "embed_dim and num_head must be constant";
  for (std::size_t k = 5; k < 9; ++k) {
    if (!detail::is_float_tensor(in[k])) {
      return "the projection weights and biases must be constant float tensors (freeze the module: tbk.partition(..., freeze=True))";
    }
  }
  return detail::is_none(in[9]) ? "" : "an attention mask is not supported";
}

// [N, L, E] as [N, H, L, E / H]: each head's slice of the embedding, heads first.
inline uint32_t heads_first(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x, int64_t heads) {
  const shape_t sx = t.shape(x);
  const uint32_t split = t.add(node, op_kind::reshape, {x}, {sx[0], sx[1], heads, sx[2] / heads});
  return t.add(node, op_kind::permute, {split}, {0, 2, 1, 3});
}

// softmax(q k^T / sqrt(D)) v per head, with q, k, v the query, key and value projected by the
// slices of qkv_weight and qkv_bias, the heads joined again and projected by proj_weight and
// proj_bias: PyTorch's definition of multi-head attention.
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const int64_t embed = c(3).toInt(), heads = c(4).toInt();
  if (heads < 1 || embed < 1 || embed % heads != 0) {
    t.refuse(node, "embed_dim " + std::to_string(embed) + " is not a multiple of num_head " + std::to_string(heads));
  }
  const at::Tensor qkv_weight = c(5).toTensor(), qkv_bias = c(6).toTensor();
  if (qkv_weight.dim() != 2 || qkv_weight.size(0) != 3 * embed || qkv_bias.numel() != 3 * embed) {
    t.refuse(node, "qkv_weight must be [3 * embed_dim, embed_dim] and qkv_bias [3 * embed_dim]");
  }
  uint32_t qkv[3];
  for (int64_t k = 0; k < 3; ++k) {
    const uint32_t x = t.value(node, in[static_cast<std::size_t>(k)]);
    const shape_t& sx = t.shape(x);
    if (sx.size() != 3 || sx[2] != qkv_weight.size(1)) {
      t.refuse(node, "query, key and value must be [batch, length, embed_dim] (batch_first); one is " + shape_text(sx));
    }
    const uint32_t projected =
        linear::add(t, node, x, qkv_weight.narrow(0, k * embed, embed), qkv_bias.reshape({-1}).narrow(0, k * embed, embed));
    qkv[k] = heads_first(t, node, projected, heads);
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(embed / heads)));
  const uint32_t scores = matmul::add(t, node, qkv[0], qkv[1], /*transpose_b=*/true, scale);
  const uint32_t weights = t.add(node, op_kind::softmax, {scores}, {3});
  const uint32_t context = t.add(node, op_kind::permute, {matmul::add(t, node, weights, qkv[2])}, {0, 2, 1, 3});
  const shape_t& sc = t.shape(context);
  const uint32_t joined = t.add(node, op_kind::reshape, {context}, {sc[0], sc[1], embed});
  t.bind(node.outputs()[0], linear::add(t, node, joined, c(7).toTensor(), c(8).toTensor()));
}

}  // namespace tbk_onednn::operators::attention
