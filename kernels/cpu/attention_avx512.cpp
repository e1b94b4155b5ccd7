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
}  // namespace
#include "attention_impl.h"         // NOLINT(bugprone-suspicious-include)
#include "attention_sparse_impl.h"  // NOLINT(bugprone-suspicious-include)
}  // namespace docdsa::kernels::detail::avx512
