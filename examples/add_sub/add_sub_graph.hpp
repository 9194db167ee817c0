// add_sub_graph.hpp: the add/sub backend for partitioned models: it claims aten::add and
// aten::sub nodes (tensor and tensor, or tensor and a constant number; constant alpha) and runs a
// region made of them, one ATen call per node. preprocess turns the region's graph into a small
// program (the payload); compile checks the program; execute runs it.
#pragma once
#include <ATen/ATen.h>
#include <tbk/backend.hpp>  // tbk::backend, tbk::rest, tbk::method_spec

#include <torch/csrc/jit/api/module.h>   // torch::jit::Module
#include <torch/csrc/jit/ir/constants.h> // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>        // torch::jit::Node

#include <algorithm>      // std::max
#include <cstddef>        // std::size_t
#include <cstdint>        // int64_t
#include <stdexcept>      // std::invalid_argument
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

// One node of a region: slots[result] = slots[a] (+|-) alpha * (slots[b] or other).
struct add_sub_step {
  bool subtract;
  std::size_t a;
  bool b_is_tensor;
  std::size_t b;
  at::Scalar other;
  at::Scalar alpha;
};

// A compiled region: its inputs fill the first slots, each step adds one.
struct add_sub_program {
  std::size_t inputs = 0;
  std::vector<add_sub_step> steps;
  std::vector<std::size_t> outputs;
};

struct add_sub_graph_compile {
  // Lowering time (tbk::partition): aten::add / aten::sub of a tensor and a tensor or a constant
  // number, alpha a constant number.
  static bool supports(const torch::jit::Node& node) {
    if (node.kind() != c10::aten::add && node.kind() != c10::aten::sub) return false;
    if (node.inputs().size() != 3 || !is_tensor(node.input(0)) || !is_tensor(node.output())) {
      return false;
    }
    return (is_tensor(node.input(1)) || constant_number(node.input(1))) &&
           constant_number(node.input(2));
  }

  // Lowering time: the region's graph (its forward) becomes the payload, a tuple
  // (inputs, steps, outputs) with one tuple (subtract, a, b, other, alpha) per node; b is -1
  // when the node's other operand is the constant `other`. The lite interpreter keeps no graphs,
  // so compile reads only this.
  static c10::IValue preprocess(const torch::jit::Module& region, const tbk::compile_spec& spec) {
    if (spec.size() != 1 || !spec.contains("forward")) {
      throw std::invalid_argument("this backend lowers regions made by tbk::partition (forward only)");
    }
    const auto graph = region.get_method("forward").graph();
    std::unordered_map<const torch::jit::Value*, int64_t> slot;
    int64_t inputs = 0;
    for (std::size_t i = 1; i < graph->inputs().size(); ++i) {
      if (!is_tensor(graph->inputs()[i])) {
        throw std::invalid_argument("input " + std::to_string(i - 1) + " is a " +
                                    graph->inputs()[i]->type()->annotation_str() +
                                    "; this backend takes tensors");
      }
      slot[graph->inputs()[i]] = inputs++;
    }
    c10::impl::GenericList steps(c10::AnyType::get());
    for (const torch::jit::Node* node : graph->nodes()) {
      if (node->kind() == c10::prim::Constant || node->kind() == c10::prim::TupleConstruct) continue;
      if (!supports(*node)) {
        throw std::invalid_argument(std::string("the graph has a node this backend cannot run: ") +
                                    node->kind().toQualString());
      }
      const bool b_is_tensor = is_tensor(node->input(1));
      steps.push_back(c10::ivalue::Tuple::create(
          {node->kind() == c10::aten::sub, slot.at(node->input(0)),
           b_is_tensor ? slot.at(node->input(1)) : int64_t(-1),
           b_is_tensor ? c10::IValue(int64_t(0)) : *constant_number(node->input(1)),
           *constant_number(node->input(2))}));
      slot[node->output()] = inputs + static_cast<int64_t>(steps.size()) - 1;
    }
    c10::List<int64_t> outputs;
    const torch::jit::Value* result = graph->outputs()[0];
    if (result->node()->kind() == c10::prim::TupleConstruct) {
      for (const torch::jit::Value* v : result->node()->inputs()) outputs.push_back(slot.at(v));
    } else {
      outputs.push_back(slot.at(result));
    }
    return c10::ivalue::Tuple::create({inputs, steps, outputs});
  }

  // Load time: the payload, checked entry by entry, becomes the method's program.
  static add_sub_program compile(const tbk::method_spec&, const c10::IValue& payload) {
    auto fail = [](const std::string& what) -> void {
      throw std::invalid_argument("malformed payload: " + what);
    };
    if (!payload.isTuple() || payload.toTupleRef().elements().size() != 3) fail("not a 3-tuple");
    const auto& parts = payload.toTupleRef().elements();
    if (!parts[0].isInt() || parts[0].toInt() < 0 || !parts[1].isList() || !parts[2].isIntList()) {
      fail("expected (int inputs, list steps, List[int] outputs)");
    }
    add_sub_program program;
    program.inputs = static_cast<std::size_t>(parts[0].toInt());
    auto in_range = [&](int64_t i) {
      return i >= 0 && static_cast<std::size_t>(i) < program.inputs + program.steps.size();
    };
    for (const c10::IValue& entry : parts[1].toListRef()) {
      if (!entry.isTuple() || entry.toTupleRef().elements().size() != 5) fail("a step is not a 5-tuple");
      const auto& f = entry.toTupleRef().elements();
      if (!f[0].isBool() || !f[1].isInt() || !f[2].isInt() || !(f[3].isInt() || f[3].isDouble()) ||
          !(f[4].isInt() || f[4].isDouble())) {
        fail("a step is not (bool, int, int, number, number)");
      }
      if (!in_range(f[1].toInt()) || (f[2].toInt() != -1 && !in_range(f[2].toInt()))) {
        fail("step " + std::to_string(program.steps.size()) + " reads a slot not yet made");
      }
      program.steps.push_back({f[0].toBool(), static_cast<std::size_t>(f[1].toInt()),
                               f[2].toInt() != -1, static_cast<std::size_t>(std::max<int64_t>(f[2].toInt(), 0)),
                               f[3].toScalar(), f[4].toScalar()});
    }
    for (int64_t i : parts[2].toIntVector()) {
      if (!in_range(i)) fail("an output names slot " + std::to_string(i) + ", which does not exist");
      program.outputs.push_back(static_cast<std::size_t>(i));
    }
    if (program.outputs.empty()) fail("no outputs");
    return program;
  }

 private:
  static bool is_tensor(const torch::jit::Value* v) { return v->type()->cast<c10::TensorType>() != nullptr; }
  static c10::optional<c10::IValue> constant_number(const torch::jit::Value* v) {
    auto value = torch::jit::toIValue(v);
    if (value && (value->isInt() || value->isDouble())) return value;
    return c10::nullopt;
  }
};

struct add_sub_graph_execute {
  static std::vector<at::Tensor> execute(const add_sub_program& program, tbk::rest<at::Tensor> inputs) {
    if (inputs.size() != program.inputs) {
      throw std::invalid_argument("expected " + std::to_string(program.inputs) + " inputs, got " +
                                  std::to_string(inputs.size()));
    }
    std::vector<at::Tensor> slots(inputs.begin(), inputs.end());
    slots.reserve(program.inputs + program.steps.size());
    for (const add_sub_step& s : program.steps) {
      const at::Tensor& a = slots[s.a];
      if (s.b_is_tensor) {
        slots.push_back(s.subtract ? at::sub(a, slots[s.b], s.alpha) : at::add(a, slots[s.b], s.alpha));
      } else {
        slots.push_back(s.subtract ? at::sub(a, s.other, s.alpha) : at::add(a, s.other, s.alpha));
      }
    }
    std::vector<at::Tensor> out;
    for (std::size_t i : program.outputs) out.push_back(slots[i]);
    return out;
  }
};

using add_sub_graph_backend = tbk::backend<add_sub_graph_compile, add_sub_graph_execute>;
