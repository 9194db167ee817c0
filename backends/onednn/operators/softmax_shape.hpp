// softmax_shape.hpp: the softmax operation in the payload (the dimension) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in softmax.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace softmax {

// softmax: inputs x; ints dim (0 to rank - 1). Result: x's shape, each slice along dim summing to 1.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 1, 0, 0, 0);
  if (c.op.ints[0] < 0 || c.op.ints[0] >= static_cast<int64_t>(c.input(0).size())) c.fail("dim out of range");
  return c.input(0);
}

}  // namespace softmax
}  // namespace operators
}  // namespace tbk_onednn
