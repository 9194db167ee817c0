// model_runner.hpp: a backend that runs any TorchScript model. At lowering, preprocess freezes
// the module (torch::jit::freeze: parameters become constants, batch norm folds into the
// convolution before it) and saves it into the lowered model as bytes. At load, compile reads
// those bytes and optimizes the model for inference on the machine it runs on
// (torch::jit::optimize_for_inference: MKLDNN layouts where available, which cannot be saved,
// hence this split). Execute runs the optimized model's method.
#pragma once
#include <ATen/ATen.h>
#include <tbk/backend.hpp>   // tbk::backend, tbk::rest, tbk::compile_spec
#include <tbk/register.hpp>  // TBK_REGISTER_BACKEND

#include <torch/csrc/jit/api/module.h>            // torch::jit::freeze, optimize_for_inference
#include <torch/csrc/jit/serialization/import.h>  // torch::jit::load

#include <sstream>    // std::stringstream
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

struct model_runner_handle {
  torch::jit::Module model;  // frozen and optimized for inference
  std::string method;
};

struct model_runner_compile {
  // Lowering time: the payload saved in the lowered model is the frozen module's archive.
  static c10::IValue preprocess(const torch::jit::Module& module, const tbk::compile_spec& spec) {
    torch::jit::Module copy = module.clone();
    copy.eval();
    std::vector<std::string> others;  // freeze keeps forward; the other lowered methods are named
    for (const std::string& name : spec.method_names()) {
      if (name != "forward") others.push_back(name);
    }
    std::stringstream archive;
    torch::jit::freeze(copy, others).save(archive);
    const std::string bytes = archive.str();
    return at::tensor(at::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            bytes.size()));
  }

  // Load time, once per lowered method: each handle has its own optimized copy.
  static model_runner_handle compile(const tbk::method_spec& method, const at::Tensor& archive) {
    std::stringstream in(std::string(static_cast<const char*>(archive.data_ptr()),
                                     static_cast<std::size_t>(archive.numel())));
    torch::jit::Module frozen = torch::jit::load(in);
    if (!frozen.find_method(method.name())) {
      throw std::invalid_argument("the frozen model has no method '" + method.name() + "'");
    }
    std::vector<std::string> others;
    if (method.name() != "forward") others.push_back(method.name());
    return {torch::jit::optimize_for_inference(frozen, others), method.name()};
  }
};

struct model_runner_execute {
  // Call time: any inputs; a tuple result is returned element by element, as lowered methods
  // unpack it.
  static c10::impl::GenericList execute(const model_runner_handle& handle,
                                        tbk::rest<c10::IValue> inputs) {
    c10::IValue out = handle.model.get_method(handle.method)(inputs.to_vector());
    c10::impl::GenericList outputs(c10::AnyType::get());
    if (out.isTuple()) {
      for (const c10::IValue& element : out.toTupleRef().elements()) outputs.push_back(element);
    } else {
      outputs.push_back(std::move(out));
    }
    return outputs;
  }
};

using model_runner_backend = tbk::backend<model_runner_compile, model_runner_execute>;
