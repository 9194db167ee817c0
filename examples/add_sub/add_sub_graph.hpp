// add_sub_graph.hpp: the add/sub backend for partitioned models: it claims aten::add and
// aten::sub nodes (tensor and tensor, or tensor and a constant number; constant alpha) and runs a
// region made of them, one ATen call per node. preprocess turns the region's graph into a small
// program (the payload); compile checks the program; execute runs it.
#pragma once
#include <ATen/ATen.h>
#include <tbk/backend.hpp>       // tbk::backend, tbk::rest, tbk::method_spec
#include <tbk/method_graph.hpp>  // tbk::method_graph: the region's operations, inputs resolved

#include <torch/csrc/jit/api/module.h>   // torch::jit::Module
#include <torch/csrc/jit/ir/constants.h> // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>        // torch::jit::Node

#include <algorithm>      // std::max
#include <cstddef>        // std::size_t
#include <cstdint>        // int64_t
#include <stdexcept>      // std::invalid_argument
#include <string>         // std::string
#include <vector>         // std::vector

// An operand of a node: a slot (an input or an earlier node's result), or a constant (a tensor
// of a frozen model, or a number).
struct add_sub_operand {
  int64_t slot = -1;  // -1: the constant
  c10::IValue constant;
};

// One node of a region: result = a (+|-) alpha * b.
struct add_sub_step {
  bool subtract;
  add_sub_operand a, b;
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

  // Lowering time: the region's graph (its forward, read with tbk::method_graph) becomes the
  // payload, a tuple (inputs, steps, outputs) with one tuple (subtract, a, b, alpha) per node; an
  // operand is a slot (int: an input, or inputs + the index of the operation that made it) or a
  // constant (a tensor, or for b a number in a 1-tuple). The lite interpreter keeps no graphs, so
  // compile reads only this.
  static c10::IValue preprocess(const torch::jit::Module& region, const tbk::compile_spec& spec) {
    if (spec.size() != 1 || !spec.contains("forward")) {
      throw std::invalid_argument("this backend lowers regions made by tbk::partition (forward only)");
    }
    const tbk::method_graph graph = tbk::method_graph::read(region, "forward");
    for (std::size_t i = 0; i < graph.inputs(); ++i) {
      if (graph.input_types()[i]->cast<c10::TensorType>() == nullptr) {
        throw std::invalid_argument("input " + std::to_string(i) + " is a " + graph.input_types()[i]->annotation_str() +
                                    "; this backend takes tensors");
      }
    }
    const auto inputs = static_cast<int64_t>(graph.inputs());
    // a slot: an input (its index) or an operation's result (inputs + the operation's index)
    auto slot = [&](const tbk::operand& o) { return o.is_input() ? static_cast<int64_t>(o.index) : inputs + static_cast<int64_t>(o.index); };
    c10::impl::GenericList steps(c10::AnyType::get());
    for (const tbk::operation& op : graph.operations()) {
      if (!supports(*op.node)) {
        throw std::invalid_argument("the graph has a node this backend cannot run: " + op.text());
      }
      auto operand = [&](const tbk::operand& o) -> c10::IValue {
        if (!o.is_constant()) return slot(o);
        if (o.value.isTensor()) return o.value;
        return c10::ivalue::Tuple::create(std::vector<c10::IValue>{o.value});  // a number
      };
      std::vector<c10::IValue> step{op.kind() == c10::aten::sub, operand(op.inputs[0]), operand(op.inputs[1]),
                                    op.inputs[2].value};
      steps.push_back(c10::ivalue::Tuple::create(std::move(step)));
    }
    c10::List<int64_t> outputs;
    for (const tbk::operand& o : graph.outputs()) {
      if (o.is_constant()) throw std::invalid_argument("an output of the region is a constant");
      outputs.push_back(slot(o));
    }
    std::vector<c10::IValue> parts{inputs, steps, outputs};
    return c10::ivalue::Tuple::create(std::move(parts));
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
    auto operand = [&](const c10::IValue& v, const char* name) -> add_sub_operand {
      if (v.isInt()) {
        if (!in_range(v.toInt())) {
          fail("step " + std::to_string(program.steps.size()) + " reads slot " +
               std::to_string(v.toInt()) + ", which is not made before it");
        }
        return {v.toInt(), c10::IValue()};
      }
      if (v.isTensor()) return {-1, v};
      if (v.isTuple() && v.toTupleRef().elements().size() == 1 &&
          (v.toTupleRef().elements()[0].isInt() || v.toTupleRef().elements()[0].isDouble())) {
        return {-1, v.toTupleRef().elements()[0]};
      }
      fail(std::string("operand ") + name + " of step " + std::to_string(program.steps.size()) +
           " is neither a slot (int), a tensor nor a number (a 1-tuple)");
      return {};
    };
    for (const c10::IValue& entry : parts[1].toListRef()) {
      if (!entry.isTuple() || entry.toTupleRef().elements().size() != 4) fail("a step is not a 4-tuple");
      const auto& f = entry.toTupleRef().elements();
      if (!f[0].isBool() || !(f[3].isInt() || f[3].isDouble())) {
        fail("a step is not (bool, operand, operand, number)");
      }
      add_sub_operand a = operand(f[1], "a"), b = operand(f[2], "b");
      if (a.slot < 0 && !a.constant.isTensor()) fail("operand a of a step is a number");
      program.steps.push_back({f[0].toBool(), std::move(a), std::move(b), f[3].toScalar()});
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
    auto tensor = [&](const add_sub_operand& o) -> const at::Tensor& {
      return o.slot >= 0 ? slots[static_cast<std::size_t>(o.slot)] : o.constant.toTensor();
    };
    for (const add_sub_step& s : program.steps) {
      const at::Tensor& a = tensor(s.a);
      if (s.b.slot >= 0 || s.b.constant.isTensor()) {
        slots.push_back(s.subtract ? at::sub(a, tensor(s.b), s.alpha) : at::add(a, tensor(s.b), s.alpha));
      } else {
        const at::Scalar b = s.b.constant.toScalar();
        slots.push_back(s.subtract ? at::sub(a, b, s.alpha) : at::add(a, b, s.alpha));
      }
    }
    std::vector<at::Tensor> out;
    for (std::size_t i : program.outputs) out.push_back(slots[i]);
    return out;
  }
};

using add_sub_graph_backend = tbk::backend<add_sub_graph_compile, add_sub_graph_execute>;
