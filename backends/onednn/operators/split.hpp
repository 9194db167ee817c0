// split.hpp: aten::chunk, aten::split and aten::split_with_sizes unpacked by prim::ListUnpack,
// and aten::slice and aten::select, in tbk_onednn (ShuffleNet's `x1, x2 = x.chunk(2, dim=1)`,
// ViT's `x[:, 0]`): which nodes it runs (constant sizes and dim, the list read only by one unpack;
// step 1), how each becomes slice operations (PyTorch's sizes: chunk's pieces are ceil(size /
// chunks) long, the last one shorter; select is a slice of one, its dimension then dropped), and
// the oneDNN reorder that copies a piece out of its input. The payload attributes and shape rule:
// split_shape.hpp.
#pragma once
#include "split_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <algorithm>  // std::min, std::max

namespace tbk_onednn::operators::split {

// chunk(x, chunks, dim), split(x, split_size, dim), split(x, sizes, dim), split_with_sizes(x, sizes, dim)
inline std::string refusal(const torch::jit::Node& node) {
  const auto in = node.inputs();
  if (in.size() != 3 || !detail::is_tensor(in[0])) return "its first argument is not a tensor";
  if (auto why = detail::operand_refusal(in[0]); !why.empty()) return why;
  if (!(detail::is_number(in[1]) || detail::is_int_list(in[1])) || !detail::is_number(in[2])) {
    return "the sizes and dim must be constant";
  }
  if (node.outputs().size() != 1) return "an unknown form of this operator";
  const auto uses = node.output()->uses();
  if (uses.size() != 1 || uses[0].user->kind() != c10::prim::ListUnpack) {
    return "its list of pieces must be read by one prim::ListUnpack only";
  }
  return "";
}

// prim::ListUnpack of a chunk or split that refusal() accepts.
inline std::string unpack_refusal(const torch::jit::Node& node) {
  const torch::jit::Node* parts = node.input(0)->node();
  const auto kind = parts->kind();
  if (kind != c10::aten::chunk && kind != c10::aten::split && kind != c10::aten::split_with_sizes) {
    return "it unpacks a list that is not made by aten::chunk or aten::split";
  }
  return refusal(*parts);
}

// The pieces' lengths along a dimension of `size`, as PyTorch cuts them.
inline std::vector<int64_t> piece_lengths(detail::graph_translator& t, const torch::jit::Node& parts, int64_t size) {
  const auto in = parts.inputs();
  if (detail::is_int_list(in[1])) {
    std::vector<int64_t> sizes = detail::constant(in[1])->toIntVector();
    int64_t total = 0;
    for (int64_t s : sizes) {
      if (s < 1) t.refuse(parts, "the pieces must be 1 or more long; the sizes are " + shape_text(sizes));
      total += s;
    }
    if (total != size) t.refuse(parts, "the sizes " + shape_text(sizes) + " do not add up to " + std::to_string(size));
    return sizes;
  }
  const int64_t n = detail::constant(in[1])->toInt();
  if (n < 1) t.refuse(parts, "the number of pieces or the piece size must be 1 or more, not " + std::to_string(n));
  const int64_t piece = parts.kind() == c10::aten::chunk ? (size + n - 1) / n : n;
  std::vector<int64_t> lengths;
  for (int64_t start = 0; start < size; start += piece) lengths.push_back(std::min(piece, size - start));
  return lengths;
}

// The list is read by the prim::ListUnpack that uses it.
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) { t.refuse_if(node, refusal(node)); }

// Each output of the unpack is a slice of the split's input.
inline void translate_unpack(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, unpack_refusal(node));
  const torch::jit::Node& parts = *node.input(0)->node();
  const uint32_t x = t.value(node, parts.input(0));
  const int64_t dim = t.dim_of(parts, detail::constant(parts.input(2))->toInt(), t.shape(x).size());
  const std::vector<int64_t> lengths = piece_lengths(t, parts, t.shape(x)[static_cast<std::size_t>(dim)]);
  if (lengths.size() != node.outputs().size()) {
    t.refuse(node, "it unpacks " + std::to_string(node.outputs().size()) + " tensors from a list of " +
                       std::to_string(lengths.size()));
  }
  int64_t start = 0;
  for (std::size_t k = 0; k < lengths.size(); ++k) {
    t.bind(node.outputs()[k], t.add(node, op_kind::slice, {x}, {dim, start, lengths[k]}));
    start += lengths[k];
  }
}

// slice(x, dim, start=None, end=None, step=1), select(x, dim, index). Lowering a whole method
// also takes bounds computed from the example inputs' shapes.
inline std::string slice_form_refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  if (node.kind() == c10::aten::select) return in.size() == 3 && detail::is_number(in[1]) ? "" : "dim must be constant";
  if (in.size() != 5 || !detail::is_number(in[1])) return "dim must be constant";
  return detail::is_constant_equal(in[4], 1) ? "" : "a step other than 1 is not supported";
}
inline std::string slice_refusal(const torch::jit::Node& node) {
  if (auto why = slice_form_refusal(node); !why.empty()) return why;
  for (std::size_t k = 2; k < std::min<std::size_t>(node.inputs().size(), 4); ++k) {
    const torch::jit::Value* bound = node.inputs()[k];
    if (!detail::is_number(bound) && !detail::is_none(bound)) return "its bounds must be constant (partitioning cannot see sizes)";
  }
  return "";
}

inline void translate_slice(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, slice_form_refusal(node));  // bounds may be computed
  const auto in = node.inputs();
  const uint32_t x = t.value(node, in[0]);
  const shape_t sx = t.shape(x);
  const int64_t dim = t.dim_of(node, detail::constant(in[1])->toInt(), sx.size());
  const int64_t size = sx[static_cast<std::size_t>(dim)];
  if (node.kind() == c10::aten::select) {
    int64_t index = t.known_int(node, in[2]);
    if (index < -size || index >= size) {
      t.refuse(node, "index " + std::to_string(index) + " is out of range for size " + std::to_string(size));
    }
    index = index < 0 ? index + size : index;
    shape_t dropped = sx;
    dropped.erase(dropped.begin() + dim);
    if (dropped.empty()) t.refuse(node, "its result would be a 0-dim tensor");
    return t.bind(node, t.add(node, op_kind::reshape, {t.add(node, op_kind::slice, {x}, {dim, index, 1})}, dropped));
  }
  // PyTorch's rule: None is the whole dimension, negative counts from the end, both clamped to it
  auto bound = [&](const torch::jit::Value* v, int64_t fallback) {
    if (detail::is_none(v)) return fallback;
    const int64_t b = t.known_int(node, v);
    return std::min(size, std::max<int64_t>(0, b < 0 ? b + size : b));
  };
  const int64_t start = bound(in[2], 0), end = bound(in[3], size);
  if (end <= start) t.refuse(node, "the slice [" + std::to_string(start) + ", " + std::to_string(end) + ") is empty");
  t.bind(node, start == 0 && end == size ? x : t.add(node, op_kind::slice, {x}, {dim, start, end - start}));
}

// The layout the piece is made in: the input's kind of layout (blocked, channels last) where the
// piece can have it, else plain.
inline detail::md piece_layout(const detail::method_builder& b, uint32_t x, const shape_t& piece) {
  for (detail::fallback kind : detail::fallbacks) {
    const detail::md input = detail::fallback_layout(b.shape(x), kind);
    if (!input.is_zero() && input == b.layout(x)) {
      const detail::md out = detail::fallback_layout(piece, kind);
      if (!out.is_zero()) return out;
    }
  }
  return detail::plain_desc(piece);
}

// One reorder from the piece of the input's memory (oneDNN's submemory descriptor; from a plain
// copy where the input's blocks do not fit the piece's start).
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const uint32_t x = op.inputs[0];
  const shape_t& piece = b.shape(f.result);
  dnnl::memory::dims offsets(piece.size(), 0);
  offsets[static_cast<std::size_t>(op.ints[0])] = op.ints[1];
  detail::md whole = b.layout(x);
  detail::md part = whole.submemory_desc(piece, offsets, /*allow_empty=*/true);
  if (part.is_zero()) {
    whole = detail::plain_desc(b.shape(x));
    part = whole.submemory_desc(piece, offsets);
  }
  detail::ref from = b.as(x, whole);
  from.desc = part;
  const detail::md to_desc = piece_layout(b, x, piece);
  const dnnl::reorder::primitive_desc pd(cpu_engine(), part, cpu_engine(), to_desc, detail::user_scratchpad());
  b.add_step(dnnl::reorder(pd), pd, b.description(f), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, b.define(f.result, to_desc)}});
  return true;
}

}  // namespace tbk_onednn::operators::split
