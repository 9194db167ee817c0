// concat_shape.hpp: the cat operation in the payload (the dimension) and its shape rule. Standard
// C++ only (read by the decoder and its fuzz target); lowering and the oneDNN primitive are in
// concat.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {
namespace operators {
namespace concat {

// cat: inputs 1 to 64 values of one rank, equal outside dim; ints dim (0 to rank - 1). Result:
// their shape with the sizes along dim summed.
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 64, 1, 0, 0, 0);
  const shape_t& first = c.input(0);
  const int64_t dim = c.op.ints[0];
  if (dim < 0 || dim >= static_cast<int64_t>(first.size())) c.fail("dim " + std::to_string(dim) + " out of range");
  shape_t out = first;
  for (std::size_t k = 1; k < c.op.inputs.size(); ++k) {
    const shape_t& s = c.input(k);
    if (s.size() != first.size()) c.fail("inputs of different ranks");
    for (std::size_t d = 0; d < s.size(); ++d) {
      if (static_cast<int64_t>(d) != dim && s[d] != first[d]) c.fail("inputs differ outside dim " + std::to_string(dim));
    }
    out[static_cast<std::size_t>(dim)] += s[static_cast<std::size_t>(dim)];  // at most 64 * 2^31
  }
  return out;
}

}  // namespace concat
}  // namespace operators
}  // namespace tbk_onednn
