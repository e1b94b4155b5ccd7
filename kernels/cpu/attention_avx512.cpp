// AVX-512 build of attention_impl.h.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels::detail::avx512 {
typedef float v16f_load __attribute__((vector_size(64)));
namespace {
using v16f_t = v16f_load;
inline v16f_t load_f16x16(const uint16_t* p) {
  const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  v16f_t r;
  std::memcpy(&r, &x, 64);
  return r;
}
// Gathers the keys at pos[0..nk) of a blocked f16 K cache into kt[dd] (lane j = key j):
// each dimension is one 16-lane dword gather (a key's f16 shares its dword with the
// neighbouring position), a per-lane shift picks the right half.
#define DOCDSA_HAVE_GATHER 1
inline void gather_k16(const uint16_t* k, const int32_t* pos, int nk, int d, v16f_t* kt) {
  alignas(64) int32_t idx[16], sh[16];
  for (int j = 0; j < 16; ++j) {
    const int64_t p = pos[j < nk ? j : 0];
    idx[j] = static_cast<int32_t>(((p / 16) * d * 16 + (p % 16 & ~int64_t{1})) / 2);
    sh[j] = static_cast<int32_t>(p & 1) * 16;
  }
  const __m512i vi = _mm512_load_si512(idx), vs = _mm512_load_si512(sh);
  for (int dd = 0; dd < d; ++dd) {
    __m512i w = _mm512_i32gather_epi32(_mm512_add_epi32(vi, _mm512_set1_epi32(dd * 8)), k, 4);
    w = _mm512_srlv_epi32(w, vs);
    const __m512 f = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(w));
    std::memcpy(&kt[dd], &f, 64);
  }
}
}  // namespace
#include "attention_impl.h"  // NOLINT(bugprone-suspicious-include)
}  // namespace docdsa::kernels::detail::avx512
