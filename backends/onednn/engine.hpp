// engine.hpp: a checked tbk_onednn program as oneDNN primitives, built once per method at load
// time: eltwise and binary operations fused into the convolution, linear or binary before them
// as post-ops, layouts chosen by oneDNN (reorders only where a primitive asks for another one and
// at the method's edges), weights reordered once, intermediate memory planned by lifetime and
// kept per concurrent caller, so calls on one method from many threads never share scratch.
#pragma once
#include "implementation.hpp"
#include "program.hpp"

#include <ATen/ATen.h>
#include <dnnl.hpp>
#include <dnnl_debug.h>  // dnnl_prim_kind2str, dnnl_status2str

#include <algorithm>      // std::max, std::sort
#include <cstdint>        // int64_t, uint32_t
#include <functional>     // std::function
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

using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;

inline md plain_desc(const shape_t& shape) {
  dnnl::memory::dims strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return md(shape, dt::f32, strides);
}
inline md any_desc(const shape_t& shape) { return md(shape, dt::f32, dnnl::memory::format_tag::any); }

// Attributes that leave scratch memory to the caller (each caller brings its own).
inline dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A 4-D activation blocked by the channel block of the ISA's direct convolution kernels
// (activation_block), when its channels allow it; else a zero descriptor.
inline md blocked_desc(const shape_t& shape) {
  const int block = activation_block();
  if (shape.size() != 4 || block == 0 || shape[1] % block != 0) return md();
  return md(shape, dt::f32, block == 16 ? dnnl::memory::format_tag::nChw16c : dnnl::memory::format_tag::nChw8c);
}

// Layouts to try for a value of `shape` when a primitive has only oneDNN's reference
// implementation for the layout the value has: blocked for the ISA (blocked_desc), channels
// last (nhwc), plain. oneDNN 2.6's pooling and binary kernels each take some layouts only
// (AVX-512 pooling has no kernel for nChw8c; binary none for a blocked operand broadcast from
// another layout), so a value made in one layout may need a reorder before them.
inline std::vector<md> fallback_layouts(const shape_t& shape) {
  std::vector<md> out;
  if (shape.size() == 4) {
    const md blocked = blocked_desc(shape);
    if (!blocked.is_zero()) out.push_back(blocked);
    out.push_back(md(shape, dt::f32, dnnl::memory::format_tag::nhwc));
  }
  out.push_back(plain_desc(shape));
  return out;
}

// One eltwise piece: (algorithm, alpha, beta); hardsigmoid takes two.
inline std::vector<std::tuple<dnnl::algorithm, float, float>> eltwise_pieces(eltwise_kind kind, float alpha, float beta) {
  using a = dnnl::algorithm;
  switch (kind) {
    case eltwise_kind::relu: return {{a::eltwise_relu, 0.f, 0.f}};
    case eltwise_kind::clamp: return {{a::eltwise_clip, alpha, beta}};
    case eltwise_kind::hardswish: return {{a::eltwise_hardswish, 0.f, 0.f}};
    case eltwise_kind::sigmoid: return {{a::eltwise_logistic, 0.f, 0.f}};
    case eltwise_kind::hardsigmoid: return {{a::eltwise_linear, 1.f / 6, 0.5f}, {a::eltwise_clip, 0.f, 1.f}};
    case eltwise_kind::tanh: return {{a::eltwise_tanh, 0.f, 0.f}};
    case eltwise_kind::affine: return {{a::eltwise_linear, alpha, beta}};
    case eltwise_kind::gelu: return {{a::eltwise_gelu_erf, 0.f, 0.f}};
  }
  throw std::invalid_argument("unknown eltwise kind");
}

inline dnnl::algorithm binary_algorithm(binary_kind kind) {
  switch (kind) {
    case binary_kind::add: return dnnl::algorithm::binary_add;
    case binary_kind::sub: return dnnl::algorithm::binary_sub;
    case binary_kind::mul: return dnnl::algorithm::binary_mul;
    case binary_kind::div: return dnnl::algorithm::binary_div;
  }
  throw std::invalid_argument("unknown binary kind");
}

// An operation with what was fused into it: eltwise pieces and binary operations on its result.
struct post_op {
  enum { eltwise, binary, sum } kind;
  dnnl::algorithm algorithm = dnnl::algorithm::undef;
  float alpha = 0, beta = 0;
  int64_t value = -1;   // binary: the other operand, a value (sum: the value written over)...
  int64_t weight = -1;  // ...or a weight
};
struct fused_op {
  std::size_t op;                  // index into program::ops
  std::vector<post_op> posts;
  std::vector<std::size_t> joined; // the operations fused into it, in order
  uint32_t result;                 // the value it finally makes
};

// Whether eltwise `pieces` would share an algorithm with other parameters with a post-op already
// fused: oneDNN 2.6's post-op injector (jit_uni_postops_injector_t, used by jit:uni binary and
// the brgemm-based kernels) keeps one eltwise injector per algorithm, so the second such post-op
// runs with the first one's parameters (measured: binary + linear(0.5, -0.5) + linear(2, 1)
// wrong by 11 at every ISA). Such an operation stays a step of its own.
inline bool conflicts_with_posts(const fused_op& into, const std::vector<std::tuple<dnnl::algorithm, float, float>>& pieces) {
  for (auto [algorithm, alpha, beta] : pieces) {
    for (const post_op& p : into.posts) {
      if (p.kind == post_op::eltwise && p.algorithm == algorithm && (p.alpha != alpha || p.beta != beta)) return true;
    }
  }
  return false;
}

// Which operations run, with their fused post-ops. An eltwise or binary operation whose operand
// is the last result of a convolution, linear or binary operation, read by nothing else (and not
// a method output), joins it:
// - eltwise: as an eltwise post-op;
// - add of a same-shaped value that nothing reads later (a residual): as a sum post-op, the
//   result written over that value's memory;
// - with a constant, or a smaller (broadcast) value: as a binary post-op.
// A binary operation joins only when its other operand exists before the operation it joins.
inline std::vector<fused_op> fuse(const program& p, const std::vector<shape_t>& shapes) {
  const std::size_t inputs = p.input_shapes.size();
  std::vector<int> readers(shapes.size(), 0);
  std::vector<std::size_t> last_reader(shapes.size(), 0);
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    for (uint32_t v : p.ops[i].inputs) {
      ++readers[v];
      last_reader[v] = i;
    }
  }
  for (uint32_t v : p.outputs) {  // never fused away or written over
    readers[v] += 2;
    last_reader[v] = p.ops.size();
  }
  std::vector<fused_op> out;
  std::unordered_map<uint32_t, std::size_t> open;  // last result -> index in out, for fusable ops
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    const operation& op = p.ops[i];
    const uint32_t result = static_cast<uint32_t>(inputs + i);
    auto joinable = [&](uint32_t v) -> fused_op* {
      auto found = open.find(v);
      if (found == open.end() || readers[v] != 1) return nullptr;
      return &out[found->second];
    };
    auto join = [&](fused_op* into, uint32_t from) {
      open.erase(from);
      into->joined.push_back(i);
      into->result = result;
      open[result] = static_cast<std::size_t>(into - out.data());
    };
    if (op.kind == op_kind::eltwise) {
      const auto pieces = eltwise_pieces(static_cast<eltwise_kind>(op.ints[0]), op.floats[0], op.floats[1]);
      fused_op* into = joinable(op.inputs[0]);
      if (into && !conflicts_with_posts(*into, pieces)) {
        for (auto [algorithm, alpha, beta] : pieces) into->posts.push_back({post_op::eltwise, algorithm, alpha, beta});
        join(into, op.inputs[0]);
        continue;
      }
    }
    if (op.kind == op_kind::binary) {
      const auto kind = static_cast<binary_kind>(op.ints[0]);
      const bool commutes = kind == binary_kind::add || kind == binary_kind::mul;
      bool joined = false;
      for (std::size_t side = 0; side < (commutes ? op.inputs.size() : 1) && !joined; ++side) {
        fused_op* into = joinable(op.inputs[side]);
        if (!into || shapes[op.inputs[side]] != shapes[result]) continue;
        post_op post{post_op::binary, binary_algorithm(kind)};
        if (op.inputs.size() == 2) {
          const uint32_t other = op.inputs[1 - side];
          if (other >= inputs + into->op) continue;  // made after the op it would join
          if (shapes[other] == shapes[result]) {
            const auto& reads = p.ops[into->op].inputs;
            if (kind != binary_kind::add || other < inputs || last_reader[other] != i ||
                std::find(reads.begin(), reads.end(), other) != reads.end()) {
              continue;
            }
            post = {post_op::sum, dnnl::algorithm::undef};
          }
          post.value = other;
        } else {
          post.weight = op.weights[0];
        }
        into->posts.push_back(post);
        join(into, op.inputs[side]);
        joined = true;
      }
      if (joined) continue;
    }
    out.push_back({i, {}, {}, result});
    if (op.kind == op_kind::conv2d || op.kind == op_kind::linear || op.kind == op_kind::binary) {
      open[result] = out.size() - 1;
    }
  }
  return out;
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

  // One line per step, in order: "step 3 of 9: convolution [1, 64, 56, 56] -> [1, 64, 56, 56]
  // + eltwise_relu: jit:avx2" (the primitive, what it computes, the implementation oneDNN runs).
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
    if (detail::is_reference(pd)) detail::warn_reference_only(options_.method, kind + " " + what, implementation);
    summary_.push_back("step " + std::to_string(steps_.size() + 1) + ": " + kind + " " + what + ": " + implementation);
    steps_.push_back({std::move(primitive), std::move(args)});
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
  // reference implementation, for the first of detail::fallback_layouts that has another (a
  // reorder step then makes v in it: see as()); with the layout it is for.
  template <class PrimitiveDesc>
  std::pair<PrimitiveDesc, detail::md> with_input_layout(uint32_t v,
                                                         const std::function<PrimitiveDesc(const detail::md&)>& make) {
    PrimitiveDesc pd = make(value_desc_[v]);
    if (!detail::is_reference(pd)) return {pd, value_desc_[v]};
    for (const detail::md& layout : detail::fallback_layouts(shapes_[v])) {
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

  void build(const detail::fused_op& f, dnnl::stream& stream) {
    const operation& op = program_.ops[f.op];
    const uint32_t x = op.inputs[0];
    const shape_t& out_shape = shapes_[f.result];
    std::vector<std::pair<int, ref>> args;
    switch (op.kind) {
      case op_kind::conv2d: {
        const shape_t& w = program_.weights[op.weights[0]].shape;
        const int64_t groups = op.ints[6];
        shape_t wdims = groups == 1 ? w : shape_t{groups, w[0] / groups, w[1], w[2], w[3]};
        const detail::md w_plain = detail::plain_desc(wdims);
        dnnl::primitive_attr attr = attributes(f, args);
        // activations in oneDNN's choice of layout (see docs/onednn.md, "Layouts")
        const dnnl::convolution_forward::desc d(
            dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, detail::any_desc(shapes_[x]),
            detail::any_desc(wdims), bias_desc(op), destination(f, out_shape), {op.ints[0], op.ints[1]},
            {op.ints[4] - 1, op.ints[5] - 1}, {op.ints[2], op.ints[3]}, {op.ints[2], op.ints[3]});
        return weighted_step<dnnl::convolution_forward>(f, d, attr, w_plain, std::move(args), stream);
      }
      case op_kind::linear: {
        const shape_t& w = program_.weights[op.weights[0]].shape;
        const detail::md w_plain = detail::plain_desc(w);
        dnnl::primitive_attr attr = attributes(f, args);
        const dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, detail::any_desc(shapes_[x]),
                                                  detail::any_desc(w), bias_desc(op), destination(f, out_shape));
        return weighted_step<dnnl::inner_product_forward>(f, d, attr, w_plain, std::move(args), stream);
      }
      case op_kind::binary: {
        const ref a = source(x);
        ref b;
        if (op.inputs.size() == 2) {
          b = source(op.inputs[1]);
        } else {
          const auto& w = program_.weights[op.weights[0]];
          b = weight(op.weights[0], detail::plain_desc(w.shape), detail::plain_desc(w.shape), stream);
        }
        dnnl::primitive_attr attr = attributes(f, args);
        // in another layout than the first operand's own, the second follows it when the shapes
        // agree, else it is plain (broadcast)
        auto make = [&](const detail::md& a_layout) {
          const shape_t b_shape = b.desc.dims();
          const detail::md b_layout = a_layout == a.desc ? b.desc
                                      : b_shape == shapes_[x] ? a_layout
                                                              : detail::plain_desc(b_shape);
          const detail::md dst = sum_target(f) >= 0 ? destination(f, out_shape) : a_layout;
          dnnl::binary::desc d(detail::binary_algorithm(static_cast<binary_kind>(op.ints[0])), a_layout, b_layout, dst);
          return choose<dnnl::binary::primitive_desc>([&] { return dnnl::binary::primitive_desc(d, attr, cpu_engine()); });
        };
        const auto [pd, a_layout] = with_input_layout<dnnl::binary::primitive_desc>(x, make);
        if (slow_fusion(f, pd)) return build_unfused(f, stream);
        args.push_back({DNNL_ARG_SRC_0, as(x, a_layout)});
        args.push_back({DNNL_ARG_SRC_1, b.kind == constant_ref || b.desc == pd.src1_desc()
                                            ? b : as(op.inputs[1], pd.src1_desc())});
        args.push_back({DNNL_ARG_DST, result_ref(f, pd.dst_desc())});
        add_step(dnnl::binary(pd), pd, description(f), std::move(args));
        return;
      }
      case op_kind::eltwise: {
        ref current = source(x);
        for (auto [algorithm, alpha, beta] :
             detail::eltwise_pieces(static_cast<eltwise_kind>(op.ints[0]), op.floats[0], op.floats[1])) {
          dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, algorithm, current.desc, alpha, beta);
          const auto pd = choose<dnnl::eltwise_forward::primitive_desc>(
              [&] { return dnnl::eltwise_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
          // the first piece writes the result's slot, later ones work in place
          const ref to = value_slot_[f.result] < 0 ? define(f.result, pd.dst_desc()) : source(f.result);
          add_step(dnnl::eltwise_forward(pd), pd,
                   shape_text(out_shape) + " " + dnnl_alg_kind2str(dnnl::convert_to_c(algorithm)),
                   {{DNNL_ARG_SRC, current}, {DNNL_ARG_DST, to}});
          current = to;
        }
        return;
      }
      case op_kind::pool: {
        static const dnnl::algorithm algorithms[] = {dnnl::algorithm::pooling_max,
                                                     dnnl::algorithm::pooling_avg_include_padding,
                                                     dnnl::algorithm::pooling_avg_exclude_padding};
        const auto& i = op.ints;
        auto make = [&](const detail::md& src) {
          dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, algorithms[i[0]], src,
                                        detail::any_desc(out_shape), {i[3], i[4]}, {i[1], i[2]}, {i[5], i[6]},
                                        {i[7], i[8]});
          return choose<dnnl::pooling_forward::primitive_desc>(
              [&] { return dnnl::pooling_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
        };
        const auto [pd, src] = with_input_layout<dnnl::pooling_forward::primitive_desc>(x, make);
        add_step(dnnl::pooling_forward(pd), pd, description(f),
                 {{DNNL_ARG_SRC, as(x, src)}, {DNNL_ARG_DST, define(f.result, pd.dst_desc())}});
        return;
      }
      case op_kind::reshape: {
        // a plain copy of the input, read as the new shape
        const detail::md from_plain = detail::plain_desc(shapes_[x]);
        dnnl::reorder::primitive_desc pd(cpu_engine(), value_desc_[x], cpu_engine(), from_plain, detail::user_scratchpad());
        ref to = define(f.result, detail::plain_desc(out_shape));
        to.desc = from_plain;
        add_step(dnnl::reorder(pd), pd, description(f), {{DNNL_ARG_FROM, source(x)}, {DNNL_ARG_TO, to}});
        return;
      }
      case op_kind::cat: {
        std::vector<detail::md> sources;
        for (uint32_t v : op.inputs) sources.push_back(value_desc_[v]);
        dnnl::concat::primitive_desc pd(static_cast<int>(op.ints[0]), sources, cpu_engine(), detail::user_scratchpad());
        for (std::size_t k = 0; k < op.inputs.size(); ++k) {
          args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k), source(op.inputs[k])});
        }
        args.push_back({DNNL_ARG_DST, define(f.result, pd.dst_desc())});
        add_step(dnnl::concat(pd), pd, description(f), std::move(args));
        return;
      }
      case op_kind::softmax: {
        auto make = [&](const detail::md& src) {
          dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, src, static_cast<int>(op.ints[0]));
          return choose<dnnl::softmax_forward::primitive_desc>(
              [&] { return dnnl::softmax_forward::primitive_desc(d, detail::user_scratchpad(), cpu_engine()); });
        };
        const auto [pd, src] = with_input_layout<dnnl::softmax_forward::primitive_desc>(x, make);
        add_step(dnnl::softmax_forward(pd), pd, description(f),
                 {{DNNL_ARG_SRC, as(x, src)}, {DNNL_ARG_DST, define(f.result, pd.dst_desc())}});
        return;
      }
    }
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
  std::vector<std::string> summary_;
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
