// lowering.hpp: the frame of TorchScript-to-program translation, at lowering time: the map from a
// frozen graph's values to program values and to constants it knows (numbers, sizes computed from
// the example inputs' shapes), the nodes that only compute such constants or check shapes, and
// the helpers each operator family's translator (operators/<family>.hpp) builds with. Which
// operators exist, and how each becomes operations, is the table in operators.hpp.
#pragma once
#include "ir.hpp"
#include "shapes.hpp"  // op_shape, infer_shapes

#include <ATen/ATen.h>
#include <tbk/node_text.hpp>              // tbk::node_text
#include <torch/csrc/jit/ir/constants.h>  // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>         // torch::jit::Graph, Node, Value

#include <cstdint>        // int64_t, uint32_t
#include <memory>         // std::shared_ptr
#include <stdexcept>      // std::invalid_argument
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

namespace tbk_onednn {
namespace detail {

using torch::jit::Node;
using torch::jit::Value;

// aten::list_with_default, which PyTorch does not intern
inline c10::Symbol list_with_default() {
  static const c10::Symbol symbol = c10::Symbol::fromQualString("aten::list_with_default");
  return symbol;
}
inline bool is_tensor(const Value* v) { return v->type()->cast<c10::TensorType>() != nullptr; }
inline c10::optional<c10::IValue> constant(const Value* v) { return torch::jit::toIValue(v); }
inline bool is_number(const Value* v) {
  auto c = constant(v);
  return c && (c->isInt() || c->isDouble());
}
inline bool is_none(const Value* v) {
  auto c = constant(v);
  return c && c->isNone();
}
inline bool is_float_tensor(const Value* v) {
  auto c = constant(v);
  return c && c->isTensor() && c->toTensor().scalar_type() == at::kFloat && !c->toTensor().is_sparse();
}
inline bool is_int_list(const Value* v) {
  auto c = constant(v);
  return c && c->isIntList();
}
inline bool is_constant_equal(const Value* v, double expected) {
  auto c = constant(v);
  return c && (c->isInt() || c->isDouble()) && c->toScalar().toDouble() == expected;
}

// The sizes of a tensor value when its type knows them all (tbk::partition sets the types of one
// run on the example inputs; whole-method lowering propagates the example inputs' shapes).
inline c10::optional<std::vector<int64_t>> known_sizes(const Value* v) {
  auto type = v->type()->cast<c10::TensorType>();
  if (!type) return c10::nullopt;
  return type->sizes().concrete_sizes();
}

// Why a tensor of this value's type cannot be an operand of tbk_onednn, where its type tells:
// another dtype than float32, no dimensions, or no elements.
inline std::string operand_refusal(const Value* v) {
  auto type = v->type()->cast<c10::TensorType>();
  if (!type) return "";
  if (auto dtype = type->scalarType(); dtype && *dtype != at::kFloat) {
    return "its input is " + std::string(c10::toString(*dtype)) + "; tbk_onednn runs float32";
  }
  if (auto sizes = known_sizes(v)) {
    if (sizes->empty()) return "its input is a 0-dim tensor; tbk_onednn runs tensors of 1 or more dimensions";
    for (int64_t d : *sizes) {
      if (d == 0) return "its input " + shape_text(*sizes) + " has no elements";
    }
  }
  return "";
}

// Why a node whose result is not one tensor, or whose first argument is not a float32 tensor with
// elements, cannot be an operation of tbk_onednn's (every operator family's refusal starts with
// it); empty otherwise.
inline std::string tensor_to_tensor_refusal(const Node& node) {
  if (node.outputs().size() != 1 || !is_tensor(node.output())) return "its result is not one tensor";
  if (node.inputs().empty() || !is_tensor(node.inputs()[0])) return "its first argument is not a tensor";
  return operand_refusal(node.inputs()[0]);
}

// A list of two from a stride, padding or kernel argument: [a] is [a, a], [] is the fallback.
inline std::vector<int64_t> pair(const c10::IValue& list, int64_t fallback) {
  std::vector<int64_t> v = list.toIntVector();
  if (v.empty()) return {fallback, fallback};
  if (v.size() == 1) return {v[0], v[0]};
  return v;
}

class graph_translator;

// What a refusal at lowering ends with (a call-time refusal at other shapes leaves it out).
inline constexpr const char* partition_hint =
    " (tbk's partitioners leave such a node outside tbk_onednn: tbk::partition, tbk.partition, tbk.executorch, "
    "tbk.export, tbk.compile)";

// One operator family's entry for one TorchScript operator: why the backend cannot run a node
// (from the node alone: supports() asks this; empty when it can), and how a node becomes
// operations (at lowering, with shapes known; it may refuse further).
struct operator_entry {
  c10::Symbol symbol;
  std::string (*refusal)(const Node& node);
  void (*translate)(graph_translator& t, const Node& node);
};
using operator_lookup = const operator_entry* (*)(c10::Symbol);

// Builds a program from one graph; keeps the map from the graph's values to program values
// (tensors) and to known constants (numbers and int lists, including sizes it computed).
class graph_translator {
 public:
  graph_translator(const std::vector<at::Tensor>& examples, operator_lookup find_operator)
      : find_operator_(find_operator) {
    for (const at::Tensor& t : examples) {
      program_.input_shapes.push_back(t.sizes().vec());
      shapes_.push_back(t.sizes().vec());
    }
  }

  program run(const torch::jit::Graph& graph);

  // ---- for the operator families' translators ----

  [[noreturn]] void refuse(const Node& node, const std::string& why) {
    throw std::invalid_argument("tbk_onednn cannot run " + tbk::node_text(node) + ": " + why + partition_hint);
  }
  void refuse_if(const Node& node, const std::string& why) {
    if (!why.empty()) refuse(node, why);
  }

  // The program value of a tensor the graph computed before `node`.
  uint32_t value(const Node& node, const Value* v) {
    auto found = values_.find(v);
    if (found == values_.end()) refuse(node, "its operand " + v->debugName() + " is not computed by tbk_onednn");
    return found->second;
  }
  const shape_t& shape(uint32_t v) const { return shapes_[v]; }
  // Whether the graph's value v is a tensor the program computes.
  bool computed(const Value* v) const { return values_.count(v) != 0; }
  // A list of tensors the method builds (prim::ListConstruct, then aten::append: densenet's
  // features): its program values so far, shared by the values that alias it.
  using tensor_list = std::shared_ptr<std::vector<uint32_t>>;
  void bind_list(const Value* list, tensor_list values) { tensor_lists_[list] = std::move(values); }
  tensor_list list_of(const Value* list) const {
    auto found = tensor_lists_.find(list);
    return found == tensor_lists_.end() ? nullptr : found->second;
  }

  // The node's result is program value v.
  void bind(const Node& node, uint32_t v) { values_[node.output()] = v; }
  // One of a node's results (prim::ListUnpack's) is program value v.
  void bind(const Value* result, uint32_t v) { values_[result] = v; }

  // A constant tensor as a weight of the program (fp32, contiguous; a 0-dim one as [1]).
  uint32_t weight_of(const at::Tensor& t) {
    at::Tensor c = t.to(at::kFloat).contiguous();
    program_.weights.push_back({c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
    if (program_.weights.back().shape.empty()) program_.weights.back().shape = {1};
    weight_used_.push_back(false);
    return static_cast<uint32_t>(program_.weights.size() - 1);
  }

  // A new operation, its shape rule checked now (a failure refuses `node`); its result's value.
  uint32_t add(const Node& node, op_kind kind, std::vector<uint32_t> inputs, std::vector<int64_t> ints = {},
               std::vector<float> floats = {}, std::vector<uint32_t> weights = {}) {
    program_.ops.push_back({kind, std::move(inputs), std::move(ints), std::move(floats), std::move(weights)});
    try {
      shapes_.push_back(op_shape(program_, program_.ops.size() - 1, shapes_, weight_used_));
    } catch (const std::exception& e) {
      refuse(node, e.what());
    }
    return static_cast<uint32_t>(shapes_.size() - 1);
  }

  // The dimension `d` of a rank-`rank` tensor, negative counting from the end.
  int64_t dim_of(const Node& node, int64_t d, std::size_t rank) {
    const int64_t r = static_cast<int64_t>(rank);
    if (d < -r || d >= r) refuse(node, "dim " + std::to_string(d) + " is out of range for rank " + std::to_string(r));
    return d < 0 ? d + r : d;
  }

  // An int argument: a constant, or computed from known sizes.
  int64_t known_int(const Node& node, const Value* v) {
    if (auto found = known_.find(v); found != known_.end()) return found->second;
    auto c = constant(v);
    if (!c || !c->isInt()) refuse(node, "argument " + v->debugName() + " must be a constant int");
    return c->toInt();
  }

  // An int list argument: a constant, a known list (a size()), or a list built of known ints.
  std::vector<int64_t> known_int_list(const Node& node, const Value* v) {
    if (auto c = constant(v); c && c->isIntList()) return c->toIntVector();
    if (auto found = known_lists_.find(v); found != known_lists_.end()) return found->second;
    if (v->node()->kind() != c10::prim::ListConstruct) refuse(node, "the shape must be a list of sizes");
    std::vector<int64_t> out;
    for (const Value* item : v->node()->inputs()) out.push_back(known_int(node, item));
    return out;
  }

 private:
  void translate(const Node& node);
  bool evaluate_scalar(const Node& node);
  void unroll(const Node& loop);

  // An int or bool the translation knows: computed from sizes, or a constant.
  c10::optional<int64_t> known_number(const Value* v) const {
    if (auto found = known_.find(v); found != known_.end()) return found->second;
    auto c = constant(v);
    if (c && c->isInt()) return c->toInt();
    if (c && c->isBool()) return static_cast<int64_t>(c->toBool());
    if (c && c->isTensor() && c->toTensor().dim() == 0 && at::isIntegralType(c->toTensor().scalar_type(), false)) {
      return c->toTensor().item<int64_t>();  // a traced size's operand
    }
    return c10::nullopt;
  }

  // `to` is what `from` is: a program value, a known number or a known list (a constant is read
  // where it is used).
  void same_as(const Value* to, const Value* from) {
    if (auto v = values_.find(from); v != values_.end()) values_[to] = v->second;
    if (auto k = known_.find(from); k != known_.end()) known_[to] = k->second;
    if (auto l = known_lists_.find(from); l != known_lists_.end()) known_lists_[to] = l->second;
    if (auto l = tensor_lists_.find(from); l != tensor_lists_.end()) tensor_lists_[to] = l->second;
    if (auto c = constant(from); c && (c->isInt() || c->isBool())) {
      known_[to] = c->isInt() ? c->toInt() : static_cast<int64_t>(c->toBool());
    }
  }

  operator_lookup find_operator_;
  program program_;
  std::vector<shape_t> shapes_;
  std::vector<bool> weight_used_;
  std::unordered_map<const Value*, uint32_t> values_;
  std::unordered_map<const Value*, int64_t> known_;
  std::unordered_map<const Value*, std::vector<int64_t>> known_lists_;
  std::unordered_map<const Value*, tensor_list> tensor_lists_;
};

// Drops the operations without weights whose results nothing reads (a dequantize whose int8 input
// the int8 layers after it read instead), renumbering the values after them.
inline void drop_unread(program& p) {
  const std::size_t inputs = p.input_shapes.size();
  std::vector<bool> read(inputs + p.ops.size(), false);
  for (uint32_t v : p.outputs) read[v] = true;
  std::vector<bool> keep(p.ops.size(), true);
  for (std::size_t i = p.ops.size(); i-- > 0;) {
    keep[i] = read[inputs + i] || !p.ops[i].weights.empty();
    if (keep[i]) {
      for (uint32_t v : p.ops[i].inputs) read[v] = true;
    }
  }
  std::vector<uint32_t> renumbered(inputs + p.ops.size());
  for (std::size_t v = 0; v < inputs; ++v) renumbered[v] = static_cast<uint32_t>(v);
  std::vector<operation> kept;
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    if (!keep[i]) continue;
    for (uint32_t& v : p.ops[i].inputs) v = renumbered[v];
    renumbered[inputs + i] = static_cast<uint32_t>(inputs + kept.size());
    kept.push_back(std::move(p.ops[i]));
  }
  p.ops = std::move(kept);
  for (uint32_t& v : p.outputs) v = renumbered[v];
}

inline program graph_translator::run(const torch::jit::Graph& graph) {
  const auto inputs = graph.inputs();
  if (inputs.size() != program_.input_shapes.size() + 1) {
    throw std::invalid_argument("the method takes " + std::to_string(inputs.size() - 1) + " inputs but " +
                                std::to_string(program_.input_shapes.size()) + " example inputs were given");
  }
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    if (!is_tensor(inputs[i])) {
      throw std::invalid_argument("input " + std::to_string(i - 1) + " (" + inputs[i]->debugName() + ") is a " +
                                  inputs[i]->type()->annotation_str() + "; tbk_onednn takes tensors");
    }
    values_[inputs[i]] = static_cast<uint32_t>(i - 1);
  }
  for (const Node* node : graph.nodes()) translate(*node);
  const Value* result = graph.outputs()[0];
  std::vector<const Value*> outputs;
  if (result->node()->kind() == c10::prim::TupleConstruct) {
    outputs.assign(result->node()->inputs().begin(), result->node()->inputs().end());
  } else {
    outputs.push_back(result);
  }
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const Value* v = outputs[k];
    auto found = values_.find(v);
    if (found == values_.end()) {
      const Node* from = v->node();
      const std::string what = from->kind() == c10::prim::Constant ? "a constant"
                               : from->kind() == c10::prim::Param  ? "an input"
                                                                   : "made by " + tbk::node_text(*from);
      throw std::invalid_argument("output " + std::to_string(k) + " of the method (" + v->debugName() + ", a " +
                                  v->type()->annotation_str() + ") is " + what +
                                  ", which tbk_onednn does not compute (it returns tensors it computes)");
    }
    program_.outputs.push_back(found->second);
  }
  drop_unread(program_);
  infer_shapes(program_);  // every check the loader makes, made now
  return std::move(program_);
}

// One node: the nodes that only compute known constants or check shapes are evaluated here; an
// operator goes to its family's translator.
inline void graph_translator::translate(const Node& node) {
  const auto kind = node.kind();
  const auto in = node.inputs();
  // prim::Uninitialized: what an early `return` leaves in the other branch's outputs, never read
  if (kind == c10::prim::Constant || kind == c10::prim::TupleConstruct || kind == c10::prim::Uninitialized) return;
  if (kind == c10::aten::size && values_.count(in[0])) {  // sizes are known: the shapes are fixed
    const shape_t& s = shape(values_.at(in[0]));
    if (in.size() == 1) known_lists_[node.output()] = s;
    else known_[node.output()] = s[static_cast<std::size_t>(dim_of(node, known_int(node, in[1]), s.size()))];
    return;
  }
  if (kind == c10::prim::ListUnpack && known_lists_.count(in[0])) {  // `n, c, h, w = x.size()`
    const std::vector<int64_t>& list = known_lists_.at(in[0]);
    if (list.size() != node.outputs().size()) refuse(node, "it unpacks a list of " + std::to_string(list.size()));
    for (std::size_t k = 0; k < list.size(); ++k) known_[node.outputs()[k]] = list[k];
    return;
  }
  if (evaluate_scalar(node)) return;
  if (kind == c10::prim::If) {
    // a shape check of torch.nn's code (BatchNorm1d's input rank, `a and b`): its condition is
    // known, the shapes are fixed; the branch taken runs, its results become the If's
    const auto condition = known_number(in[0]);
    if (!condition) refuse(node, "its condition depends on values tbk_onednn does not know");
    const torch::jit::Block* taken = node.blocks()[*condition ? 0 : 1];
    for (const Node* inner : taken->nodes()) translate(*inner);
    for (std::size_t i = 0; i < node.outputs().size(); ++i) same_as(node.outputs()[i], taken->outputs()[i]);
    return;
  }
  if (kind == c10::prim::Loop) return unroll(node);
  if (kind == c10::prim::RaiseException) refuse(node, "the method raises an exception for inputs of these shapes");
  if (kind == list_with_default()) {  // what F.adaptive_avg_pool2d makes of its output size
    known_lists_[node.output()] = known_int_list(node, in[0]);  // (its defaults fill only Nones)
    return;
  }
  const operator_entry* entry = find_operator_(kind);
  if (entry == nullptr) refuse(node, "an operator tbk_onednn does not implement");
  entry->translate(*this, node);
}

// A loop over known sizes (torch.nn.functional's _verify_batch_size multiplies the sizes): its
// trip count and condition known, its body translated once per iteration, at most 64 times.
inline void graph_translator::unroll(const Node& loop) {
  const auto in = loop.inputs();
  const auto trips = known_number(in[0]), initial = known_number(in[1]);
  if (!trips || !initial) refuse(loop, "its trip count or condition depends on values tbk_onednn does not know");
  const int64_t count = *trips;
  bool more = *initial != 0;
  if (count > 64) refuse(loop, "a loop of " + std::to_string(count) + " iterations is not unrolled");
  const torch::jit::Block* body = loop.blocks()[0];
  std::vector<const Value*> carried(in.begin() + 2, in.end());  // the loop-carried values, now
  for (int64_t i = 0; i < count && more; ++i) {
    known_[body->inputs()[0]] = i;
    for (std::size_t k = 0; k < carried.size(); ++k) same_as(body->inputs()[k + 1], carried[k]);
    for (const Node* inner : body->nodes()) translate(*inner);
    const auto next = known_number(body->outputs()[0]);
    if (!next) refuse(loop, "its condition depends on values tbk_onednn does not know");
    more = *next != 0;
    carried.assign(body->outputs().begin() + 1, body->outputs().end());
  }
  for (std::size_t k = 0; k < loop.outputs().size(); ++k) same_as(loop.outputs()[k], carried[k]);
}

// Integer and boolean arithmetic on known values (sizes, lengths, comparisons): the result is
// known too. Tracing records sizes as 0-dim tensors (prim::NumToTensor, aten::Int) and their
// arithmetic as tensor operators (aten::floor_divide): those are known numbers as well. Returns
// whether the node was one.
inline bool graph_translator::evaluate_scalar(const Node& node) {
  namespace aten = c10::aten;
  if (node.outputs().size() != 1) return false;
  const auto kind = node.kind();
  const auto in = node.inputs();
  auto known = [&](const Value* v) { return known_number(v); };
  const bool traced_size = is_tensor(node.output()) && !in.empty() && known_.count(in[0]) != 0;
  const auto type = node.output()->type()->kind();
  if (type != c10::TypeKind::IntType && type != c10::TypeKind::BoolType && !traced_size) return false;
  c10::optional<int64_t> result;
  if ((kind == c10::prim::NumToTensor || kind == aten::Int) && in.size() == 1) {
    result = known(in[0]);
  } else if (kind == aten::div && in.size() == 3 && known(in[0]) && known(in[1]) && *known(in[1]) != 0) {
    // a traced `embed_dim // num_heads`: div(..., rounding_mode='trunc')
    auto mode = constant(in[2]);
    if (mode && mode->isString() && mode->toStringRef() == "trunc") result = *known(in[0]) / *known(in[1]);
  } else if (kind == aten::len && in.size() == 1) {
    if (auto list = known_lists_.find(in[0]); list != known_lists_.end()) result = static_cast<int64_t>(list->second.size());
  } else if (kind == aten::dim && values_.count(in[0])) {
    result = static_cast<int64_t>(shape(values_.at(in[0])).size());
  } else if (kind == aten::__getitem__ && in.size() == 2 && known_lists_.count(in[0]) && known(in[1])) {
    const auto& list = known_lists_.at(in[0]);
    const int64_t i = *known(in[1]), n = static_cast<int64_t>(list.size());
    if (i >= -n && i < n) result = list[static_cast<std::size_t>(i < 0 ? i + n : i)];
  } else if ((kind == aten::add || kind == aten::sub) && in.size() == 3 && known(in[0]) && known(in[1]) && known(in[2])) {
    // a traced size's `x.size(1) + 1`: add(a, b, alpha)
    const int64_t b = *known(in[1]) * *known(in[2]);
    result = kind == aten::add ? *known(in[0]) + b : *known(in[0]) - b;
  } else if (in.size() == 2 && known(in[0]) && known(in[1])) {
    const int64_t a = *known(in[0]), b = *known(in[1]);
    if (kind == aten::add) result = a + b;
    else if (kind == aten::sub) result = a - b;
    else if (kind == aten::mul) result = a * b;
    else if ((kind == aten::floordiv || kind == aten::floor_divide) && b != 0) result = a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
    else if (kind == aten::gt) result = a > b;
    else if (kind == aten::lt) result = a < b;
    else if (kind == aten::ge) result = a >= b;
    else if (kind == aten::le) result = a <= b;
    else if (kind == aten::eq) result = a == b;
    else if (kind == aten::ne) result = a != b;
  } else if (kind == aten::__not__ && in.size() == 1 && known(in[0])) {
    result = !*known(in[0]);
  }
  if (!result) return false;
  known_[node.output()] = *result;
  return true;
}

}  // namespace detail
}  // namespace tbk_onednn
