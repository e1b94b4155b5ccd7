// AVX2 build of attention_impl.h (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels::detail::avx2 {
typedef float v16f_load __attribute__((vector_size(64)));
namespace {
using v16f_t = v16f_load;
inline v16f_t load_f16x16(const uint16_t* p) {
  const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
  v16f_t r;
  std::memcpy(&r, &lo, 32);
  std::memcpy(reinterpret_cast<char*>(&r) + 32, &hi, 32);
  return r;
}
}  // namespace
#include "attention_impl.h"         // NOLINT(bugprone-suspicious-include)
#include "attention_sparse_impl.h"  // NOLINT(bugprone-suspicious-include)
}  // namespace docdsa::kernels::detail::avx2
