// tbk/testing/kit.hpp: the conformance kit's configuration: tbk::testing::backend_kit, whose
// chained setters fill a kit_settings (the module, spec, inputs, references, tolerance and the
// checks' parameters). The checks read the settings: tbk/testing/checks.hpp, over the scaffold of
// tbk/testing/scaffold.hpp; TBK_TEST_BACKEND registers them (tbk/testing/registration.hpp).
#pragma once

#include <tbk/compile_spec.hpp>
#include <tbk/partition.hpp>       // partition_options
#include <tbk/testing/compare.hpp>  // kit_tolerance

#include <torch/script.h>  // torch::jit::Module

#include <functional>  // std::function
#include <map>         // std::map
#include <string>      // std::string
#include <utility>     // std::move
#include <vector>      // std::vector

namespace tbk::testing {


// Makes the inputs of one call; called once per call site (and once per thread), so random
// inputs give each thread its own values.
using inputs_function = std::function<std::vector<c10::IValue>()>;
// What the method should return for these inputs.
using reference_function = std::function<c10::IValue(const std::vector<c10::IValue>&)>;
// Makes the scripted module to lower; called afresh for each lowering.
using module_function = std::function<torch::jit::Module()>;

// What the kit checks a backend with (backend_kit's setters fill it; each field's default is
// the setter's).
struct kit_settings {
  std::string backend;
  module_function make_module;
  c10::impl::GenericDict spec = tbk::spec().method("forward").dict();
  inputs_function default_inputs;
  std::map<std::string, inputs_function> inputs;
  reference_function default_reference;
  std::map<std::string, reference_function> references;
  kit_tolerance tolerance;
  int threads = 4, calls_each = 200;
  std::function<void()> make_unavailable, restore_available;
  std::string unavailable_reason;
  int memory_cycles = 200;
  double memory_bound_mb = 2.0;
  // The partition check (backends with a supports hook): these options, with the methods
  // checked; example_inputs default to each method's inputs, freeze to true (the module in eval
  // mode), so that weights are constants.
  partition_options partitioning = default_partitioning();
  bool partitioning_given = false;  // .partitioning(...) was called: run the check in any case

  static partition_options default_partitioning() {
    partition_options options;
    options.freeze = true;
    return options;
  }
};

// The configuration of one backend under test. TBK_TEST_BACKEND makes one and registers a
// doctest case per check; each setter returns the kit, so they chain.
class backend_kit {
 public:
  explicit backend_kit(std::string backend) { settings_.backend = std::move(backend); }

  // The module to lower: the source of its TorchScript methods (a module of class "M"), or a
  // function that makes it. Default: none (the checks fail and say so).
  backend_kit& module(std::string torchscript_source) {
    settings_.make_module = [source = std::move(torchscript_source)] {
      torch::jit::Module m("M");
      m.define(source);
      return m;
    };
    return *this;
  }
  backend_kit& module(module_function make) {
    settings_.make_module = std::move(make);
    return *this;
  }

  // The compile spec to lower with; its methods are the ones checked. Default: forward, no options.
  backend_kit& spec(const spec_builder& spec) { return this->spec(spec.dict()); }
  backend_kit& spec(c10::impl::GenericDict spec) {
    settings_.spec = std::move(spec);
    return *this;
  }

  // The inputs of every method, or of one.
  backend_kit& inputs(inputs_function make) {
    settings_.default_inputs = std::move(make);
    return *this;
  }
  backend_kit& inputs(const std::string& method, inputs_function make) {
    settings_.inputs[method] = std::move(make);
    return *this;
  }

  // What every method (or one) should return: a callable taking the inputs and returning a
  // Tensor, a tuple, a vector or an IValue. Default: the unlowered module's own result.
  template <class Reference>
  backend_kit& reference(Reference reference) {
    settings_.default_reference = to_reference_function(std::move(reference));
    return *this;
  }
  template <class Reference>
  backend_kit& reference(const std::string& method, Reference reference) {
    settings_.references[method] = to_reference_function(std::move(reference));
    return *this;
  }

  // How close floating-point results must be to the reference. Default: rtol 1e-5, atol 1e-8.
  backend_kit& tolerance(double rtol, double atol) {
    settings_.tolerance = {rtol, atol};
    return *this;
  }

  // The concurrency check: `threads` threads, each making `calls_each` calls on one lowered
  // module. Default: 4 x 200.
  backend_kit& threads(int threads, int calls_each) {
    settings_.threads = threads;
    settings_.calls_each = calls_each;
    return *this;
  }

  // How to make the backend unavailable and available again, and a part of the reason it must
  // then give. Without it, the availability check is skipped (and says so).
  backend_kit& unavailable_when(std::function<void()> make_unavailable, std::function<void()> restore,
                                std::string reason) {
    settings_.make_unavailable = std::move(make_unavailable);
    settings_.restore_available = std::move(restore);
    settings_.unavailable_reason = std::move(reason);
    return *this;
  }

  // The memory check: `cycles` cycles of lower, save, load and call (after 30 warm-up cycles)
  // may grow resident memory by at most `bound_megabytes`. Default: 200 cycles, 2 MB.
  backend_kit& memory(int cycles, double bound_megabytes) {
    settings_.memory_cycles = cycles;
    settings_.memory_bound_mb = bound_megabytes;
    return *this;
  }

  // The partition check's options (tbk::partition_options; the methods are the kit's). Default:
  // freeze, each method's inputs as its example inputs.
  backend_kit& partitioning(partition_options options) {
    settings_.partitioning = std::move(options);
    settings_.partitioning_given = true;
    return *this;
  }

  const std::string& backend() const { return settings_.backend; }
  const kit_settings& settings() const { return settings_; }

 private:
  template <class Reference>
  static reference_function to_reference_function(Reference reference) {
    return [reference = std::move(reference)](const std::vector<c10::IValue>& inputs) {
      return c10::IValue(reference(inputs));
    };
  }

  kit_settings settings_;
};

}  // namespace tbk::testing
