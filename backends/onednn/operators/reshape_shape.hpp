// reshape_shape.hpp: the reshape operation in the payload (the new shape) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in reshape.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace reshape {

// reshape: inputs x; ints the new shape (rank 1 to max_rank, as many elements as x). Result: the
// new shape, x's elements in row-major order.
inline shape_t shape(const detail::operation_check& c) {
  const operation& op = c.op;
  if (op.inputs.size() != 1 || op.ints.empty() || op.ints.size() > max_rank || !op.floats.empty() ||
      !op.weights.empty()) {
    c.fail("needs one input and a shape of rank 1 to " + std::to_string(max_rank));
  }
  const shape_t& out = op.ints;
  if (element_count(out, c.where + ": the new shape") != element_count(c.input(0), c.where + ": the input")) {
    c.fail("cannot reshape " + shape_text(c.input(0)) + " to " + shape_text(out));
  }
  return out;
}

}  // namespace reshape
}  // namespace operators
}  // namespace tbk_onednn
