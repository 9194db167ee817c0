// tbk/method_graph.hpp: a method's graph as a backend's preprocess reads it to compile its own
// program: the operations in order, each input resolved to a method input, a constant or an
// earlier operation's output; the outputs (a returned tuple unpacked); the example inputs'
// shapes and dtypes. The same on every path: a method lowered whole (tbk::lower), a region of
// tbk::partition, and a region tbk.executorch, tbk.export or tbk.compile made (tbk.bridge).
#pragma once

#include <tbk/compile_spec.hpp>    // method_spec (example inputs)
#include <tbk/detail/errors.hpp>   // raise
#include <tbk/detail/messages.hpp> // node_text

#include <torch/csrc/jit/api/module.h>        // torch::jit::Module
#include <torch/csrc/jit/ir/constants.h>      // torch::jit::toIValue
#include <torch/csrc/jit/ir/ir.h>             // torch::jit::Graph, Node, Value
#include <torch/csrc/jit/passes/inliner.h>    // torch::jit::Inline

#include <cstddef>        // std::size_t
#include <memory>         // std::shared_ptr
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

namespace tbk {

// Where an operation's input (or the method's output) comes from.
struct operand {
  enum class source { input, constant, operation };
  source from = source::constant;
  std::size_t index = 0;   // input: which method input (0 is the first after self); operation: which operation
  std::size_t output = 0;  // operation: which of its outputs
  c10::IValue value;       // constant: its value (a tensor, a number, a list, None ...)

  bool is_input() const { return from == source::input; }
  bool is_constant() const { return from == source::constant; }
  bool is_operation() const { return from == source::operation; }
};

// One node of the method that computes something: its TorchScript node (kind, types, source line)
// and its inputs resolved.
struct operation {
  const torch::jit::Node* node = nullptr;
  std::vector<operand> inputs;

  c10::Symbol kind() const { return node->kind(); }
  // How tbk names it in messages: "aten::linear (model.py:12)" (tbk::node_text).
  std::string text() const { return detail::node_text(*node); }
};

// A method's graph, inlined, as straight-line operations. Constants are prim::Constant nodes,
// lists of constants, and attributes of the module read with prim::GetAttr (its weights, frozen
// or not); a graph with control flow (prim::If, prim::Loop) or a method call that does not inline
// is refused, naming the node.
class method_graph {
 public:
  // Reads `method` of `module`. Throws std::invalid_argument naming the method and the node.
  static method_graph read(const torch::jit::Module& module, const std::string& method = "forward") {
    method_graph out;
    out.graph_ = module.get_method(method).graph()->copy();
    torch::jit::Inline(*out.graph_);
    out.module_ = module;
    out.method_ = method;
    const auto inputs = out.graph_->inputs();
    for (std::size_t i = 1; i < inputs.size(); ++i) {
      out.sources_[inputs[i]] = {operand::source::input, i - 1, 0, {}};
      out.input_types_.push_back(inputs[i]->type());
    }
    if (!inputs.empty()) out.self_ = inputs[0];
    for (const torch::jit::Node* node : out.graph_->nodes()) out.add(node);
    const torch::jit::Value* result = out.graph_->outputs()[0];
    if (result->node()->kind() == c10::prim::TupleConstruct && out.operations_.size() &&
        out.operations_.back().node == result->node()) {
      out.operations_.pop_back();  // the tuple a method returns several results in: its elements are the outputs
      for (const torch::jit::Value* v : result->node()->inputs()) out.outputs_.push_back(out.resolve(v));
    } else {
      out.outputs_.push_back(out.resolve(result));
    }
    return out;
  }

  const std::vector<operation>& operations() const { return operations_; }
  const std::vector<operand>& outputs() const { return outputs_; }
  // The method's inputs, without self: how many, and their TorchScript types (complete tensor
  // types where the method was lowered with example inputs, as tbk.bridge's regions are).
  std::size_t inputs() const { return input_types_.size(); }
  const std::vector<c10::TypePtr>& input_types() const { return input_types_; }
  // Where a value of the graph comes from (for a backend that looks at node->inputs() itself).
  operand source_of(const torch::jit::Value* v) const { return resolve(v); }

  // The example inputs' shapes a method was lowered with (tbk::example_inputs_option), for a
  // backend that needs them: empty when none were given.
  static std::vector<std::vector<int64_t>> example_shapes(const method_spec& method) {
    std::vector<std::vector<int64_t>> shapes;
    if (!method.has_example_inputs()) return shapes;
    for (const at::Tensor& t : method.example_tensors()) shapes.push_back(t.sizes().vec());
    return shapes;
  }

 private:
  void add(const torch::jit::Node* node) {
    const c10::Symbol kind = node->kind();
    if (kind == c10::prim::Constant) {
      sources_[node->output()] = {operand::source::constant, 0, 0, *torch::jit::toIValue(node->output())};
      return;
    }
    if (kind == c10::prim::GetAttr) {  // a module attribute: a weight (or a submodule on the way to one)
      auto owner = sources_.find(node->input());
      const bool from_self = node->input() == self_;
      if (from_self || (owner != sources_.end() && owner->second.is_constant() && owner->second.value.isObject())) {
        const c10::IValue object = from_self ? c10::IValue(module_._ivalue()) : owner->second.value;
        sources_[node->output()] = {operand::source::constant, 0, 0, object.toObjectRef().getAttr(node->s(c10::attr::name))};
        return;
      }
    }
    if (kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct) {
      bool all_constant = true;
      for (const torch::jit::Value* v : node->inputs()) all_constant = all_constant && resolve(v).is_constant();
      if (all_constant) {
        if (auto folded = torch::jit::toIValue(node->output())) {
          sources_[node->output()] = {operand::source::constant, 0, 0, *folded};
          return;
        }
        std::vector<c10::IValue> items;
        for (const torch::jit::Value* v : node->inputs()) items.push_back(resolve(v).value);
        if (kind == c10::prim::TupleConstruct) {
          sources_[node->output()] = {operand::source::constant, 0, 0, c10::ivalue::Tuple::create(std::move(items))};
          return;
        }
        c10::impl::GenericList list(node->output()->type()->containedType(0));
        for (c10::IValue& item : items) list.push_back(std::move(item));
        sources_[node->output()] = {operand::source::constant, 0, 0, list};
        return;
      }
    }
    if (!node->blocks().empty() || kind == c10::prim::CallMethod || kind == c10::prim::CallFunction) {
      detail::raise("method " + method_ + ": " + detail::node_text(*node) +
                    " is control flow or a call, which tbk::method_graph reads as straight-line operations only");
    }
    operation op{node, {}};
    for (const torch::jit::Value* v : node->inputs()) op.inputs.push_back(resolve(v));
    const std::size_t index = operations_.size();
    for (std::size_t k = 0; k < node->outputs().size(); ++k) {
      sources_[node->outputs()[k]] = {operand::source::operation, index, k, {}};
    }
    operations_.push_back(std::move(op));
  }

  operand resolve(const torch::jit::Value* v) const {
    auto found = sources_.find(v);
    if (found == sources_.end()) {
      detail::raise("method " + method_ + ": value %" + v->debugName() + " is read before it is made");
    }
    return found->second;
  }

  std::shared_ptr<torch::jit::Graph> graph_;
  torch::jit::Module module_;
  std::string method_;
  const torch::jit::Value* self_ = nullptr;
  std::vector<operation> operations_;
  std::vector<operand> outputs_;
  std::vector<c10::TypePtr> input_types_;
  std::unordered_map<const torch::jit::Value*, operand> sources_;
};

}  // namespace tbk
