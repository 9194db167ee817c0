// permute.hpp: aten::permute and aten::transpose in tbk_onednn (ConvNeXt's channels-last blocks,
// ShuffleNet's channel shuffle): which nodes it runs (constant dims), how one becomes a permute
// operation, and the oneDNN reorder that writes the input into the permuted order. The payload
// attributes and shape rule: permute_shape.hpp.
#pragma once
#include "permute_shape.hpp"
#include "../lowering.hpp"
#include "../method_builder.hpp"

#include <numeric>  // std::iota

namespace tbk_onednn::operators::permute {

inline std::string refusal(const torch::jit::Node& node) {
  if (auto why = detail::tensor_to_tensor_refusal(node); !why.empty()) return why;
  const auto in = node.inputs();
  if (node.kind() == c10::aten::permute) return detail::is_int_list(in[1]) ? "" : "dims must be a constant list";
  return detail::is_number(in[1]) && detail::is_number(in[2]) ? "" : "dim0 and dim1 must be constant";  // transpose
}

// permute(x, dims), transpose(x, dim0, dim1): dims counted from the end where negative.
inline void translate(detail::graph_translator& t, const torch::jit::Node& node) {
  t.refuse_if(node, refusal(node));
  const auto in = node.inputs();
  const uint32_t x = t.value(node, in[0]);
  const std::size_t rank = t.shape(x).size();
  std::vector<int64_t> dims(rank);
  if (node.kind() == c10::aten::permute) {
    const std::vector<int64_t> given = detail::constant(in[1])->toIntVector();
    if (given.size() != rank) {
      t.refuse(node, "dims " + shape_text(given) + " do not name the " + std::to_string(rank) + " dimensions of " +
                         shape_text(t.shape(x)));
    }
    for (std::size_t d = 0; d < rank; ++d) dims[d] = t.dim_of(node, given[d], rank);
  } else {
    std::iota(dims.begin(), dims.end(), int64_t{0});
    std::swap(dims[static_cast<std::size_t>(t.dim_of(node, detail::constant(in[1])->toInt(), rank))],
              dims[static_cast<std::size_t>(t.dim_of(node, detail::constant(in[2])->toInt(), rank))]);
  }
  std::vector<int64_t> identity(rank);
  std::iota(identity.begin(), identity.end(), int64_t{0});
  t.bind(node, dims == identity ? x : t.add(node, op_kind::permute, {x}, dims));
}

// One reorder: the result's plain memory, described with the input's dimensions (oneDNN's
// permute_axes), is written from the input in whatever layout it has.
inline bool build(detail::method_builder& b, const detail::fused_op& f) {
  const operation& op = b.op(f);
  const uint32_t x = op.inputs[0];
  const detail::md result_plain = detail::plain_desc(b.shape(f.result));
  // permute_axes moves axis i of the result to axis dims[i]: the input's order, strided as the result
  const detail::md as_input = result_plain.permute_axes(std::vector<int>(op.ints.begin(), op.ints.end()));
  const dnnl::reorder::primitive_desc pd(cpu_engine(), b.layout(x), cpu_engine(), as_input, detail::user_scratchpad());
  detail::ref to = b.define(f.result, result_plain);
  to.desc = as_input;
  b.add_step(dnnl::reorder(pd), pd, b.description(f), {{DNNL_ARG_FROM, b.source(x)}, {DNNL_ARG_TO, to}});
  return true;
}

}  // namespace tbk_onednn::operators::permute
