// pooling_shape.hpp: the pool operation in the payload (max or average, window) and its shape
// rule. Standard C++ only (read by the decoder and its fuzz target); lowering and the oneDNN
// primitive are in pooling.hpp.
#pragma once
#include "../shape_check.hpp"

namespace tbk_onednn {

enum class pool_kind : int64_t { max = 0, avg_include_padding = 1, avg_exclude_padding = 2 };

namespace operators {
namespace pooling {

// pool: inputs x [N, C, H, W]; ints pool_kind, kernel h/w, stride h/w, padding top/left/bottom/
// right (each below the kernel). Result [N, C, OH, OW].
inline shape_t shape(const detail::operation_check& c) {
  c.arity(1, 1, 9, 0, 0, 0);
  const shape_t& x = c.input(0);
  c.rank(x, 4, "the input");
  c.kind_attribute(0, pool_kind::avg_exclude_padding, "pool kind");
  const auto& i = c.op.ints;
  const int64_t kh = i[1], kw = i[2], sh = i[3], sw = i[4], pt = i[5], pl = i[6], pb = i[7], pr = i[8];
  // each bound alone first, so that the sums after them cannot overflow (found by fuzzing)
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || sh > max_window || sw > max_window || pt < 0 || pl < 0 ||
      pb < 0 || pr < 0 || pt >= kh || pb >= kh || pl >= kw || pr >= kw || kh > x[2] + pt + pb ||
      kw > x[3] + pl + pr) {
    c.fail("kernel, stride or padding out of range");
  }
  return {x[0], x[1], c.window_output(x[2], pt, pb, kh, sh), c.window_output(x[3], pl, pr, kw, sw)};
}

}  // namespace pooling
}  // namespace operators
}  // namespace tbk_onednn
