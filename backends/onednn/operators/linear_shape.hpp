// linear_shape.hpp: the linear operation in the payload (attributes) and its shape rule.
// Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive
// are in linear.hpp.
#pragma once
#include "quantize_shape.hpp"  // check_quantization
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace linear {

// linear: inputs x [N, in]; weights w [out, in] [, bias [out]]. Result [N, out] (x W^T + b).
// In int8 (PT2E quantization): x int8, ints its data type and zero point (quantized_type), floats
// its scale; weights w (integers -128..127), its per-channel scales [out] and bias [out] (zeros
// where the layer has none); the result in fp32.
inline bool is_int8(const operation& op) { return op.ints.size() == 2; }

inline shape_t shape(const detail::operation_check& c) {
  if (is_int8(c.op)) {
    c.arity(1, 1, 2, 1, 3, 3);
    quantize::check_quantization(c, 0, 0);
  } else {
    c.arity(1, 1, 0, 0, 1, 2);
  }
  const shape_t& x = c.input(0);
  const shape_t& w = c.weight(0);
  c.rank(x, 2, "the input");
  c.rank(w, 2, "the weight");
  if (w[1] != x[1]) c.fail("weight " + shape_text(w) + " does not fit input " + shape_text(x));
  for (std::size_t k = 1; k < c.op.weights.size(); ++k) {
    if (c.weight(k) != shape_t{w[0]}) {
      c.fail(std::string(is_int8(c.op) && k == 1 ? "weight scales have" : "bias has") + " shape " + shape_text(c.weight(k)));
    }
  }
  return {x[0], w[0]};
}

}  // namespace linear
}  // namespace operators
}  // namespace tbk_onednn
