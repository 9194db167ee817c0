// engine.hpp: a checked tbk_onednn program as oneDNN primitives, built once per method at load
// time, one builder per operator: the fused operations of fusion.hpp, each at the implementation
// implementation.hpp chooses, layouts chosen by oneDNN (reorders only where a primitive asks for
// another one and at the method's edges), weights reordered once, intermediate memory planned by
// lifetime and kept per concurrent caller, so calls on one method from many threads never share
// scratch.
#pragma once
#include "fusion.hpp"
#include "implementation.hpp"
#include "layouts.hpp"
#include "program.hpp"

#include <ATen/ATen.h>
#include <dnnl.hpp>
#include <dnnl_debug.h>  // dnnl_prim_kind2str, dnnl_status2str

#include <algorithm>      // std::any_of, std::max, std::none_of, std::sort
#include <cstdint>        // int64_t, uint32_t
#include <functional>     // std::function
#include <iterator>       // std::size
#include <memory>         // std::unique_ptr
#include <mutex>          // std::mutex, std::lock_guard
#include <stdexcept>      // std::invalid_argument, std::runtime_error
#include <string>         // std::string
#include <unordered_map>  // std::unordered_map
#include <utility>        // std::move, std::pair
#include <vector>         // std::vector

namespace tbk_onednn {

inline const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

namespace detail {

// Attributes that leave scratch memory to the caller (each caller brings its own).
inline dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace detail

// How a method is compiled: its name (for messages) and the compile spec option
// "implementation" (prefer oneDNN implementations whose name contains it, e.g. "gemm").
struct compile_options {
  std::string method = "forward";
  std::string preferred_implementation;
};

// One method, compiled: run() is safe to call from many threads at once.
class compiled_method {
 public:
  explicit compiled_method(program p, compile_options options = {})
      : program_(std::move(p)), options_(std::move(options)) {
    shapes_ = infer_shapes(program_);
    value_desc_.resize(shapes_.size());
    value_slot_.assign(shapes_.size(), -1);
    for (std::size_t i = 0; i < program_.input_shapes.size(); ++i) {
      value_desc_[i] = detail::plain_desc(shapes_[i]);
    }
    dnnl::stream stream(cpu_engine());
    for (const detail::fused_op& f : detail::fuse(program_, shapes_)) build(f, stream);
    for (uint32_t v : program_.outputs) {
      const detail::md plain = detail::plain_desc(shapes_[v]);
      dnnl::reorder::primitive_desc pd(cpu_engine(), value_desc_[v], cpu_engine(), plain, detail::user_scratchpad());
      add_step(dnnl::reorder(pd), pd, "output " + std::to_string(outputs_.size()) + " " + shape_text(shapes_[v]),
               {{DNNL_ARG_FROM, source(v)}, {DNNL_ARG_TO, {output_ref, plain, static_cast<int64_t>(outputs_.size())}}});
      outputs_.push_back(v);
    }
    stream.wait();
    if (!options_.preferred_implementation.empty() &&
        std::none_of(implementations_.begin(), implementations_.end(), [&](const std::string& i) { return preferred(i); })) {
      detail::warn_preference_unmatched(options_.method, options_.preferred_implementation, implementations_);
    }
    plan_memory();
    idle_.push_back(make_arena());  // the first caller finds one ready
  }

  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const {
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
    std::vector<at::Tensor> results;
    for (uint32_t v : outputs_) results.push_back(at::empty(shapes_[v], at::kFloat));
    std::unique_ptr<arena> a = acquire();
    for (auto& [k, memory] : a->inputs) memory.set_data_handle(contiguous[k].data_ptr());
    for (auto& [k, memory] : a->outputs) memory.set_data_handle(results[k].data_ptr());
    for (std::size_t s = 0; s < steps_.size(); ++s) {
      try {
        steps_[s].primitive.execute(a->stream, a->args[s]);
      } catch (const dnnl::error& e) {
        release(std::move(a));
        // summary_[s]: "step 2: inner_product [1, 784] -> [1, 512] + eltwise_relu: x64:gemm:jit"
        throw std::runtime_error("oneDNN could not run " + summary_[s] + " (of " + std::to_string(steps_.size()) +
                                 " steps): " + e.what() + ", status " + dnnl_status2str(e.status));
      }
    }
    a->stream.wait();
    release(std::move(a));
    return results;
  }

  std::size_t steps() const { return steps_.size(); }

  // One line per step, in order: "step 3: convolution [1, 64, 56, 56] -> [1, 64, 56, 56] +
  // eltwise_relu: jit:avx2" (the primitive, what it computes, the implementation oneDNN runs).
  const std::vector<std::string>& summary() const { return summary_; }
  std::size_t scratch_bytes() const { return arena_bytes_ + scratchpad_bytes_; }

 private:
  // What a primitive argument points at: a value's slot (an input, an intermediate, an output
  // tensor of the call) or a constant (weights, reordered once).
  enum ref_kind { input_ref, slot_ref, output_ref, constant_ref };
  struct ref {
    ref_kind kind;
    detail::md desc;
    int64_t index;  // input number, slot, output number, or constant number
  };
  struct step {
    dnnl::primitive primitive;
    std::vector<std::pair<int, ref>> args;
  };
  struct slot {
    std::size_t bytes, first, last, offset = 0;  // first and last step that touch it
  };
  struct arena {
    dnnl::stream stream{cpu_engine()};
    std::unique_ptr<char[]> buffer;
    std::vector<std::unordered_map<int, dnnl::memory>> args;
    std::vector<std::pair<std::size_t, dnnl::memory>> inputs, outputs;
  };

  // The reference a reader of value v uses.
  ref source(uint32_t v) {
    if (v < program_.input_shapes.size()) return {input_ref, value_desc_[v], v};
    return {slot_ref, value_desc_[v], value_slot_[v]};
  }

  // A new slot for value v (made by the next step) with layout `desc`.
  ref define(uint32_t v, const detail::md& desc) {
    value_desc_[v] = desc;
    value_slot_[v] = static_cast<int64_t>(slots_.size());
    slots_.push_back({desc.get_size(), steps_.size(), steps_.size()});
    return source(v);
  }

  // Value v in layout `wanted`: itself, or a reordered copy made by a new step.
  ref as(uint32_t v, const detail::md& wanted) {
    if (value_desc_[v] == wanted) return source(v);
    const ref from = source(v);
    dnnl::reorder::primitive_desc pd(cpu_engine(), from.desc, cpu_engine(), wanted, detail::user_scratchpad());
    const int64_t index = static_cast<int64_t>(slots_.size());
    slots_.push_back({wanted.get_size(), steps_.size(), steps_.size()});
    const ref to{slot_ref, wanted, index};
    add_step(dnnl::reorder(pd), pd, "value " + std::to_string(v) + " " + shape_text(shapes_[v]),
             {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
    return to;
  }

  int64_t constant(const dnnl::memory& m) {
    constants_.push_back(m);
    return static_cast<int64_t>(constants_.size() - 1);
  }

  // A weight as oneDNN wants it: reordered once from the payload's plain layout (and the
  // decoded copy then freed: each weight serves one operation).
  ref weight(std::size_t w, const detail::md& plain, const detail::md& wanted, dnnl::stream& stream) {
    std::vector<float>& values = program_.weights[w].values;
    dnnl::memory user(plain, cpu_engine(), values.data());
    if (wanted == plain) return {constant_ref, plain, constant(user)};
    dnnl::memory packed(wanted, cpu_engine());
    dnnl::reorder(user, packed).execute(stream, user, packed);
    stream.wait();
    std::vector<float>().swap(values);
    return {constant_ref, wanted, constant(packed)};
  }

  // A step: its primitive (built from `pd`), what it computes (for the summary and warnings), the
  // memory it reads and writes.
  void add_step(dnnl::primitive primitive, const dnnl::primitive_desc_base& pd, const std::string& what,
                std::vector<std::pair<int, ref>> args) {
    for (auto& [arg, r] : args) {
      if (r.kind == slot_ref) slots_[static_cast<std::size_t>(r.index)].last = steps_.size();
    }
    const detail::md scratchpad = pd.scratchpad_desc();
    scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad.get_size());
    scratchpads_.push_back(scratchpad);
    const std::string kind = dnnl_prim_kind2str(dnnl::convert_to_c(primitive.get_kind()));
    const std::string implementation = detail::implementation_of(pd);
    if (detail::is_reference(pd)) {
      detail::warn_reference(options_.method, kind + " " + what, implementation, preferred(implementation));
    }
    implementations_.push_back(implementation);
    summary_.push_back("step " + std::to_string(steps_.size() + 1) + ": " + kind + " " + what + ": " + implementation);
    steps_.push_back({std::move(primitive), std::move(args)});
  }

  // Whether the compile option "implementation" asked for `implementation`.
  bool preferred(const std::string& implementation) const {
    const std::string& wanted = options_.preferred_implementation;
    return !wanted.empty() && implementation.find(wanted) != std::string::npos;
  }

  // A primitive descriptor at the implementation to run (see detail::choose_implementation).
  template <class PrimitiveDesc>
  PrimitiveDesc choose(const std::function<PrimitiveDesc()>& make) const {
    return detail::choose_implementation<PrimitiveDesc>(make, options_.preferred_implementation);
  }

  // What a fused operation computes, for the summary: "[1, 64, 56, 56] -> [1, 64, 56, 56] +
  // eltwise_relu + sum".
  std::string description(const detail::fused_op& f) const {
    const operation& op = program_.ops[f.op];
    std::string text = shape_text(shapes_[op.inputs[0]]) + " -> " + shape_text(shapes_[f.result]);
    for (const detail::post_op& p : f.posts) {
      text += p.kind == detail::post_op::sum ? std::string(" + sum")
                                              : std::string(" + ") + dnnl_alg_kind2str(dnnl::convert_to_c(p.algorithm));
    }
    return text;
  }

  // The post-ops of a fused operation, and the arguments its binary post-ops read.
  dnnl::primitive_attr attributes(const detail::fused_op& f, std::vector<std::pair<int, ref>>& args) {
    dnnl::post_ops posts;
    for (std::size_t k = 0; k < f.posts.size(); ++k) {
      const detail::post_op& p = f.posts[k];
      if (p.kind == detail::post_op::eltwise) {
        posts.append_eltwise(1.f, p.algorithm, p.alpha, p.beta);
        continue;
      }
      if (p.kind == detail::post_op::sum) {
        posts.append_sum(1.f);
        continue;
      }
      ref operand = p.value >= 0 ? source(static_cast<uint32_t>(p.value)) : ref{};
      if (p.weight >= 0) {
        const auto& w = program_.weights[static_cast<std::size_t>(p.weight)];
        operand = {constant_ref, detail::plain_desc(w.shape),
                   constant(dnnl::memory(detail::plain_desc(w.shape), cpu_engine(),
                                         const_cast<float*>(w.values.data())))};
      }
      posts.append_binary(p.algorithm, operand.desc);
      args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(static_cast<int>(k)) | DNNL_ARG_SRC_1, operand});
    }
    dnnl::primitive_attr attr = detail::user_scratchpad();
    attr.set_post_ops(posts);
    return attr;
  }

  // The value a sum post-op accumulates into, or -1.
  static int64_t sum_target(const detail::fused_op& f) {
    for (const detail::post_op& p : f.posts) {
      if (p.kind == detail::post_op::sum) return p.value;
    }
    return -1;
  }

  // The destination layout: that of the value a sum post-op writes over, else oneDNN's choice.
  detail::md destination(const detail::fused_op& f, const shape_t& shape) {
    const int64_t target = sum_target(f);
    return target >= 0 ? value_desc_[static_cast<std::size_t>(target)] : detail::any_desc(shape);
  }

  // The destination argument: a new slot, or the memory of the value a sum post-op writes over.
  ref result_ref(const detail::fused_op& f, const detail::md& desc) {
    const int64_t target = sum_target(f);
    if (target < 0) return define(f.result, desc);
    value_desc_[f.result] = desc;
    value_slot_[f.result] = value_slot_[static_cast<std::size_t>(target)];
    return source(f.result);
  }

  // Whether a fused operation has only oneDNN's reference implementation: then it is built
  // again unfused (its pieces may each have a fast one).
  static bool slow_fusion(const detail::fused_op& f, const dnnl::primitive_desc_base& pd) {
    return !f.posts.empty() && detail::is_reference(pd);
  }

  void build_unfused(const detail::fused_op& f, dnnl::stream& stream) {
    const uint32_t inputs = static_cast<uint32_t>(program_.input_shapes.size());
    build({f.op, {}, {}, static_cast<uint32_t>(inputs + f.op)}, stream);
    for (std::size_t j : f.joined) build({j, {}, {}, static_cast<uint32_t>(inputs + j)}, stream);
  }

  // The descriptor `make(layout)` gives for the layout value v has, or, when that has only the
  // reference implementation, for the first of detail::fallbacks that has another (a
  // reorder step then makes v in it: see as()); with the layout it is for.
  template <class PrimitiveDesc>
  std::pair<PrimitiveDesc, detail::md> with_input_layout(uint32_t v,
                                                         const std::function<PrimitiveDesc(const detail::md&)>& make) {
    PrimitiveDesc pd = make(value_desc_[v]);
    if (!detail::is_reference(pd)) return {pd, value_desc_[v]};
    for (detail::fallback kind : detail::fallbacks) {
      const detail::md layout = detail::fallback_layout(shapes_[v], kind);
      if (layout.is_zero()) continue;
      PrimitiveDesc other = make(layout);
      if (!detail::is_reference(other)) return {other, layout};
    }
    return {pd, value_desc_[v]};
  }

  // A convolution's or linear operation's bias as the payload has it, or none (a zero descriptor).
  detail::md bias_desc(const operation& op) const {
    return op.weights.size() == 2 ? detail::plain_desc(program_.weights[op.weights[1]].shape) : detail::md();
  }

  // The step of a convolution or linear operation (its descriptor `d` made, with activations in
  // oneDNN's choice of layout): its implementation (choose; built unfused when the fusion has only
  // the reference one), its input in the layout it asks for, its weights reordered once, its bias.
  template <class Primitive>
  void weighted_step(const detail::fused_op& f, const typename Primitive::desc& d, const dnnl::primitive_attr& attr,
                     const detail::md& w_plain, std::vector<std::pair<int, ref>> args, dnnl::stream& stream) {
    using primitive_desc = typename Primitive::primitive_desc;
    const operation& op = program_.ops[f.op];
    const primitive_desc pd = choose<primitive_desc>([&] { return primitive_desc(d, attr, cpu_engine()); });
    if (slow_fusion(f, pd)) return build_unfused(f, stream);
    args.push_back({DNNL_ARG_SRC, as(op.inputs[0], pd.src_desc())});
    args.push_back({DNNL_ARG_WEIGHTS, weight(op.weights[0], w_plain, pd.weights_desc(), stream)});
    if (op.weights.size() == 2) args.push_back({DNNL_ARG_BIAS, weight(op.weights[1], bias_desc(op), bias_desc(op), stream)});
    args.push_back({DNNL_ARG_DST, result_ref(f, pd.dst_desc())});
    add_step(Primitive(pd), pd, description(f), std::move(args));
  }

  // The step(s) of one fused operation, by its operator: the dispatch.
  void build(const detail::fused_op& f, dnnl::stream& stream) {
    switch (program_.ops[f.op].kind) {
      case op_kind::conv2d: return build_conv2d(f, stream);
      case op_kind::linear: return build_linear(f, stream);
      case op_kind::binary: return build_binary(f, stream);
      case op_kind::eltwise: return build_eltwise(f);
      case op_kind::pool: return build_pool(f);
      case op_kind::reshape: return build_reshape(f);
      case op_kind::cat: return build_cat(f);
      case op_kind::softmax: return build_softmax(f);
    }
  }

  void build_conv2d(const detail::fused_op& f, dnnl::stream& stream) {
    const operation& op = program_.ops[f.op];
    const shape_t& w = program_.weights[op.weights[0]].shape;
    const int64_t groups = op.ints[6];
    const shape_t wdims = groups == 1 ? w : shape_t{groups, w[0] / groups, w[1], w[2], w[3]};
    std::vector<std::pair<int, ref>> args;
    const dnnl::primitive_attr attr = attributes(f, args);
    // activations in oneDNN's choice of layout (docs/onednn.md, "On every CPU")
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, detail::any_desc(shapes_[op.inputs[0]]),
        detail::any_desc(wdims), bias_desc(op), destination(f, shapes_[f.result]), {op.ints[0], op.ints[1]},
        {op.ints[4] - 1, op.ints[5] - 1}, {op.ints[2], op.ints[3]}, {op.ints[2], op.ints[3]});
    weighted_step<dnnl::convolution_forward>(f, d, attr, detail::plain_desc(wdims), std::move(args), stream);
  }

  void build_linear(const detail::fused_op& f, dnnl::stream& stream) {
    const operation& op = program_.ops[f.op];
    const shape_t& w = program_.weights[op.weights[0]].shape;
    std::vector<std::pair<int, ref>> args;
    const dnnl::primitive_attr attr = attributes(f, args);
    const dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, detail::any_desc(shapes_[op.inputs[0]]),
                                              detail::any_desc(w), bias_desc(op), destination(f, shapes_[f.result]));
    weighted_step<dnnl::inner_product_forward>(f, d, attr, detail::plain_desc(w), std::move(args), stream);
  }

  // a OP b: b a value, or a constant (a weight, plain). When a's layout has only the reference
  // implementation, a is reordered into a fallback layout; a value b of a's shape follows it, a
  // broadcast value b goes plain, a constant b stays as the payload has it (plain).
  void build_binary(const detail::fused_op& f, dnnl::stream& stream) {
    const operation& op = program_.ops[f.op];
    const uint32_t x = op.inputs[0];
    const ref a = source(x);
    const bool b_is_value = op.inputs.size() == 2;
    const ref b = b_is_value ? source(op.inputs[1])
                             : weight(op.weights[0], detail::plain_desc(program_.weights[op.weights[0]].shape),
                                      detail::plain_desc(program_.weights[op.weights[0]].shape), stream);
    std::vector<std::pair<int, ref>> args;
    const dnnl::primitive_attr attr = attributes(f, args);
    auto make = [&](const detail::md& a_layout) {
      const shape_t b_shape = b.desc.dims();
      const detail::md b_layout = a_layout == a.desc || !b_is_value ? b.desc
                                  : b_shape == shapes_[x]          ? a_layout
                                                                   : detail::plain_desc(b_shape);
      const detail::md dst = sum_target(f) >= 0 ? destination(f, shapes_[f.result]) : a_layout;
      const dnnl::binary::desc d(detail::binary_algorithm(static_cast<binary_kind>(op.ints[0])), a_layout, b_layout, dst);
      return choose<dnnl::binary::primitive_desc>([&] { return dnnl::binary::primitive_desc(d, attr, cpu_engine()); });
    };
    const auto [pd, a_layout] = with_input_layout<dnnl::binary::primitive_desc>(x, make);
    if (slow_fusion(f, pd)) return build_unfused(f, stream);
    args.push_back({DNNL_ARG_SRC_0, as(x, a_layout)});
    args.push_back({DNNL_ARG_SRC_1, b_is_value ? as(op.inputs[1], pd.src1_desc()) : b});
    args.push_back({DNNL_ARG_DST, result_ref(f, pd.dst_desc())});
    add_step(dnnl::binary(pd), pd, description(f), std::move(args));
  }

  // One step per eltwise piece (hardsigmoid has two): the first writes the result's slot, later
  // ones work in place.
  void build_eltwise(const detail::fused_op& f) {
    const operation& op = program_.ops[f.op];
    ref current = source(op.inputs[0]);
    for (auto [algorithm, alpha, beta] :
         detail::eltwise_pieces(static_cast<eltwise_kind>(op.ints[0]), op.floats[0], op.floats[1])) {
      const dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, algorithm, current.desc, alpha, beta);
      const auto pd = choose<dnnl::eltwise_forward::primitive_desc>(
          [&] { return dnnl::eltwise_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
      const ref to = value_slot_[f.result] < 0 ? define(f.result, pd.dst_desc()) : source(f.result);
      add_step(dnnl::eltwise_forward(pd), pd,
               shape_text(shapes_[f.result]) + " " + dnnl_alg_kind2str(dnnl::convert_to_c(algorithm)),
               {{DNNL_ARG_SRC, current}, {DNNL_ARG_DST, to}});
      current = to;
    }
  }

  void build_pool(const detail::fused_op& f) {
    static const dnnl::algorithm algorithms[] = {dnnl::algorithm::pooling_max,
                                                 dnnl::algorithm::pooling_avg_include_padding,
                                                 dnnl::algorithm::pooling_avg_exclude_padding};
    const operation& op = program_.ops[f.op];
    const auto& i = op.ints;
    auto make = [&](const detail::md& src) {
      const dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, algorithms[i[0]], src,
                                          detail::any_desc(shapes_[f.result]), {i[3], i[4]}, {i[1], i[2]},
                                          {i[5], i[6]}, {i[7], i[8]});
      return choose<dnnl::pooling_forward::primitive_desc>(
          [&] { return dnnl::pooling_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
    };
    const auto [pd, src] = with_input_layout<dnnl::pooling_forward::primitive_desc>(op.inputs[0], make);
    add_step(dnnl::pooling_forward(pd), pd, description(f),
             {{DNNL_ARG_SRC, as(op.inputs[0], src)}, {DNNL_ARG_DST, define(f.result, pd.dst_desc())}});
  }

  // A plain copy of the input, read as the new shape.
  void build_reshape(const detail::fused_op& f) {
    const uint32_t x = program_.ops[f.op].inputs[0];
    const detail::md from_plain = detail::plain_desc(shapes_[x]);
    const dnnl::reorder::primitive_desc pd(cpu_engine(), value_desc_[x], cpu_engine(), from_plain,
                                           detail::user_scratchpad());
    ref to = define(f.result, detail::plain_desc(shapes_[f.result]));
    to.desc = from_plain;
    add_step(dnnl::reorder(pd), pd, description(f), {{DNNL_ARG_FROM, source(x)}, {DNNL_ARG_TO, to}});
  }

  // The inputs as they are, or, when concat has only the reference implementation for their
  // layouts, all in the first fallback layout that has another.
  void build_cat(const detail::fused_op& f) {
    const operation& op = program_.ops[f.op];
    const int axis = static_cast<int>(op.ints[0]);
    auto make = [&](const std::vector<detail::md>& sources) {
      return dnnl::concat::primitive_desc(axis, sources, cpu_engine(), detail::user_scratchpad());
    };
    std::vector<detail::md> sources;
    for (uint32_t v : op.inputs) sources.push_back(value_desc_[v]);
    dnnl::concat::primitive_desc pd = make(sources);
    for (std::size_t k = 0; k < std::size(detail::fallbacks) && detail::is_reference(pd); ++k) {
      std::vector<detail::md> layouts;
      for (uint32_t v : op.inputs) layouts.push_back(detail::fallback_layout(shapes_[v], detail::fallbacks[k]));
      if (std::any_of(layouts.begin(), layouts.end(), [](const detail::md& m) { return m.is_zero(); })) continue;
      const dnnl::concat::primitive_desc other = make(layouts);
      if (!detail::is_reference(other)) {
        sources = layouts;
        pd = other;
      }
    }
    std::vector<std::pair<int, ref>> args;
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), as(op.inputs[k], sources[k])});
    }
    args.push_back({DNNL_ARG_DST, define(f.result, pd.dst_desc())});
    add_step(dnnl::concat(pd), pd, description(f), std::move(args));
  }

  void build_softmax(const detail::fused_op& f) {
    const operation& op = program_.ops[f.op];
    auto make = [&](const detail::md& src) {
      const dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, src, static_cast<int>(op.ints[0]));
      return choose<dnnl::softmax_forward::primitive_desc>(
          [&] { return dnnl::softmax_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
    };
    const auto [pd, src] = with_input_layout<dnnl::softmax_forward::primitive_desc>(op.inputs[0], make);
    add_step(dnnl::softmax_forward(pd), pd, description(f),
             {{DNNL_ARG_SRC, as(op.inputs[0], src)}, {DNNL_ARG_DST, define(f.result, pd.dst_desc())}});
  }

  // Offsets for the slots: two slots share memory only when no step touches both (greedy, largest
  // first); each offset aligned to 64 bytes.
  void plan_memory() {
    std::vector<std::size_t> order(slots_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return slots_[a].bytes > slots_[b].bytes; });
    std::vector<std::size_t> placed;
    arena_bytes_ = 0;
    for (std::size_t s : order) {
      slot& me = slots_[s];
      std::vector<std::pair<std::size_t, std::size_t>> taken;  // [begin, end) of overlapping lives
      for (std::size_t o : placed) {
        const slot& other = slots_[o];
        if (other.first <= me.last && me.first <= other.last) taken.push_back({other.offset, other.offset + other.bytes});
      }
      std::sort(taken.begin(), taken.end());
      std::size_t offset = 0;
      for (auto [begin, end] : taken) {
        if (offset + me.bytes <= begin) break;
        offset = std::max(offset, (end + 63) / 64 * 64);
      }
      me.offset = offset;
      arena_bytes_ = std::max(arena_bytes_, offset + me.bytes);
      placed.push_back(s);
    }
  }

  std::unique_ptr<arena> make_arena() const {
    auto a = std::make_unique<arena>();
    a->buffer.reset(new char[arena_bytes_ + scratchpad_bytes_ + 128]);
    char* base = a->buffer.get() + (64 - reinterpret_cast<std::uintptr_t>(a->buffer.get()) % 64);
    char* scratch = base + (arena_bytes_ + 63) / 64 * 64;
    for (std::size_t s = 0; s < steps_.size(); ++s) {
      std::unordered_map<int, dnnl::memory> args;
      for (const auto& [arg, r] : steps_[s].args) {
        dnnl::memory m;
        switch (r.kind) {
          case constant_ref: m = constants_[static_cast<std::size_t>(r.index)]; break;
          case slot_ref: m = dnnl::memory(r.desc, cpu_engine(), base + slots_[static_cast<std::size_t>(r.index)].offset); break;
          case input_ref:
            m = dnnl::memory(r.desc, cpu_engine(), DNNL_MEMORY_NONE);
            a->inputs.push_back({static_cast<std::size_t>(r.index), m});
            break;
          case output_ref:
            m = dnnl::memory(r.desc, cpu_engine(), DNNL_MEMORY_NONE);
            a->outputs.push_back({static_cast<std::size_t>(r.index), m});
            break;
        }
        args[arg] = m;
      }
      if (scratchpads_[s].get_size() > 0) args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratchpads_[s], cpu_engine(), scratch);
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
  std::vector<std::string> summary_;          // one line per step
  std::vector<std::string> implementations_;  // one per step
  std::vector<shape_t> shapes_;
  std::vector<detail::md> value_desc_;
  std::vector<int64_t> value_slot_;
  std::vector<slot> slots_;
  std::vector<dnnl::memory> constants_;
  std::vector<step> steps_;
  std::vector<detail::md> scratchpads_;
  std::vector<uint32_t> outputs_;
  std::size_t arena_bytes_ = 0, scratchpad_bytes_ = 0;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<arena>> idle_;
};

}  // namespace tbk_onednn
