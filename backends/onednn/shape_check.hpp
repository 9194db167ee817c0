// shape_check.hpp: what a shape rule (operators/<family>_shape.hpp) reads one operation with: its
// operands' shapes, its attributes, and errors that name the operation. Standard C++ only.
#pragma once
#include "ir.hpp"

#include <cstdint>    // int64_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

namespace tbk_onednn {
namespace detail {

// One operation of a program under check; its input values and weights are known to exist (see
// shapes.hpp), their shapes are those of the values before it.
class operation_check {
 public:
  operation_check(const program& p, const operation& op, std::string where, const std::vector<shape_t>& shapes)
      : op(op), where(std::move(where)), program_(p), shapes_(shapes) {}

  const operation& op;
  const std::string where;  // "operation 3 (conv2d)"

  [[noreturn]] void fail(const std::string& what) const { throw std::invalid_argument(where + ": " + what); }

  // The operation's counts of inputs, ints, floats and weights are within these.
  void arity(std::size_t inputs_min, std::size_t inputs_max, std::size_t ints, std::size_t floats,
             std::size_t weights_min, std::size_t weights_max) const {
    if (op.inputs.size() < inputs_min || op.inputs.size() > inputs_max || op.ints.size() != ints ||
        op.floats.size() != floats || op.weights.size() < weights_min || op.weights.size() > weights_max) {
      fail("has " + std::to_string(op.inputs.size()) + " inputs, " + std::to_string(op.ints.size()) +
           " ints, " + std::to_string(op.floats.size()) + " floats and " +
           std::to_string(op.weights.size()) + " weights, which this operation cannot have");
    }
  }

  const shape_t& input(std::size_t k) const { return shapes_[op.inputs[k]]; }
  const shape_t& weight(std::size_t k) const { return program_.weights[op.weights[k]].shape; }

  void rank(const shape_t& s, std::size_t r, const char* what) const {
    if (s.size() != r) fail(std::string(what) + " has shape " + shape_text(s) + "; expected rank " + std::to_string(r));
  }

  // An int attribute that names one of an enum's values 0..last.
  template <class Enum>
  Enum kind_attribute(std::size_t k, Enum last, const char* what) const {
    if (op.ints[k] < 0 || op.ints[k] > static_cast<int64_t>(last)) fail(std::string("unknown ") + what);
    return static_cast<Enum>(op.ints[k]);
  }

  // Output size of a window of `extent` (dilated) sliding with `stride` over `in` padded by
  // `pad_a` and `pad_b`; below 1 is an error.
  int64_t window_output(int64_t in, int64_t pad_a, int64_t pad_b, int64_t extent, int64_t stride) const {
    const int64_t span = in + pad_a + pad_b - extent;
    if (span < 0) {
      fail("window of " + std::to_string(extent) + " is larger than the padded input of " +
           std::to_string(in + pad_a + pad_b));
    }
    return span / stride + 1;
  }

 private:
  const program& program_;
  const std::vector<shape_t>& shapes_;
};

}  // namespace detail
}  // namespace tbk_onednn
