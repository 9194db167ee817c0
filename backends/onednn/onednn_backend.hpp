// onednn_backend.hpp: tbk_onednn, a backend that runs fp32 CNNs and MLPs with oneDNN, as tbk
// policies: supports (which nodes tbk::partition may give it), preprocess (freeze, fold, read the
// graph with the example inputs' shapes, encode the program), compile (decode and check the
// payload, then build the primitives), execute (run them; thread-safe).
#pragma once
#include "any_batch.hpp"
#include "engine.hpp"
#include "operators.hpp"
#include "program.hpp"

#include <tbk/backend.hpp>  // tbk::backend, tbk::rest, tbk::method_spec, tbk::compile_spec

#include <torch/csrc/jit/api/module.h>                        // torch::jit::Module
#include <torch/csrc/jit/passes/constant_propagation.h>       // ConstantPropagation
#include <torch/csrc/jit/passes/dead_code_elimination.h>      // EliminateDeadCode
#include <torch/csrc/jit/passes/freeze_module.h>              // freeze_module
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h> // OptimizeFrozenGraph
#include <torch/csrc/jit/passes/peephole.h>                    // PeepholeOptimize
#include <torch/csrc/jit/passes/remove_mutation.h>            // RemoveTensorMutation
#include <torch/csrc/jit/passes/shape_analysis.h>             // PropagateInputShapes

#include <cstdio>     // std::fputs
#include <cstdlib>    // std::getenv
#include <cstring>    // std::memcpy
#include <memory>     // std::shared_ptr
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

using method_handle = std::shared_ptr<const batched_method>;

struct onednn_compile {
  // Which nodes tbk::partition may give it, and why not the others (the report shows it).
  static tbk::node_support supports(const torch::jit::Node& node) {
    const std::string why = node_refusal(node);
    return why.empty() ? tbk::supported() : tbk::unsupported(why);
  }

  // Lowering time: the module frozen (its parameters become constants, batch norms fold into
  // convolutions), each method's graph read into a program; the payload maps each method to its
  // encoded program (a uint8 tensor), which the lite interpreter keeps as it is, and, for a method
  // that takes any batch, "<method>:batch_places" to where its program holds the batch size.
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    torch::jit::Module copy = module.clone();
    copy.eval();
    std::vector<std::string> preserved;
    for (const std::string& name : spec.method_names()) {
      if (name != "forward") preserved.push_back(name);
    }
    torch::jit::Module frozen = torch::jit::freeze_module(copy, preserved);
    c10::impl::GenericDict payload(c10::StringType::get(), c10::TensorType::get());
    for (const std::string& name : spec.method_names()) {
      const std::vector<at::Tensor> examples = spec.method(name).example_tensors();
      const program read = program_of(frozen, name, examples);
      payload.insert(name, bytes_tensor(encode(read)));
      // read again at one more sample: does the method take any batch? (any_batch.hpp)
      if (!batch_of(read.input_shapes)) continue;
      std::vector<at::Tensor> more;
      for (const at::Tensor& x : examples) more.push_back(at::cat({x, x.narrow(0, 0, 1)}));
      try {
        if (auto places = batch_places_of(read, program_of(frozen, name, more))) {
          payload.insert(name + batch_places_key, places_tensor(*places));
        }
      } catch (const std::exception&) {
        // read at N + 1, the method fails (a shape check that wants batch N): it takes batch N only
      }
    }
    return payload;
  }

  // The program of method `name` of the frozen module, read with `examples`' shapes.
  static program program_of(const torch::jit::Module& frozen, const std::string& name,
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

  static at::Tensor bytes_tensor(const std::vector<uint8_t>& bytes) {
    at::Tensor blob = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
    std::memcpy(blob.data_ptr(), bytes.data(), bytes.size());
    return blob;
  }

  // Beside method m's program, the payload key of its batch sizes' places: "m:batch_places".
  static constexpr const char* batch_places_key = ":batch_places";

  // Load time: the method's program, decoded and checked in full, then built into primitives.
  static method_handle compile(const tbk::method_spec& method, const c10::IValue& payload) {
    if (!payload.isGenericDict()) {
      throw std::invalid_argument("the payload is a " + std::string(payload.tagKind()) +
                                  ", not the Dict[str, Tensor] tbk_onednn writes");
    }
    const auto dict = payload.toGenericDict();
    auto found = dict.find(method.name());
    if (found == dict.end()) throw std::invalid_argument("the payload has no program for method " + method.name());
    if (!found->value().isTensor()) throw std::invalid_argument("the program of method " + method.name() + " is not a tensor");
    const at::Tensor blob = found->value().toTensor();
    if (blob.scalar_type() != at::kByte || blob.dim() != 1 || !blob.is_contiguous() || !blob.device().is_cpu()) {
      throw std::invalid_argument("the program of method " + method.name() +
                                  " should be a contiguous 1-D uint8 CPU tensor");
    }
    program decoded;
    try {
      decoded = decode(blob.data_ptr<uint8_t>(), static_cast<std::size_t>(blob.numel()));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("malformed payload for method " + method.name() + ": " + e.what());
    }
    std::optional<batch_places> places;
    if (auto p = dict.find(method.name() + batch_places_key); p != dict.end() && p->value().isTensor()) {
      places = places_from(p->value().toTensor(), decoded, method.name());
    }
    compile_options options{method.name(), method.get<std::string>("implementation", "")};
    const int64_t cache = method.get<int64_t>("batch_cache", static_cast<int64_t>(default_batch_cache));
    if (cache < 0) throw std::invalid_argument("option 'batch_cache' must be 0 or more, got " + std::to_string(cache));
    auto compiled = std::make_shared<const batched_method>(std::move(decoded), std::move(options), std::move(places),
                                                           static_cast<std::size_t>(cache));
    print_summary_if_verbose(method.name(), compiled->example());
    return compiled;
  }

  // With TBK_ONEDNN_VERBOSE set (and not "0"), each compiled method's steps and the oneDNN
  // implementation of each, on stderr: "tbk_onednn.forward: step 2: convolution [1, 3, 64, 64]
  // -> [1, 16, 32, 32] + eltwise_relu: jit:avx2", after a line naming the ISA oneDNN uses.
  static void print_summary_if_verbose(const std::string& method, const compiled_method& compiled) {
    const char* verbose = std::getenv("TBK_ONEDNN_VERBOSE");
    if (verbose == nullptr || std::string(verbose).empty() || std::string(verbose) == "0") return;
    std::string text = "tbk_onednn." + method + ": " + std::to_string(compiled.steps()) + " steps at ISA " +
                       detail::effective_isa() + "\n";
    for (const std::string& line : compiled.summary()) text += "tbk_onednn." + method + ": " + line + "\n";
    std::fputs(text.c_str(), stderr);
  }
};

struct onednn_execute {
  static std::vector<at::Tensor> execute(const method_handle& method, tbk::rest<at::Tensor> inputs) {
    return method->run(inputs.to_vector());
  }
};

}  // namespace tbk_onednn

using onednn_backend = tbk::backend<tbk_onednn::onednn_compile, tbk_onednn::onednn_execute>;
