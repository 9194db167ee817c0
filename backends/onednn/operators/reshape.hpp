// reshape.hpp: aten::view, reshape, flatten, squeeze, unsqueeze, contiguous and clone in tbk_onednn:
// which nodes it runs, how one becomes a reshape operation (sizes may be computed from the example
// inputs' shapes; -1 inferred; contiguous and clone are the value itself), and the oneDNN reorder
// that makes the plain copy.
// The payload attributes and shape rule: reshape_shape.hpp.
#pragma once
#include "reshape_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

namespace tbk_onednn::operators::reshape {

inline std::string refusal(const torch::jit::Node& node) {
  namespace aten = c10::aten;
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  const auto kind = node.kind();
  if (kind == aten::flatten) {
    return detail::is_number(in[1]) && detail::is_number(in[2]) ? "" : "start_dim and end_dim must be constant";
  }
  if (kind == aten::reshape || kind == aten::view) {
    return detail::is_int_list(in[1]) ? "" : "the shape must be constant (partitioning cannot see sizes)";
  }
  if (kind == aten::unsqueeze) return detail::is_number(in[1]) ? "" : "the dimension must be a constant int";
  if (kind == aten::squeeze) {  // squeeze(x), squeeze(x, dim), squeeze(x, dims)
    return in.size() == 1 || detail::is_number(in[1]) || detail::is_int_list(in[1]) ? "" : "the dimensions must be constant";
  }
  // contiguous(x, memory_format), clone(x, memory_format): tbk_onednn's values are never written
  // after they are made, so either is the value itself; another memory format (channels_last)
  // would change the strides eager returns. TorchScript holds a memory format as an int
  // (c10::MemoryFormat's order).
  if (in.size() < 2 || detail::is_none(in[1])) return "";
  const auto format = detail::constant(in[1]);
  if (!format || !format->isInt()) return "memory_format must be a constant";
  static const char* const names[] = {"torch.contiguous_format", "torch.preserve_format", "torch.channels_last",
                                      "torch.channels_last_3d"};
  const int64_t k = format->toInt();
  const std::string got = k >= 0 && k < 4 ? names[k] : "memory format " + std::to_string(k);
  const bool preserve_too = kind == aten::clone;  // eager's contiguous() refuses preserve_format
  if (k == static_cast<int64_t>(c10::MemoryFormat::Contiguous) ||
      (preserve_too && k == static_cast<int64_t>(c10::MemoryFormat::Preserve))) {
    return "";
  }
  return std::string("memory_format must be torch.contiguous_format") + (preserve_too ? " or torch.preserve_format" : "") +
         ", got " + got;
}

// view(x, shape), reshape(x, shape): the shape's sizes known when lowering (-1 inferred).
inline void translate_view(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  std::vector<int64_t> target = t.known_int_list(node, node.inputs()[1]);
  int64_t known = 1, infer = -1;
  for (std::size_t d = 0; d < target.size(); ++d) {
    if (target[d] == -1 && infer < 0) infer = static_cast<int64_t>(d);
    else if (target[d] < 1) t.refuse(node, "shape " + shape_text(target) + " is not supported");
    else known *= target[d];
  }
  if (infer >= 0) target[static_cast<std::size_t>(infer)] = element_count(t.shape(x), "the input") / known;
  t.bind(node, t.add(node, op_kind::reshape, {x}, target));
}

// flatten(x, start_dim, end_dim)
inline void translate_flatten(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  const shape_t sx = t.shape(x);
  const auto in = node.inputs();
  const int64_t start = t.dim_of(node, detail::constant(in[1])->toInt(), sx.size());
  const int64_t end = t.dim_of(node, detail::constant(in[2])->toInt(), sx.size());
  shape_t target(sx.begin(), sx.begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= sx[static_cast<std::size_t>(d)];
  target.push_back(merged);
  target.insert(target.end(), sx.begin() + end + 1, sx.end());
  t.bind(node, target == sx ? x : t.add(node, op_kind::reshape, {x}, target));
}

// unsqueeze(x, dim): a dimension of size 1 at dim (of the result's rank, negative counting from the end).
inline void translate_unsqueeze(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  shape_t target = t.shape(x);
  const int64_t dim = t.dim_of(node, detail::constant(node.inputs()[1])->toInt(), target.size() + 1);
  target.insert(target.begin() + dim, 1);
  t.bind(node, t.add(node, op_kind::reshape, {x}, target));
}

// squeeze(x), squeeze(x, dim), squeeze(x, dims): the named dimensions of size 1 removed (all of them
// without a dim); a named dimension of another size stays, as in eager.
inline void translate_squeeze(detail::graph_translator& t, const torch::jit::Node& node, uint32_t x) {
  const shape_t sx = t.shape(x);
  std::vector<bool> drop(sx.size(), node.inputs().size() == 1);
  if (node.inputs().size() > 1) {
    const c10::IValue dims = *detail::constant(node.inputs()[1]);
    for (int64_t d : dims.isInt() ? std::vector<int64_t>{dims.toInt()} : dims.toIntVector()) {
      if (sx.empty() && (d == 0 || d == -1)) continue;  // a 0-dim tensor's dimension 0 is itself
      drop[static_cast<std::size_t>(t.dim_of(node, d, sx.size()))] = true;
    }
  }
  shape_t target;
  for (std::size_t d = 0; d < sx.size(); ++d) {
    if (!(drop[d] && sx[d] == 1)) target.push_back(sx[d]);
  }
  if (target.empty()) t.refuse(node, "the result would have no dimensions; tbk_onednn runs tensors of 1 or more");
  t.bind(node, target == sx ? x : t.add(node, op_kind::reshape, {x}, target));
}

inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  namespace aten = c10::aten;
  const auto kind = node.kind();
  if (kind != aten::view && kind != aten::reshape) t.refuse_if(node, refusal(node));  // sizes may be computed
  const uint32_t x = t.value(node, node.inputs()[0]);
  if (kind == aten::view || kind == aten::reshape) return translate_view(t, node, x);
  if (kind == aten::flatten) return translate_flatten(t, node, x);
  if (kind == aten::unsqueeze) return translate_unsqueeze(t, node, x);
  if (kind == aten::squeeze) return translate_squeeze(t, node, x);
  t.bind(node, x);  // contiguous, clone: tbk_onednn's values have no strides to change, and are never written over
}

// A plain copy of the input, read as the new shape: in fp32, or in the input's int8 type (an
// int8 linear layer's input of more than 2 dimensions, flattened).
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const uint32_t x = b.op(f).inputs[0];
  const detail::dt own = b.layout(x).data_type();
  const detail::dt type = own == detail::dt::u8 || own == detail::dt::s8 ? own : detail::dt::f32;
  const detail::md from_plain = detail::plain_desc(b.shape(x), type);
  const dnnl::reorder::primitive_desc pd(cpu_engine(), b.layout(x), cpu_engine(), from_plain, detail::user_scratchpad());
  detail::ref to = b.define(f.result, detail::plain_desc(b.shape(f.result), type));
  to.desc = from_plain;
  b.add_step(dnnl::reorder(pd), pd, b.description(f), {{DNNL_ARG_FROM, b.source(x)}, {DNNL_ARG_TO, to}});
  return true;
}

}  // namespace tbk_onednn::operators::reshape
