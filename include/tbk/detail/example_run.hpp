// tbk/detail/example_run.hpp: one run of a method on its example inputs, for tbk::partition:
// the value every node and block parameter took, inside prim::If and prim::Loop bodies too, so
// that each region gets its own example inputs and a supports hook sees the run's shapes.
#pragma once

#include <tbk/detail/errors.hpp>          // raise, current_exception_text
#include <tbk/detail/partition_plan.hpp>  // partition_plan, crosses_to_backend
#include <tbk/detail/partition_rewrite.hpp>  // region_boundary

#include <torch/csrc/jit/api/function_impl.h>  // torch::jit::Function via CompilationUnit
#include <torch/csrc/jit/api/module.h>         // torch::jit::Module
#include <torch/csrc/jit/ir/ir.h>              // torch::jit::Graph, Block, Value

#include <cstddef>        // std::size_t
#include <map>            // std::map
#include <memory>         // std::shared_ptr
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::pair
#include <vector>         // std::vector

namespace tbk {
namespace detail {

// Pairs each value of `from` (block parameters and node outputs, nested blocks included) with
// the value at the same place of `to`, a copy of it.
inline void pair_values(torch::jit::Block* from, torch::jit::Block* to,
                        std::unordered_map<torch::jit::Value*, torch::jit::Value*>& pairs) {
  for (std::size_t i = 0; i < from->inputs().size(); ++i) pairs[from->inputs()[i]] = to->inputs()[i];
  auto there = to->nodes().begin();
  for (torch::jit::Node* node : from->nodes()) {
    torch::jit::Node* copy = *there++;
    for (std::size_t i = 0; i < node->outputs().size(); ++i) pairs[node->output(i)] = copy->output(i);
    for (std::size_t b = 0; b < node->blocks().size(); ++b) pair_values(node->blocks()[b], copy->blocks()[b], pairs);
  }
}

inline void collect_values(torch::jit::Block* block, bool nested, std::vector<torch::jit::Value*>& top,
                           std::vector<torch::jit::Value*>& inner) {
  if (nested) {
    for (torch::jit::Value* in : block->inputs()) {
      if (crosses_to_backend(in->type())) inner.push_back(in);
    }
  }
  for (torch::jit::Node* node : block->nodes()) {
    for (torch::jit::Value* out : node->outputs()) {
      if (!nested) top.push_back(out);
      else if (crosses_to_backend(out->type())) inner.push_back(out);
    }
    for (torch::jit::Block* body : node->blocks()) collect_values(body, true, top, inner);
  }
}

// The values of `graph` when the method runs on `inputs`: each value of its top-level block,
// and of each value inside a prim::If or prim::Loop body its first value of the run (none for
// a branch not taken or a loop run zero times). The run is a copy of the graph that returns the
// top-level values and appends each inner value to a list of its own.
inline std::unordered_map<torch::jit::Value*, c10::IValue> probe_values(
    const std::shared_ptr<torch::jit::Graph>& graph, const torch::jit::Module& self,
    const std::vector<c10::IValue>& inputs) {
  std::vector<torch::jit::Value*> top;
  std::vector<torch::jit::Value*> inner;
  collect_values(graph->block(), false, top, inner);

  std::shared_ptr<torch::jit::Graph> probe = graph->copy();
  std::unordered_map<torch::jit::Value*, torch::jit::Value*> pairs;
  pair_values(graph->block(), probe->block(), pairs);
  std::vector<torch::jit::Value*> returned;
  for (torch::jit::Value* v : top) returned.push_back(pairs.at(v));
  for (torch::jit::Value* v : inner) {
    torch::jit::Value* copy = pairs.at(v);
    torch::jit::WithInsertPoint at_start(probe->block()->nodes().front());
    torch::jit::Value* list = probe->insertNode(probe->createList(c10::unshapedType(copy->type()), {}))->output();
    torch::jit::Node* where = copy->node()->kind() == c10::prim::Param ? nullptr : copy->node();
    if (where == nullptr) {
      torch::jit::Block* body = copy->node()->owningBlock();
      torch::jit::WithInsertPoint in_body(body->nodes().front());
      probe->insert(c10::aten::append, {list, copy});
    } else {
      torch::jit::WithInsertPoint after(where->next());
      probe->insert(c10::aten::append, {list, copy});
    }
    returned.push_back(list);
  }
  while (probe->outputs().size() > 0) probe->eraseOutput(0);
  probe->registerOutput(probe->insertNode(probe->createTuple(returned))->output());

  torch::jit::CompilationUnit unit;
  torch::jit::Function* fn = unit.create_function("tbk_probe", probe);
  torch::jit::Stack stack{self._ivalue()};
  stack.insert(stack.end(), inputs.begin(), inputs.end());
  fn->run(stack);
  const std::vector<c10::IValue> values = stack.back().toTupleRef().elements().vec();

  std::unordered_map<torch::jit::Value*, c10::IValue> out;
  for (std::size_t i = 0; i < top.size(); ++i) out[top[i]] = values[i];
  for (std::size_t i = 0; i < inner.size(); ++i) {
    const c10::List<c10::IValue> seen = values[top.size() + i].toList();
    if (!seen.empty()) out[inner[i]] = seen.get(0);
  }
  return out;
}

// One run of a method on its example inputs, for planning and lowering: the value of each node
// and block parameter (inside control flow, its first), kept for the regions' example inputs;
// while it lives, those tensors have the types of the run (dtype, shape), so that a supports hook
// can read them; restored afterwards. Without example inputs for the method it observes nothing.
class example_run {
 public:
  example_run(const std::shared_ptr<torch::jit::Graph>& graph, const torch::jit::Module& root,
              const std::map<std::string, std::vector<c10::IValue>>& example_inputs, const std::string& method,
              const std::string& backend) {
    auto given = example_inputs.find(method);
    if (given == example_inputs.end()) return;
    observed_ = true;
    const auto inputs = graph->inputs();
    for (std::size_t i = 0; i + 1 < inputs.size() && i < given->second.size(); ++i) {
      values_[inputs[i + 1]] = given->second[i];
    }
    try {
      for (auto& [value, example] : probe_values(graph, root, given->second)) values_[value] = example;
    } catch (...) {
      raise("tbk::partition(" + backend + "): running method '" + method +
            "' on its example inputs failed: " + current_exception_text());
    }
    for (auto& [value, example] : values_) {
      if (!example.isTensor() || !example.toTensor().defined() ||
          value->type()->kind() != c10::TypeKind::TensorType) {
        continue;
      }
      kept_.emplace_back(value, value->type());
      value->setType(c10::TensorType::create(example.toTensor()));
    }
  }
  ~example_run() {
    for (auto& [value, type] : kept_) value->setType(type);
  }
  example_run(const example_run&) = delete;
  example_run& operator=(const example_run&) = delete;

  // Whether the method was run (it has example inputs).
  bool observed() const { return observed_; }

  // Each region's inputs in the run, for its compile spec; none without example inputs, or for
  // a region the run never reached (a branch not taken, a loop run zero times).
  std::vector<c10::optional<std::vector<c10::IValue>>> region_inputs(const partition_plan& plan,
                                                                    const std::vector<region_boundary>& boundaries) const {
    std::vector<c10::optional<std::vector<c10::IValue>>> out(plan.regions.size());
    for (std::size_t k = 0; k < plan.regions.size() && observed_; ++k) {
      std::vector<c10::IValue> region;
      for (torch::jit::Value* v : boundaries[k].inputs) {
        auto found = values_.find(v);
        if (found == values_.end()) break;
        region.push_back(found->second);
      }
      if (region.size() == boundaries[k].inputs.size()) out[k] = std::move(region);
    }
    return out;
  }

 private:
  bool observed_ = false;
  std::unordered_map<torch::jit::Value*, c10::IValue> values_;
  std::vector<std::pair<torch::jit::Value*, c10::TypePtr>> kept_;
};

}  // namespace detail
}  // namespace tbk
