// fused_linear.hpp: a backend for linear layers with the activation that follows them fused in
// (aten::linear, then aten::relu or aten::gelu), written once for every runtime tbk serves:
// tbk.partition (TorchScript), tbk.executorch (.pte), tbk.export (.pt2) and torch.compile. Its
// supports hook looks at a node's producer (an activation is claimed only right after a claimed
// linear layer), which works the same on every path because each shows the hook the node in its
// graph; its preprocess reads the region with tbk::method_graph into a program of steps.
#pragma once
#include <ATen/ATen.h>
#include <tbk/backend.hpp>       // tbk::backend, tbk::rest, tbk::method_spec
#include <tbk/method_graph.hpp>  // tbk::method_graph: the region's operations, inputs resolved
#include <tbk/node_support.hpp>  // tbk::node_support

#include <torch/csrc/jit/ir/constants.h>  // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>         // torch::jit::Node

#include <cstdint>    // int64_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

// One step: slot = activation(linear(slots[input], weight, bias)). Slots: the region's inputs,
// then one per step.
struct fused_linear_step {
  int64_t input;
  at::Tensor weight, bias;  // bias undefined: none
  std::string activation;   // "none", "relu", "gelu" (tanh approximation: "gelu_tanh")
};

struct fused_linear_program {
  int64_t inputs = 0;
  std::vector<fused_linear_step> steps;
  std::vector<int64_t> outputs;  // slots
};

struct fused_linear_compile {
  // aten::linear with a constant float weight (and bias); aten::relu and aten::gelu whose input
  // is such a linear layer's result, read by nothing else (so the two fuse into one step).
  static tbk::node_support supports(const torch::jit::Node& node) {
    if (node.kind() == c10::aten::linear) return linear_refusal(node);
    if (node.kind() != c10::aten::relu && node.kind() != c10::aten::gelu) {
      return tbk::unsupported("fused_linear runs aten::linear and the relu or gelu right after one");
    }
    const torch::jit::Node* producer = node.input(0)->node();
    if (producer->kind() != c10::aten::linear || !linear_refusal(*producer)) {
      return tbk::unsupported("an activation is fused only right after a linear layer fused_linear runs");
    }
    if (node.input(0)->uses().size() != 1) {
      return tbk::unsupported("the linear layer's result is read elsewhere too, so the activation cannot fuse");
    }
    return tbk::supported();
  }

  // Lowering time: the region (a method of linear layers and activations) as a program: a tuple
  // (inputs, steps, outputs), one (input slot, weight, bias or None, activation) per step.
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    if (spec.size() != 1) throw std::invalid_argument("fused_linear lowers one method (a region)");
    const tbk::method_graph graph = tbk::method_graph::read(module, spec.method_names()[0]);
    std::vector<int64_t> slot_of(graph.operations().size(), -1);
    const auto inputs = static_cast<int64_t>(graph.inputs());
    c10::impl::GenericList steps(c10::AnyType::get());
    auto slot = [&](const tbk::operand& o, const tbk::operation& reader) -> int64_t {
      if (o.is_input()) return static_cast<int64_t>(o.index);
      if (o.is_operation() && slot_of[o.index] >= 0) return slot_of[o.index];
      throw std::invalid_argument("fused_linear cannot run " + reader.text() + ": its input is not a tensor it computes");
    };
    for (std::size_t i = 0; i < graph.operations().size(); ++i) {
      const tbk::operation& op = graph.operations()[i];
      if (op.kind() == c10::aten::linear) {
        if (!op.inputs[1].is_constant() || !op.inputs[2].is_constant()) {
          throw std::invalid_argument("fused_linear cannot run " + op.text() + ": its weight and bias must be constants");
        }
        steps.push_back(c10::ivalue::Tuple::create(
            {slot(op.inputs[0], op), op.inputs[1].value, op.inputs[2].value, std::string("none")}));
        slot_of[i] = inputs + static_cast<int64_t>(steps.size()) - 1;
      } else if (op.kind() == c10::aten::relu || op.kind() == c10::aten::gelu) {
        const tbk::operand& x = op.inputs[0];
        const bool after_step = x.is_operation() && slot_of[x.index] == inputs + static_cast<int64_t>(steps.size()) - 1;
        if (!after_step) throw std::invalid_argument("fused_linear cannot run " + op.text() + ": it does not follow a linear layer");
        std::string activation = op.kind() == c10::aten::relu ? "relu" : "gelu";
        if (op.kind() == c10::aten::gelu && op.inputs.size() > 1 && op.inputs[1].value.isString() &&
            op.inputs[1].value.toStringRef() == "tanh") {
          activation = "gelu_tanh";
        }
        auto last = steps.get(steps.size() - 1).toTupleRef().elements().vec();
        last[3] = activation;
        steps.set(steps.size() - 1, c10::ivalue::Tuple::create(std::move(last)));
        slot_of[i] = slot_of[x.index];
      } else {
        throw std::invalid_argument("fused_linear cannot run " + op.text() + ": not a linear layer or its activation");
      }
    }
    c10::List<int64_t> outputs;
    for (const tbk::operand& o : graph.outputs()) {
      if (!o.is_operation() && !o.is_input()) throw std::invalid_argument("fused_linear: an output is a constant");
      outputs.push_back(o.is_input() ? static_cast<int64_t>(o.index) : slot_of[o.index]);
    }
    return c10::ivalue::Tuple::create({inputs, steps, outputs});
  }

  // Load time: the payload, checked, as the program.
  static fused_linear_program compile(const tbk::method_spec&, const c10::IValue& payload) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("fused_linear: malformed payload: " + what); };
    if (!payload.isTuple() || payload.toTupleRef().elements().size() != 3) fail("not a 3-tuple");
    const auto parts = payload.toTupleRef().elements().vec();
    if (!parts[0].isInt() || !parts[1].isList() || !parts[2].isIntList()) fail("expected (int, list, List[int])");
    fused_linear_program program;
    program.inputs = parts[0].toInt();
    for (const c10::IValue& entry : parts[1].toListRef()) {
      const int64_t made = program.inputs + static_cast<int64_t>(program.steps.size());
      if (!entry.isTuple() || entry.toTupleRef().elements().size() != 4) fail("a step is not a 4-tuple");
      const auto f = entry.toTupleRef().elements().vec();
      if (!f[0].isInt() || f[0].toInt() < 0 || f[0].toInt() >= made || !f[1].isTensor() ||
          !(f[2].isNone() || f[2].isTensor()) || !f[3].isString()) {
        fail("a step is not (earlier slot, weight, bias or None, activation)");
      }
      const std::string activation = f[3].toStringRef();
      if (activation != "none" && activation != "relu" && activation != "gelu" && activation != "gelu_tanh") {
        fail("unknown activation '" + activation + "'");
      }
      program.steps.push_back({f[0].toInt(), f[1].toTensor(), f[2].isNone() ? at::Tensor() : f[2].toTensor(), activation});
    }
    for (int64_t slot : parts[2].toIntVector()) {
      if (slot < 0 || slot >= program.inputs + static_cast<int64_t>(program.steps.size())) fail("an output slot is out of range");
      program.outputs.push_back(slot);
    }
    return program;
  }

 private:
  static tbk::node_support linear_refusal(const torch::jit::Node& node) {
    auto weight = torch::jit::toIValue(node.input(1));
    auto bias = torch::jit::toIValue(node.input(2));
    if (!weight || !weight->isTensor() || !bias || !(bias->isNone() || bias->isTensor())) {
      return tbk::unsupported("the weight and bias must be constants (freeze the module)");
    }
    if (weight->toTensor().scalar_type() != at::kFloat) return tbk::unsupported("the weight must be float32");
    return tbk::supported();
  }
};

struct fused_linear_execute {
  static std::vector<at::Tensor> execute(const fused_linear_program& program, tbk::rest<at::Tensor> inputs) {
    if (static_cast<int64_t>(inputs.size()) != program.inputs) {
      throw std::invalid_argument("expected " + std::to_string(program.inputs) + " inputs, got " +
                                  std::to_string(inputs.size()));
    }
    std::vector<at::Tensor> slots(inputs.begin(), inputs.end());
    for (const fused_linear_step& s : program.steps) {
      at::Tensor y = at::linear(slots[static_cast<std::size_t>(s.input)], s.weight, s.bias);
      if (s.activation == "relu") y.relu_();
      if (s.activation == "gelu") y = at::gelu(y);
      if (s.activation == "gelu_tanh") y = at::gelu(y, "tanh");
      slots.push_back(std::move(y));
    }
    std::vector<at::Tensor> out;
    for (int64_t slot : program.outputs) out.push_back(slots[static_cast<std::size_t>(slot)]);
    return out;
  }
};

using fused_linear_backend = tbk::backend<fused_linear_compile, fused_linear_execute>;
