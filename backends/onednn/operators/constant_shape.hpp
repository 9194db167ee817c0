// constant_shape.hpp: the constant operation in the payload (a weight made a value) and its shape
// rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN
// reorder are in constant.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace constant {

// constant: no inputs; weights w. Result: w's shape and values.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(0, 0, 0, 0, 1, 1);
  return c.weight(0);
}

}  // namespace constant
}  // namespace operators
}  // namespace tbk_onednn
