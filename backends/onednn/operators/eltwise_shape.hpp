// eltwise_shape.hpp: the eltwise operation in the payload (which function, its parameters) and
// its shape rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the
// oneDNN primitive are in eltwise.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {

// The function an eltwise operation applies, element by element (ints[0]).
enum class eltwise_kind : int64_t {
  relu = 0,         // max(x, 0)
  clamp = 1,        // min(max(x, alpha), beta) (relu6, hardtanh, clamp)
  hardswish = 2,
  sigmoid = 3,
  hardsigmoid = 4,  // clamp(x / 6 + 1 / 2, 0, 1)
  tanh = 5,
  affine = 6,       // alpha * x + beta (a tensor and a number: add, sub, mul, div)
  gelu = 7,         // exact (erf) GELU
  silu = 8,         // x * sigmoid(x)
  gelu_tanh = 9,    // GELU's tanh approximation (approximate='tanh')
  abs = 10,
  exp = 11,
  log = 12,
  sqrt = 13,
  elu = 14,         // x > 0 ? x : alpha * (exp(x) - 1)
  leaky_relu = 15,  // x > 0 ? x : alpha * x
  pow = 16,         // x ** beta (rsqrt: beta -0.5)
  round = 17,       // to the nearest integer, halves to even
  log2 = 18,
  log10 = 19,
};

namespace operators {
namespace eltwise {

// eltwise: inputs x; ints eltwise_kind; floats alpha, beta (not NaN). Result: x's shape.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 1, 2, 0, 0);
  c.kind_attribute(0, eltwise_kind::log10, "eltwise kind");
  if (!(c.op.floats[0] == c.op.floats[0]) || !(c.op.floats[1] == c.op.floats[1])) c.fail("alpha or beta is NaN");
  return c.input(0);
}

}  // namespace eltwise
}  // namespace operators
}  // namespace tbk_onednn
