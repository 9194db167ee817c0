// method_builder.hpp: what building a method's oneDNN steps needs, for each operator family's
// builder (operators/<family>.hpp): the steps made so far (primitive, the memory each argument
// points at, what it computes, the implementation oneDNN chose), each value's layout and slot,
// weights reordered once, post-op attributes of a fused operation, and a layout change where a
// primitive asks for one. compiled_method (engine.hpp) drives it and then runs the steps.
#pragma once
#include "host_memory.hpp"     // host_pool
#include "implementation.hpp"
#include "layouts.hpp"
#include "precision.hpp"   // precision, data_type_of, data_type_name
#include "program.hpp"

#include <dnnl.hpp>
#include <dnnl_debug.h>  // dnnl_prim_kind2str, dnnl_alg_kind2str

#include <algorithm>   // std::max
#include <cstdint>     // int64_t, uint32_t
#include <functional>  // std::function
#include <string>      // std::string
#include <utility>     // std::move, std::pair
#include <vector>      // std::vector

namespace tbk_onednn {

inline const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// How a method is compiled: its name (for messages), the compile spec option "implementation"
// (prefer oneDNN implementations whose name contains it, e.g. "gemm") and the precision its
// convolutions and linear layers compute in (the option "precision", resolved: precision.hpp).
struct compile_options {
  std::string method = "forward";
  std::string preferred_implementation;
  precision compute = precision::fp32;
};

namespace detail {

// Attributes that leave scratch memory to the caller (each caller brings its own).
inline dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A step to build: an operation with what fusion.hpp fused into it (eltwise pieces and binary
// operations on its result).
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
  dt result_type = dt::f32;        // its data type: int8 where a quantize joined an int8 layer
};

// What a primitive argument points at: a value's slot (an input, an intermediate, an output
// tensor of the call) or a constant (weights, reordered once).
enum ref_kind { input_ref, slot_ref, output_ref, constant_ref };
struct ref {
  ref_kind kind;
  md desc;
  int64_t index;  // input number, slot, output number, or constant number
};
using step_args = std::vector<std::pair<int, ref>>;

// Intermediate memory: its size and the first and last step that touch it; offset is set by
// plan_memory (memory_plan.hpp).
struct slot {
  std::size_t bytes, first, last, offset = 0;
};

// What building a method makes and running it reads.
struct built_steps {
  std::vector<dnnl::primitive> primitives;
  std::vector<step_args> args;               // per step
  std::vector<md> scratchpads;               // per step
  std::vector<std::string> summary;          // per step: "step 2: convolution [..] -> [..] + eltwise_relu, f32: jit:avx2"
  std::vector<std::string> implementations;  // per step
  std::vector<slot> slots;
  std::vector<dnnl::memory> constants;
  host_pool weight_memory;                   // where the packed weights among constants live
  std::size_t scratchpad_bytes = 0;          // the largest step's
  std::size_t weighted_steps = 0;            // convolution and linear steps
  std::size_t fp32_instead = 0;              // those in fp32 for want of a fast kernel in the precision
  std::size_t int8_as_fp32 = 0;              // int8 ones in fp32 for want of VNNI (native_int8)
};

class method_builder {
 public:
  method_builder(program& p, const std::vector<shape_t>& shapes, const compile_options& options, built_steps& out)
      : program_(p), shapes_(shapes), options_(options), out_(out), stream_(cpu_engine()) {
    value_desc_.resize(shapes_.size());
    value_slot_.assign(shapes_.size(), -1);
    for (std::size_t i = 0; i < program_.input_shapes.size(); ++i) value_desc_[i] = plain_desc(shapes_[i]);
  }

  const operation& op(const fused_op& f) const { return program_.ops[f.op]; }
  const shape_t& shape(uint32_t v) const { return shapes_[v]; }
  const shape_t& weight_shape(uint32_t w) const { return program_.weights[w].shape; }
  // The data type convolutions and linear layers compute in (and write their results in).
  dt compute_type() const { return data_type_of(options_.compute); }
  // A convolution or linear step built, in the method's precision or, when `fp32_instead`, in fp32
  // although the precision is not (oneDNN has no implementation but its reference one for it in
  // that precision at this ISA): counted for the warning (warn_fp32_instead).
  void note_weighted_step(bool fp32_instead) {
    ++out_.weighted_steps;
    if (fp32_instead) ++out_.fp32_instead;
  }
  // An int8 convolution or linear step built in fp32 (native_int8 says no).
  void note_int8_as_fp32() {
    ++out_.weighted_steps;
    ++out_.int8_as_fp32;
  }
  // The layout value v has now.
  const md& layout(uint32_t v) const { return value_desc_[v]; }

  // The reference a reader of value v uses.
  ref source(uint32_t v) const {
    if (v < program_.input_shapes.size()) return {input_ref, value_desc_[v], v};
    return {slot_ref, value_desc_[v], value_slot_[v]};
  }

  // A new slot for value v (made by the next step) with layout `desc`.
  ref define(uint32_t v, const md& desc) {
    value_desc_[v] = desc;
    value_slot_[v] = static_cast<int64_t>(out_.slots.size());
    out_.slots.push_back({desc.get_size(), steps(), steps()});
    return source(v);
  }
  bool defined(uint32_t v) const { return value_slot_[v] >= 0; }

  // Value v in layout `wanted`: itself, or a reordered copy made by a new step.
  ref as(uint32_t v, const md& wanted) {
    if (value_desc_[v] == wanted) return source(v);
    return converted(v, wanted, user_scratchpad());
  }
  // A copy of value v in layout (and data type) `wanted`, made by a new reorder step with
  // `attr` (a dequantize's scale and zero point).
  ref converted(uint32_t v, const md& wanted, const dnnl::primitive_attr& attr) {
    const ref from = source(v);
    dnnl::reorder::primitive_desc pd(cpu_engine(), from.desc, cpu_engine(), wanted, attr);
    const int64_t index = static_cast<int64_t>(out_.slots.size());
    out_.slots.push_back({wanted.get_size(), steps(), steps()});
    const ref to{slot_ref, wanted, index};
    add_step(dnnl::reorder(pd), pd, "value " + std::to_string(v) + " " + shape_text(shapes_[v]),
             {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
    return to;
  }

  // A weight as oneDNN wants it: reordered once from the payload's plain layout (and the
  // decoded copy then freed: each weight serves one operation).
  ref weight(uint32_t w, const md& plain, const md& wanted) {
    std::vector<float>& values = program_.weights[w].values;
    dnnl::memory user(plain, cpu_engine(), values.data());
    if (wanted == plain) return {constant_ref, plain, constant(user)};
    dnnl::memory packed(wanted, cpu_engine(), out_.weight_memory.allocate(wanted.get_size()));
    dnnl::reorder(user, packed).execute(stream_, user, packed);
    stream_.wait();
    std::vector<float>().swap(values);
    return {constant_ref, wanted, constant(packed)};
  }
  // A weight's values as the payload has them, for a builder that prepares them (an int8 layer's
  // scales and bias) before weight() packs them.
  std::vector<float>& weight_values(uint32_t w) { return program_.weights[w].values; }
  // A weight in the payload's plain layout.
  ref plain_weight(uint32_t w) { return weight(w, plain_desc(weight_shape(w)), plain_desc(weight_shape(w))); }

  // A step: its primitive (built from `pd`), what it computes (for the summary and warnings), the
  // memory it reads and writes.
  void add_step(dnnl::primitive primitive, const dnnl::primitive_desc_base& pd, const std::string& what, step_args args) {
    for (auto& [arg, r] : args) {
      if (r.kind == slot_ref) out_.slots[static_cast<std::size_t>(r.index)].last = steps();
    }
    const md scratchpad = pd.scratchpad_desc();
    out_.scratchpad_bytes = std::max(out_.scratchpad_bytes, scratchpad.get_size());
    out_.scratchpads.push_back(scratchpad);
    const std::string kind = dnnl_prim_kind2str(dnnl::convert_to_c(primitive.get_kind()));
    const std::string implementation = implementation_of(pd);
    if (is_reference(pd)) warn_reference(options_.method, kind + " " + what, implementation, preferred(implementation));
    out_.implementations.push_back(implementation);
    out_.summary.push_back("step " + std::to_string(steps() + 1) + ": " + kind + " " + what + ", " +
                           data_types(args) + ": " + implementation);
    out_.primitives.push_back(std::move(primitive));
    out_.args.push_back(std::move(args));
  }

  // The data types a step reads and writes, for the summary: "bf16", or "f32 -> bf16" where its
  // (first) source's differs from its destination's.
  static std::string data_types(const step_args& args) {
    const md* from = nullptr;
    const md* to = nullptr;
    for (const auto& [arg, r] : args) {
      if (!from && (arg == DNNL_ARG_SRC || arg == DNNL_ARG_FROM || arg == DNNL_ARG_MULTIPLE_SRC)) from = &r.desc;
      if (!to && (arg == DNNL_ARG_DST || arg == DNNL_ARG_TO)) to = &r.desc;
    }
    if (!to) return "";
    const std::string written = data_type_name(to->data_type());
    if (!from || from->data_type() == to->data_type()) return written;
    return data_type_name(from->data_type()) + " -> " + written;
  }

  // Whether the compile option "implementation" asked for `implementation`.
  bool preferred(const std::string& implementation) const {
    const std::string& wanted = options_.preferred_implementation;
    return !wanted.empty() && implementation.find(wanted) != std::string::npos;
  }

  // A primitive descriptor at the implementation to run (see choose_implementation).
  template <class PrimitiveDesc>
  PrimitiveDesc choose(const std::function<PrimitiveDesc()>& make) const {
    return choose_implementation<PrimitiveDesc>(make, options_.preferred_implementation);
  }

  // What a fused operation computes, for the summary: "[1, 64, 56, 56] -> [1, 64, 56, 56] +
  // eltwise_relu + sum".
  std::string description(const fused_op& f) const {
    const auto& inputs = op(f).inputs;
    std::string text = (inputs.empty() ? std::string("constant") : shape_text(shapes_[inputs[0]])) + " -> " +
                       shape_text(shapes_[f.result]);
    for (const post_op& p : f.posts) {
      text += p.kind == post_op::sum ? std::string(" + sum")
                                     : std::string(" + ") + dnnl_alg_kind2str(dnnl::convert_to_c(p.algorithm));
    }
    return text;
  }

  // The post-ops of a fused operation, and the arguments its binary post-ops read.
  dnnl::primitive_attr attributes(const fused_op& f, step_args& args) {
    dnnl::post_ops posts;
    for (std::size_t k = 0; k < f.posts.size(); ++k) {
      const post_op& p = f.posts[k];
      if (p.kind == post_op::eltwise) {
        posts.append_eltwise(1.f, p.algorithm, p.alpha, p.beta);
        continue;
      }
      if (p.kind == post_op::sum) {
        posts.append_sum(1.f);
        continue;
      }
      ref operand = p.value >= 0 ? source(static_cast<uint32_t>(p.value)) : ref{};
      if (p.weight >= 0) {
        const auto& w = program_.weights[static_cast<std::size_t>(p.weight)];
        operand = {constant_ref, plain_desc(w.shape),
                   constant(dnnl::memory(plain_desc(w.shape), cpu_engine(), const_cast<float*>(w.values.data())))};
      }
      posts.append_binary(p.algorithm, operand.desc);
      args.push_back({DNNL_ARG_ATTR_MULTIPLE_POST_OP(static_cast<int>(k)) | DNNL_ARG_SRC_1, operand});
    }
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(posts);
    return attr;
  }

  // The value a sum post-op accumulates into, or -1.
  static int64_t sum_target(const fused_op& f) {
    for (const post_op& p : f.posts) {
      if (p.kind == post_op::sum) return p.value;
    }
    return -1;
  }

  // The destination layout: that of the value a sum post-op writes over, else oneDNN's choice in
  // data type `type`.
  md destination(const fused_op& f, dt type = dt::f32) const {
    const int64_t target = sum_target(f);
    return target >= 0 ? value_desc_[static_cast<std::size_t>(target)] : any_desc(shapes_[f.result], type);
  }

  // The destination argument: a new slot, or the memory of the value a sum post-op writes over.
  ref result_ref(const fused_op& f, const md& desc) {
    const int64_t target = sum_target(f);
    if (target < 0) return define(f.result, desc);
    value_desc_[f.result] = desc;
    value_slot_[f.result] = value_slot_[static_cast<std::size_t>(target)];
    return source(f.result);
  }

  // Whether a fused operation has only oneDNN's reference implementation: then its builder
  // returns false and it is built again unfused (its pieces may each have a fast one).
  static bool slow_fusion(const fused_op& f, const dnnl::primitive_desc_base& pd) {
    return !f.posts.empty() && is_reference(pd);
  }

  // The descriptor `make(layout)` gives for the layout value v has, or, when that has only the
  // reference implementation, for the first of fallbacks that has another, in v's data type and
  // then in fp32 (a bf16 value goes fp32 before an operator oneDNN runs in bf16 only with its
  // reference implementation; a reorder step then makes v in it: see as()); with the layout it
  // is for.
  template <class PrimitiveDesc>
  std::pair<PrimitiveDesc, md> with_input_layout(uint32_t v, const std::function<PrimitiveDesc(const md&)>& make) {
    PrimitiveDesc pd = make(value_desc_[v]);
    if (!is_reference(pd)) return {pd, value_desc_[v]};
    const dt own = value_desc_[v].data_type();
    std::vector<dt> types{own};
    if (own != dt::f32) types.push_back(dt::f32);
    for (dt type : types) {
      for (fallback kind : fallbacks) {
        const md layout = fallback_layout(shapes_[v], kind, type);
        if (layout.is_zero()) continue;
        PrimitiveDesc other = make(layout);
        if (!is_reference(other)) return {other, layout};
      }
    }
    return {pd, value_desc_[v]};
  }

  // Output k of the method: value v reordered into a plain tensor of the call.
  void add_output(std::size_t k, uint32_t v) {
    const md plain = plain_desc(shapes_[v]);
    dnnl::reorder::primitive_desc pd(cpu_engine(), value_desc_[v], cpu_engine(), plain, user_scratchpad());
    add_step(dnnl::reorder(pd), pd, "output " + std::to_string(k) + " " + shape_text(shapes_[v]),
             {{DNNL_ARG_FROM, source(v)}, {DNNL_ARG_TO, {output_ref, plain, static_cast<int64_t>(k)}}});
  }

  void finish() { stream_.wait(); }

 private:
  std::size_t steps() const { return out_.primitives.size(); }
  int64_t constant(const dnnl::memory& m) {
    out_.constants.push_back(m);
    return static_cast<int64_t>(out_.constants.size() - 1);
  }

  program& program_;
  const std::vector<shape_t>& shapes_;
  const compile_options& options_;
  built_steps& out_;
  dnnl::stream stream_;
  std::vector<md> value_desc_;
  std::vector<int64_t> value_slot_;
};

}  // namespace detail
}  // namespace tbk_onednn
