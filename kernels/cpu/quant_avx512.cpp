// AVX-512 (F, BW, VL) + VNNI kernels. Two 32-element blocks per 512-bit register; vpdpbusd
// multiplies unsigned weights by signed activations. Signed weights (Q4_0 after its -8, Q8_0)
// are made unsigned by an offset whose contribution (offset * sum(a)) seeds the accumulator.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c; called only when
// cpuid reports all of them.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "quant_common.h"

namespace docdsa::kernels::detail::avx512 {
namespace {

// Hardware half -> float (F16C).
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }


inline __m512i load_pair32(const int8_t* a, const int8_t* b) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// Two blocks' packed nibbles -> 64 unsigned bytes in element order [blk0 0..31, blk1 0..31].
inline __m512i unpack_nibbles_pair(const uint8_t* q0, const uint8_t* q1) {
  const __m256i x = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q1)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(q0)));
  const __m256i m = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(x, m);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m);
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

inline __m256i unpack_nibbles(const uint8_t* q) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0F));
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Per-type access to a block's weights and scales; W for weight blocks, A for activations.
struct Q41 {
  using W = BlockQ4_1;
  using A = BlockQ8_1;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  static __m512i wpair(const W& b0, const W& b1) { return unpack_nibbles_pair(b0.qs, b1.qs); }
  static __m256i wone(const W& b) { return unpack_nibbles(b.qs); }
};
struct Q40 {
  using W = BlockQ4_0;
  using A = BlockQ8_0;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 8;
  static __m512i wpair(const W& b0, const W& b1) { return unpack_nibbles_pair(b0.qs, b1.qs); }
  static __m256i wone(const W& b) { return unpack_nibbles(b.qs); }
};
struct Q80 {
  using W = BlockQ8_0;
  using A = BlockQ8_0;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 128;
  static __m512i wpair(const W& b0, const W& b1) {
    return _mm512_xor_si512(load_pair32(b0.qs, b1.qs), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  static __m256i wone(const W& b) {
    return _mm256_xor_si256(load32(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};

template <typename A>
float a_sum(const A& a) {
  if constexpr (std::is_same_v<A, BlockQ8_1>) return h2f(a.s);
  return 0.0f;
}
template <typename W>
float w_min(const W& w) {
  if constexpr (std::is_same_v<W, BlockQ4_1>) return h2f(w.m);
  return 0.0f;
}

// Sum of 8 lanes in the order llama.cpp's hsum_float_8 uses: ((x4+x0)+(x6+x2))+((x5+x1)+(x7+x3)).
inline float hsum8(__m256 x) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// The float side follows llama.cpp's x86 dot products exactly, so results are bit-identical
// to the oracle: per block, acc(8 lanes) = fma(d_w * d_a, lane sums, acc), blocks in order,
// then hsum8(acc) + sum_b fma(m_w, s_a). Two blocks' integer sums come from one 512-bit
// vpdpbusd; their halves are applied one block after the other.
template <typename T, int R, int C>
void tile(const MatmulArgs& p, int64_t r, int t) {
  using W = typename T::W;
  using A = typename T::A;
  const int64_t nb = p.n_in / kQK;
  const W* wr[R];
  const A* ar[C];
  for (int i = 0; i < R; ++i) wr[i] = reinterpret_cast<const W*>(p.w + (r + i) * p.w_stride);
  for (int j = 0; j < C; ++j) ar[j] = reinterpret_cast<const A*>(p.a + (t + j) * p.a_stride);
  __m256 acc[R][C];
  float summ[R][C];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) {
      acc[i][j] = _mm256_setzero_ps();
      summ[i][j] = 0.0f;
    }
  const __m512i ones = _mm512_set1_epi8(1);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m512i w[R];
    float dw0[R], dw1[R], mw0[R], mw1[R];
    for (int i = 0; i < R; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(wr[i] + b) + 1536, _MM_HINT_T0);  // decode streams weights
      w[i] = T::wpair(wr[i][b], wr[i][b + 1]);
      dw0[i] = h2f(wr[i][b].d);
      dw1[i] = h2f(wr[i][b + 1].d);
      if constexpr (T::kHasMin) {
        mw0[i] = w_min(wr[i][b]);
        mw1[i] = w_min(wr[i][b + 1]);
      }
    }
    for (int j = 0; j < C; ++j) {
      const __m512i a = load_pair32(ar[j][b].qs, ar[j][b + 1].qs);
      const float da0 = h2f(ar[j][b].d), da1 = h2f(ar[j][b + 1].d);
      const float sa0 = a_sum(ar[j][b]), sa1 = a_sum(ar[j][b + 1]);
      __m512i seed = _mm512_setzero_si512();
      if constexpr (T::kOffset != 0)
        seed = _mm512_mullo_epi32(_mm512_dpbusd_epi32(seed, ones, a), _mm512_set1_epi32(-T::kOffset));
      for (int i = 0; i < R; ++i) {
        const __m512 prod = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed, w[i], a));
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw0[i] * da0), _mm512_castps512_ps256(prod), acc[i][j]);
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw1[i] * da1), _mm512_extractf32x8_ps(prod, 1), acc[i][j]);
        if constexpr (T::kHasMin) {
          summ[i][j] = std::fma(mw0[i], sa0, summ[i][j]);
          summ[i][j] = std::fma(mw1[i], sa1, summ[i][j]);
        }
      }
    }
  }
  if (b < nb) {
    for (int i = 0; i < R; ++i) {
      const __m256i w = T::wone(wr[i][b]);
      const float dw = h2f(wr[i][b].d);
      for (int j = 0; j < C; ++j) {
        const __m256i a = load32(ar[j][b].qs);
        __m256i seed = _mm256_setzero_si256();
        if constexpr (T::kOffset != 0)
          seed = _mm256_mullo_epi32(_mm256_dpbusd_epi32(seed, _mm256_set1_epi8(1), a), _mm256_set1_epi32(-T::kOffset));
        const __m256 prod = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(seed, w, a));
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f(ar[j][b].d)), prod, acc[i][j]);
        if constexpr (T::kHasMin) summ[i][j] = std::fma(w_min(wr[i][b]), a_sum(ar[j][b]), summ[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) p.out[(t + j) * p.ldo + r + i] = hsum8(acc[i][j]) + summ[i][j];
}

template <typename T>
void matmul_q(const MatmulArgs& p, int64_t r0, int64_t r1) {
  constexpr int kR = 4, kC = 4;
  int64_t r = r0;
  for (; r + kR <= r1; r += kR) {
    int t = 0;
    for (; t + kC <= p.n_tok; t += kC) tile<T, kR, kC>(p, r, t);
    for (; t < p.n_tok; ++t) tile<T, kR, 1>(p, r, t);
  }
  for (; r < r1; ++r) {
    int t = 0;
    for (; t + kC <= p.n_tok; t += kC) tile<T, 1, kC>(p, r, t);
    for (; t < p.n_tok; ++t) tile<T, 1, 1>(p, r, t);
  }
}

inline __m512i load64(const int8_t* p) { return _mm512_loadu_si512(p); }

float kblock_dot(const KBlock& k, const BlockQ8_K& a) {
  __m512i acc = _mm512_setzero_si512();
  if (k.n_sub == 8) {
    for (int j = 0; j < 8; j += 2) {
      const __m512i p16 = _mm512_maddubs_epi16(load64(k.q + 32 * j), load64(a.qs + 32 * j));
      const __m512i sc = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(k.sc[j])),
                                            _mm256_set1_epi16(static_cast<int16_t>(k.sc[j + 1])), 1);
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, sc));
    }
  } else {
    for (int j = 0; j < 16; j += 4) {
      const __m512i p16 = _mm512_maddubs_epi16(load64(k.q + 16 * j), load64(a.qs + 16 * j));
      const __m256i lo = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(k.sc[j + 1])),
                                          _mm_set1_epi16(static_cast<int16_t>(k.sc[j])));
      const __m256i hi = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(k.sc[j + 3])),
                                          _mm_set1_epi16(static_cast<int16_t>(k.sc[j + 2])));
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p16, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)));
    }
  }
  int32_t sumi = _mm512_reduce_add_epi32(acc);
  if (k.offset != 0) {
    int32_t corr = 0;
    for (int j = 0; j < 16; ++j) corr += k.sc[j] * a.bsums[j];
    sumi -= k.offset * corr;
    return k.d * a.d * static_cast<float>(sumi);
  }
  int32_t summ = 0;
  for (int j = 0; j < 8; ++j) summ += k.mn[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
  return k.d * a.d * static_cast<float>(sumi) - k.dmin * a.d * static_cast<float>(summ);
}

float dot_f16(int64_t n, const uint16_t* w, const uint16_t* a) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    const __m512 y = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
    acc = _mm512_fmadd_ps(x, y, acc);
  }
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += h2f(w[i]) * h2f(a[i]);
  return s;
}

inline __m512 load_bf16(const uint16_t* p) {
  const __m512i x = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
}

float dot_bf16(int64_t n, const uint16_t* w, const uint16_t* a) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(load_bf16(w + i), load_bf16(a + i), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += bf16_to_fp32(w[i]) * bf16_to_fp32(a[i]);
  return s;
}

float dot_f32(int64_t n, const float* w, const float* a) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(a + i), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) s += w[i] * a[i];
  return s;
}

}  // namespace

float vec_dot(DType t, int64_t n, const void* wrow, const void* arow) {
  float out = 0.0f;
  MatmulArgs p{t, n, static_cast<const uint8_t*>(wrow), 0, static_cast<const uint8_t*>(arow), 0, 1, &out, 1};
  switch (t) {
    case DType::Q4_1: tile<Q41, 1, 1>(p, 0, 0); return out;
    case DType::Q4_0: tile<Q40, 1, 1>(p, 0, 0); return out;
    case DType::Q8_0: tile<Q80, 1, 1>(p, 0, 0); return out;
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
  switch (p.wtype) {
    case DType::Q4_1: matmul_q<Q41>(p, r0, r1); return;
    case DType::Q4_0: matmul_q<Q40>(p, r0, r1); return;
    case DType::Q8_0: matmul_q<Q80>(p, r0, r1); return;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: {
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
    default:
      for (int t = 0; t < p.n_tok; ++t)
        for (int64_t r = r0; r < r1; ++r)
          p.out[t * p.ldo + r] = avx512::vec_dot(p.wtype, p.n_in, p.w + r * p.w_stride, p.a + t * p.a_stride);
  }
}

// The scalar code's steps, 16 values at a time (one bsums group per register): the first value
// of largest magnitude sets the scale, NaN quantises to 0, then clamp, round to nearest even
// and the cap at 127. The same float operations in the same order, so the bytes are identical.
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  constexpr int kV = kQKK / 16;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    __m512 v[kV];
    __m512 amax16 = _mm512_setzero_ps();
    for (int j = 0; j < kV; ++j) {
      v[j] = _mm512_loadu_ps(x + 16 * j);
      amax16 = _mm512_max_ps(_mm512_and_ps(v[j], abs_mask), amax16);  // a NaN lane keeps amax16's
    }
    const float amax = _mm512_reduce_max_ps(amax16);
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    float max = 0.0f;
    for (int j = 0; j < kV; ++j) {
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(v[j], abs_mask), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        max = x[16 * j + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -128.0f / max;
    const __m512 vs = _mm512_set1_ps(iscale), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    for (int j = 0; j < kV; ++j) {
      const __m512 f = _mm512_mul_ps(vs, v[j]);
      const __mmask16 ordered = _mm512_cmp_ps_mask(f, f, _CMP_ORD_Q);
      const __m512 c = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      __m512i q = _mm512_cvtps_epi32(_mm512_roundscale_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      q = _mm512_maskz_mov_epi32(ordered, _mm512_min_epi32(q, _mm512_set1_epi32(127)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * j), _mm512_cvtepi32_epi8(q));
      y[i].bsums[j] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y[i].d = 1.0f / iscale;
  }
}

// The scalar quantize_q8_0/q8_1, 16 values at a time: amax ignoring NaN, d = amax / 127, the
// values scaled by 127 / amax, NaN to 0, clamped to [-128, 127] and rounded to nearest even; Q8_1
// also stores d times the integer sum. The same float operations, so the bytes are identical.
// These are the activations of every Q4_0/Q8_0 (Q8_0) and Q4_1 (Q8_1) product.
template <bool kSum>
inline void quantize_q8_32(const float* x, int8_t* qs, uint16_t* d_out, uint16_t* s_out) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const __m512 m = _mm512_max_ps(_mm512_and_ps(v1, abs_mask), _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_setzero_ps()));
  const float amax = _mm512_reduce_max_ps(m);
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  const __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  int32_t sum = 0;
  for (int j = 0; j < 2; ++j) {
    const __m512 f = _mm512_mul_ps(j ? v1 : v0, vid);
    const __mmask16 ordered = _mm512_cmp_ps_mask(f, f, _CMP_ORD_Q);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q =
        _mm512_maskz_mov_epi32(ordered, _mm512_cvtps_epi32(_mm512_roundscale_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16 * j), _mm512_cvtepi32_epi8(q));
    if constexpr (kSum) sum += _mm512_reduce_add_epi32(q);
  }
  *d_out = fp32_to_fp16(d);
  if constexpr (kSum) *s_out = fp32_to_fp16(d * static_cast<float>(sum));
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) quantize_q8_32<false>(x, y[i].qs, &y[i].d, nullptr);
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) quantize_q8_32<true>(x, y[i].qs, &y[i].d, &y[i].s);
}

}  // namespace docdsa::kernels::detail::avx512
