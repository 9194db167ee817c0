// convolution_shape.hpp: the conv2d operation in the payload (attributes) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in convolution.hpp.
#pragma once
#include "quantize_shape.hpp"  // check_quantization
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace convolution {

// conv2d: inputs x [N, C, H, W]; ints stride h/w, padding h/w, dilation h/w, groups; weights
// w [OC, C / groups, KH, KW] [, bias [OC]]. Result [N, OC, OH, OW] (PyTorch's conv2d).
// In int8 (PT2E quantization): x int8, ints also its data type and zero point (quantized_type),
// floats its scale; weights w (integers -128..127), its per-channel scales [OC] and bias [OC]
// (zeros where the layer has none); the result in fp32.
inline bool is_int8(const operation& op) { return op.ints.size() == 9; }

inline shape_t shape(const detail::operation_check& c) {
  if (is_int8(c.op)) {
    c.arity(1, 1, 9, 1, 3, 3);
    quantize::check_quantization(c, 7, 0);
  } else {
    c.arity(1, 1, 7, 0, 1, 2);
  }
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
  for (std::size_t k = 1; k < c.op.weights.size(); ++k) {
    if (c.weight(k) != shape_t{oc}) {
      c.fail(std::string(is_int8(c.op) && k == 1 ? "weight scales have" : "bias has") + " shape " +
             shape_text(c.weight(k)) + "; expected [" + std::to_string(oc) + "]");
    }
  }
  return {x[0], oc, c.window_output(x[2], ph, ph, dh * (w[2] - 1) + 1, sh),
          c.window_output(x[3], pw, pw, dw * (w[3] - 1) + 1, sw)};
}

}  // namespace convolution
}  // namespace operators
}  // namespace tbk_onednn
