// layouts.hpp: the memory layouts tbk_onednn describes values in: plain (the payload's and the
// method's edges), oneDNN's choice ("any": what convolutions and linear layers take), the ISA's
// blocked layout, and the layouts to try when a primitive has only the reference implementation
// for the one its input has; each in fp32 unless a data type is given (bf16: precision.hpp).
#pragma once
#include "implementation.hpp"  // activation_block
#include "program.hpp"         // shape_t

#include <dnnl.hpp>

#include <vector>  // std::vector

namespace tbk_onednn {
namespace detail {

using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;

inline md plain_desc(const shape_t& shape, dt type = dt::f32) {
  dnnl::memory::dims strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return md(shape, type, strides);
}
inline md any_desc(const shape_t& shape, dt type = dt::f32) { return md(shape, type, dnnl::memory::format_tag::any); }

// The layout `m` describes with data type `type` (oneDNN 2.6's descriptors give strides and blocks
// in elements, so only the data type changes).
inline md with_data_type(const md& m, dt type) {
  dnnl_memory_desc_t raw = m.data;
  raw.data_type = dnnl::memory::convert_to_c(type);
  return md(raw);
}

// A 4-D activation blocked by the channel block of the ISA's direct convolution kernels
// (activation_block), when its channels allow it; else a zero descriptor.
inline md blocked_desc(const shape_t& shape, dt type = dt::f32) {
  const int block = activation_block();
  if (shape.size() != 4 || block == 0 || shape[1] % block != 0) return md();
  return md(shape, type, block == 16 ? dnnl::memory::format_tag::nChw16c : dnnl::memory::format_tag::nChw8c);
}

// The layouts to try, in order, when a primitive has only oneDNN's reference implementation for
// the layout its input has: blocked for the ISA (blocked_desc), channels last (nhwc), plain.
// oneDNN 2.6's pooling, binary and concat kernels each take some layouts only (AVX-512 pooling
// has no kernel for nChw8c; binary none for a blocked operand broadcast from another layout), so
// a value made in one layout may need a reorder before them.
enum class fallback { blocked, channels_last, plain };
inline constexpr fallback fallbacks[] = {fallback::blocked, fallback::channels_last, fallback::plain};

// A value of `shape` in the fallback layout `kind`, or a zero descriptor where that layout does
// not apply (blocked and channels last are for 4-D values; blocked needs whole channel blocks).
inline md fallback_layout(const shape_t& shape, fallback kind, dt type = dt::f32) {
  switch (kind) {
    case fallback::blocked: return blocked_desc(shape, type);
    case fallback::channels_last: return shape.size() == 4 ? md(shape, type, dnnl::memory::format_tag::nhwc) : md();
    case fallback::plain: return plain_desc(shape, type);
  }
  return md();
}

}  // namespace detail
}  // namespace tbk_onednn
