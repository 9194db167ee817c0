// host_memory.hpp: the memory tbk_onednn's steps run in (each caller's arena of intermediates)
// and its packed weights live in, placed on transparent huge pages where Linux offers them.
//
// A network's activations and weights span megabytes and are walked once per call: thousands of
// 4 KiB pages, more than the TLB holds, but a few 2 MiB ones. Memory here is aligned to 2 MiB and advised
// MADV_HUGEPAGE (madvise(2); Linux >= 2.6.38), which the kernel honours when
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise" (Debian's default) and
// ignores under "never". Measured: docs/onednn.md ("What happens when", huge pages). Elsewhere,
// and for blocks under 1 MiB, the memory is ordinary 64-byte-aligned memory.
#pragma once
#include <cstddef>    // std::size_t
#include <cstdlib>    // std::aligned_alloc, std::free
#include <memory>     // std::unique_ptr
#include <new>        // std::bad_alloc
#include <vector>     // std::vector

#if defined(__linux__)
#include <sys/mman.h>  // madvise, MADV_HUGEPAGE
#endif
#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

namespace tbk_onednn {
namespace detail {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;  // x86-64's 2 MiB pages
inline constexpr std::size_t huge_page_threshold = std::size_t{1} << 20;

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

// `bytes` of uninitialised memory, 64-byte aligned; from `huge_page_threshold` up, 2 MiB aligned
// (its size rounded up to whole pages) and advised for huge pages. Throws std::bad_alloc.
inline std::unique_ptr<char, free_deleter> host_allocate(std::size_t bytes) {
  const bool huge = bytes >= huge_page_threshold;
  const std::size_t alignment = huge ? huge_page_bytes : 64;
  const std::size_t size = (bytes + alignment - 1) / alignment * alignment;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(alignment, size == 0 ? alignment : size);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice: where it fails, the memory still serves
#endif
  return std::unique_ptr<char, free_deleter>(static_cast<char*>(p));
}

// Memory handed out in order, 64-byte aligned, from blocks of 64 MiB of address space (or one
// allocation's size, if larger) made by host_allocate: where a method's packed weights live, so
// that they share huge pages. A block's pages are resident only once written, so its unused
// tail costs at most one huge page. Nothing is freed before the pool is.
class host_pool {
 public:
  static constexpr std::size_t block_bytes = std::size_t{64} << 20;

  char* allocate(std::size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (blocks_.empty() || used_ + bytes > capacity_) {
      capacity_ = bytes > block_bytes ? bytes : block_bytes;
      blocks_.push_back(host_allocate(capacity_));
      used_ = 0;
    }
    char* p = blocks_.back().get() + used_;
    used_ += bytes;
    return p;
  }

 private:
  std::vector<std::unique_ptr<char, free_deleter>> blocks_;
  std::size_t capacity_ = 0, used_ = 0;
};

// Gives the C library's free memory back to the system: the payload's decoded weights, freed as
// each is packed into a host_pool, would else stay resident in the heap (glibc's malloc_trim(3)).
inline void return_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace detail
}  // namespace tbk_onednn
