// tbk/detail/partition_rewrite.hpp: turning one planned region into a module of its own (one
// method, forward, whose graph is the region's nodes), and replacing the region's nodes in the
// method by a call of that module once lowered. Non-template.
#pragma once

#include <tbk/detail/errors.hpp>
#include <tbk/detail/partition_plan.hpp>

#include <torch/csrc/jit/api/module.h>  // torch::jit::Module
#include <torch/csrc/jit/ir/ir.h>       // torch::jit::Graph, Node, Value, WithInsertPoint

#include <memory>         // std::make_shared
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <unordered_set>  // std::unordered_set
#include <vector>         // std::vector

namespace tbk::detail {

// Where a region meets the rest of its method: the values it reads from outside (constants
// aside: they are copied in) and the values it makes that are read outside.
struct region_boundary {
  std::vector<torch::jit::Value*> inputs;
  std::vector<torch::jit::Value*> outputs;
};

inline region_boundary boundary_of(const planned_region& region) {
  const std::unordered_set<const torch::jit::Node*> members(region.nodes.begin(), region.nodes.end());
  region_boundary out;
  std::unordered_set<const torch::jit::Value*> seen;
  for (torch::jit::Node* node : region.nodes) {
    for (torch::jit::Value* v : node->inputs()) {
      if (v->node()->kind() == c10::prim::Constant || members.count(v->node()) != 0) continue;
      if (seen.insert(v).second) out.inputs.push_back(v);
    }
    for (torch::jit::Value* v : node->outputs()) {
      for (const torch::jit::Use& use : v->uses()) {
        if (members.count(use.user) == 0) {
          out.outputs.push_back(v);
          break;
        }
      }
    }
  }
  return out;
}

// A module whose forward(self, x0, x1, ...) runs the region's nodes and returns its outputs
// (a tuple when there are several).
inline torch::jit::Module region_module(const std::string& class_name, const planned_region& region,
                                        const region_boundary& boundary) {
  torch::jit::Module module(c10::QualifiedName(class_name),
                            std::make_shared<torch::jit::CompilationUnit>(), /*shouldMangle=*/true);
  auto graph = std::make_shared<torch::jit::Graph>();
  graph->addInput("self")->setType(module.type());
  std::unordered_map<const torch::jit::Value*, torch::jit::Value*> env;
  for (std::size_t i = 0; i < boundary.inputs.size(); ++i) {
    env[boundary.inputs[i]] = graph->addInput("x" + std::to_string(i))
                                  ->setType(c10::unshapedType(boundary.inputs[i]->type()));
  }
  std::function<torch::jit::Value*(torch::jit::Value*)> value_of = [&](torch::jit::Value* v) {
    auto found = env.find(v);
    if (found != env.end()) return found->second;
    // Only constants are read without being inputs or made inside (see boundary_of).
    torch::jit::Node* copy = graph->createClone(v->node(), value_of);
    graph->insertNode(copy);
    return env[v] = copy->output();
  };
  for (torch::jit::Node* node : region.nodes) {
    torch::jit::Node* copy = graph->createClone(node, value_of);
    graph->insertNode(copy);
    for (std::size_t i = 0; i < node->outputs().size(); ++i) {
      env[node->output(i)] = copy->output(i);
      copy->output(i)->setType(c10::unshapedType(node->output(i)->type()));
    }
  }
  if (boundary.outputs.size() == 1) {
    graph->registerOutput(env.at(boundary.outputs[0]));
  } else {
    std::vector<torch::jit::Value*> values;
    for (torch::jit::Value* v : boundary.outputs) values.push_back(env.at(v));
    graph->registerOutput(graph->insertNode(graph->createTuple(values))->output());
  }
  torch::jit::Function* forward = module._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(forward);
  return module;
}

// Replaces the region's nodes in their graph by `self.<attribute>.forward(inputs...)`, whose
// result is `result_type`. The call sits where the region's last node was; nodes between the
// region's first and last nodes that read its results move after the call (in their order).
// Returns the values that now stand for the region's outputs.
inline std::vector<torch::jit::Value*> replace_region(const planned_region& region, const region_boundary& boundary,
                           const std::string& attribute, const c10::TypePtr& module_type,
                           const c10::TypePtr& result_type) {
  const std::unordered_set<const torch::jit::Node*> members(region.nodes.begin(), region.nodes.end());
  torch::jit::Node* first = region.nodes.front();
  torch::jit::Node* last = region.nodes.back();
  torch::jit::Graph* graph = first->owningGraph();

  std::unordered_set<const torch::jit::Value*> after_call;  // values the call makes, in effect
  for (torch::jit::Node* node : region.nodes) {
    for (const torch::jit::Value* v : node->outputs()) after_call.insert(v);
  }
  std::vector<torch::jit::Node*> to_move;
  for (torch::jit::Node* x = first; x != last; x = x->next()) {
    if (members.count(x) != 0) continue;
    std::vector<torch::jit::Value*> reads;
    collect_reads(x, reads);
    bool depends = false;
    for (const torch::jit::Value* v : reads) depends = depends || after_call.count(v) != 0;
    if (!depends) continue;
    to_move.push_back(x);
    for (const torch::jit::Value* v : x->outputs()) after_call.insert(v);
  }

  torch::jit::WithInsertPoint guard(last->next());
  torch::jit::Value* self = graph->inputs()[0];
  torch::jit::Value* submodule = graph->insertGetAttr(self, attribute);
  submodule->setType(module_type);
  std::vector<torch::jit::Value*> arguments{submodule};
  arguments.insert(arguments.end(), boundary.inputs.begin(), boundary.inputs.end());
  torch::jit::Node* call = graph->insertNode(graph->create(c10::prim::CallMethod, arguments, 1));
  call->s_(c10::attr::name, "forward");
  call->output()->setType(result_type);
  torch::jit::Node* end = call;
  std::vector<torch::jit::Value*> results{call->output()};
  if (boundary.outputs.size() != 1) {
    end = graph->insertNode(graph->createTupleUnpack(call->output()));
    results.assign(end->outputs().begin(), end->outputs().end());
  }
  for (std::size_t i = 0; i < boundary.outputs.size(); ++i) {
    torch::jit::Value* old = boundary.outputs[i];
    results[i]->setType(old->type())->copyMetadata(old);
    const std::vector<torch::jit::Use> uses = old->uses();
    for (const torch::jit::Use& use : uses) {
      if (members.count(use.user) == 0) use.user->replaceInput(use.offset, results[i]);
    }
  }
  for (torch::jit::Node* x : to_move) {
    x->moveAfter(end);
    end = x;
  }
  for (auto it = region.nodes.rbegin(); it != region.nodes.rend(); ++it) (*it)->destroy();
  return results;
}

}  // namespace tbk::detail
