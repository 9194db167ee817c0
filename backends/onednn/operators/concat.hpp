// concat.hpp: aten::cat of a list built in the method (prim::ListConstruct; when lowering a whole
// method, also grown by aten::append, as densenet's features are) in tbk_onednn: which nodes it
// runs (the list is claimed with its cat, so both share a region), how one becomes a cat
// operation, and its oneDNN concat primitive. The payload attributes and shape rule:
// concat_shape.hpp.
#pragma once
#include "concat_shape.hpp"
#include "constant.hpp"  // constant parts
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::all_of, std::any_of
#include <iterator>   // std::size
#include <memory>     // std::make_shared

namespace tbk_onednn::operators::concat {

inline std::string list_refusal(const torch::jit::Node& node);

// cat(list, dim): the list must be built right there, of tensors (computed, or constant: ViT's
// class token), read only by cats (not appended to), and dim constant.
inline std::string refusal(const torch::jit::Node& node) {
  const torch::jit::Node* list = node.input(0)->node();
  if (list->kind() != c10::prim::ListConstruct) return "the list of tensors must be built in the method";
  if (auto why = list_refusal(*list); !why.empty()) return "its list: " + why;
  for (const torch::jit::Value* part : list->inputs()) {
    if (auto why = detail::operand_refusal(part); !why.empty()) return why;
  }
  return detail::is_number(node.input(1)) ? "" : "dim must be a constant";
}

// A list of tensors used only as the first argument of cats.
inline std::string list_refusal(const torch::jit::Node& node) {
  if (node.output()->uses().empty()) return "its list is used by nothing";
  for (const torch::jit::Value* v : node.inputs()) {
    if (!detail::is_tensor(v)) return "its list holds something other than tensors";
  }
  for (const torch::jit::Use& use : node.output()->uses()) {
    if (use.user->kind() != c10::aten::cat || use.offset != 0) {
      return "it is also used by " + std::string(use.user->kind().toQualString()) + " (a list changed after it is built)";
    }
  }
  return "";
}

// cat(list, dim) of a list the method built: its parts as they are at the cat.
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  const auto list = t.list_of(node.input(0));
  if (!list) {
    const torch::jit::Node* built = node.input(0)->node();
    if (built->kind() == c10::prim::ListConstruct) {  // say which part tbk_onednn does not have
      for (const torch::jit::Value* v : built->inputs()) constant::value_or_constant(t, node, v);
    }
    t.refuse(node, "the list of tensors must be built in the method");
  }
  const std::vector<uint32_t> parts = *list;
  if (parts.empty()) t.refuse(node, "nothing to concatenate");
  t.bind(node, t.add(node, op_kind::cat, parts, {t.dim_of(node, t.known_int(node, node.input(1)), t.shape(parts[0]).size())}));
}

// A list of tensors (computed, or constant), for the cats that read it; other lists (of sizes)
// are read where they are used.
inline void translate_list(detail::graph_translator& t, const torch::jit::Node& node) {
  const auto type = node.output()->type()->cast<c10::ListType>();
  if (!type || !type->getElementType()->cast<c10::TensorType>()) return;
  for (const torch::jit::Value* v : node.inputs()) {
    if (!constant::has_value_or_constant(t, v)) return;  // a reader other than cat refuses
  }
  auto parts = std::make_shared<std::vector<uint32_t>>();
  for (const torch::jit::Value* v : node.inputs()) parts->push_back(constant::value_or_constant(t, node, v));
  t.bind_list(node.output(), parts);
}

// append(list, x): partitioning leaves a list changed after it is built in TorchScript.
inline std::string append_refusal(const torch::jit::Node&) { return "it changes a list after it is built"; }

// Lowering a whole method follows the list through its appends: each cat reads the parts it has
// at that point of the method.
inline void translate_append(detail::graph_translator& t, const torch::jit::Node& node) {
  const auto list = t.list_of(node.input(0));
  if (!list) t.refuse(node, "it appends to a list of tensors the method does not build");
  list->push_back(constant::value_or_constant(t, node, node.input(1)));
  t.bind_list(node.output(), list);
}

// The inputs as they are, or, when concat has only the reference implementation for their
// layouts, all in the first fallback layout that has another, the result in that layout too
// (left to oneDNN, plain inputs of 3 dimensions got a result in another order, and only the
// reference concat for it).
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const int axis = static_cast<int>(op.ints[0]);
  auto make = [&](const std::vector<detail::md>& sources) {
    return dnnl::concat::primitive_desc(axis, sources, cpu_engine(), detail::user_scratchpad());
  };
  std::vector<detail::md> sources;
  for (uint32_t v : op.inputs) sources.push_back(b.layout(v));
  // inputs of different data types (bf16 pieces beside fp32 ones) go fp32 first: concat takes one
  const bool one_type = std::all_of(sources.begin(), sources.end(),
                                    [&](const detail::md& m) { return m.data_type() == sources[0].data_type(); });
  if (!one_type) {
    for (std::size_t k = 0; k < sources.size(); ++k) {
      sources[k] = detail::with_data_type(sources[k], detail::dt::f32);
    }
  }
  dnnl::concat::primitive_desc pd = make(sources);
  for (std::size_t k = 0; k < std::size(detail::fallbacks) && detail::is_reference(pd); ++k) {
    std::vector<detail::md> layouts;
    for (uint32_t v : op.inputs) layouts.push_back(detail::fallback_layout(b.shape(v), detail::fallbacks[k]));
    if (std::any_of(layouts.begin(), layouts.end(), [](const detail::md& m) { return m.is_zero(); })) continue;
    const dnnl::concat::primitive_desc other(detail::fallback_layout(b.shape(f.result), detail::fallbacks[k]), axis,
                                             layouts, cpu_engine(), detail::user_scratchpad());
    if (!detail::is_reference(other)) {
      sources = layouts;
      pd = other;
    }
  }
  detail::step_args args;
  for (std::size_t k = 0; k < op.inputs.size(); ++k) {
    args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), b.as(op.inputs[k], sources[k])});
  }
  args.push_back({DNNL_ARG_DST, b.define(f.result, pd.dst_desc())});
  b.add_step(dnnl::concat(pd), pd, b.description(f), std::move(args));
  return true;
}

}  // namespace tbk_onednn::operators::concat
