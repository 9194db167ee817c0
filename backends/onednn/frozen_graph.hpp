// frozen_graph.hpp: a tbk_onednn method's frozen graph read into a program at given input shapes:
// at lowering (preprocess, also at the probe shapes that tell whether it takes other sizes), and
// again at call time for input shapes other than the example's, from the frozen module the
// payload keeps for that (its bytes as torch::jit::Module::save writes them: a zip archive).
#pragma once
#include "ir.hpp"
#include "lowering.hpp"   // detail::partition_hint
#include "operators.hpp"  // translate_graph
#include "payload_checksums.hpp"  // is_byte_string

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/module.h>                         // torch::jit::Module
#include <torch/csrc/jit/passes/constant_propagation.h>        // ConstantPropagation
#include <torch/csrc/jit/passes/dead_code_elimination.h>       // EliminateDeadCode
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>  // OptimizeFrozenGraph
#include <torch/csrc/jit/passes/peephole.h>                    // PeepholeOptimize
#include <torch/csrc/jit/passes/remove_mutation.h>             // RemoveTensorMutation
#include <torch/csrc/jit/passes/shape_analysis.h>              // PropagateInputShapes
#include <torch/csrc/jit/serialization/import.h>               // torch::jit::load

#include <algorithm>  // std::find
#include <cstring>    // std::memcmp
#include <functional>  // std::function
#include <memory>     // std::shared_ptr
#include <mutex>      // std::mutex
#include <sstream>    // std::stringstream
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <unordered_set>  // std::unordered_set
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

// Why a read failed, from the exception in flight, as a call-time message: a refusal without the
// partitioning hint (partitioning is no remedy at call time), a PyTorch error without its
// backtrace.
inline std::string read_refusal() {
  std::string why;
  try {
    throw;
  } catch (const c10::Error& e) {  // a pass of PyTorch's failing at these shapes
    why = e.what_without_backtrace();
  } catch (const std::exception& e) {
    why = e.what();
  }
  const std::string hint = detail::partition_hint;
  if (why.size() >= hint.size() && why.compare(why.size() - hint.size(), hint.size(), hint) == 0) {
    why.resize(why.size() - hint.size());
  }
  return why;
}

// Whether a graph decides anything by a tensor's first size (the batch, in a batch-first
// network): a comparison (`if x.size(0) == 1`), a division or a remainder that reads `x.size(0)`,
// `x.shape[0]` or the first of an unpacked `x.size()`, directly or through add, sub, mul and the
// traced size conversions. Reading the graph at batches N and N + 1 cannot see such a decision
// (PyTorch's passes fold it at each), so a method whose graph has one is never given another batch
// by setting the batch places (any_shape.hpp): it is read again at each batch.
inline bool batch_size_decides(const torch::jit::Graph& graph) {
  namespace aten = c10::aten;
  std::unordered_set<const torch::jit::Value*> first_sizes;  // x.size(0) and what follows from it
  auto is_zero = [](const torch::jit::Value* v) {
    auto c = torch::jit::toIValue(v);
    return c && c->isInt() && c->toInt() == 0;
  };
  bool decides = false;
  std::function<void(const torch::jit::Block*)> visit = [&](const torch::jit::Block* block) {
    for (const torch::jit::Node* node : block->nodes()) {
      const auto kind = node->kind();
      const auto in = node->inputs();
      auto reads_first = [&] {
        for (const torch::jit::Value* v : in) {
          if (first_sizes.count(v)) return true;
        }
        return false;
      };
      if (kind == aten::size && in.size() == 2 && is_zero(in[1])) {
        first_sizes.insert(node->output());
      } else if (kind == aten::__getitem__ && in.size() == 2 && is_zero(in[1]) &&
                 in[0]->node()->kind() == aten::size && in[0]->node()->inputs().size() == 1) {
        first_sizes.insert(node->output());
      } else if (kind == c10::prim::ListUnpack && !node->outputs().empty() && in[0]->node()->kind() == aten::size) {
        first_sizes.insert(node->outputs()[0]);
      } else if ((kind == aten::add || kind == aten::sub || kind == aten::mul || kind == c10::prim::NumToTensor ||
                  kind == aten::Int) && node->outputs().size() == 1 && reads_first()) {
        first_sizes.insert(node->output());
      } else if ((kind == aten::eq || kind == aten::ne || kind == aten::lt || kind == aten::gt || kind == aten::le ||
                  kind == aten::ge || kind == aten::floordiv || kind == aten::floor_divide || kind == aten::div ||
                  kind == aten::remainder || kind == aten::__range_length) && reads_first()) {
        decides = true;
      }
      for (const torch::jit::Block* inner : node->blocks()) visit(inner);
    }
  };
  visit(graph.block());
  return decides;
}

// Float32 tensors of these shapes, their values unset: what read_method needs of inputs (it reads
// their sizes; the memory is an input's worth, small beside a call's).
inline std::vector<at::Tensor> tensors_of_shapes(const std::vector<shape_t>& shapes) {
  std::vector<at::Tensor> out;
  for (const shape_t& s : shapes) out.push_back(at::empty(s, at::kFloat));
  return out;
}

// The input shapes a method is read at when it is lowered, to learn whether it takes other sizes
// than the batch: when an input has 3 dimensions, with its second doubled ([N, L, C] sequences,
// the layout tbk_onednn's 3-D operators take), then the examples' shapes with the sizes after N
// and C doubled (NCHW images). Doubling keeps the ratios of sizes a network relates (a skip
// connection across a stride-2 step). Then one probe per dimension with that dimension alone
// doubled (each input's dimensions after N, after N and C for 4-D and 5-D inputs), for a method
// whose sizes are related so that doubling them all is no valid shape (a layer norm over the last
// dimension, a matmul's inner dimensions): the first probe that reads keeps the method readable
// at any shape, each call's read then checks its own. Empty when no input has a dimension beyond
// N and C. When the
// runtime said which dimensions it changes (tbk::dynamic_dims_option: `dynamic`, per input),
// those instead: the examples with exactly those doubled (the batch where a transformer's region
// has it, at dimension 1), then with those but the channels (dimension 1 of a 4-D or 5-D input:
// torch.compile(dynamic=True) calls every dimension dynamic, and a convolution's weights fix its
// input's channels), then each alone but the channels; empty when it names none.
inline std::vector<std::vector<shape_t>> spatial_probes(const std::vector<at::Tensor>& examples,
                                                        const c10::optional<std::vector<std::vector<int64_t>>>& dynamic = {}) {
  if (dynamic) {
    auto doubled_where = [&](auto&& chosen) {  // chosen(input, dimension)
      std::vector<shape_t> shapes;
      bool any = false;
      for (std::size_t i = 0; i < examples.size(); ++i) {
        shape_t s = examples[i].sizes().vec();
        for (int64_t d : i < dynamic->size() ? (*dynamic)[i] : std::vector<int64_t>{}) {
          if (d < 0 || d >= static_cast<int64_t>(s.size()) || !chosen(i, d)) continue;
          s[static_cast<std::size_t>(d)] *= 2;
          any = true;
        }
        shapes.push_back(std::move(s));
      }
      return any ? c10::optional<std::vector<shape_t>>(std::move(shapes)) : c10::nullopt;
    };
    std::vector<std::vector<shape_t>> probes;
    auto add = [&](c10::optional<std::vector<shape_t>> shapes) {
      if (shapes && std::find(probes.begin(), probes.end(), *shapes) == probes.end()) probes.push_back(std::move(*shapes));
    };
    add(doubled_where([](std::size_t, int64_t) { return true; }));
    add(doubled_where([&](std::size_t i, int64_t d) { return d != 1 || (examples[i].dim() != 4 && examples[i].dim() != 5); }));
    for (std::size_t i = 0; i < examples.size() && i < dynamic->size(); ++i) {
      for (int64_t alone : (*dynamic)[i]) {
        if (alone == 1 && (examples[i].dim() == 4 || examples[i].dim() == 5)) continue;  // (the channels)
        add(doubled_where([&](std::size_t j, int64_t d) { return j == i && d == alone; }));
      }
    }
    return probes;
  }
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
  if (sequence) probes.push_back(std::move(sequence_first));
  if (spatial) probes.push_back(std::move(channels_first));
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const std::size_t rank = static_cast<std::size_t>(examples[i].dim());
    for (std::size_t d = rank == 4 || rank == 5 ? 2 : 1; d < rank; ++d) {
      std::vector<shape_t> one;
      for (const at::Tensor& x : examples) one.push_back(x.sizes().vec());
      one[i][d] *= 2;
      if (std::find(probes.begin(), probes.end(), one) == probes.end()) probes.push_back(std::move(one));
    }
  }
  return probes;
}

// A module's bytes as torch::jit::Module::save writes them.
inline std::string module_bytes(const torch::jit::Module& module) {
  std::stringstream out;
  module.save(out);
  return out.str();
}

// Whether bytes begin as a zip archive (what torch::jit::Module::save writes) does: checked before
// torch::jit::load reads them, which takes trusted input only (docs/onednn.md, a hostile model).
inline bool looks_like_zip(const at::Tensor& bytes) {
  static constexpr unsigned char magic[4] = {'P', 'K', 3, 4};
  return bytes.numel() >= 4 && std::memcmp(bytes.data_ptr(), magic, 4) == 0;
}

// One method of the frozen module a payload keeps, read at the input shapes a call brings. The
// module is loaded on the first read (most methods are never called at other shapes; each method
// loads its own copy), and a failed load is remembered; reads are serialized (first calls at two
// new shapes take turns while their graphs are read). Safe to call from many threads.
class frozen_graph_reader {
 public:
  // `bytes`: a 1-D uint8 CPU tensor holding a zip archive (checked here), kept, not copied.
  frozen_graph_reader(at::Tensor bytes, std::string method) : bytes_(std::move(bytes)), method_(std::move(method)) {
    if (!is_byte_string(bytes_)) {
      throw std::invalid_argument("the frozen module that the payload keeps for other input shapes should be a "
                                  "contiguous 1-D uint8 CPU tensor");
    }
    if (!looks_like_zip(bytes_)) {
      throw std::invalid_argument("the frozen module that the payload keeps for other input shapes is not a "
                                  "TorchScript archive (it does not begin as a zip file does)");
    }
  }

  // The method's program at these input shapes; std::invalid_argument with tbk_onednn's refusal
  // when it cannot run them (or the kept module cannot be read).
  program at(const std::vector<shape_t>& shapes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!load_failure_.empty()) throw std::invalid_argument(load_failure_);
    if (!module_) {
      std::stringstream in(std::string(static_cast<const char*>(bytes_.data_ptr()), static_cast<std::size_t>(bytes_.numel())));
      try {
        module_ = std::make_shared<torch::jit::Module>(torch::jit::load(in));
      } catch (const std::exception&) {
        load_failure_ = "the frozen module that the payload keeps for other input shapes cannot be read: " + read_refusal();
        throw std::invalid_argument(load_failure_);
      }
    }
    try {
      return read_method(*module_, method_, tensors_of_shapes(shapes));
    } catch (const std::exception&) {
      throw std::invalid_argument(read_refusal());
    }
  }

 private:
  at::Tensor bytes_;
  std::string method_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<torch::jit::Module> module_;
  mutable std::string load_failure_;
};

}  // namespace tbk_onednn
