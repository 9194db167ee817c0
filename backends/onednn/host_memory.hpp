// host_memory.hpp: the memory tbk_onednn's steps run in (each caller's arena of intermediates)
// and its packed weights live in, placed on transparent huge pages where Linux offers them.
//
// A network's activations and weights span megabytes and are walked once per call: thousands of
// 4 KiB pages, more than the TLB holds, but a few 2 MiB ones. On Linux, a buffer of
// `huge_page_threshold` bytes or more is mapped on its own (mmap), aligned to 2 MiB and advised
// MADV_HUGEPAGE (madvise(2); Linux >= 2.6.38), which the kernel honours when
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise" (Debian's default) and
// ignores under "never"; its pages become resident only when written. Smaller buffers, and every
// buffer elsewhere, are ordinary 64-byte-aligned heap memory. Measured: docs/onednn.md ("What
// happens when", huge pages).
#pragma once
#include <cstddef>  // std::size_t
#include <cstdint>  // std::uintptr_t, SIZE_MAX
#include <cstdlib>  // std::aligned_alloc, std::free
#include <new>      // std::bad_alloc
#include <utility>  // std::exchange
#include <vector>   // std::vector

#if defined(__linux__)
#include <sys/mman.h>  // mmap, munmap, madvise, MADV_HUGEPAGE
#endif
#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

namespace tbk_onednn {
namespace detail {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;  // x86-64's 2 MiB pages
inline constexpr std::size_t huge_page_threshold = std::size_t{1} << 20;

// `bytes` of uninitialised memory, 64-byte aligned; on Linux from `huge_page_threshold` up, a
// mapping of its own, 2 MiB-aligned and advised for huge pages. Throws std::bad_alloc.
class host_buffer {
 public:
  host_buffer() = default;
  explicit host_buffer(std::size_t bytes) {
    if (bytes > SIZE_MAX / 2) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= huge_page_threshold) {
      // mapped with a huge page to spare, then started at the first 2 MiB boundary in it
      mapped_bytes_ = (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes + huge_page_bytes;
      void* p = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      mapped_ = static_cast<char*>(p);
      const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(mapped_);
      data_ = mapped_ + (huge_page_bytes - at % huge_page_bytes) % huge_page_bytes;
      madvise(data_, mapped_bytes_ - static_cast<std::size_t>(data_ - mapped_), MADV_HUGEPAGE);  // advice only
      return;
    }
#endif
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);  // a multiple of 64, never 0
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
  }
  host_buffer(host_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        mapped_(std::exchange(other.mapped_, nullptr)),
        mapped_bytes_(std::exchange(other.mapped_bytes_, 0)) {}
  host_buffer& operator=(host_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      mapped_ = std::exchange(other.mapped_, nullptr);
      mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    }
    return *this;
  }
  host_buffer(const host_buffer&) = delete;
  host_buffer& operator=(const host_buffer&) = delete;
  ~host_buffer() { release(); }

  char* get() const { return data_; }
  // Whether it is a mapping of its own, advised for huge pages.
  bool on_huge_pages() const { return mapped_ != nullptr; }

 private:
  void release() noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (mapped_ != nullptr) {
      munmap(mapped_, mapped_bytes_);
      mapped_ = data_ = nullptr;
      return;
    }
#endif
    std::free(data_);
    data_ = nullptr;
  }

  char* data_ = nullptr;
  char* mapped_ = nullptr;  // the mapping, when data_ is in one
  std::size_t mapped_bytes_ = 0;
};

// Memory handed out in order, 64-byte aligned, where a method's packed weights live: first from
// a block of `huge_page_threshold` bytes of ordinary memory (a small method's weights take no
// huge page), then from blocks of 64 MiB of address space (or one allocation's size, if larger)
// on huge pages, which the weights share. A mapped block's pages are resident only once written,
// so its unused tail costs at most one huge page. Nothing is freed before the pool is.
class host_pool {
 public:
  static constexpr std::size_t block_bytes = std::size_t{64} << 20;

  char* allocate(std::size_t bytes) {
    if (bytes > SIZE_MAX / 2) throw std::bad_alloc();
    bytes = (bytes + 63) / 64 * 64;
    if (used_ + bytes > capacity_) {
      const bool small = blocks_.empty() && bytes < huge_page_threshold;
      capacity_ = small ? huge_page_threshold - 64 : (bytes > block_bytes ? bytes : block_bytes);
      blocks_.emplace_back(capacity_);
      used_ = 0;
    }
    char* p = blocks_.back().get() + used_;
    used_ += bytes;
    return p;
  }

 private:
  std::vector<host_buffer> blocks_;
  std::size_t capacity_ = 0, used_ = 0;
};

// Gives the C library's free memory back to the system (glibc's malloc_trim(3)): the payload's
// decoded weights, freed as each is packed into a host_pool, would else stay resident in the
// heap. Called when a method is compiled at load (onednn_backend.hpp), never at call time (where
// other shapes are built): it walks and locks every malloc arena of the process.
inline void return_freed_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace detail
}  // namespace tbk_onednn
