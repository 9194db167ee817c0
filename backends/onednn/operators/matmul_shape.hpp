// matmul_shape.hpp: the matmul operation in the payload (two computed operands, the second read
// transposed or not, a scale) and its shape rule. Standard C++ only (read by the decoder and its
// fuzz target); lowering and the oneDNN primitive are in matmul.hpp.
#pragma once
#include "../shape_check.hpp"

#include <algorithm>  // std::max

namespace tbk_onednn {
namespace operators {
namespace matmul {

// matmul: inputs a [..., M, K] and b [..., K, N] (transpose_b: b is [..., N, K], read as its
// transpose), of one rank from 2 to 5, their batch dimensions equal or 1 (broadcast); ints
// transpose_b (0 or 1); floats scale (finite). Result [..., M, N]: scale * a @ b, batch by batch.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(2, 2, 1, 1, 0, 0);
  const shape_t& a = c.input(0);
  const shape_t& b = c.input(1);
  const bool transpose_b = c.op.ints[0] == 1;
  if (c.op.ints[0] != 0 && !transpose_b) c.fail("transpose_b must be 0 or 1");
  if (!(c.op.floats[0] - c.op.floats[0] == 0)) c.fail("the scale must be finite");
  if (a.size() < 2 || a.size() > 5 || b.size() != a.size()) {
    c.fail("operands " + shape_text(a) + " and " + shape_text(b) + " must have one rank from 2 to 5");
  }
  const std::size_t r = a.size();
  const int64_t k = transpose_b ? b[r - 1] : b[r - 2], n = transpose_b ? b[r - 2] : b[r - 1];
  if (a[r - 1] != k) c.fail("operands " + shape_text(a) + " and " + shape_text(b) + " do not multiply");
  shape_t out;
  for (std::size_t d = 0; d + 2 < r; ++d) {
    if (a[d] != b[d] && a[d] != 1 && b[d] != 1) c.fail("batch dimensions of " + shape_text(a) + " and " + shape_text(b) + " differ");
    out.push_back(std::max(a[d], b[d]));
  }
  out.push_back(a[r - 2]);
  out.push_back(n);
  return out;
}

}  // namespace matmul
}  // namespace operators
}  // namespace tbk_onednn
