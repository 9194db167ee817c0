// onednn_backend.hpp: tbk_onednn, a backend that runs fp32 CNNs and MLPs with oneDNN, as tbk
// policies: supports (which nodes tbk::partition may give it), preprocess (freeze, fold, read the
// graph with the example inputs' shapes, encode the program; learn whether the method takes other
// shapes, keeping the frozen module for them), compile (decode and check the payload, then build
// the primitives), execute (run them, at other shapes too; thread-safe).
#pragma once
#include "any_shape.hpp"
#include "engine.hpp"
#include "frozen_graph.hpp"
#include "host_memory.hpp"  // return_freed_memory
#include "operators.hpp"
#include "payload_checksums.hpp"  // add_checksums, check_checksums
#include "precision.hpp"          // precision_from_option, precision_name
#include "program.hpp"

#include <tbk/backend.hpp>  // tbk::backend, tbk::rest, tbk::method_spec, tbk::compile_spec

#include <torch/csrc/jit/api/module.h>                        // torch::jit::Module
#include <torch/csrc/jit/passes/freeze_module.h>              // freeze_module

#include <cstdio>     // std::fputs
#include <cstdlib>    // std::getenv
#include <cstring>    // std::memcpy
#include <memory>     // std::shared_ptr, std::make_shared
#include <optional>   // std::optional
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

using method_handle = std::shared_ptr<const any_shape_method>;

struct onednn_compile {
  // Which nodes tbk::partition may give it, and why not the others (the report shows it).
  static tbk::node_support supports(const torch::jit::Node& node) {
    const std::string why = node_refusal(node);
    return why.empty() ? tbk::supported() : tbk::unsupported(why);
  }

  // Lowering time: the module frozen (its parameters become constants, batch norms fold into
  // convolutions), each method's graph read into a program; the payload maps each method to its
  // encoded program (a uint8 tensor), which the lite interpreter keeps as it is, and, for a method
  // that takes any batch, "<method>:batch_places" to where its program holds the batch size. For
  // other input shapes (any_shape.hpp), "<method>:other_shapes" is a text: empty when the method
  // is read again at a call's shapes from the frozen module kept once as ":frozen_module" (with
  // the method option "dynamic_shapes", true by default unless tbk::static_shapes_option is set),
  // else why it takes no other shapes.
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    // a misspelled option (or precision) fails here too, at lowering: an ExecuTorch program compiles only when
    // it is loaded, maybe on another machine
    for (const std::string& name : spec.method_names()) {
      try {
        check_options(spec.method(name));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("method " + name + ": " + e.what());
      }
    }
    torch::jit::Module copy = module.clone();
    copy.eval();
    for (const std::string& name : spec.method_names()) {  // int8 weights stay int8 through freezing
      operators::quantize::keep_quantized_weights(*copy.get_method(name).graph());
    }
    std::vector<std::string> preserved;
    for (const std::string& name : spec.method_names()) {
      if (name != "forward") preserved.push_back(name);
    }
    torch::jit::Module frozen = torch::jit::freeze_module(copy, preserved);
    c10::impl::GenericDict payload(c10::StringType::get(), c10::TensorType::get());
    bool keep_module = false;
    for (const std::string& name : spec.method_names()) {
      const std::vector<at::Tensor> examples = spec.method(name).example_tensors();
      const program read = read_method_named(frozen, name, examples);
      payload.insert(name, bytes_tensor(encode(read)));
      // read again at one more sample: does the method take any batch? (any_shape.hpp)
      bool batch_needs_graph = false;  // read at N + 1, but not by setting the batch's places
      if (batch_of(read.input_shapes)) {
        std::vector<at::Tensor> more;
        for (const at::Tensor& x : examples) more.push_back(at::cat({x, x.narrow(0, 0, 1)}));
        try {
          const program at_more = read_method(frozen, name, more);
          // (a batch that decides something, `if x.size(0) == 1`, is read again, never set in places)
          auto places = batch_places_of(read, at_more);
          if (places && !batch_size_decides(*frozen.get_method(name).graph())) {
            payload.insert(name + batch_places_key, places_tensor(*places));
          } else {
            batch_needs_graph = true;
          }
        } catch (const std::exception&) {
          // read at N + 1, the method fails (a shape check that wants batch N): it takes batch N only
        }
      }
      const std::string why_fixed = other_shapes_refusal(frozen, name, examples, spec.method(name), batch_needs_graph);
      keep_module = keep_module || why_fixed.empty();
      payload.insert(name + other_shapes_key, text_tensor(why_fixed));
    }
    if (keep_module) keep_frozen_module(payload, frozen, spec.method_names());
    add_checksums(payload);  // last: every part is in (payload_checksums.hpp)
    return payload;
  }

  // The frozen module into the payload; when it cannot be saved (an attribute TorchScript cannot
  // serialize), each method's note says so instead and no method is read again at other shapes.
  static void keep_frozen_module(c10::impl::GenericDict& payload, const torch::jit::Module& frozen,
                                 const std::vector<std::string>& methods) {
    try {
      const std::string bytes = module_bytes(frozen);
      payload.insert(frozen_module_key, bytes_tensor({bytes.begin(), bytes.end()}));
    } catch (const std::exception&) {
      const std::string why = "its frozen module cannot be saved to read it again: " + read_refusal();
      for (const std::string& name : methods) {
        if (text_of(payload.at(name + other_shapes_key).toTensor(), name).empty()) {
          payload.insert_or_assign(name + other_shapes_key, text_tensor(why));
        }
      }
    }
  }

  // read_method, its refusal naming the method ("method forward: tbk_onednn cannot run ...").
  static program read_method_named(const torch::jit::Module& frozen, const std::string& name,
                                   const std::vector<at::Tensor>& examples) {
    try {
      return read_method(frozen, name, examples);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("method " + name + ": " + e.what());
    }
  }

  // Why method `name` cannot be read again at other input shapes at call time (empty when it
  // can): the runtime calls it at its example's shapes only, or the option "dynamic_shapes" is
  // false, or tbk_onednn cannot run it at the trial shapes (frozen_graph.hpp: spatial_probes) and
  // no other batch needs the graph either (`batch_needs_graph`: read at one more sample, it
  // differs otherwise than in the batch's places, or its graph decides by the batch size).
  static std::string other_shapes_refusal(const torch::jit::Module& frozen, const std::string& name,
                                          const std::vector<at::Tensor>& examples, const tbk::method_spec& method,
                                          bool batch_needs_graph) {
    if (method.get<bool>(tbk::static_shapes_option, false)) {  // an ExecuTorch program's, say
      return "it was lowered for a runtime that calls it at its example inputs' shapes only";
    }
    if (!method.get<bool>("dynamic_shapes", true)) return "it was lowered with the option dynamic_shapes false";
    const auto dynamic = method.dynamic_dims();  // the runtime's word on which dimensions change
    const std::vector<std::vector<shape_t>> probes = spatial_probes(examples, dynamic);
    if (probes.empty()) {
      if (batch_needs_graph) return "";
      return dynamic ? "the runtime changes none of its inputs' dimensions" : "its inputs have no dimensions after N and C";
    }
    std::string first_refusal;
    for (const std::vector<shape_t>& probe : probes) {
      try {
        read_method(frozen, name, tensors_of_shapes(probe));
        return "";
      } catch (const std::exception&) {  // a refusal, or a pass of PyTorch's failing at these shapes
        if (!first_refusal.empty()) continue;
        std::string shapes;
        for (const shape_t& s : probe) shapes += (shapes.empty() ? "" : ", ") + shape_text(s);
        first_refusal = "read at input shapes " + shapes + " when it was lowered, " + read_refusal();
      }
    }
    return batch_needs_graph ? "" : first_refusal;  // it takes other batches read again, if no other sizes
  }

  static at::Tensor bytes_tensor(const std::vector<uint8_t>& bytes) {
    at::Tensor blob = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
    if (!bytes.empty()) std::memcpy(blob.data_ptr(), bytes.data(), bytes.size());
    return blob;
  }
  static at::Tensor text_tensor(const std::string& text) { return bytes_tensor({text.begin(), text.end()}); }

  // A text tensor's text (a 1-D uint8 CPU tensor, as text_tensor writes it).
  static std::string text_of(const at::Tensor& t, const std::string& what) {
    if (!is_byte_string(t)) {
      throw std::invalid_argument(what + " should be a contiguous 1-D uint8 CPU tensor");
    }
    const char* text = static_cast<const char*>(t.data_ptr());
    return std::string(text, text + t.numel());
  }

  // Payload keys beside method m's program: where its program holds the batch size
  // ("m:batch_places"), whether it is read again at other shapes ("m:other_shapes"), and the
  // frozen module it is read from (one per payload; no method's name has a colon).
  static constexpr const char* batch_places_key = ":batch_places";
  static constexpr const char* other_shapes_key = ":other_shapes";
  static constexpr const char* frozen_module_key = ":frozen_module";

  // The method options tbk_onednn reads, besides tbk's own (example inputs, static shapes): an
  // option of another name is a mistake (a misspelled dynamic_shapes would be ignored), refused;
  // so is a precision other than "fp32", "bf16" and "auto".
  static void check_options(const tbk::method_spec& method) {
    for (const std::string& key : method.keys()) {
      if (key == "implementation" || key == "precision" || key == "dynamic_shapes" || key == "shape_cache" ||
          key == "batch_cache" ||
          key == tbk::example_inputs_option || key == tbk::static_shapes_option || key == tbk::dynamic_dims_option ||
          key == tbk::region_option) {
        continue;
      }
      throw std::invalid_argument("unknown option '" + key + "'; tbk_onednn's method options are implementation "
                                  "(str), precision (\"fp32\", \"bf16\" or \"auto\"), dynamic_shapes (bool) and "
                                  "shape_cache (int)");
    }
    if (method.contains("precision")) precision_from_option(method.get<std::string>("precision"));
  }

  // Load time: the method's program, decoded and checked in full, then built into primitives.
  static method_handle compile(const tbk::method_spec& method, const c10::IValue& payload) {
    check_options(method);
    if (!payload.isGenericDict()) {
      throw std::invalid_argument("the payload is a " + std::string(payload.tagKind()) +
                                  ", not the Dict[str, Tensor] tbk_onednn writes");
    }
    const auto dict = payload.toGenericDict();
    check_checksums(dict);  // before any part is read: a damaged payload is refused, its part named
    auto found = dict.find(method.name());
    if (found == dict.end()) throw std::invalid_argument("the payload has no program for method " + method.name());
    if (!found->value().isTensor()) throw std::invalid_argument("the program of method " + method.name() + " is not a tensor");
    const at::Tensor blob = found->value().toTensor();
    if (!is_byte_string(blob)) {
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
    shape_reader reader;
    std::string fixed_reason = "it was lowered by a tbk_onednn that read methods at their example's shapes only "
                               "(lower it again)";
    if (auto o = dict.find(method.name() + other_shapes_key); o != dict.end() && o->value().isTensor()) {
      fixed_reason = text_of(o->value().toTensor(), "the other shapes' note of method " + method.name());
      auto module = dict.find(frozen_module_key);
      if (fixed_reason.empty() && (module == dict.end() || !module->value().isTensor())) {
        throw std::invalid_argument("the payload says method " + method.name() +
                                    " is read again at other input shapes, but it keeps no frozen module");
      }
      if (fixed_reason.empty()) {
        auto graph = std::make_shared<const frozen_graph_reader>(module->value().toTensor(), method.name());
        reader = [graph](const std::vector<shape_t>& shapes) { return graph->at(shapes); };
      }
    }
    compile_options options{method.name(), method.get<std::string>("implementation", ""),
                            precision_from_option(method.get<std::string>("precision", "fp32"))};
    // "batch_cache": this option's name before other shapes than the batch were taken
    const char* cache_option = method.contains("shape_cache") || !method.contains("batch_cache") ? "shape_cache" : "batch_cache";
    const int64_t cache = method.get<int64_t>(cache_option, static_cast<int64_t>(default_shape_cache));
    if (cache < 0) {
      throw std::invalid_argument("option '" + std::string(cache_option) + "' must be 0 or more, got " + std::to_string(cache));
    }
    auto compiled = std::make_shared<const any_shape_method>(std::move(decoded), std::move(options), std::move(places),
                                                             std::move(reader), std::move(fixed_reason),
                                                             static_cast<std::size_t>(cache));
    print_summary_if_verbose(method.name(), compiled->example());
    detail::return_freed_memory();  // the decoded weights, packed now (host_memory.hpp)
    return compiled;
  }

  // With TBK_ONEDNN_VERBOSE set (and not "0"), each compiled method's steps and the oneDNN
  // implementation of each, on stderr: "tbk_onednn.forward: step 2: convolution [1, 3, 64, 64]
  // -> [1, 16, 32, 32] + eltwise_relu, f32: jit:avx2", after a line naming the precision asked
  // for and the ISA oneDNN uses.
  static void print_summary_if_verbose(const std::string& method, const compiled_method& compiled) {
    const char* verbose = std::getenv("TBK_ONEDNN_VERBOSE");
    if (verbose == nullptr || std::string(verbose).empty() || std::string(verbose) == "0") return;
    std::string text = "tbk_onednn." + method + ": precision " + precision_name(compiled.compute()) + ", " +
                       std::to_string(compiled.steps()) + " steps at ISA " + detail::effective_isa() + "\n";
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
