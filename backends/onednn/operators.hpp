// operators.hpp: the operators tbk_onednn runs, as two tables: TorchScript operator -> its
// family's refusal and translator (operators/<family>.hpp), for supports() and lowering; and
// operation kind -> its family's primitive builder, for load time. Adding an operator is a row
// here, a family file, and (for a new operation kind) a row in shapes.hpp.
#pragma once
#include "lowering.hpp"
#include "method_builder.hpp"
#include "operators/attention.hpp"
#include "operators/batch_norm.hpp"
#include "operators/binary.hpp"
#include "operators/concat.hpp"
#include "operators/constant.hpp"
#include "operators/convolution.hpp"
#include "operators/dropout.hpp"
#include "operators/eltwise.hpp"
#include "operators/layer_norm.hpp"
#include "operators/linear.hpp"
#include "operators/matmul.hpp"
#include "operators/permute.hpp"
#include "operators/pooling.hpp"
#include "operators/quantize.hpp"
#include "operators/reshape.hpp"
#include "operators/softmax.hpp"
#include "operators/split.hpp"

#include <unordered_map>  // std::unordered_map

namespace tbk_onednn {
namespace detail {

inline const std::vector<operator_entry>& aten_operators() {
  namespace aten = c10::aten;
  namespace op = operators;
  static const std::vector<operator_entry> table = {
      {aten::conv2d, op::convolution::refusal, op::convolution::translate},
      {aten::conv1d, op::convolution::refusal, op::convolution::translate},
      {aten::_convolution, op::convolution::refusal, op::convolution::translate},
      {aten::linear, op::linear::refusal, op::linear::translate},
      {aten::matmul, op::matmul::refusal, op::matmul::translate},
      {aten::bmm, op::matmul::refusal, op::matmul::translate},
      {op::attention::native_multi_head_attention(), op::attention::refusal, op::attention::translate},
      {aten::mm, op::linear::refusal, op::linear::translate},
      {aten::addmm, op::linear::refusal, op::linear::translate},
      {aten::relu, op::eltwise::refusal, op::eltwise::translate},
      {aten::relu6, op::eltwise::refusal, op::eltwise::translate},
      {aten::hardtanh, op::eltwise::refusal, op::eltwise::translate},
      {aten::clamp, op::eltwise::refusal, op::eltwise::translate},
      {aten::hardswish, op::eltwise::refusal, op::eltwise::translate},
      {aten::sigmoid, op::eltwise::refusal, op::eltwise::translate},
      {aten::hardsigmoid, op::eltwise::refusal, op::eltwise::translate},
      {aten::tanh, op::eltwise::refusal, op::eltwise::translate},
      {aten::gelu, op::eltwise::refusal, op::eltwise::translate},
      {aten::silu, op::eltwise::refusal, op::eltwise::translate},
      {aten::elu, op::eltwise::refusal, op::eltwise::translate},
      {aten::leaky_relu, op::eltwise::refusal, op::eltwise::translate},
      {aten::abs, op::eltwise::refusal, op::eltwise::translate},
      {aten::neg, op::eltwise::refusal, op::eltwise::translate},
      {aten::exp, op::eltwise::refusal, op::eltwise::translate},
      {aten::log, op::eltwise::refusal, op::eltwise::translate},
      {aten::log2, op::eltwise::refusal, op::eltwise::translate},
      {aten::log10, op::eltwise::refusal, op::eltwise::translate},
      {aten::sqrt, op::eltwise::refusal, op::eltwise::translate},
      {aten::rsqrt, op::eltwise::refusal, op::eltwise::translate},
      {aten::pow, op::eltwise::refusal, op::eltwise::translate},
      {aten::round, op::eltwise::refusal, op::eltwise::translate},
      {aten::add, op::binary::refusal, op::binary::translate},
      {aten::sub, op::binary::refusal, op::binary::translate},
      {aten::mul, op::binary::refusal, op::binary::translate},
      {aten::div, op::binary::refusal, op::binary::translate},
      {aten::batch_norm, op::batch_norm::refusal, op::batch_norm::translate},
      {aten::max_pool2d, op::pooling::refusal, op::pooling::translate},
      {aten::avg_pool2d, op::pooling::refusal, op::pooling::translate},
      {aten::adaptive_avg_pool2d, op::pooling::refusal, op::pooling::translate},
      {aten::adaptive_max_pool2d, op::pooling::refusal, op::pooling::translate},
      {aten::mean, op::pooling::refusal, op::pooling::translate},
      {aten::view, op::reshape::refusal, op::reshape::translate},
      {aten::reshape, op::reshape::refusal, op::reshape::translate},
      {aten::flatten, op::reshape::refusal, op::reshape::translate},
      {aten::squeeze, op::reshape::refusal, op::reshape::translate},
      {aten::unsqueeze, op::reshape::refusal, op::reshape::translate},
      {aten::contiguous, op::reshape::refusal, op::reshape::translate},
      {aten::clone, op::reshape::refusal, op::reshape::translate},
      {aten::alias, op::reshape::refusal, op::reshape::translate},
      {aten::dropout, op::dropout::refusal, op::dropout::translate},
      {aten::feature_dropout, op::dropout::refusal, op::dropout::translate},
      {aten::cat, op::concat::refusal, op::concat::translate},
      {c10::prim::ListConstruct, op::concat::list_refusal, op::concat::translate_list},
      {aten::append, op::concat::append_refusal, op::concat::translate_append},
      {aten::softmax, op::softmax::refusal, op::softmax::translate},
      {aten::permute, op::permute::refusal, op::permute::translate},
      {aten::transpose, op::permute::refusal, op::permute::translate},
      {aten::chunk, op::split::refusal, op::split::translate},
      {aten::split, op::split::refusal, op::split::translate},
      {aten::split_with_sizes, op::split::refusal, op::split::translate},
      {c10::prim::ListUnpack, op::split::unpack_refusal, op::split::translate_unpack},
      {aten::layer_norm, op::layer_norm::refusal, op::layer_norm::translate},
      {aten::expand, op::constant::refusal, op::constant::translate},
      {aten::slice, op::split::slice_refusal, op::split::translate_slice},
      {aten::select, op::split::slice_refusal, op::split::translate_slice},
      {op::quantize::quantize_per_tensor(), op::quantize::refusal, op::quantize::translate},
      {op::quantize::dequantize_per_tensor(), op::quantize::refusal, op::quantize::translate},
      {op::quantize::dequantize_per_channel(), op::quantize::refusal, op::quantize::translate},
      {op::quantize::quantized_weight(), op::quantize::refusal, op::quantize::translate},
  };
  return table;
}

// The row of a TorchScript operator, or nullptr.
inline const operator_entry* find_aten_operator(c10::Symbol symbol) {
  static const std::unordered_map<c10::Symbol, const operator_entry*> index = [] {
    std::unordered_map<c10::Symbol, const operator_entry*> map;
    for (const operator_entry& entry : aten_operators()) map[entry.symbol] = &entry;
    return map;
  }();
  auto found = index.find(symbol);
  return found == index.end() ? nullptr : found->second;
}

// Builds the step(s) of one fused operation; false when the fusion has only oneDNN's reference
// implementation (the caller builds its operations unfused).
using build_fn = bool (*)(method_builder& b, const fused_op& f);

// One row per op_kind, in the order of its values (1, 2, ...), as in shapes.hpp.
inline constexpr build_fn builders[] = {
    operators::convolution::build, operators::linear::build, operators::eltwise::build, operators::binary::build,
    operators::pooling::build,     operators::reshape::build, operators::concat::build, operators::softmax::build,
    operators::permute::build,     operators::split::build,   operators::layer_norm::build, operators::matmul::build,
    operators::constant::build,    operators::quantize::build, operators::quantize::build,
};
static_assert(sizeof builders / sizeof builders[0] == last_kind, "one builder per op_kind");

inline bool build_step(method_builder& b, const fused_op& f) {
  return builders[static_cast<uint8_t>(b.op(f).kind) - 1](b, f);
}

}  // namespace detail

// Why the backend cannot run the node, from the node alone (shapes come later); empty when it
// can. tbk::partition asks supports_node() of every node; whole-method lowering applies the same
// rules and may refuse further once shapes are known.
inline std::string node_refusal(const torch::jit::Node& node) {
  const detail::operator_entry* entry = detail::find_aten_operator(node.kind());
  return entry == nullptr ? "an operator tbk_onednn does not implement" : entry->refusal(node);
}
inline bool supports_node(const torch::jit::Node& node) { return node_refusal(node).empty(); }

// A frozen, inlined graph and one example input per graph input to a checked program.
inline program translate_graph(const torch::jit::Graph& graph, const std::vector<at::Tensor>& examples) {
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].scalar_type() == at::kFloat) continue;
    const std::string why = "its input is " + std::string(c10::toString(examples[i].scalar_type())) +
                            " (example input " + std::to_string(i) + "); tbk_onednn runs float32";
    const auto inputs = graph.inputs();
    if (i + 1 < inputs.size() && !inputs[i + 1]->uses().empty()) {  // named as a refusal of its first reader
      throw std::invalid_argument("tbk_onednn cannot run " + tbk::node_text(*inputs[i + 1]->uses()[0].user) + ": " + why);
    }
    throw std::invalid_argument("example input " + std::to_string(i) + ": " + why);
  }
  return detail::graph_translator(examples, detail::find_aten_operator).run(graph);
}

}  // namespace tbk_onednn
