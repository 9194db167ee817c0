// batch_norm.hpp: aten::batch_norm in eval mode in tbk_onednn, composed of two binary operations
// (x * scale + shift, per channel). Most batch norms never get here: PyTorch's frozen-graph
// passes fold them into the convolution before them.
#pragma once
#include "binary.hpp"
#include "../lowering.hpp"

namespace tbk_onednn::operators::batch_norm {

inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  if (detail::is_none(in[3]) || detail::is_none(in[4])) {
    return "without running statistics (track_running_stats=False) it normalizes with each batch's own "
           "mean and variance; tbk_onednn runs batch norm with running statistics";
  }
  for (std::size_t k : {3, 4}) {
    if (!detail::is_float_tensor(in[k])) return "running mean and variance must be constant";
  }
  for (std::size_t k : {1, 2}) {
    if (!detail::is_none(in[k]) && !detail::is_float_tensor(in[k])) return "weight and bias must be constant";
  }
  auto training = detail::constant(in[5]);
  if (!training || !training->isBool() || training->toBool()) return "only in eval mode";
  if (!detail::is_number(in[7])) return "eps must be a constant";
  return "";
}

// batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  auto c = [&](std::size_t k) { return *detail::constant(in[k]); };
  const uint32_t x = t.value(node, in[0]);
  const shape_t sx = t.shape(x);
  const at::Tensor mean = c(3).toTensor(), var = c(4).toTensor();
  at::Tensor scale = at::rsqrt(var + c(7).toScalar().toDouble());
  if (!detail::is_none(in[1])) scale = scale * c(1).toTensor();
  at::Tensor shift = -mean * scale;
  if (!detail::is_none(in[2])) shift = shift + c(2).toTensor();
  if (sx.size() < 2) t.refuse(node, "the input must have a channel dimension");
  std::vector<int64_t> per_channel(sx.size(), 1);
  per_channel[1] = sx[1];
  const uint32_t scaled = t.add(node, op_kind::binary, {x}, {static_cast<int64_t>(binary_kind::mul)}, {},
                                {t.weight_of(scale.reshape(per_channel))});
  t.bind(node, t.add(node, op_kind::binary, {scaled}, {static_cast<int64_t>(binary_kind::add)}, {},
                     {t.weight_of(shift.reshape(per_channel))}));
}

}  // namespace tbk_onednn::operators::batch_norm
