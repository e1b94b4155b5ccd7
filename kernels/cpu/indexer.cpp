// Lightning-indexer scoring (scalar and AVX-512 VNNI) and linear-time top-k selection.
#include "docdsa/kernels/indexer.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

namespace docdsa::kernels {

namespace {
// Rounded and clamped to int8's symmetric range; NaN (from a model file's non-finite weights)
// gives 0 instead of an undefined conversion.
inline int to_q8(float f) { return f == f ? static_cast<int>(std::nearbyint(std::clamp(f, -127.0f, 127.0f))) : 0; }
}  // namespace

float index_store_key(const float* key, int dim, uint8_t* cache, int64_t pos) {
  float amax = 0.0f;
  for (int i = 0; i < dim; ++i) amax = std::max(amax, std::fabs(key[i]));
  const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int i = 0; i < dim; ++i) {
    cache[index_offset(pos, i, dim)] = static_cast<uint8_t>(to_q8(key[i] * inv) + 128);
  }
  return scale;
}

void index_quantize_query(const float* q, int n_heads, int head_dim, const float* weight, int8_t* q8, float* qscale) {
  // One scale for all heads: without head weights every head's dots are then in the same
  // units, and the max over heads can be taken on the integer dots (score_row_blocks).
  const int64_t n = static_cast<int64_t>(n_heads) * head_dim;
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(q[i]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t i = 0; i < n; ++i) q8[i] = static_cast<int8_t>(to_q8(q[i] * inv));
  for (int h = 0; h < n_heads; ++h) qscale[h] = (amax > 0.0f ? amax / 127.0f : 0.0f) * (weight ? weight[h] : 1.0f);
}

namespace {

void scores_scalar(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0, int64_t s1,
                   float* out) {
  for (int64_t s = s0; s < s1; ++s) {
    float acc = q.combine == IndexCombine::kMax ? -INFINITY : 0.0f;
    for (int h = 0; h < q.n_heads; ++h) {
      int32_t dot = 0;
      for (int i = 0; i < q.head_dim; ++i)
        dot += (static_cast<int32_t>(cache[index_offset(s, q.offset[h] + i, dim)]) - 128) * q.q[h * q.head_dim + i];
      const float v = q.qscale[h] * static_cast<float>(dot);
      if (q.combine == IndexCombine::kMax) acc = std::max(acc, v);
      else acc += std::max(v, 0.0f);
    }
    out[s - s0] = acc * kscale[s];
  }
}

// Rows of a query block against the cache, kSuper 16-key blocks at a time: those blocks'
// bytes stay in L1 for every row and head (per row, the whole cache would stream through once
// per row), and each head's query words are broadcast once per kSuper blocks instead of once
// per block, so the loop is the dot products themselves (a load folded into each VPDPBUSD)
// plus one convert, scale and combine per head and block. The accumulators start at -corr
// (the +128 key bias) instead of subtracting it afterwards: the same int32 result, so the
// scores equal the one-row kernel's bit for bit.
//
// IntMax: every head has the same positive scale (index_quantize_query without head weights)
// and the combine is max. Then max_h(s * dot_h) = s * max_h(dot_h) exactly (rounding is
// monotonic), so the heads are combined on the integer dots and converted once per block:
// the per-head convert, multiply and max were three of every seven instructions.
template <int NB, bool IntMax>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void score_row_blocks(const int32_t (*qw)[64], const int32_t* corr,
                                                                                    const IndexQuery& q, int words,
                                                                                    const uint8_t* blk0, int dim,
                                                                                    const float* ks0, int64_t n_valid,
                                                                                    float* out) {
  const __m512 zero = _mm512_setzero_ps();
  const bool use_max = q.combine == IndexCombine::kMax;
  const int64_t bstride = static_cast<int64_t>(dim) * kIndexBlock;
  __m512 acc[NB];
  __m512i imax[NB];
  for (int i = 0; i < NB; ++i) {
    acc[i] = use_max ? _mm512_set1_ps(-INFINITY) : zero;
    if constexpr (IntMax) imax[i] = _mm512_set1_epi32(INT32_MIN);
  }
  for (int h = 0; h < q.n_heads; ++h) {
    const uint8_t* kb = blk0 + (q.offset[h] / 4) * 64;
    __m512i d[NB];
    const __m512i c = _mm512_set1_epi32(-corr[h]);
    for (int i = 0; i < NB; ++i) d[i] = c;
    for (int w = 0; w < words; ++w) {
      const __m512i qv = _mm512_set1_epi32(qw[h][w]);
      for (int i = 0; i < NB; ++i) d[i] = _mm512_dpbusd_epi32(d[i], _mm512_loadu_si512(kb + i * bstride + w * 64), qv);
    }
    if constexpr (IntMax) {
      for (int i = 0; i < NB; ++i) imax[i] = _mm512_max_epi32(imax[i], d[i]);
      continue;
    }
    const __m512 s = _mm512_set1_ps(q.qscale[h]);
    for (int i = 0; i < NB; ++i) {
      const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(d[i]), s);
      acc[i] = use_max ? _mm512_max_ps(acc[i], v) : _mm512_add_ps(acc[i], _mm512_max_ps(v, zero));
    }
  }
  if constexpr (IntMax) {
    const __m512 s = _mm512_set1_ps(q.qscale[0]);
    for (int i = 0; i < NB; ++i) acc[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(imax[i]), s);
  }
  for (int i = 0; i < NB; ++i) {
    const int64_t nb = std::min<int64_t>(kIndexBlock, n_valid - i * kIndexBlock);
    const __mmask16 m = static_cast<__mmask16>((1u << nb) - 1u);
    const __m512 ks = _mm512_maskz_loadu_ps(m, ks0 + i * kIndexBlock);
    _mm512_mask_storeu_ps(out + i * kIndexBlock, m, _mm512_mul_ps(acc[i], ks));
  }
}

// kRowGroup rows that all take the IntMax case, against NB blocks, with W words per head (a
// compile-time count, so that the loops unroll and the accumulators stay in registers): each
// 64-byte word of keys is loaded once and used by kRowGroup rows, where the one-row kernel above
// loads it again for every row. Per head and word: NB loads, NB x kRowGroup VPDPBUSD with the
// query word broadcast from memory; 2 x 4 accumulators and 2 x 4 running maxima fit the 32
// registers. The same integer dots and maxima as score_row_blocks, so the same scores bit for
// bit: 2.1x faster on the SmolLM2 shape (9 heads x 16 dims, 16 rows).
constexpr int kRowGroup = 4;
template <int NB, int W>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void score_rows_intmax(
    const int32_t (*const* qw)[64], const int32_t* const* corr, const float* qscale, int n_heads, const int32_t* offset,
    const uint8_t* blk0, int dim, const float* ks0, int64_t n_valid, float* const* out) {
  const int64_t bstride = static_cast<int64_t>(dim) * kIndexBlock;
  __m512i imax[kRowGroup][NB];
  for (int r = 0; r < kRowGroup; ++r)
    for (int i = 0; i < NB; ++i) imax[r][i] = _mm512_set1_epi32(INT32_MIN);
  for (int h = 0; h < n_heads; ++h) {
    const uint8_t* kb = blk0 + (offset[h] / 4) * 64;
    __m512i d[kRowGroup][NB];
    for (int r = 0; r < kRowGroup; ++r) {
      const __m512i c = _mm512_set1_epi32(-corr[r][h]);
      for (int i = 0; i < NB; ++i) d[r][i] = c;
    }
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) {
#pragma GCC unroll 8
      for (int i = 0; i < NB; ++i) {
        const __m512i k = _mm512_loadu_si512(kb + i * bstride + w * 64);
#pragma GCC unroll 8
        for (int r = 0; r < kRowGroup; ++r) d[r][i] = _mm512_dpbusd_epi32(d[r][i], k, _mm512_set1_epi32(qw[r][h][w]));
      }
    }
    for (int r = 0; r < kRowGroup; ++r)
      for (int i = 0; i < NB; ++i) imax[r][i] = _mm512_max_epi32(imax[r][i], d[r][i]);
  }
  for (int i = 0; i < NB; ++i) {
    const int64_t nb = std::min<int64_t>(kIndexBlock, n_valid - i * kIndexBlock);
    const __mmask16 m = static_cast<__mmask16>((1u << nb) - 1u);
    const __m512 ks = _mm512_maskz_loadu_ps(m, ks0 + i * kIndexBlock);
    for (int r = 0; r < kRowGroup; ++r) {
      const __m512 acc = _mm512_mul_ps(_mm512_cvtepi32_ps(imax[r][i]), _mm512_set1_ps(qscale[r]));
      _mm512_mask_storeu_ps(out[r] + i * kIndexBlock, m, _mm512_mul_ps(acc, ks));
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scores_block_vnni(const IndexQuery* qs, int n_rows,
                                                                                const uint8_t* cache, const float* kscale,
                                                                                int dim, int64_t s0, int64_t s1, float* out,
                                                                                int64_t out_stride) {
  constexpr int kMaxHeads = 64, kMaxWords = 64, kMaxRows = 16, kSuper = 8;
  const int words = qs[0].head_dim / 4;
  struct Row {
    int32_t qw[kMaxHeads][kMaxWords];
    int32_t corr[kMaxHeads];
    bool int_max;  // score_row_blocks' IntMax case applies
  };
  thread_local std::vector<Row> rows;
  rows.resize(kMaxRows);
  for (int r0 = 0; r0 < n_rows; r0 += kMaxRows) {
    const int nr = std::min(kMaxRows, n_rows - r0);
    for (int r = 0; r < nr; ++r) {
      const IndexQuery& q = qs[r0 + r];
      for (int h = 0; h < q.n_heads; ++h) {
        int32_t sum = 0;
        for (int w = 0; w < words; ++w) std::memcpy(&rows[r].qw[h][w], q.q + h * q.head_dim + 4 * w, 4);
        for (int i = 0; i < q.head_dim; ++i) sum += q.q[h * q.head_dim + i];
        rows[r].corr[h] = 128 * sum;  // the keys are stored +128
      }
      bool same = q.combine == IndexCombine::kMax && q.qscale[0] > 0.0f;
      for (int h = 1; h < q.n_heads && same; ++h) same = q.qscale[h] == q.qscale[0];
      rows[r].int_max = same;
    }
    // Rows that start a group of kRowGroup scored together (score_rows_intmax): all in the
    // IntMax case with the same heads, and the usual 16 dims (4 words) per head.
    std::array<bool, kMaxRows> group_at{};
    for (int r = 0; r + kRowGroup <= nr;) {
      bool four = words == 4;
      for (int j = 0; j < kRowGroup && four; ++j)
        four = rows[r + j].int_max && qs[r0 + r + j].n_heads == qs[r0 + r].n_heads && qs[r0 + r + j].offset == qs[r0 + r].offset;
      group_at[static_cast<size_t>(r)] = four;
      r += four ? kRowGroup : 1;
    }
    const int64_t super_bytes = static_cast<int64_t>(kSuper) * dim * kIndexBlock;
    const uint8_t* cache_end = cache + (s1 + kIndexBlock - 1) / kIndexBlock * dim * kIndexBlock;
    for (int64_t b = s0; b < s1;) {
      const int64_t n_blocks = (s1 - b + kIndexBlock - 1) / kIndexBlock;
      const uint8_t* blk = cache + (b / kIndexBlock) * dim * kIndexBlock;
      const int step = n_blocks >= kSuper ? kSuper : 1;
      // The heads read a block's words out of order (each head its own 16 dims of 8 blocks),
      // which the hardware prefetchers do not follow: one row alone (decode) streamed the
      // cache at a third of the memory bandwidth. Asking for the lines kAhead blocks of 8
      // ahead costs one instruction per 64 bytes, shared by every row of the block.
      constexpr int kAhead = 4;
      if (step == kSuper) {
        const uint8_t* pf = blk + kAhead * super_bytes;
        const uint8_t* pf_end = std::min(pf + super_bytes, cache_end);
        for (; pf < pf_end; pf += 64) _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
      }
      const auto score_row = [&](int r) {
        float* o = out + (r0 + r) * out_stride + (b - s0);
        const Row& row = rows[r];
        const IndexQuery& q = qs[r0 + r];
        if (step == kSuper && row.int_max)
          score_row_blocks<kSuper, true>(row.qw, row.corr, q, words, blk, dim, kscale + b, s1 - b, o);
        else if (step == kSuper)
          score_row_blocks<kSuper, false>(row.qw, row.corr, q, words, blk, dim, kscale + b, s1 - b, o);
        else if (row.int_max)
          score_row_blocks<1, true>(row.qw, row.corr, q, words, blk, dim, kscale + b, s1 - b, o);
        else
          score_row_blocks<1, false>(row.qw, row.corr, q, words, blk, dim, kscale + b, s1 - b, o);
      };
      for (int r = 0; r < nr;) {
        if (!group_at[r]) {
          score_row(r);
          ++r;
          continue;
        }
        const int32_t(*qw[kRowGroup])[64];
        const int32_t* corr[kRowGroup];
        float qscale[kRowGroup];
        float* o[kRowGroup];
        for (int j = 0; j < kRowGroup; ++j) {
          qw[j] = rows[r + j].qw;
          corr[j] = rows[r + j].corr;
          qscale[j] = qs[r0 + r + j].qscale[0];
          o[j] = out + (r0 + r + j) * out_stride + (b - s0);
        }
        const IndexQuery& q = qs[r0 + r];
        if (step == kSuper) {
          for (int i = 0; i < kSuper; i += 2) {
            const int64_t at = static_cast<int64_t>(i) * kIndexBlock;
            float* oi[kRowGroup];
            for (int j = 0; j < kRowGroup; ++j) oi[j] = o[j] + at;
            score_rows_intmax<2, 4>(qw, corr, qscale, q.n_heads, q.offset, blk + at * dim, dim, kscale + b + at, s1 - b - at, oi);
          }
        } else {
          score_rows_intmax<1, 4>(qw, corr, qscale, q.n_heads, q.offset, blk, dim, kscale + b, s1 - b, o);
        }
        r += kRowGroup;
      }
      b += static_cast<int64_t>(step) * kIndexBlock;
    }
  }
}

// One query row (decode, and the reference shape for the block kernel above).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scores_vnni(const IndexQuery& q, const uint8_t* cache,
                                                                          const float* kscale, int dim, int64_t s0,
                                                                          int64_t s1, float* out) {
  scores_block_vnni(&q, 1, cache, kscale, dim, s0, s1, out, 0);
}

// Maps a float to an unsigned key with the same order (negative floats reversed).
inline uint32_t order_key(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

void index_scores(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0, int64_t s1,
                  float* out, Isa isa) {
  if (s1 <= s0) return;
  if (isa == Isa::kAvx512 && q.n_heads <= 64 && q.head_dim <= 256) scores_vnni(q, cache, kscale, dim, s0, s1, out);
  else scores_scalar(q, cache, kscale, dim, s0, s1, out);
}

void index_scores_block(const IndexQuery* queries, int n_rows, const uint8_t* cache, const float* kscale, int dim,
                        int64_t s0, int64_t s1, float* out, int64_t out_stride, Isa isa) {
  if (s1 <= s0 || n_rows <= 0) return;
  bool simd = isa == Isa::kAvx512;
  for (int r = 0; r < n_rows; ++r)
    simd = simd && queries[r].n_heads <= 64 && queries[r].head_dim <= 256 && queries[r].head_dim == queries[0].head_dim;
  if (simd) {
    scores_block_vnni(queries, n_rows, cache, kscale, dim, s0, s1, out, out_stride);
    return;
  }
  for (int r = 0; r < n_rows; ++r) index_scores(queries[r], cache, kscale, dim, s0, s1, out + r * out_stride, isa);
}

namespace {

// Entries whose order key is >= thr, in index order: keys and indices into two arrays.
size_t filter_scalar(const float* scores, int64_t n, uint32_t thr, uint32_t* keys, int32_t* idx) {
  size_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = order_key(scores[i]);
    keys[m] = u;
    idx[m] = static_cast<int32_t>(i);
    m += u >= thr;
  }
  return m;
}

__attribute__((target("avx512f,avx512bw"))) size_t filter_avx512(const float* scores, int64_t n, uint32_t thr,
                                                                 uint32_t* keys, int32_t* idx) {
  const __m512i vthr = _mm512_set1_epi32(static_cast<int32_t>(thr));
  const __m512i top = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sixteen = _mm512_set1_epi32(16);
  size_t m = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(scores + i);
    const __m512i key = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), top));
    const __mmask16 keep = _mm512_cmpge_epu32_mask(key, vthr);
    if (keep) {
      // Register compress then a full store: fast on every AVX-512 core (a compressing
      // store to memory is microcoded on some).
      _mm512_storeu_si512(keys + m, _mm512_maskz_compress_epi32(keep, key));
      _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, lane));
      m += static_cast<size_t>(__builtin_popcount(keep));
    }
    lane = _mm512_add_epi32(lane, sixteen);
  }
  for (; i < n; ++i) {
    const uint32_t u = order_key(scores[i]);
    keys[m] = u;
    idx[m] = static_cast<int32_t>(i);
    m += u >= thr;
  }
  return m;
}

// The entries of radix bucket b ((key - lo) >> shift == b) in index order, into (ok, oi), which
// may be (keys, idx) themselves: the writes never pass the reads. Returns how many.
size_t keep_bucket(const uint32_t* keys, const int32_t* idx, size_t m, uint32_t lo, int shift, uint32_t b, uint32_t* ok,
                   int32_t* oi) {
  size_t n = 0;
  for (size_t i = 0; i < m; ++i) {
    ok[n] = keys[i];
    oi[n] = idx[i];
    n += ((keys[i] - lo) >> shift) == b;
  }
  return n;
}

// The same with a compress per 16 entries: the scalar loop's data-dependent branch
// mispredicted on about every other entry. A full 16-lane store at n <= i only overwrites
// entries already read.
__attribute__((target("avx512f,avx512bw"))) size_t keep_bucket_avx512(const uint32_t* keys, const int32_t* idx, size_t m,
                                                                      uint32_t lo, int shift, uint32_t b, uint32_t* ok,
                                                                      int32_t* oi) {
  const __m512i vlo = _mm512_set1_epi32(static_cast<int32_t>(lo));
  const __m512i vb = _mm512_set1_epi32(static_cast<int32_t>(b));
  const __m128i sh = _mm_cvtsi32_si128(shift);
  size_t n = 0, i = 0;
  for (; i + 16 <= m; i += 16) {
    const __m512i kv = _mm512_loadu_si512(keys + i);
    const __m512i iv = _mm512_loadu_si512(idx + i);
    const __mmask16 keep = _mm512_cmpeq_epi32_mask(_mm512_srl_epi32(_mm512_sub_epi32(kv, vlo), sh), vb);
    _mm512_storeu_si512(ok + n, _mm512_maskz_compress_epi32(keep, kv));
    _mm512_storeu_si512(oi + n, _mm512_maskz_compress_epi32(keep, iv));
    n += static_cast<size_t>(__builtin_popcount(keep));
  }
  return n + keep_bucket(keys + i, idx + i, m - i, lo, shift, b, ok + n, oi + n);
}

// Emits base + idx[i] for the candidates at or above the k-th largest (kk, ki) — keys[i] > kk,
// or equal with idx[i] >= ki — in index order. dst has room for 16 entries past the last.
int32_t* emit_at_least(const uint32_t* keys, const int32_t* idx, size_t m, uint32_t kk, int32_t ki, int32_t base, int32_t* dst) {
  for (size_t i = 0; i < m; ++i) {
    *dst = base + idx[i];
    dst += keys[i] > kk || (keys[i] == kk && idx[i] >= ki);
  }
  return dst;
}

__attribute__((target("avx512f,avx512bw"))) int32_t* emit_at_least_avx512(const uint32_t* keys, const int32_t* idx, size_t m,
                                                                          uint32_t kk, int32_t ki, int32_t base, int32_t* dst) {
  const __m512i vkk = _mm512_set1_epi32(static_cast<int32_t>(kk));
  const __m512i vki = _mm512_set1_epi32(ki);
  const __m512i vbase = _mm512_set1_epi32(base);
  size_t i = 0;
  for (; i + 16 <= m; i += 16) {
    const __m512i kv = _mm512_loadu_si512(keys + i);
    const __m512i iv = _mm512_loadu_si512(idx + i);
    const __mmask16 keep = _mm512_cmpgt_epu32_mask(kv, vkk) |
                           (_mm512_cmpeq_epi32_mask(kv, vkk) & _mm512_cmpge_epi32_mask(iv, vki));
    _mm512_storeu_si512(dst, _mm512_maskz_compress_epi32(keep, _mm512_add_epi32(iv, vbase)));
    dst += __builtin_popcount(keep);
  }
  return emit_at_least(keys + i, idx + i, m - i, kk, ki, base, dst);
}

// The k-th largest (key, index) pair among m candidates (keys[i], idx[i]) in index order,
// k <= m: radix passes over the key range narrow the bucket holding it; among equal keys the
// later index ranks higher. Returns it as (key << 32 | index).
uint64_t kth_largest(const uint32_t* keys, const int32_t* idx, size_t m, int64_t k, std::vector<uint32_t>& sub_k,
                     std::vector<int32_t>& sub_i, bool simd) {
  constexpr int kBits = 11;
  std::array<uint32_t, (1u << kBits)> hist;
  sub_k.resize(m);
  sub_i.resize(m);
  uint32_t* bk = sub_k.data();
  int32_t* bi = sub_i.data();
  for (;;) {
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < m; ++i) {
      lo = std::min(lo, keys[i]);
      hi = std::max(hi, keys[i]);
    }
    if (lo == hi) {
      // All equal: the k-th largest is the k-th latest index.
      return (static_cast<uint64_t>(lo) << 32) | static_cast<uint32_t>(idx[m - static_cast<size_t>(k)]);
    }
    const int width = 32 - std::countl_zero(hi - lo);
    const int shift = std::max(0, width - kBits);
    hist.fill(0);
    for (size_t i = 0; i < m; ++i) ++hist[(keys[i] - lo) >> shift];
    uint32_t b = (hi - lo) >> shift;
    int64_t above = 0;
    while (above + hist[b] < k) above += hist[b--];
    // Keep only bucket b (in index order; written in place, never ahead of the reads) and
    // look for the (k - above)-th largest in it.
    const size_t n = simd ? keep_bucket_avx512(keys, idx, m, lo, shift, b, bk, bi) : keep_bucket(keys, idx, m, lo, shift, b, bk, bi);
    k -= above;
    m = n;
    keys = bk;
    idx = bi;
  }
}

// Exact top-k among the entries at or above the order key thr (which must number at least k;
// false otherwise), emitted in ascending index order.
bool select_above(const float* scores, int64_t n, int64_t k, uint32_t thr, int32_t base, std::vector<int32_t>& out) {
  thread_local std::vector<uint32_t> keys_buf, sub_k;
  thread_local std::vector<int32_t> idx_buf, sub_i;
  keys_buf.resize(static_cast<size_t>(n) + 16);
  idx_buf.resize(static_cast<size_t>(n) + 16);
  uint32_t* keys = keys_buf.data();
  int32_t* idx = idx_buf.data();
  const bool simd = active_isa() == Isa::kAvx512;
  const size_t m = simd ? filter_avx512(scores, n, thr, keys, idx) : filter_scalar(scores, n, thr, keys, idx);
  if (static_cast<int64_t>(m) < k) return false;
  const uint64_t kth = kth_largest(keys, idx, m, k, sub_k, sub_i, simd);
  const uint32_t kk = static_cast<uint32_t>(kth >> 32);
  const int32_t ki = static_cast<int32_t>(kth & 0xFFFFFFFFu);
  const size_t before = out.size();
  out.resize(before + static_cast<size_t>(k) + 16);  // branch-free writes: 16 slots past the last
  int32_t* dst = out.data() + before;
  dst = simd ? emit_at_least_avx512(keys, idx, m, kk, ki, base, dst) : emit_at_least(keys, idx, m, kk, ki, base, dst);
  out.resize(before + static_cast<size_t>(k));
  return true;
}

}  // namespace

void select_topk(const float* scores, int64_t n, int64_t k, int32_t base, std::vector<int32_t>& out,
                 std::vector<uint64_t>& scratch) {
  if (k <= 0 || n <= 0) return;
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(base + static_cast<int32_t>(i));
    return;
  }
  // Long rows (decode and prefill past a few thousand tokens): guess a threshold from a
  // strided sample that lets k plus a few standard deviations of the guess through, then
  // select exactly among those. Only when fewer than k pass does it fall back to the
  // histogram over everything below; either way the result is the exact top-k.
  if (n >= 2048 && k * 4 <= n * 3) {
    constexpr int64_t kSample = 512;
    const int64_t stride = n / kSample;
    thread_local std::vector<float> sample;
    sample.clear();
    for (int64_t i = stride / 2; i < n; i += stride) sample.push_back(scores[i]);
    const double p = static_cast<double>(k) / static_cast<double>(n);
    const double ns = static_cast<double>(sample.size());
    const double want = p * ns + 4.0 * std::sqrt(ns * p * (1.0 - p)) + 4.0;
    const size_t rank = std::min(sample.size() - 1, static_cast<size_t>(want));
    std::nth_element(sample.begin(), sample.begin() + static_cast<int64_t>(rank), sample.end(), std::greater<float>());
    const size_t before = out.size();
    if (select_above(scores, n, k, order_key(sample[rank]), base, out)) return;
    out.resize(before);
  }
  constexpr int kShift = 21;  // 2048 buckets: sign, exponent and 2 mantissa bits
  std::array<uint32_t, (1u << (32 - kShift))> hist{};
  for (int64_t i = 0; i < n; ++i) ++hist[order_key(scores[i]) >> kShift];
  int64_t above = 0;
  uint32_t b = static_cast<uint32_t>(hist.size() - 1);
  while (above + hist[b] < k) above += hist[b--];
  const int64_t need = k - above;  // taken from bucket b, 1 <= need <= hist[b]
  // Among bucket b, keep entries whose (key, index) is at least the need-th largest.
  uint64_t threshold = 0;
  if (need < hist[b]) {
    // Candidates as (key << 32 | index) — the order the tie-break defines.
    scratch.resize(hist[b]);
    uint64_t* cand = scratch.data();
    size_t m = 0;
    uint32_t kmin = UINT32_MAX, kmax = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t u = order_key(scores[i]);
      if ((u >> kShift) != b) continue;
      kmin = std::min(kmin, u);
      kmax = std::max(kmax, u);
      cand[m++] = (static_cast<uint64_t>(u) << 32) | static_cast<uint32_t>(i);
    }
    if (kmin == kmax) {
      threshold = cand[m - static_cast<size_t>(need)];  // all equal: the latest `need` indices
    } else {
      std::nth_element(cand, cand + (need - 1), cand + m, std::greater<uint64_t>());
      threshold = cand[need - 1];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = order_key(scores[i]);
    const uint32_t bu = u >> kShift;
    if (bu > b || (bu == b && ((static_cast<uint64_t>(u) << 32) | static_cast<uint32_t>(i)) >= threshold))
      out.push_back(base + static_cast<int32_t>(i));
  }
}

}  // namespace docdsa::kernels
