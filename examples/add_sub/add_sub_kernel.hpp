// add_sub_kernel.hpp: the add/sub backend's kernel: accum = x0 + x1 + ..., sub_accum = x0 - x1
// - ..., following ATen's broadcasting and type promotion. Two same-shaped contiguous float
// tensors (the common case) take one fused pass that writes both outputs; everything else goes
// through ATen. Every call returns new tensor objects. On request (`recycle`), a large output is
// written into the memory of this thread's earlier output once nothing holds that any more.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>  // at::parallel_for

#include <cstdint>  // std::uintptr_t
#include <utility>  // std::pair

#include <unistd.h>  // sysconf: the last-level cache's size

#if defined(__SSE__)
#include <xmmintrin.h>  // _mm_stream_ps: stores that bypass the cache
#endif

namespace add_sub_kernel {

// Outputs at least this large (1 MiB) are worth recycling: below it the allocator's own free
// lists serve a new buffer without page faults.
inline constexpr int64_t recycle_min_bytes = int64_t(1) << 20;

// A new output tensor of `like`'s shape and dtype. With `cache` (one per thread and output), its
// memory is the cached storage when nothing but the cache holds it (no tensor, view or numpy
// array of an earlier result): reusing warm pages saves the page faults of a fresh allocation,
// which dominate for large tensors. The tensor object is always new, so nothing a caller did to
// an earlier result (in-place edits, t_(), requires_grad_()) can reach this one; its values are
// all written by the caller. The cache keeps one buffer per output for the life of the thread.
// `recycled` says whether the memory came from the cache (warm, its pages mapped).
inline at::Tensor new_output(const at::Tensor& like, c10::Storage* cache, bool& recycled) {
  const auto options = like.options().memory_format(at::MemoryFormat::Contiguous);
  const int64_t bytes = like.numel() * static_cast<int64_t>(like.element_size());
  recycled = false;
  if (cache == nullptr || bytes < recycle_min_bytes) return at::empty(like.sizes(), options);
  if (cache->unsafeGetStorageImpl() != nullptr && cache->use_count() == 1 &&
      static_cast<int64_t>(cache->nbytes()) == bytes) {
    recycled = true;
    return at::empty({0}, options).set_(*cache, 0, like.sizes());
  }
  at::Tensor fresh = at::empty(like.sizes(), options);
  *cache = fresh.storage();
  return fresh;
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

// Recycled outputs larger than this are written with non-temporal stores: an eighth of the
// last-level cache (shared with the inputs, other cores and other processes), 32 MB where it
// cannot be read. Below it, ordinary stores leave the results in the cache for whoever reads
// them next (the old fixed threshold of 4 MB per output streamed to memory on a machine with a
// 480 MB cache). Fresh outputs are never streamed: their pages are zeroed by the kernel on first
// touch, into the cache, and streaming past them made 64 MB outputs 1.6 times slower (114 ms
// against 62 ms per call, benchmarks/bench_add_sub 7_tbk_native/16777216).
inline int64_t stream_min_bytes() {
  static const int64_t bytes = [] {
#if defined(_SC_LEVEL3_CACHE_SIZE)
    const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc > 0) return static_cast<int64_t>(llc) / 8;
#endif
    return int64_t(32) << 20;
  }();
  return bytes;
}

// One pass over a and b writing a + b and a - b, into recycled memory when `recycle` is set.
inline std::pair<at::Tensor, at::Tensor> fused_add_sub(const at::Tensor& a, const at::Tensor& b,
                                                       bool recycle) {
  thread_local c10::Storage cached_sum, cached_difference;
  bool warm_sum = false, warm_difference = false;
  at::Tensor sum = new_output(a, recycle ? &cached_sum : nullptr, warm_sum);
  at::Tensor difference = new_output(a, recycle ? &cached_difference : nullptr, warm_difference);
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* ps = sum.data_ptr<float>();
  float* pd = difference.data_ptr<float>();
  const bool stream = warm_sum && warm_difference &&
                      2 * a.numel() * static_cast<int64_t>(sizeof(float)) > stream_min_bytes();
  at::parallel_for(0, a.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    add_sub_range(pa, pb, ps, pd, begin, end, stream);
  });
  return {sum, difference};
}

// accum and sub_accum of `first` and `others` (any range of tensors); never aliases an input.
template <class Tensors>
std::pair<at::Tensor, at::Tensor> accumulate(const at::Tensor& first, const Tensors& others,
                                             bool recycle = false) {
  if (others.size() == 1 && fusable(first, others[0])) {
    return fused_add_sub(first, others[0], recycle);
  }
  if (others.size() == 0) return {first.clone(), first.clone()};
  at::Tensor accum = first, sub_accum = first;
  for (const at::Tensor& x : others) accum = accum + x, sub_accum = sub_accum - x;
  return {accum, sub_accum};
}

}  // namespace add_sub_kernel
