// quantize_shape.hpp: the quantize and dequantize operations in the payload (a tensor's int8
// data type, zero point and scale, as PT2E quantization writes them: quantized_decomposed's
// quantize_per_tensor and dequantize_per_tensor) and their shape rule, and the check of the same
// attributes where an int8 convolution or linear operation carries its input's. Standard C++
// only (read by the decoder and its fuzz target); lowering and the oneDNN primitives are in
// quantize.hpp.
#pragma once
#include "../shape_check.hpp"

#include <cmath>  // std::isfinite

namespace tbk_onednn {

// The data type of an int8 value (an attribute: ints[k]).
enum class quantized_type : int64_t {
  u8 = 0,  // uint8, 0..255 (torch.uint8: X86InductorQuantizer's activations)
  s8 = 1,  // int8, -128..127 (torch.int8: XNNPACKQuantizer's activations, every quantizer's weights)
};

inline int64_t quantized_min(quantized_type t) { return t == quantized_type::u8 ? 0 : -128; }
inline int64_t quantized_max(quantized_type t) { return t == quantized_type::u8 ? 255 : 127; }
inline const char* quantized_type_name(quantized_type t) { return t == quantized_type::u8 ? "u8" : "s8"; }

namespace operators {
namespace quantize {

// The int8 data type ints[type_at], the zero point ints[type_at + 1] (within the type's range) and
// the scale floats[scale_at] (finite, above 0) of an operation; an error naming the wrong one.
inline quantized_type check_quantization(const detail::operation_check& c, std::size_t type_at, std::size_t scale_at) {
  const quantized_type type = c.kind_attribute(type_at, quantized_type::s8, "int8 data type");
  const int64_t zero_point = c.op.ints[type_at + 1];
  if (zero_point < quantized_min(type) || zero_point > quantized_max(type)) {
    c.fail("zero point " + std::to_string(zero_point) + " is outside " + quantized_type_name(type) + "'s range");
  }
  const float scale = c.op.floats[scale_at];
  if (!std::isfinite(scale) || !(scale > 0)) c.fail("scale " + std::to_string(scale) + " must be finite and above 0");
  return type;
}

// quantize: inputs x (fp32); ints data type (quantized_type), zero point; floats scale. Result: x's
// shape, clamp(round(x / scale) + zero point) in that type (PyTorch's quantize_per_tensor).
// dequantize: the same attributes, x in that type; result (x - zero point) * scale in fp32.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 2, 1, 0, 0);
  check_quantization(c, 0, 0);
  return c.input(0);
}

}  // namespace quantize
}  // namespace operators
}  // namespace tbk_onednn
