// shapes.hpp: a program's validation: every operation reads values made before it and weights
// that exist, has the attributes its kind takes and operands of shapes that fit (the shape rules
// of operators/<family>_shape.hpp, dispatched by kind from one table), every weight is used and
// every output exists. Standard C++ only.
#pragma once
#include "ir.hpp"
#include "shape_check.hpp"
#include "operators/binary_shape.hpp"
#include "operators/concat_shape.hpp"
#include "operators/constant_shape.hpp"
#include "operators/convolution_shape.hpp"
#include "operators/eltwise_shape.hpp"
#include "operators/layer_norm_shape.hpp"
#include "operators/linear_shape.hpp"
#include "operators/matmul_shape.hpp"
#include "operators/permute_shape.hpp"
#include "operators/quantize_shape.hpp"
#include "operators/pooling_shape.hpp"
#include "operators/reshape_shape.hpp"
#include "operators/softmax_shape.hpp"
#include "operators/split_shape.hpp"

#include <cstdint>    // uint8_t, uint32_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {

namespace detail {

struct kind_entry {
  const char* name;
  shape_t (*shape)(const operation_check&);
};

// One row per op_kind, in the order of its values (1, 2, ...).
inline constexpr kind_entry kinds[] = {
    {"conv2d", operators::convolution::shape}, {"linear", operators::linear::shape},
    {"eltwise", operators::eltwise::shape},    {"binary", operators::binary::shape},
    {"pool", operators::pooling::shape},       {"reshape", operators::reshape::shape},
    {"cat", operators::concat::shape},         {"softmax", operators::softmax::shape},
    {"permute", operators::permute::shape},    {"slice", operators::split::shape},
    {"layer_norm", operators::layer_norm::shape}, {"matmul", operators::matmul::shape},
    {"constant", operators::constant::shape},     {"quantize", operators::quantize::shape},
    {"dequantize", operators::quantize::shape},
};
constexpr uint8_t last_kind = static_cast<uint8_t>(sizeof kinds / sizeof kinds[0]);
static_assert(last_kind == static_cast<uint8_t>(op_kind::dequantize), "one row per op_kind");

inline const kind_entry& entry(op_kind kind) { return kinds[static_cast<uint8_t>(kind) - 1]; }

}  // namespace detail

// Whether a byte from a payload names an operation kind.
inline bool is_op_kind(uint8_t kind) { return kind >= 1 && kind <= detail::last_kind; }

inline const char* op_name(op_kind kind) {
  return is_op_kind(static_cast<uint8_t>(kind)) ? detail::entry(kind).name : "unknown";
}

// The shape of ops[i]'s result, given the shapes of the values before it; an error naming the
// operation for anything a well-formed program cannot have (a weight another operation uses too:
// each weight serves one operation, which packs it and frees the payload's copy). Marks the
// weights it uses.
inline shape_t op_shape(const program& p, std::size_t i, const std::vector<shape_t>& shapes,
                        std::vector<bool>& weight_used) {
  const operation& op = p.ops[i];
  const detail::operation_check check(p, op, "operation " + std::to_string(i) + " (" + op_name(op.kind) + ")", shapes);
  for (uint32_t v : op.inputs) {
    if (v >= shapes.size()) {
      check.fail("reads value " + std::to_string(v) + ", which is not made before it (" +
                 std::to_string(shapes.size()) + " values so far)");
    }
  }
  for (uint32_t w : op.weights) {
    if (w >= p.weights.size()) check.fail("uses weight " + std::to_string(w) + " of " + std::to_string(p.weights.size()));
    if (weight_used[w]) check.fail("uses weight " + std::to_string(w) + ", which another operation uses");
    weight_used[w] = true;
  }
  if (!is_op_kind(static_cast<uint8_t>(op.kind))) check.fail("has an unknown kind");
  const shape_t out = detail::entry(op.kind).shape(check);
  element_count(out, check.where + ": the result");
  return out;
}

// The shapes of every value of a program (inputs, then one per operation), computed from the
// input shapes, the operations and the weights; an error naming the operation for anything a
// well-formed program cannot have.
inline std::vector<shape_t> infer_shapes(const program& p) {
  std::vector<shape_t> shapes;
  if (p.input_shapes.empty()) throw std::invalid_argument("the method has no inputs");
  for (std::size_t i = 0; i < p.input_shapes.size(); ++i) {
    element_count(p.input_shapes[i], "input " + std::to_string(i));
    shapes.push_back(p.input_shapes[i]);
  }
  std::vector<bool> weight_used(p.weights.size(), false);
  for (std::size_t i = 0; i < p.ops.size(); ++i) shapes.push_back(op_shape(p, i, shapes, weight_used));
  if (p.outputs.empty()) throw std::invalid_argument("the method has no outputs");
  for (uint32_t v : p.outputs) {
    if (v >= shapes.size()) {
      throw std::invalid_argument("output names value " + std::to_string(v) + " of " + std::to_string(shapes.size()));
    }
  }
  for (std::size_t w = 0; w < weight_used.size(); ++w) {
    if (!weight_used[w]) throw std::invalid_argument("weight " + std::to_string(w) + " is used by no operation");
  }
  return shapes;
}

}  // namespace tbk_onednn
