// layer_norm_shape.hpp: the layer_norm operation in the payload (epsilon, scale and shift) and its
// shape rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN
// primitive are in layer_norm.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace layer_norm {

// layer_norm: inputs x (rank 2 to 5); floats eps (0 or more); weights scale [C], shift [C], C the
// last dimension of x. Result: x's shape, each row along the last dimension normalized to mean 0
// and variance 1 (biased, plus eps), then scaled and shifted.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 0, 1, 2, 2);
  const shape_t& x = c.input(0);
  if (x.size() < 2 || x.size() > 5) c.fail("the input has shape " + shape_text(x) + "; expected rank 2 to 5");
  if (!(c.op.floats[0] >= 0)) c.fail("eps must be 0 or more");
  const shape_t channels{x.back()};
  if (c.weight(0) != channels || c.weight(1) != channels) {
    c.fail("scale " + shape_text(c.weight(0)) + " and shift " + shape_text(c.weight(1)) + " must both be " +
           shape_text(channels));
  }
  return x;
}

}  // namespace layer_norm
}  // namespace operators
}  // namespace tbk_onednn
