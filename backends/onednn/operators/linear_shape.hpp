// linear_shape.hpp: the linear operation in the payload (attributes) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in linear.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace linear {

// linear: inputs x [N, in]; weights w [out, in] [, bias [out]]. Result [N, out] (x W^T + b).
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 0, 0, 1, 2);
  const shape_t& x = c.input(0);
  const shape_t& w = c.weight(0);
  c.rank(x, 2, "the input");
  c.rank(w, 2, "the weight");
  if (w[1] != x[1]) c.fail("weight " + shape_text(w) + " does not fit input " + shape_text(x));
  if (c.op.weights.size() == 2 && c.weight(1) != shape_t{w[0]}) c.fail("bias has shape " + shape_text(c.weight(1)));
  return {x[0], w[0]};
}

}  // namespace linear
}  // namespace operators
}  // namespace tbk_onednn
