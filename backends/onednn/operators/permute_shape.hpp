// permute_shape.hpp: the permute operation in the payload (the order of dimensions) and its shape
// rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN
// reorder are in permute.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace permute {

// permute: inputs x; ints dims (one per dimension of x, each of 0 to rank - 1 once). Result:
// dimension i of the result is dimension dims[i] of x (torch.permute's rule), its elements
// row-major.
inline shape_t shape(const detail::operation_check& c) {
  const operation& op = c.op;
  if (op.inputs.size() != 1) c.fail("needs one input");  // before its shape is read
  const shape_t& x = c.input(0);
  c.arity(1, 1, x.size(), 0, 0, 0);
  std::vector<bool> seen(x.size(), false);
  shape_t out;
  for (int64_t d : op.ints) {
    if (d < 0 || d >= static_cast<int64_t>(x.size()) || seen[static_cast<std::size_t>(d)]) {
      c.fail("dims must name each dimension of the input " + shape_text(x) + " once");
    }
    seen[static_cast<std::size_t>(d)] = true;
    out.push_back(x[static_cast<std::size_t>(d)]);
  }
  return out;
}

}  // namespace permute
}  // namespace operators
}  // namespace tbk_onednn
