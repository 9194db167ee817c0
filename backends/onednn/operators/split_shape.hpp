// split_shape.hpp: the slice operation in the payload (a dimension, a start and a length) and its
// shape rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the
// oneDNN reorder are in split.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace split {

// slice: inputs x; ints dim (0 to rank - 1), start (0 or more) and length (1 or more), within x's
// size along dim. Result: x's shape with `length` along dim, the elements x[..., start:start +
// length, ...].
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 3, 0, 0, 0);
  const shape_t& x = c.input(0);
  const int64_t dim = c.op.ints[0], start = c.op.ints[1], length = c.op.ints[2];
  if (dim < 0 || dim >= static_cast<int64_t>(x.size())) c.fail("dim " + std::to_string(dim) + " out of range");
  const int64_t size = x[static_cast<std::size_t>(dim)];
  if (start < 0 || length < 1 || start > size || length > size - start) {
    c.fail("slice " + std::to_string(start) + " + " + std::to_string(length) + " does not fit size " +
           std::to_string(size) + " of dim " + std::to_string(dim));
  }
  shape_t out = x;
  out[static_cast<std::size_t>(dim)] = length;
  return out;
}

}  // namespace split
}  // namespace operators
}  // namespace tbk_onednn
