// AVX2 + FMA + F16C kernels. Integer dots use u8 x s8 multiply-adds (maddubs); signed weights
// use the |w| * sign(a, w) identity; Q4_1/Q4_0 use unsigned nibbles with the offset applied
// through per-block sums. Compiled with -mavx2 -mfma -mf16c; only called when cpuid says so.
#include <immintrin.h>

#include <cmath>

#include "quant_common.h"

namespace docdsa::kernels::detail::avx2 {
namespace {

// Hardware half -> float (F16C).
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Sum of 8 lanes in llama.cpp's hsum_float_8 order: ((x4+x0)+(x6+x2))+((x5+x1)+(x7+x3)).
inline float hsum(__m256 x) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 16 bytes of packed nibbles -> 32 unsigned bytes: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// u8 x s8 -> 8 int32 partial sums.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

inline __m256i dot_s8s8(__m256i w, __m256i a) {
  return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

// One weight row against C activation rows, R rows at once: out[c][r].
template <int R, int C>
void tile_q4_1(const MatmulArgs& p, int64_t r, int t, float* out) {
  const int64_t nb = p.n_in / kQK;
  __m256 acc[R][C];
  float summ[R][C] = {};
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i w[R];
    __m256 dw[R];
    float mw[R];
    for (int i = 0; i < R; ++i) {
      const auto* blk = reinterpret_cast<const BlockQ4_1*>(p.w + (r + i) * p.w_stride) + b;
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1536, _MM_HINT_T0);  // decode streams weights
      w[i] = unpack_nibbles(blk->qs);
      dw[i] = _mm256_set1_ps(h2f(blk->d));
      mw[i] = h2f(blk->m);
    }
    for (int j = 0; j < C; ++j) {
      const auto* ab = reinterpret_cast<const BlockQ8_1*>(p.a + (t + j) * p.a_stride) + b;
      const __m256i a = load32(ab->qs);
      const __m256 da = _mm256_set1_ps(h2f(ab->d));
      const float sa = h2f(ab->s);
      for (int i = 0; i < R; ++i) {
        const __m256 prod = _mm256_cvtepi32_ps(dot_u8s8(w[i], a));
        acc[i][j] = _mm256_fmadd_ps(prod, _mm256_mul_ps(dw[i], da), acc[i][j]);
        summ[i][j] = std::fma(mw[i], sa, summ[i][j]);  // llama.cpp's summs += m * s, contracted
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) out[j * p.ldo + i] = hsum(acc[i][j]) + summ[i][j];
}

template <int R, int C>
void tile_q4_0(const MatmulArgs& p, int64_t r, int t, float* out) {
  const int64_t nb = p.n_in / kQK;
  __m256 acc[R][C];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    __m256i w[R];
    __m256 dw[R];
    for (int i = 0; i < R; ++i) {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(p.w + (r + i) * p.w_stride) + b;
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1536, _MM_HINT_T0);  // decode streams weights
      w[i] = unpack_nibbles(blk->qs);
      dw[i] = _mm256_set1_ps(h2f(blk->d));
    }
    for (int j = 0; j < C; ++j) {
      const auto* ab = reinterpret_cast<const BlockQ8_0*>(p.a + (t + j) * p.a_stride) + b;
      const __m256i a = load32(ab->qs);
      const __m256 da = _mm256_set1_ps(h2f(ab->d));
      const __m256i off = _mm256_slli_epi32(dot_u8s8(ones, a), 3);  // 8 * sum(a)
      for (int i = 0; i < R; ++i) {
        const __m256 prod = _mm256_cvtepi32_ps(_mm256_sub_epi32(dot_u8s8(w[i], a), off));
        acc[i][j] = _mm256_fmadd_ps(prod, _mm256_mul_ps(dw[i], da), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) out[j * p.ldo + i] = hsum(acc[i][j]);
}

template <int R, int C>
void tile_q8_0(const MatmulArgs& p, int64_t r, int t, float* out) {
  const int64_t nb = p.n_in / kQK;
  __m256 acc[R][C];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i w[R];
    __m256 dw[R];
    for (int i = 0; i < R; ++i) {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(p.w + (r + i) * p.w_stride) + b;
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 1536, _MM_HINT_T0);  // decode streams weights
      w[i] = load32(blk->qs);
      dw[i] = _mm256_set1_ps(h2f(blk->d));
    }
    for (int j = 0; j < C; ++j) {
      const auto* ab = reinterpret_cast<const BlockQ8_0*>(p.a + (t + j) * p.a_stride) + b;
      const __m256i a = load32(ab->qs);
      const __m256 da = _mm256_set1_ps(h2f(ab->d));
      for (int i = 0; i < R; ++i) {
        const __m256 prod = _mm256_cvtepi32_ps(dot_s8s8(w[i], a));
        acc[i][j] = _mm256_fmadd_ps(prod, _mm256_mul_ps(dw[i], da), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) out[j * p.ldo + i] = hsum(acc[i][j]);
}

// K-quant block dot: integer sums weighted by the sub-block scales inside the SIMD lanes.
float kblock_dot(const KBlock& k, const BlockQ8_K& a) {
  __m256i acc = _mm256_setzero_si256();
  if (k.n_sub == 8) {
    for (int j = 0; j < 8; ++j) {
      const __m256i p16 = _mm256_maddubs_epi16(load32(k.q + 32 * j), load32(a.qs + 32 * j));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(static_cast<int16_t>(k.sc[j]))));
    }
  } else {
    for (int j = 0; j < 16; j += 2) {
      const __m256i p16 = _mm256_maddubs_epi16(load32(k.q + 16 * j), load32(a.qs + 16 * j));
      const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(k.sc[j + 1])),
                                           _mm_set1_epi16(static_cast<int16_t>(k.sc[j])));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p16, sc));
    }
  }
  int32_t sumi = hsum_i32(acc);
  float r;
  if (k.offset != 0) {
    int32_t corr = 0;
    for (int j = 0; j < 16; ++j) corr += k.sc[j] * a.bsums[j];
    sumi -= k.offset * corr;
    r = k.d * a.d * static_cast<float>(sumi);
  } else {
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j) summ += k.mn[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    r = k.d * a.d * static_cast<float>(sumi) - k.dmin * a.d * static_cast<float>(summ);
  }
  return r;
}

float dot_f16(int64_t n, const uint16_t* w, const uint16_t* a) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    acc = _mm256_fmadd_ps(x, y, acc);
  }
  float s = hsum(acc);
  for (; i < n; ++i) s += h2f(w[i]) * h2f(a[i]);
  return s;
}

inline __m256 load_bf16(const uint16_t* p) {
  const __m256i x = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
}

float dot_bf16(int64_t n, const uint16_t* w, const uint16_t* a) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(load_bf16(w + i), load_bf16(a + i), acc);
  float s = hsum(acc);
  for (; i < n; ++i) s += bf16_to_fp32(w[i]) * bf16_to_fp32(a[i]);
  return s;
}

float dot_f32(int64_t n, const float* w, const float* a) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc);
  float s = hsum(acc);
  for (; i < n; ++i) s += w[i] * a[i];
  return s;
}

template <int R, int C>
void run_tile(const MatmulArgs& p, int64_t r, int t) {
  float* out = p.out + t * p.ldo + r;
  switch (p.wtype) {
    case DType::Q4_1: tile_q4_1<R, C>(p, r, t, out); break;
    case DType::Q4_0: tile_q4_0<R, C>(p, r, t, out); break;
    default: tile_q8_0<R, C>(p, r, t, out); break;
  }
}

}  // namespace

float vec_dot(DType t, int64_t n, const void* wrow, const void* arow) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q8_0: {
      float out = 0.0f;
      MatmulArgs p{t, n, static_cast<const uint8_t*>(wrow), 0, static_cast<const uint8_t*>(arow), 0, 1, &out, 1};
      run_tile<1, 1>(p, 0, 0);
      return out;
    }
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: {
      const auto* wb = static_cast<const uint8_t*>(wrow);
      const auto* a = static_cast<const BlockQ8_K*>(arow);
      const size_t bb = info(t).block_bytes;
      KBlock k;
      float s = 0.0f;
      for (int64_t i = 0; i < n / kQKK; ++i) {
        unpack_k(t, wb + i * bb, &k);
        s += kblock_dot(k, a[i]);
      }
      return s;
    }
    case DType::F16: return dot_f16(n, static_cast<const uint16_t*>(wrow), static_cast<const uint16_t*>(arow));
    case DType::BF16: return dot_bf16(n, static_cast<const uint16_t*>(wrow), static_cast<const uint16_t*>(arow));
    case DType::F32: return dot_f32(n, static_cast<const float*>(wrow), static_cast<const float*>(arow));
    default: return ref::vec_dot(t, n, wrow, arow);
  }
}

void matmul_tile(const MatmulArgs& p, int64_t r0, int64_t r1) {
  if (p.wtype == DType::Q4_0 || p.wtype == DType::Q4_1 || p.wtype == DType::Q8_0) {
    constexpr int kR = 4, kC = 2;
    int64_t r = r0;
    for (; r + kR <= r1; r += kR) {
      int t = 0;
      for (; t + kC <= p.n_tok; t += kC) run_tile<kR, kC>(p, r, t);
      for (; t < p.n_tok; ++t) run_tile<kR, 1>(p, r, t);
    }
    for (; r < r1; ++r)
      for (int t = 0; t < p.n_tok; ++t) run_tile<1, 1>(p, r, t);
    return;
  }
  if (p.wtype == DType::Q4_K || p.wtype == DType::Q5_K || p.wtype == DType::Q6_K) {
    // Unpack each weight block once and reuse it for every token.
    const size_t bb = info(p.wtype).block_bytes;
    const int64_t nb = p.n_in / kQKK;
    KBlock k;
    for (int64_t r = r0; r < r1; ++r) {
      for (int t = 0; t < p.n_tok; ++t) p.out[t * p.ldo + r] = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        unpack_k(p.wtype, p.w + r * p.w_stride + b * bb, &k);
        for (int t = 0; t < p.n_tok; ++t)
          p.out[t * p.ldo + r] += kblock_dot(k, reinterpret_cast<const BlockQ8_K*>(p.a + t * p.a_stride)[b]);
      }
    }
    return;
  }
  for (int t = 0; t < p.n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r)
      p.out[t * p.ldo + r] = avx2::vec_dot(p.wtype, p.n_in, p.w + r * p.w_stride, p.a + t * p.a_stride);
}

}  // namespace docdsa::kernels::detail::avx2
