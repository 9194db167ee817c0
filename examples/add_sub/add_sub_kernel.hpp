// add_sub_kernel.hpp: the add/sub backend's kernel: accum = x0 + x1 + ..., sub_accum = x0 - x1
// - ..., following ATen's broadcasting and type promotion. Two same-shaped contiguous float
// tensors (the common case) take one fused pass that writes both outputs, into buffers recycled
// from earlier calls when the caller no longer holds them; everything else goes through ATen.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>  // at::parallel_for

#include <cstdint>  // std::uintptr_t
#include <utility>  // std::pair

#if defined(__SSE__)
#include <xmmintrin.h>  // _mm_stream_ps: stores that bypass the cache
#endif

namespace add_sub_kernel {

// A buffer for an output of `like`'s shape and dtype: the one this thread returned last time
// when nobody else holds it any more (no tensor, no view), else a new one. Reusing warm pages
// saves the page faults of a fresh allocation, which dominate for large tensors.
inline at::Tensor recycled_output(at::Tensor& cached, const at::Tensor& like) {
  if (cached.defined() && cached.use_count() == 1 && cached.storage().use_count() == 1 &&
      cached.sizes() == like.sizes() && cached.scalar_type() == like.scalar_type()) {
    return cached;
  }
  cached = at::empty_like(like, at::MemoryFormat::Contiguous);
  return cached;
}

inline bool fusable(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.device().is_cpu() &&
         b.device().is_cpu() && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous() &&
         !a.requires_grad() && !b.requires_grad();
}

// Elements [begin, end) of s = a + b and d = a - b. With `stream`, whole 16-byte blocks are
// written with non-temporal stores, which skip reading each cache line before writing it (as
// memcpy does for large copies): for outputs larger than the caches that is a third less
// memory traffic. s and d must have the same alignment (two fresh ATen buffers do).
inline void add_sub_range(const float* __restrict a, const float* __restrict b,
                          float* __restrict s, float* __restrict d, int64_t begin, int64_t end,
                          bool stream) {
  int64_t i = begin;
#if defined(__SSE__)
  if (stream && (reinterpret_cast<std::uintptr_t>(s) & 15) == (reinterpret_cast<std::uintptr_t>(d) & 15)) {
    for (; i < end && (reinterpret_cast<std::uintptr_t>(s + i) & 15) != 0; ++i) {
      s[i] = a[i] + b[i];
      d[i] = a[i] - b[i];
    }
    for (; i + 4 <= end; i += 4) {
      const __m128 va = _mm_loadu_ps(a + i), vb = _mm_loadu_ps(b + i);
      _mm_stream_ps(s + i, _mm_add_ps(va, vb));
      _mm_stream_ps(d + i, _mm_sub_ps(va, vb));
    }
    _mm_sfence();  // make the streamed stores visible before the outputs are handed out
  }
#else
  (void)stream;
#endif
  for (; i < end; ++i) {
    s[i] = a[i] + b[i];
    d[i] = a[i] - b[i];
  }
}

// One pass over a and b writing a + b and a - b.
inline std::pair<at::Tensor, at::Tensor> fused_add_sub(const at::Tensor& a, const at::Tensor& b) {
  thread_local at::Tensor cached_sum, cached_difference;
  at::Tensor sum = recycled_output(cached_sum, a);
  at::Tensor difference = recycled_output(cached_difference, a);
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* ps = sum.data_ptr<float>();
  float* pd = difference.data_ptr<float>();
  const bool stream = a.numel() >= (int64_t(1) << 20);  // 4 MB per tensor: past the caches
  at::parallel_for(0, a.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    add_sub_range(pa, pb, ps, pd, begin, end, stream);
  });
  return {sum, difference};
}

// accum and sub_accum of `first` and `others` (any range of tensors); never aliases an input.
template <class Tensors>
std::pair<at::Tensor, at::Tensor> accumulate(const at::Tensor& first, const Tensors& others) {
  if (others.size() == 1 && fusable(first, others[0])) return fused_add_sub(first, others[0]);
  if (others.size() == 0) return {first.clone(), first.clone()};
  at::Tensor accum = first, sub_accum = first;
  for (const at::Tensor& x : others) accum = accum + x, sub_accum = sub_accum - x;
  return {accum, sub_accum};
}

}  // namespace add_sub_kernel
