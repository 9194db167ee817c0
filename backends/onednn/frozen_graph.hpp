// frozen_graph.hpp: a tbk_onednn method's frozen graph read into a program at given input shapes:
// at lowering (preprocess), and again at call time for input shapes other than the example's, from
// the frozen module the payload keeps for that (its bytes as torch::jit::Module::save writes them).
#pragma once
#include "ir.hpp"
#include "operators.hpp"  // translate_graph

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>                         // torch::jit::Module
#include <torch/csrc/jit/passes/constant_propagation.h>        // ConstantPropagation
#include <torch/csrc/jit/passes/dead_code_elimination.h>       // EliminateDeadCode
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>  // OptimizeFrozenGraph
#include <torch/csrc/jit/passes/peephole.h>                    // PeepholeOptimize
#include <torch/csrc/jit/passes/remove_mutation.h>             // RemoveTensorMutation
#include <torch/csrc/jit/passes/shape_analysis.h>              // PropagateInputShapes
#include <torch/csrc/jit/serialization/import.h>               // torch::jit::load

#include <cstring>    // std::memcpy
#include <memory>     // std::shared_ptr
#include <mutex>      // std::mutex
#include <sstream>    // std::stringstream
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

// The program of method `name` of a frozen module, read with `examples`' shapes (their values are
// not read). Throws std::invalid_argument naming the node tbk_onednn cannot run at these shapes.
inline program read_method(const torch::jit::Module& frozen, const std::string& name,
                           const std::vector<at::Tensor>& examples) {
  std::shared_ptr<torch::jit::Graph> graph = frozen.get_method(name).graph()->copy();
  torch::jit::OptimizeFrozenGraph(graph, true);
  torch::jit::RemoveTensorMutation(graph);
  // The example inputs' shapes make sizes constants, which folds away the shape checks that
  // torch.nn.functional's code makes (asserts, list lengths)
  for (std::size_t i = 0; i < examples.size() && i + 1 < graph->inputs().size(); ++i) {
    graph->inputs()[i + 1]->setType(c10::TensorType::create(examples[i]));
  }
  torch::jit::PropagateInputShapes(graph);
  torch::jit::PeepholeOptimize(graph, /*disable_shape_peepholes=*/false);
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
  return translate_graph(*graph, examples);
}

// Float32 tensors of these shapes, their values unset: what read_method needs of inputs.
inline std::vector<at::Tensor> tensors_of_shapes(const std::vector<shape_t>& shapes) {
  std::vector<at::Tensor> out;
  for (const shape_t& s : shapes) out.push_back(at::empty(s, at::kFloat));
  return out;
}

// The input shapes a method is read at when it is lowered, to learn whether it takes other sizes
// than the batch: the examples' shapes with the sizes after N and C doubled (NCHW images), then,
// when an input has 3 dimensions, with its second doubled instead ([N, L, C] sequences). Doubling
// keeps the ratios of sizes a network relates (a skip connection across a stride-2 step). Empty
// when no input has a dimension beyond N and C.
inline std::vector<std::vector<shape_t>> spatial_probes(const std::vector<at::Tensor>& examples) {
  std::vector<shape_t> channels_first, sequence_first;
  bool spatial = false, sequence = false;
  for (const at::Tensor& x : examples) {
    shape_t s = x.sizes().vec();
    shape_t t = s;
    for (std::size_t d = 2; d < s.size(); ++d) {
      s[d] *= 2;
      spatial = true;
    }
    if (t.size() == 3) {
      t[1] *= 2;
      sequence = true;
    }
    channels_first.push_back(std::move(s));
    sequence_first.push_back(std::move(t));
  }
  std::vector<std::vector<shape_t>> probes;
  if (spatial) probes.push_back(std::move(channels_first));
  if (sequence) probes.push_back(std::move(sequence_first));
  return probes;
}

// A module's bytes as torch::jit::Module::save writes them, as a 1-D uint8 tensor.
inline at::Tensor module_bytes(const torch::jit::Module& module) {
  std::stringstream out;
  module.save(out);
  const std::string bytes = out.str();
  at::Tensor blob = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(blob.data_ptr(), bytes.data(), bytes.size());
  return blob;
}

// One method of the frozen module a payload keeps, read at the input shapes a call brings. The
// module is loaded on the first read (most methods are never called at other shapes); reads are
// serialized. Safe to call from many threads.
class frozen_graph_reader {
 public:
  // `bytes`: a 1-D uint8 CPU tensor (checked here), kept, not copied.
  frozen_graph_reader(at::Tensor bytes, std::string method) : bytes_(std::move(bytes)), method_(std::move(method)) {
    if (bytes_.scalar_type() != at::kByte || bytes_.dim() != 1 || !bytes_.is_contiguous() || !bytes_.device().is_cpu()) {
      throw std::invalid_argument("the frozen module that the payload keeps for other input shapes should be a "
                                  "contiguous 1-D uint8 CPU tensor");
    }
  }

  // The method's program at these input shapes; std::invalid_argument with tbk_onednn's refusal
  // when it cannot run them (or the kept module cannot be read).
  program at(const std::vector<shape_t>& shapes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!module_) {
      std::stringstream in(std::string(static_cast<const char*>(bytes_.data_ptr()), static_cast<std::size_t>(bytes_.numel())));
      try {
        module_ = std::make_shared<torch::jit::Module>(torch::jit::load(in));
      } catch (const c10::Error& e) {
        throw std::invalid_argument("the frozen module that the payload keeps for other input shapes cannot be read: " +
                                    std::string(e.what_without_backtrace()));
      }
    }
    try {
      return read_method(*module_, method_, tensors_of_shapes(shapes));
    } catch (const std::invalid_argument& e) {  // at call time, partitioning is no remedy: no hint
      std::string why = e.what();
      const std::string hint = detail::partition_hint;
      if (why.size() >= hint.size() && why.compare(why.size() - hint.size(), hint.size(), hint) == 0) {
        why.resize(why.size() - hint.size());
      }
      throw std::invalid_argument(why);
    } catch (const c10::Error& e) {  // a pass of PyTorch's failing at these shapes
      throw std::invalid_argument(e.what_without_backtrace());
    }
  }

 private:
  at::Tensor bytes_;
  std::string method_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<torch::jit::Module> module_;
};

}  // namespace tbk_onednn
