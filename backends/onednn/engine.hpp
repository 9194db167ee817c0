// engine.hpp: a checked tbk_onednn program as oneDNN primitives, built once per method at load
// time and run at call time: the fused operations of fusion.hpp, each built by its operator
// family (operators.hpp; unfused when a fusion has only oneDNN's reference implementation), the
// outputs reordered into plain tensors, intermediate memory planned by lifetime
// (memory_plan.hpp) and kept per concurrent caller, so calls on one method from many threads
// never share scratch.
#pragma once
#include "fusion.hpp"
#include "host_memory.hpp"
#include "implementation.hpp"
#include "memory_plan.hpp"
#include "method_builder.hpp"
#include "operators.hpp"
#include "program.hpp"

#include <ATen/ATen.h>
#include <dnnl.hpp>
#include <dnnl_debug.h>  // dnnl_status2str

#include <algorithm>      // std::none_of
#include <cstdint>        // uint32_t
#include <memory>         // std::unique_ptr
#include <mutex>          // std::mutex, std::lock_guard
#include <stdexcept>      // std::invalid_argument, std::runtime_error
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::move, std::pair
#include <vector>         // std::vector

namespace tbk_onednn {

// One method, compiled: run() is safe to call from many threads at once.
class compiled_method {
 public:
  explicit compiled_method(program p, compile_options options = {})
      : program_(std::move(p)), options_(std::move(options)) {
    shapes_ = infer_shapes(program_);
    detail::method_builder builder(program_, shapes_, options_, built_);
    for (const detail::fused_op& f : detail::fuse(program_, shapes_, native_int8())) build(builder, f);
    for (uint32_t v : program_.outputs) {
      builder.add_output(outputs_.size(), v);
      outputs_.push_back(v);
    }
    builder.finish();
    const auto& implementations = built_.implementations;
    if (!options_.preferred_implementation.empty() &&
        std::none_of(implementations.begin(), implementations.end(), [&](const std::string& i) { return builder.preferred(i); })) {
      detail::warn_preference_unmatched(options_.method, options_.preferred_implementation, implementations);
    }
    if (built_.fp32_instead > 0) {
      detail::warn_fp32_instead(options_.method, options_.compute, built_.fp32_instead, built_.weighted_steps,
                                detail::effective_isa());
    }
    if (built_.int8_as_fp32 > 0) detail::warn_int8_as_fp32(options_.method, built_.int8_as_fp32, detail::effective_isa());
    arena_bytes_ = detail::plan_memory(built_.slots);
    idle_.push_back(make_arena());  // the first caller finds one ready
  }

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const {
    const std::vector<at::Tensor> contiguous = checked_inputs(inputs);
    std::vector<at::Tensor> results;
    for (uint32_t v : outputs_) results.push_back(at::empty(shapes_[v], at::kFloat));
    std::unique_ptr<arena> a = acquire();
    for (auto& [k, memory] : a->inputs) memory.set_data_handle(contiguous[k].data_ptr());
    for (auto& [k, memory] : a->outputs) memory.set_data_handle(results[k].data_ptr());
    for (std::size_t s = 0; s < steps(); ++s) {
      try {
        built_.primitives[s].execute(a->stream, a->args[s]);
      } catch (const dnnl::error& e) {
        release(std::move(a));
        // summary: "step 2: inner_product [1, 784] -> [1, 512] + eltwise_relu, f32: x64:gemm:jit"
        throw std::runtime_error("oneDNN could not run " + built_.summary[s] + " (of " + std::to_string(steps()) +
                                 " steps): " + e.what() + ", status " + dnnl_status2str(e.status));
      }
    }
    a->stream.wait();
    release(std::move(a));
    return results;
  }

  std::size_t steps() const { return built_.primitives.size(); }

  // One line per step, in order: "step 3: convolution [1, 64, 56, 56] -> [1, 64, 56, 56] +
  // eltwise_relu, f32: jit:avx2" (the primitive, what it computes, the data types it reads and
  // writes, the implementation oneDNN runs).
  const std::vector<std::string>& summary() const { return built_.summary; }
  // The precision the method's convolutions and linear layers were asked to compute in (steps
  // oneDNN runs in bf16 with its reference implementation only are fp32: the summary says which).
  precision compute() const { return options_.compute; }
  std::size_t scratch_bytes() const { return arena_bytes_ + built_.scratchpad_bytes; }

 private:
  // The memory one caller runs the steps with.
  struct arena {
    dnnl::stream stream{cpu_engine()};
    detail::host_buffer buffer;
    std::vector<std::unordered_map<int, dnnl::memory>> args;
    std::vector<std::pair<std::size_t, dnnl::memory>> inputs, outputs;
  };

  // A fused operation's steps, or, when its fusion has only the reference implementation, the
  // steps of each of its operations.
  void build(detail::method_builder& builder, const detail::fused_op& f) {
    if (detail::build_step(builder, f)) return;
    const uint32_t inputs = static_cast<uint32_t>(program_.input_shapes.size());
    detail::build_step(builder, {f.op, {}, {}, static_cast<uint32_t>(inputs + f.op)});
    for (std::size_t j : f.joined) detail::build_step(builder, {j, {}, {}, static_cast<uint32_t>(inputs + j)});
  }

  // The inputs as float32 CPU tensors of the compiled shapes, contiguous; an error naming the
  // first that is not.
  std::vector<at::Tensor> checked_inputs(const std::vector<at::Tensor>& inputs) const {
    if (inputs.size() != program_.input_shapes.size()) {
      throw std::invalid_argument("expected " + std::to_string(program_.input_shapes.size()) +
                                  " input tensors, got " + std::to_string(inputs.size()));
    }
    std::vector<at::Tensor> contiguous;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const at::Tensor& x = inputs[i];
      if (x.scalar_type() != at::kFloat || !x.device().is_cpu() || x.is_sparse()) {
        throw std::invalid_argument("input " + std::to_string(i) + " should be a float32 CPU tensor, got " +
                                    std::string(c10::toString(x.scalar_type())) + " on " + x.device().str());
      }
      if (x.sizes().vec() != program_.input_shapes[i]) {
        throw std::invalid_argument("input " + std::to_string(i) + " has shape " + shape_text(x.sizes().vec()) +
                                    "; this method was compiled for " + shape_text(program_.input_shapes[i]) +
                                    " (lower it with example inputs of the shape you call it with)");
      }
      contiguous.push_back(x.contiguous());
    }
    return contiguous;
  }

  std::unique_ptr<arena> make_arena() const {
    auto a = std::make_unique<arena>();
    a->buffer = detail::host_buffer((arena_bytes_ + 63) / 64 * 64 + built_.scratchpad_bytes);
    char* base = a->buffer.get();
    char* scratch = base + (arena_bytes_ + 63) / 64 * 64;
    for (std::size_t s = 0; s < steps(); ++s) {
      std::unordered_map<int, dnnl::memory> args;
      for (const auto& [arg, r] : built_.args[s]) {
        dnnl::memory m;
        switch (r.kind) {
          case detail::constant_ref: m = built_.constants[static_cast<std::size_t>(r.index)]; break;
          case detail::slot_ref:
            m = dnnl::memory(r.desc, cpu_engine(), base + built_.slots[static_cast<std::size_t>(r.index)].offset);
            break;
          case detail::input_ref:
            m = dnnl::memory(r.desc, cpu_engine(), DNNL_MEMORY_NONE);
            a->inputs.push_back({static_cast<std::size_t>(r.index), m});
            break;
          case detail::output_ref:
            m = dnnl::memory(r.desc, cpu_engine(), DNNL_MEMORY_NONE);
            a->outputs.push_back({static_cast<std::size_t>(r.index), m});
            break;
        }
        args[arg] = m;
      }
      const detail::md& scratchpad = built_.scratchpads[s];
      if (scratchpad.get_size() > 0) args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratchpad, cpu_engine(), scratch);
      a->args.push_back(std::move(args));
    }
    return a;
  }

  std::unique_ptr<arena> acquire() const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        std::unique_ptr<arena> a = std::move(idle_.back());
        idle_.pop_back();
        return a;
      }
    }
    return make_arena();
  }
  void release(std::unique_ptr<arena> a) const {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(a));
  }

  program program_;
  compile_options options_;
  std::vector<shape_t> shapes_;
  detail::built_steps built_;
  std::vector<uint32_t> outputs_;
  std::size_t arena_bytes_ = 0;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<arena>> idle_;
};

}  // namespace tbk_onednn
