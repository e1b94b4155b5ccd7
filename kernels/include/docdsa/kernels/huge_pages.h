// Large buffers on transparent huge pages. The KV, row-major K and indexer caches are read at
// scattered positions (DSA gathers a few thousand rows per layer and token from a cache of
// hundreds of MB) and streamed whole (the indexer scores every key): with 4 KB pages nearly
// every gathered row costs a TLB miss and a page walk, and hardware prefetchers stop at each
// page boundary. Linux gives anonymous memory huge pages only where asked (madvise mode,
// Debian's default), so buffers of at least one huge page are aligned to 2 MB and advised.
// Smaller ones, and systems without THP, get ordinary memory; nothing else changes.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace docdsa::kernels {

inline constexpr size_t kHugePage = size_t{2} << 20;

// Allocates n bytes: 2 MB-aligned and advised MADV_HUGEPAGE from kHugePage up (rounded up to a
// whole huge page), plain operator new below. Free with huge_free(p, n), the same n.
inline void* huge_alloc(size_t n) {
  if (n < kHugePage) return ::operator new(n);
  const size_t size = (n + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, size);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // advice only: where THP is off, the pages stay small
#endif
  return p;
}
inline void huge_free(void* p, size_t n) {
  if (n < kHugePage) ::operator delete(p);
  else std::free(p);
}

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(huge_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { huge_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
};

template <class T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace docdsa::kernels
