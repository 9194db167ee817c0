// dropout.hpp: aten::dropout and feature_dropout in eval mode (train=False) in tbk_onednn: the
// value itself, no operation.
#pragma once
#include "../lowering.hpp"

namespace tbk_onednn::operators::dropout {

inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  auto train = detail::constant(node.inputs()[2]);
  if (!train || !train->isBool() || train->toBool()) return "only in eval mode (train=False)";
  return "";
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  t.bind(node, t.value(node, node.inputs()[0]));
}

}  // namespace tbk_onednn::operators::dropout
