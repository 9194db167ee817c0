// convolution_shape.hpp: the conv2d operation in the payload (attributes) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in convolution.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace convolution {

// conv2d: inputs x [N, C, H, W]; ints stride h/w, padding h/w, dilation h/w, groups; weights
// w [OC, C / groups, KH, KW] [, bias [OC]]. Result [N, OC, OH, OW] (PyTorch's conv2d).
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 7, 0, 1, 2);
  const shape_t& x = c.input(0);
  const shape_t& w = c.weight(0);
  c.rank(x, 4, "the input");
  c.rank(w, 4, "the weight");
  const auto& i = c.op.ints;
  const int64_t sh = i[0], sw = i[1], ph = i[2], pw = i[3], dh = i[4], dw = i[5], groups = i[6];
  if (sh < 1 || sw < 1 || ph < 0 || pw < 0 || dh < 1 || dw < 1 || groups < 1 || sh > max_window ||
      sw > max_window || ph > max_window || pw > max_window || dh > max_window || dw > max_window) {
    c.fail("stride, padding, dilation or groups out of range");
  }
  const int64_t oc = w[0];
  if (x[1] % groups != 0 || oc % groups != 0 || w[1] != x[1] / groups) {
    c.fail("weight " + shape_text(w) + " does not fit input channels " + std::to_string(x[1]) + " in " +
           std::to_string(groups) + " groups");
  }
  if (c.op.weights.size() == 2 && c.weight(1) != shape_t{oc}) {
    c.fail("bias has shape " + shape_text(c.weight(1)) + "; expected [" + std::to_string(oc) + "]");
  }
  return {x[0], oc, c.window_output(x[2], ph, ph, dh * (w[2] - 1) + 1, sh),
          c.window_output(x[3], pw, pw, dw * (w[3] - 1) + 1, sw)};
}

}  // namespace convolution
}  // namespace operators
}  // namespace tbk_onednn
