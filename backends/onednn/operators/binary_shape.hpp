// binary_shape.hpp: the binary operation in the payload (which arithmetic, its operands) and its
// shape rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the
// oneDNN primitive are in binary.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {

enum class binary_kind : int64_t { add = 0, sub = 1, mul = 2, div = 3 };

namespace operators {
namespace binary {

// binary: a (op) b. ints binary_kind; operands: two values, or a value and a weight. b has a's
// rank and broadcasts to a (each dimension equal or 1). Result: a's shape.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 2, 1, 0, 0, 1);
  if (c.op.inputs.size() + c.op.weights.size() != 2) c.fail("needs exactly two operands");
  c.kind_attribute(0, binary_kind::div, "binary kind");
  const shape_t& a = c.input(0);
  const shape_t& b = c.op.inputs.size() == 2 ? c.input(1) : c.weight(0);
  if (a.size() != b.size()) c.fail("operands of rank " + std::to_string(a.size()) + " and " + std::to_string(b.size()));
  for (std::size_t d = 0; d < a.size(); ++d) {
    if (b[d] != a[d] && b[d] != 1) c.fail("operand " + shape_text(b) + " does not broadcast to " + shape_text(a));
  }
  return a;
}

}  // namespace binary
}  // namespace operators
}  // namespace tbk_onednn
