// fusion.hpp: which operations of a tbk_onednn program run as steps, and what is fused into them
// as oneDNN post-ops: eltwise operations, a residual add (sum), binary operations with a constant
// or a broadcast value, the quantize after an int8 layer. Decided on the program alone, before any
// primitive is built.
#pragma once
#include "method_builder.hpp"        // fused_op, post_op
#include "operators/binary.hpp"   // binary::algorithm
#include "operators/convolution_shape.hpp"  // convolution::is_int8
#include "operators/eltwise.hpp"  // eltwise::pieces
#include "operators/linear_shape.hpp"       // linear::is_int8
#include "program.hpp"

#include <dnnl.hpp>

#include <algorithm>      // std::find, std::any_of
#include <cstdint>        // int64_t, uint32_t
#include <stdexcept>      // std::invalid_argument
#include <tuple>          // std::tuple
#include <unordered_map>  // std::unordered_map
#include <vector>         // std::vector

namespace tbk_onednn {
namespace detail {

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
// - with a constant, or a smaller (broadcast) value: as a binary post-op;
// - a quantize after an int8 convolution or linear layer (without a sum): as an eltwise linear
//   post-op x * (1 / scale) + zero point, the result written in int8 (rounded half to even and
//   saturated as oneDNN converts), so that the next int8 layer reads it as it is.
// A binary operation joins only when its other operand exists before the operation it joins.
// int8_layers: whether int8 convolutions and linear layers run in int8 (native_int8); else a
// quantize never joins them.
inline std::vector<fused_op> fuse(const program& p, const std::vector<shape_t>& shapes, bool int8_layers = true) {
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
      const auto pieces = operators::eltwise::pieces(static_cast<eltwise_kind>(op.ints[0]), op.floats[0], op.floats[1]);
      fused_op* into = joinable(op.inputs[0]);
      if (into && !conflicts_with_posts(*into, pieces)) {
        for (auto [algorithm, alpha, beta] : pieces) into->posts.push_back({post_op::eltwise, algorithm, alpha, beta});
        join(into, op.inputs[0]);
        continue;
      }
    }
    if (op.kind == op_kind::quantize) {
      fused_op* into = joinable(op.inputs[0]);
      const operation* layer = into ? &p.ops[into->op] : nullptr;
      const bool int8_layer = layer && ((layer->kind == op_kind::conv2d && operators::convolution::is_int8(*layer)) ||
                                        (layer->kind == op_kind::linear && operators::linear::is_int8(*layer)));
      const bool with_sum = into && std::any_of(into->posts.begin(), into->posts.end(),
                                                [](const post_op& q) { return q.kind == post_op::sum; });
      const float inverse = static_cast<float>(1.0 / static_cast<double>(op.floats[0]));  // as PyTorch computes it
      const std::vector<std::tuple<dnnl::algorithm, float, float>> requantize{
          {dnnl::algorithm::eltwise_linear, inverse, static_cast<float>(op.ints[1])}};
      if (int8_layers && int8_layer && !with_sum && !conflicts_with_posts(*into, requantize)) {
        into->posts.push_back({post_op::eltwise, dnnl::algorithm::eltwise_linear, inverse, static_cast<float>(op.ints[1])});
        into->result_type = static_cast<quantized_type>(op.ints[0]) == quantized_type::u8 ? dt::u8 : dt::s8;
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
        post_op post{post_op::binary, operators::binary::algorithm(kind)};
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
}  // namespace tbk_onednn
