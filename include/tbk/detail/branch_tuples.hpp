// tbk/detail/branch_tuples.hpp: tuples that a prim::If returns, made one If output per element,
// so that an element nobody reads stops being an output at all (dead code elimination then drops
// it). torch.nn.MultiheadAttention returns (output, weights) from branches nested in its
// fast-path checks; `out, _ = attention(...)` reads the output only, and without this the
// weights' producer, a node a backend may run, would have to hand them out of its region. The
// technique of PyTorch's LowerAllTuples, kept to If outputs (the method's own inputs and outputs
// keep their types).
#pragma once
#include <torch/csrc/jit/ir/ir.h>                // torch::jit::Block, Graph, Node, Value
#include <torch/csrc/jit/passes/lower_tuples.h>  // torch::jit::LowerSimpleTuples

#include <cstddef>  // std::size_t
#include <memory>   // std::shared_ptr
#include <vector>   // std::vector

namespace tbk {
namespace detail {

// Output i of `branch`, a tuple, as one output per element: each block unpacks its tuple at its
// end and returns the elements (a block that returned early elsewhere, whose tuple is a
// prim::Uninitialized placeholder, returns one placeholder per element); after the If, a
// prim::TupleConstruct of the new outputs stands in for the tuple.
inline void flatten_branch_tuple(torch::jit::Node* branch, std::size_t i) {
  torch::jit::Graph& graph = *branch->owningGraph();
  torch::jit::Value* tuple = branch->outputs()[i];
  const c10::TupleTypePtr type = tuple->type()->expect<c10::TupleType>();
  std::vector<torch::jit::Value*> elements;
  for (const c10::TypePtr& element : type->elements()) elements.push_back(branch->addOutput()->setType(element));
  for (torch::jit::Block* block : branch->blocks()) {
    torch::jit::Value* built = block->outputs()[i];
    if (built->node()->kind() == c10::prim::Uninitialized) {
      for (const c10::TypePtr& element : type->elements()) {
        block->registerOutput(graph.createUninitialized(element)->insertBefore(block->return_node())->output());
      }
    } else {
      torch::jit::Node* unpack = graph.createTupleUnpack(built)->insertBefore(block->return_node());
      for (torch::jit::Value* element : unpack->outputs()) block->registerOutput(element);
    }
    block->eraseOutput(i);
  }
  torch::jit::Node* construct = graph.createTuple(elements, type->schema() ? type : nullptr)->insertAfter(branch);
  tuple->replaceAllUsesWith(construct->output());
  branch->eraseOutput(i);
}

// Every tuple output of every prim::If in `block` and the blocks inside it, outer ones first.
inline void flatten_branch_tuples(torch::jit::Block* block) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::If) {
      for (std::size_t i = 0; i < node->outputs().size();) {
        if (node->outputs()[i]->type()->cast<c10::TupleType>()) {
          flatten_branch_tuple(node, i);  // its elements are now the last outputs
        } else {
          ++i;
        }
      }
    }
    for (torch::jit::Block* inner : node->blocks()) flatten_branch_tuples(inner);
  }
}

// flatten_branch_tuples on a graph, then each unpack of a tuple built in view replaced by the
// values it was built of (PyTorch's LowerSimpleTuples).
inline void flatten_branch_tuples(const std::shared_ptr<torch::jit::Graph>& graph) {
  flatten_branch_tuples(graph->block());
  torch::jit::LowerSimpleTuples(graph);
}

}  // namespace detail
}  // namespace tbk
