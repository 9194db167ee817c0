// lowering.hpp: TorchScript to a tbk_onednn program, at lowering time: which nodes the backend
// claims (supports), and a frozen method's graph, with the shapes of example inputs, turned into
// a program (operations, attributes, weights). Batch norm is folded into convolutions by
// PyTorch's frozen-graph passes, or else becomes a multiply and an add.
#pragma once
#include "program.hpp"

#include <ATen/ATen.h>
#include <tbk/partition.hpp>               // tbk::node_text
#include <torch/csrc/jit/ir/constants.h>  // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>         // torch::jit::Graph, Node, Value

#include <cmath>          // std::sqrt, INFINITY
#include <cstdint>        // int64_t, uint32_t
#include <memory>         // std::shared_ptr
#include <stdexcept>      // std::invalid_argument
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::swap
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

// Why the backend cannot run this node, from the node alone (shapes come later); empty when it
// can. The same rules decide supports() and whole-method lowering.
inline std::string refusal(const Node& node) {
  namespace aten = c10::aten;
  const auto kind = node.kind();
  const auto in = node.inputs();
  auto tensor_out = [&] { return node.outputs().size() == 1 && is_tensor(node.output()); };
  if (!tensor_out()) return "its result is not one tensor";
  if (in.empty() || !is_tensor(in[0])) return "its first argument is not a tensor";
  if (kind == aten::conv2d) {
    if (in.size() != 7 || !is_float_tensor(in[1]) || !(is_none(in[2]) || is_float_tensor(in[2]))) {
      return "the weight and bias must be constant float tensors (lower a frozen module)";
    }
    if (!is_int_list(in[3]) || !is_int_list(in[4]) || !is_int_list(in[5]) || !is_number(in[6])) {
      return "stride, padding (as numbers, not a string), dilation and groups must be constants";
    }
    return "";
  }
  if (kind == aten::linear) {
    if (!is_float_tensor(in[1]) || !(is_none(in[2]) || is_float_tensor(in[2]))) {
      return "the weight and bias must be constant float tensors (lower a frozen module)";
    }
    return "";
  }
  if (kind == aten::matmul || kind == aten::mm) {
    if (!is_float_tensor(in[1]) || constant(in[1])->toTensor().dim() != 2) return "the second operand must be a constant 2-D float tensor";
    return "";
  }
  if (kind == aten::addmm) {
    if (!is_float_tensor(in[0]) || !is_tensor(in[1]) || !is_float_tensor(in[2]) ||
        !is_constant_equal(in[3], 1) || !is_constant_equal(in[4], 1)) {
      return "supported as bias + x @ W with constant bias and W, beta = alpha = 1";
    }
    return "";
  }
  if (kind == aten::batch_norm) {
    for (std::size_t k : {3, 4}) {
      if (!is_float_tensor(in[k])) return "running mean and variance must be constant";
    }
    for (std::size_t k : {1, 2}) {
      if (!is_none(in[k]) && !is_float_tensor(in[k])) return "weight and bias must be constant";
    }
    auto training = constant(in[5]);
    if (!training || !training->isBool() || training->toBool()) return "only in eval mode";
    if (!is_number(in[7])) return "eps must be a constant";
    return "";
  }
  if (kind == aten::relu || kind == aten::hardswish || kind == aten::sigmoid ||
      kind == aten::hardsigmoid || kind == aten::tanh || kind == aten::relu6 ||
      kind == aten::contiguous) {
    return "";
  }
  if (kind == aten::gelu) {
    auto approximate = in.size() > 1 ? constant(in[1]) : c10::nullopt;
    if (in.size() > 1 && !(approximate && approximate->isString() && approximate->toStringRef() == "none")) {
      return "only approximate='none'";
    }
    return "";
  }
  if (kind == aten::hardtanh || kind == aten::clamp) {
    for (std::size_t k = 1; k < in.size(); ++k) {
      if (!is_number(in[k]) && !is_none(in[k])) return "the bounds must be constant numbers";
    }
    return "";
  }
  if (kind == aten::dropout || kind == aten::feature_dropout) {
    auto train = constant(in[2]);
    if (!train || !train->isBool() || train->toBool()) return "only in eval mode (train=False)";
    return "";
  }
  if (kind == aten::add || kind == aten::sub || kind == aten::mul || kind == aten::div) {
    if (kind == aten::div && in.size() != 2) return "rounding modes are not supported";
    if ((kind == aten::add || kind == aten::sub) && (in.size() != 3 || !is_number(in[2]))) return "alpha must be a constant";
    if (!is_tensor(in[1]) && !is_number(in[1])) return "the second operand must be a tensor or a constant number";
    if (is_tensor(in[1]) && constant(in[1]) && !is_float_tensor(in[1])) return "a constant operand must be a float tensor";
    return "";
  }
  if (kind == aten::max_pool2d || kind == aten::avg_pool2d) {
    for (std::size_t k = 1; k < 4; ++k) {
      if (!is_int_list(in[k])) return "kernel, stride and padding must be constant";
    }
    if (kind == aten::max_pool2d) {
      auto dilation = constant(in[4]);
      if (!dilation || !dilation->isIntList()) return "dilation must be constant";
      for (int64_t d : dilation->toIntVector()) {
        if (d != 1) return "dilation other than 1 is not supported";
      }
      if (!constant(in[5])) return "ceil_mode must be constant";
    } else {
      auto ceil = constant(in[4]);
      if (!ceil || !ceil->isBool() || ceil->toBool()) return "ceil_mode=True is not supported";
      if (!constant(in[5]) || !is_none(in[6])) return "divisor_override is not supported";
    }
    return "";
  }
  if (kind == aten::adaptive_avg_pool2d) {
    // constant, or F.adaptive_avg_pool2d's list_with_default of a constant (known when lowering)
    const Node* list = in[1]->node();
    return is_int_list(in[1]) || (list->kind() == list_with_default() && is_int_list(list->input(0)))
               ? "" : "the output size must be constant";
  }
  if (kind == aten::flatten) {
    return is_number(in[1]) && is_number(in[2]) ? "" : "start_dim and end_dim must be constant";
  }
  if (kind == aten::reshape || kind == aten::view) {
    return is_int_list(in[1]) ? "" : "the shape must be constant (partitioning cannot see sizes)";
  }
  if (kind == aten::softmax) {
    return is_number(in[1]) && (in.size() < 3 || is_none(in[2])) ? "" : "dim must be constant and dtype None";
  }
  return "not an operator tbk_onednn runs";
}

}  // namespace detail

// Whether the backend can run the node (tbk::partition asks this of every node).
inline bool supports_node(const torch::jit::Node& node) {
  if (node.kind() == c10::prim::ListConstruct) {
    // the list of a cat, built right there: claimed with the cat, so both share a region
    if (node.output()->uses().empty()) return false;
    for (const torch::jit::Value* v : node.inputs()) {
      if (!detail::is_tensor(v)) return false;
    }
    for (const torch::jit::Use& use : node.output()->uses()) {
      if (use.user->kind() != c10::aten::cat || use.offset != 0) return false;
    }
    return true;
  }
  if (node.kind() == c10::aten::cat) {
    // cat(list, dim): the list must be built right there, of tensors
    const torch::jit::Node* list = node.input(0)->node();
    return list->kind() == c10::prim::ListConstruct && detail::is_number(node.input(1));
  }
  return detail::refusal(node).empty();
}

namespace detail {

// Builds a program from one graph; keeps the map from the graph's values to program values
// (tensors) and to known constants (numbers and int lists, including sizes it computed).
class graph_translator {
 public:
  explicit graph_translator(const std::vector<at::Tensor>& examples) {
    for (const at::Tensor& t : examples) {
      program_.input_shapes.push_back(t.sizes().vec());
      shapes_.push_back(t.sizes().vec());
    }
  }

  program run(const torch::jit::Graph& graph) {
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
    for (const Value* v : outputs) {
      auto found = values_.find(v);
      if (found == values_.end()) {
        throw std::invalid_argument("the method returns a " + v->type()->annotation_str() +
                                    " that tbk_onednn does not compute (it returns tensors it computes)");
      }
      program_.outputs.push_back(found->second);
    }
    infer_shapes(program_);  // every check the loader makes, made now
    return std::move(program_);
  }

 private:
  [[noreturn]] void refuse(const Node& node, const std::string& why) {
    throw std::invalid_argument("tbk_onednn cannot run " + tbk::node_text(node) + ": " + why +
                                " (tbk::partition runs such nodes in TorchScript)");
  }

  uint32_t value(const Node& node, const Value* v) {
    auto found = values_.find(v);
    if (found == values_.end()) refuse(node, "its operand " + v->debugName() + " is not computed by tbk_onednn");
    return found->second;
  }
  const shape_t& shape(uint32_t v) const { return shapes_[v]; }

  uint32_t weight_of(const at::Tensor& t) {
    at::Tensor c = t.to(at::kFloat).contiguous();
    program_.weights.push_back({c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
    if (program_.weights.back().shape.empty()) program_.weights.back().shape = {1};
    weight_used_.push_back(false);
    return static_cast<uint32_t>(program_.weights.size() - 1);
  }

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

  uint32_t eltwise(const Node& node, uint32_t x, eltwise_kind kind, float alpha = 0, float beta = 0) {
    return add(node, op_kind::eltwise, {x}, {static_cast<int64_t>(kind)}, {alpha, beta});
  }

  // a (op) b for a constant tensor b, stored as a weight of a's rank (leading 1s added).
  uint32_t binary_constant(const Node& node, binary_kind kind, uint32_t a, const at::Tensor& b) {
    const shape_t& sa = shape(a);
    if (b.dim() > static_cast<int64_t>(sa.size())) refuse(node, "the constant operand has more dimensions than the tensor");
    std::vector<int64_t> padded(sa.size() - static_cast<std::size_t>(b.dim()), 1);
    padded.insert(padded.end(), b.sizes().begin(), b.sizes().end());
    return add(node, op_kind::binary, {a}, {static_cast<int64_t>(kind)}, {}, {weight_of(b.reshape(padded))});
  }

  // a (op) b for two computed tensors; b gets a's rank (leading 1s added).
  uint32_t binary_values(const Node& node, binary_kind kind, uint32_t a, uint32_t b) {
    const shape_t& sa = shape(a);
    if (shape(b).size() < sa.size()) {
      shape_t padded(sa.size() - shape(b).size(), 1);
      padded.insert(padded.end(), shape(b).begin(), shape(b).end());
      b = add(node, op_kind::reshape, {b}, padded);
    }
    return add(node, op_kind::binary, {a, b}, {static_cast<int64_t>(kind)});
  }

  static std::vector<int64_t> pair(const c10::IValue& list, int64_t fallback) {
    std::vector<int64_t> v = list.toIntVector();
    if (v.empty()) return {fallback, fallback};
    if (v.size() == 1) return {v[0], v[0]};
    return v;
  }

  // The dimension `d` of a rank-`rank` tensor, negative counting from the end.
  int64_t dim_of(const Node& node, int64_t d, std::size_t rank) {
    const int64_t r = static_cast<int64_t>(rank);
    if (d < -r || d >= r) refuse(node, "dim " + std::to_string(d) + " is out of range for rank " + std::to_string(r));
    return d < 0 ? d + r : d;
  }

  void translate(const Node& node) {
    namespace aten = c10::aten;
    const auto kind = node.kind();
    const auto in = node.inputs();
    auto bind = [&](uint32_t v) { values_[node.output()] = v; };
    auto c = [&](std::size_t k) { return *constant(in[k]); };

    if (kind == c10::prim::Constant || kind == c10::prim::TupleConstruct) return;
    if (kind == c10::prim::ListConstruct) return;  // read by the node that uses the list
    if (kind == aten::size && values_.count(in[0])) {  // sizes are known: the shapes are fixed
      const shape_t& s = shape(values_.at(in[0]));
      if (in.size() == 1) known_lists_[node.output()] = s;
      else known_[node.output()] = s[static_cast<std::size_t>(dim_of(node, known_int(node, in[1]), s.size()))];
      return;
    }
    if (evaluate_scalar(node)) return;
    if (kind == c10::prim::If && node.outputs().empty()) {
      // a shape check of torch.nn.functional's code: its condition is known, the shapes are fixed
      auto condition = known_.find(in[0]);
      if (condition == known_.end()) refuse(node, "its condition depends on values tbk_onednn does not know");
      for (const Node* inner : node.blocks()[condition->second ? 0 : 1]->nodes()) translate(*inner);
      return;
    }
    if (kind == c10::prim::RaiseException) refuse(node, "the method raises an exception for inputs of these shapes");
    if (kind == list_with_default()) {  // what F.adaptive_avg_pool2d makes of its output size
      known_lists_[node.output()] = known_int_list(node, in[0]);  // (its defaults fill only Nones)
      return;
    }
    if (kind == aten::cat) {
      const Node* list = in[0]->node();
      if (list->kind() != c10::prim::ListConstruct) refuse(node, "the list of tensors must be built in the method");
      std::vector<uint32_t> parts;
      for (const Value* v : list->inputs()) parts.push_back(value(node, v));
      if (parts.empty()) refuse(node, "nothing to concatenate");
      bind(add(node, op_kind::cat, parts, {dim_of(node, known_int(node, in[1]), shape(parts[0]).size())}));
      return;
    }
    if (kind == aten::view || kind == aten::reshape) {
      const uint32_t x = value(node, in[0]);
      std::vector<int64_t> target = known_int_list(node, in[1]);
      int64_t known = 1, infer = -1;
      for (std::size_t d = 0; d < target.size(); ++d) {
        if (target[d] == -1 && infer < 0) infer = static_cast<int64_t>(d);
        else if (target[d] < 1) refuse(node, "shape " + shape_text(target) + " is not supported");
        else known *= target[d];
      }
      if (infer >= 0) target[static_cast<std::size_t>(infer)] = element_count(shape(x), "the input") / known;
      bind(add(node, op_kind::reshape, {x}, target));
      return;
    }

    const std::string why = refusal(node);
    if (!why.empty()) refuse(node, why);
    const uint32_t x = value(node, in[kind == aten::addmm ? 1 : 0]);  // addmm(bias, x, W)
    const shape_t sx = shape(x);

    if (kind == aten::conv2d) {
      const auto stride = pair(c(3), 1), padding = pair(c(4), 0), dilation = pair(c(5), 1);
      if (stride.size() != 2 || padding.size() != 2 || dilation.size() != 2) refuse(node, "expects 2-D stride, padding, dilation");
      std::vector<uint32_t> weights{weight_of(c(1).toTensor())};
      if (!is_none(in[2])) weights.push_back(weight_of(c(2).toTensor()));
      bind(add(node, op_kind::conv2d, {x},
               {stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], c(6).toInt()}, {}, weights));
    } else if (kind == aten::linear || kind == aten::matmul || kind == aten::mm || kind == aten::addmm) {
      at::Tensor w, b;
      uint32_t input = x;
      if (kind == aten::linear) {
        w = c(1).toTensor();
        if (!is_none(in[2])) b = c(2).toTensor();
      } else if (kind == aten::addmm) {
        w = c(2).toTensor().t();
        b = c(0).toTensor().reshape({-1});
      } else {
        w = c(1).toTensor().t();
      }
      if (w.dim() != 2) refuse(node, "the weight must be 2-D");
      const shape_t si = shape(input);
      if (si.size() < 2) refuse(node, "the input must have 2 or more dimensions");
      int64_t rows = 1;
      for (std::size_t d = 0; d + 1 < si.size(); ++d) rows *= si[d];
      uint32_t flat = si.size() == 2 ? input : add(node, op_kind::reshape, {input}, {rows, si.back()});
      std::vector<uint32_t> weights{weight_of(w)};
      if (b.defined()) weights.push_back(weight_of(b));
      uint32_t out = add(node, op_kind::linear, {flat}, {}, {}, weights);
      if (si.size() != 2) {
        shape_t back(si.begin(), si.end() - 1);
        back.push_back(w.size(0));
        out = add(node, op_kind::reshape, {out}, back);
      }
      bind(out);
    } else if (kind == aten::batch_norm) {
      const at::Tensor mean = c(3).toTensor(), var = c(4).toTensor();
      at::Tensor scale = at::rsqrt(var + c(7).toScalar().toDouble());
      if (!is_none(in[1])) scale = scale * c(1).toTensor();
      at::Tensor shift = -mean * scale;
      if (!is_none(in[2])) shift = shift + c(2).toTensor();
      if (sx.size() < 2) refuse(node, "the input must have a channel dimension");
      std::vector<int64_t> per_channel(sx.size(), 1);
      per_channel[1] = sx[1];
      uint32_t scaled = add(node, op_kind::binary, {x}, {static_cast<int64_t>(binary_kind::mul)}, {},
                            {weight_of(scale.reshape(per_channel))});
      bind(add(node, op_kind::binary, {scaled}, {static_cast<int64_t>(binary_kind::add)}, {},
               {weight_of(shift.reshape(per_channel))}));
    } else if (kind == aten::relu) {
      bind(eltwise(node, x, eltwise_kind::relu));
    } else if (kind == aten::relu6) {
      bind(eltwise(node, x, eltwise_kind::clamp, 0, 6));
    } else if (kind == aten::hardtanh || kind == aten::clamp) {
      const float inf = INFINITY;
      auto bound = [&](std::size_t k, float fallback) {
        return k < in.size() && !is_none(in[k]) ? static_cast<float>(c(k).toScalar().toDouble()) : fallback;
      };
      const bool hardtanh = kind == aten::hardtanh;
      bind(eltwise(node, x, eltwise_kind::clamp, bound(1, hardtanh ? -1.f : -inf), bound(2, hardtanh ? 1.f : inf)));
    } else if (kind == aten::hardswish) {
      bind(eltwise(node, x, eltwise_kind::hardswish));
    } else if (kind == aten::sigmoid) {
      bind(eltwise(node, x, eltwise_kind::sigmoid));
    } else if (kind == aten::hardsigmoid) {
      bind(eltwise(node, x, eltwise_kind::hardsigmoid));
    } else if (kind == aten::tanh) {
      bind(eltwise(node, x, eltwise_kind::tanh));
    } else if (kind == aten::gelu) {
      bind(eltwise(node, x, eltwise_kind::gelu));
    } else if (kind == aten::dropout || kind == aten::feature_dropout || kind == aten::contiguous) {
      bind(x);
    } else if (kind == aten::add || kind == aten::sub || kind == aten::mul || kind == aten::div) {
      const double alpha = in.size() == 3 ? c(2).toScalar().toDouble() : 1.0;
      const double sign = kind == aten::sub ? -1 : 1;
      if (is_number(in[1])) {
        const double b = c(1).toScalar().toDouble();
        if (kind == aten::add || kind == aten::sub) bind(eltwise(node, x, eltwise_kind::affine, 1, static_cast<float>(sign * alpha * b)));
        else bind(eltwise(node, x, eltwise_kind::affine, static_cast<float>(kind == aten::mul ? b : 1 / b), 0));
        return;
      }
      if (constant(in[1])) {  // a constant tensor: add and sub become add, div becomes mul
        const at::Tensor b = c(1).toTensor();
        if (kind == aten::mul || kind == aten::div) {
          bind(binary_constant(node, binary_kind::mul, x, kind == aten::mul ? b : 1.0 / b));
        } else {
          bind(binary_constant(node, binary_kind::add, x, b * (sign * alpha)));
        }
        return;
      }
      // two computed tensors: the full-shaped one goes first for add and mul
      if (alpha != 1) refuse(node, "alpha other than 1 between two tensors is not supported");
      uint32_t a = x, b = value(node, in[1]);
      if ((kind == aten::add || kind == aten::mul) && element_count(shape(b), "b") > element_count(shape(a), "a")) {
        std::swap(a, b);
      }
      const binary_kind op = kind == aten::add ? binary_kind::add : kind == aten::sub ? binary_kind::sub
                           : kind == aten::mul ? binary_kind::mul : binary_kind::div;
      bind(binary_values(node, op, a, b));
    } else if (kind == aten::max_pool2d || kind == aten::avg_pool2d) {
      if (sx.size() != 4) refuse(node, "the input must be 4-D (NCHW)");
      const auto kernel = pair(c(1), 1);
      const auto stride = c(2).toIntVector().empty() ? kernel : pair(c(2), 1);
      const auto padding = pair(c(3), 0);
      const bool ceil = kind == aten::max_pool2d && c(5).toBool();
      std::vector<int64_t> ints{kind == aten::max_pool2d ? static_cast<int64_t>(pool_kind::max)
                                : c(5).toBool() ? static_cast<int64_t>(pool_kind::avg_include_padding)
                                                : static_cast<int64_t>(pool_kind::avg_exclude_padding),
                                kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
      for (std::size_t d = 0; d < 2; ++d) {
        // PyTorch's output size, then the bottom/right padding that gives it
        const int64_t span = sx[2 + d] + 2 * padding[d] - kernel[d];
        if (span < 0 || stride[d] < 1) refuse(node, "the window is larger than the padded input");
        int64_t out = (ceil ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
        if (ceil && (out - 1) * stride[d] >= sx[2 + d] + padding[d]) --out;
        ints.push_back(std::max<int64_t>(padding[d], (out - 1) * stride[d] + kernel[d] - sx[2 + d] - padding[d]));
      }
      bind(add(node, op_kind::pool, {x}, ints));
    } else if (kind == aten::adaptive_avg_pool2d) {
      const auto size = pair(c10::IValue(known_int_list(node, in[1])), 1);
      if (sx.size() != 4 || sx[2] % size[0] != 0 || sx[3] % size[1] != 0) {
        refuse(node, "supported when the output size divides the input's " + shape_text(sx));
      }
      const int64_t kh = sx[2] / size[0], kw = sx[3] / size[1];
      bind(add(node, op_kind::pool, {x}, {static_cast<int64_t>(pool_kind::avg_exclude_padding), kh, kw, kh, kw, 0, 0, 0, 0}));
    } else if (kind == aten::flatten) {
      const int64_t start = dim_of(node, c(1).toInt(), sx.size()), end = dim_of(node, c(2).toInt(), sx.size());
      shape_t target(sx.begin(), sx.begin() + start);
      int64_t merged = 1;
      for (int64_t d = start; d <= end; ++d) merged *= sx[static_cast<std::size_t>(d)];
      target.push_back(merged);
      target.insert(target.end(), sx.begin() + end + 1, sx.end());
      bind(target == sx ? x : add(node, op_kind::reshape, {x}, target));
    } else if (kind == aten::softmax) {
      bind(add(node, op_kind::softmax, {x}, {dim_of(node, c(1).toInt(), sx.size())}));
    } else {
      refuse(node, "not an operator tbk_onednn runs");
    }
  }

  // Integer and boolean arithmetic on known values (sizes, lengths, comparisons): the result is
  // known too. Returns whether the node was one.
  bool evaluate_scalar(const Node& node) {
    namespace aten = c10::aten;
    if (node.outputs().size() != 1) return false;
    const auto type = node.output()->type()->kind();
    if (type != c10::TypeKind::IntType && type != c10::TypeKind::BoolType) return false;
    const auto kind = node.kind();
    const auto in = node.inputs();
    auto known = [&](const Value* v) -> c10::optional<int64_t> {
      if (auto found = known_.find(v); found != known_.end()) return found->second;
      auto c = constant(v);
      if (c && c->isInt()) return c->toInt();
      if (c && c->isBool()) return static_cast<int64_t>(c->toBool());
      return c10::nullopt;
    };
    c10::optional<int64_t> result;
    if (kind == aten::len && in.size() == 1) {
      if (auto list = known_lists_.find(in[0]); list != known_lists_.end()) result = static_cast<int64_t>(list->second.size());
    } else if (kind == aten::dim && values_.count(in[0])) {
      result = static_cast<int64_t>(shape(values_.at(in[0])).size());
    } else if (kind == aten::__getitem__ && in.size() == 2 && known_lists_.count(in[0]) && known(in[1])) {
      const auto& list = known_lists_.at(in[0]);
      const int64_t i = *known(in[1]), n = static_cast<int64_t>(list.size());
      if (i >= -n && i < n) result = list[static_cast<std::size_t>(i < 0 ? i + n : i)];
    } else if (in.size() == 2 && known(in[0]) && known(in[1])) {
      const int64_t a = *known(in[0]), b = *known(in[1]);
      if (kind == aten::add) result = a + b;
      else if (kind == aten::sub) result = a - b;
      else if (kind == aten::mul) result = a * b;
      else if (kind == aten::floordiv && b != 0) result = a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
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

  int64_t known_int(const Node& node, const Value* v) {
    if (auto found = known_.find(v); found != known_.end()) return found->second;
    auto c = constant(v);
    if (!c || !c->isInt()) refuse(node, "argument " + v->debugName() + " must be a constant int");
    return c->toInt();
  }

  std::vector<int64_t> known_int_list(const Node& node, const Value* v) {
    if (auto c = constant(v); c && c->isIntList()) return c->toIntVector();
    if (auto found = known_lists_.find(v); found != known_lists_.end()) return found->second;
    if (v->node()->kind() != c10::prim::ListConstruct) refuse(node, "the shape must be a list of sizes");
    std::vector<int64_t> out;
    for (const Value* item : v->node()->inputs()) out.push_back(known_int(node, item));
    return out;
  }

  program program_;
  std::vector<shape_t> shapes_;
  std::vector<bool> weight_used_;
  std::unordered_map<const Value*, uint32_t> values_;
  std::unordered_map<const Value*, int64_t> known_;
  std::unordered_map<const Value*, std::vector<int64_t>> known_lists_;
};

}  // namespace detail

// A frozen, inlined graph and one example input per graph input to a checked program.
inline program translate_graph(const torch::jit::Graph& graph, const std::vector<at::Tensor>& examples) {
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (examples[i].scalar_type() != at::kFloat) {
      throw std::invalid_argument("example input " + std::to_string(i) + " is " +
                                  std::string(c10::toString(examples[i].scalar_type())) + "; tbk_onednn runs float32");
    }
  }
  return detail::graph_translator(examples).run(graph);
}

}  // namespace tbk_onednn
