// Large buffers on transparent huge pages. The KV, row-major K and indexer caches are read at
// scattered positions (DSA gathers a few thousand rows per layer and token from a cache of
// hundreds of MB) and streamed whole (the indexer scores every key): with 4 KB pages nearly
// every gathered row costs a TLB miss and a page walk, and hardware prefetchers stop at each
// page boundary. Linux gives anonymous memory huge pages only where asked (madvise mode,
// Debian's default), so buffers of at least one huge page are aligned to 2 MB and advised.
// Smaller ones, and systems without THP, get ordinary memory; nothing else changes. One
// allocation for the caches (HugePageAllocator) and the packed weights (pack_alloc).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace docdsa::kernels {

inline constexpr size_t kHugePage = size_t{2} << 20;

// Allocates n bytes, freed with std::free: from kHugePage up, 2 MB-aligned with its whole huge
// pages advised MADV_HUGEPAGE (the tail past the last one stays on small pages rather than fault
// in 2 MB for a few bytes); below, 64-byte aligned. Null when out of memory.
inline void* huge_aligned_alloc(size_t n) {
  const size_t size = n == 0 ? 64 : (n + 63) / 64 * 64;
  void* p = std::aligned_alloc(n >= kHugePage ? kHugePage : 64, size);
#ifdef MADV_HUGEPAGE
  if (p && n >= kHugePage) madvise(p, n / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice only
#endif
  return p;
}

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    void* p = huge_aligned_alloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

template <class T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace docdsa::kernels
