// AVX-512 VNNI kernels for the packed GEMM (layout in gemm_impl.h). A tile is G groups of 16
// rows by T tokens: per 4-value step one register of weights (16 rows x 4 bytes) meets T
// activation dwords broadcast from memory in G*T VPDPBUSDs; the int32 sums get their integer
// sub-block scale (VPMULLD), the block's float scales at the end of each block. Prefill runs
// 1x8 tiles (each weight register feeds 8 tokens). Q4_0/Q4_1/Q8_0 take the same tiles in the
// block order (gemm.h), or tile_legacy in llama.cpp's order when gemm_llama_order() is set.
//
// Decode (one or two tokens) is a stream of weights read once: its speed is the memory's, not
// the VPDPBUSDs' (in L2 one core runs the K-quant GEMV at ~100 GB/s, 2.5x what it reads from
// DRAM). Measured on the EPYC (Zen 5, 2 cores): 4x1 tiles, four interleaved streams of 14 KiB
// left to the hardware prefetcher, reached half the read bandwidth, one core's time being
// about its compute time plus its DRAM time, as if the two took turns. So decode runs 1xT
// tiles, group after group: the row range is one contiguous byte range (groups and their
// records are adjacent), which the kernel prefetches kPrefetchBytes ahead, spread over the
// sub-blocks, plus the first kPrefetchBytes of the range when it starts. bench --roofline:
// 46-57% -> 83-95% of the read bandwidth with both threads streaming. The arithmetic, and so
// the result, is the same. Q4_0/Q4_1/Q8_0 decode (block order through tile, llama.cpp's
// through tile_legacy, both group after group) gets the same prefetch: in llama.cpp's order
// GEMV from DRAM +6-29% (Q8_0 output matrix the most; busy machine, A/B in one process), to
// ~34-36 GB/s per core on 4 KiB pages, ~38-39 (as the K-quants) on huge pages.
// Compiled with -mavx512f/bw/vl/vnni -ffp-contract=off: the float side must stay unfused to
// be bit-exact with the scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "gemm_impl.h"

namespace docdsa::kernels::detail::gemm {
namespace {

// How far ahead of its reads the decode stream prefetches: about what one core has in flight
// from DRAM at its share of the bandwidth (4-8 KiB measured flat, 2 KiB and 16 KiB slower).
constexpr size_t kPrefetchBytes = 6144;

struct Ctx {
  const uint8_t* w;
  size_t group_bytes;
  int64_t nb;
  const uint8_t* a;
  size_t a_stride;
  const Aux* aux;
  float* out;
  int64_t ldo;
  int64_t r0, r1;
  const uint8_t* w_end;  // end of the packed weight: prefetches stop there
};

inline void prefetch_lines(const uint8_t* p, const uint8_t* end) {
  for (; p < end; p += 64) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// The decode prefetch of a K-quant record: kParts parts of kLines lines, one part every kEvery
// sub-blocks; together they cover at least the record's lines (records are adjacent, so the
// whole stream), with a count known at compile time (no loop, no bounds check).
// Q4_0/Q4_1/Q8_0 records (288/320/544 bytes) are one sub-block: one part of ceil(record/64)
// lines per record, which covers the stream because record b+1's part starts at most 64 *
// kLines bytes after record b's.
template <DType TT>
struct Pf {
  static constexpr Layout L = layout_of(TT);
  static constexpr int kParts = L.kquant ? 8 : 1;
  static_assert(L.n_sub % kParts == 0);
  static constexpr int kEvery = L.n_sub / kParts;
  static constexpr int kLines = static_cast<int>((L.record + 63) / 64 + kParts - 1) / kParts;
};
template <int... I>
[[gnu::always_inline]] inline void prefetch_part(const uint8_t* p, std::integer_sequence<int, I...>) {
  (_mm_prefetch(reinterpret_cast<const char*>(p + 64 * I), _MM_HINT_T0), ...);
}

// 16 fp16 scales -> floats (exact).
inline __m512 ldh(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The step helpers are forced inline: GCC keeps sub_block as a call for some types (Q5_K), which
// sends the accumulators through memory at every sub-block (half the speed in L2).

// Weights of step U of sub-block j, as 64 unsigned bytes.
template <DType TT, int U>
[[gnu::always_inline]] inline __m512i wstep(const uint8_t* rec, int j) {
  constexpr Layout L = layout_of(TT);
  if constexpr (L.bytes) {
    return _mm512_loadu_si512(rec + 64 * (j * L.sub_steps + U));
  } else {
    const __m512i x = _mm512_loadu_si512(rec + 64 * (j * L.sub_steps / 2 + U / 2));
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i q = (U % 2 == 0) ? _mm512_and_si512(x, m4) : _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
    if constexpr (L.hbits != 0) {
      const __m512i h = _mm512_loadu_si512(rec + L.h_off + 64 * j);  // one plane per sub-block
      constexpr int sh = L.hbits * U - 4;                            // bits of step U -> bit 4
      __m512i hs = h;
      if constexpr (sh > 0) hs = _mm512_srli_epi16(h, sh);
      if constexpr (sh < 0) hs = _mm512_slli_epi16(h, -sh);
      const __m512i hm = _mm512_set1_epi8(static_cast<char>(((1 << L.hbits) - 1) << 4));
      q = _mm512_ternarylogic_epi32(q, hs, hm, 0xF8);  // q | (hs & hm)
    }
    return q;
  }
}

template <DType TT, int G, int T, int U>
[[gnu::always_inline]] inline void step(const uint8_t* const* rec, int j, const uint8_t* const* aq, __m512i (&is)[G][T]) {
  constexpr Layout L = layout_of(TT);
  __m512i w[G];
  for (int g = 0; g < G; ++g) w[g] = wstep<TT, U>(rec[g], j);
  for (int t = 0; t < T; ++t) {
    int32_t v;
    std::memcpy(&v, aq[t] + 4 * (j * L.sub_steps + U), 4);
    const __m512i av = _mm512_set1_epi32(v);
    for (int g = 0; g < G; ++g) is[g][t] = _mm512_dpbusd_epi32(is[g][t], w[g], av);
  }
}

template <DType TT, int G, int T, int... U>
[[gnu::always_inline]] inline void sub_block(std::integer_sequence<int, U...>, const uint8_t* const* rec, int j,
                                             const uint8_t* const* aq, __m512i (&is)[G][T]) {
  (step<TT, G, T, U>(rec, j, aq, is), ...);
}

inline __mmask16 lane_mask(const Ctx& c, int64_t g) {
  const int64_t base = g * kGemmGroupRows;
  const int64_t lo = c.r0 > base ? c.r0 - base : 0;
  const int64_t hi = c.r1 - base < kGemmGroupRows ? c.r1 - base : kGemmGroupRows;
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// PF: prefetch the stream kPrefetchBytes ahead of this tile's (one) group (decode, see top).
template <DType TT, int G, int T, bool PF = false>
void tile(const Ctx& c, int64_t g0, int t0) {
  static_assert(!PF || G == 1, "the prefetch follows one contiguous stream");
  constexpr Layout L = layout_of(TT);
  constexpr auto steps = std::make_integer_sequence<int, L.sub_steps>{};
  __m512 facc[G][T];
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < T; ++t) facc[g][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < c.nb; ++b) {
    const uint8_t* rec[G];
    const uint8_t* aq[T];
    const Aux* ax[T];
    for (int g = 0; g < G; ++g) rec[g] = c.w + static_cast<size_t>(g0 + g) * c.group_bytes + static_cast<size_t>(b) * L.record;
    for (int t = 0; t < T; ++t) {
      aq[t] = c.a + static_cast<size_t>(t0 + t) * c.a_stride + static_cast<size_t>(b) * L.a_block + L.a_qs;
      ax[t] = c.aux + static_cast<size_t>(t0 + t) * static_cast<size_t>(c.nb) + b;
    }
    if constexpr (L.kquant) {
      __m512i sb[G][T];
      for (int g = 0; g < G; ++g)
        for (int t = 0; t < T; ++t) sb[g][t] = _mm512_setzero_si512();
      for (int j = 0; j < L.n_sub; ++j) {
        if constexpr (PF) {
          using P = Pf<TT>;
          if (j % P::kEvery == 0)
            prefetch_part(rec[0] + kPrefetchBytes + 64 * P::kLines * (j / P::kEvery),
                          std::make_integer_sequence<int, P::kLines>{});
        }
        __m512i is[G][T];
        for (int g = 0; g < G; ++g)
          for (int t = 0; t < T; ++t) is[g][t] = L.offset ? _mm512_set1_epi32(ax[t]->v[j]) : _mm512_setzero_si512();
        sub_block<TT, G, T>(steps, rec, j, aq, is);
        for (int g = 0; g < G; ++g) {
          const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec[g] + L.sc_off + 16 * j));
          const __m512i sc = L.offset ? _mm512_cvtepi8_epi32(s8) : _mm512_cvtepu8_epi32(s8);
          for (int t = 0; t < T; ++t) sb[g][t] = _mm512_add_epi32(sb[g][t], _mm512_mullo_epi32(is[g][t], sc));
        }
      }
      for (int g = 0; g < G; ++g) {
        const __m512 d = ldh(rec[g] + L.d_off);
        __m512 dmin = _mm512_setzero_ps();
        __m512i mn[4];
        if constexpr (L.has_min) {
          dmin = ldh(rec[g] + L.m_off);
          for (int p = 0; p < 4; ++p)
            mn[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec[g] + L.mn_off + 32 * p)));
        }
        for (int t = 0; t < T; ++t) {
          const __m512 da = _mm512_set1_ps(ax[t]->d);
          __m512 r = _mm512_mul_ps(_mm512_mul_ps(d, da), _mm512_cvtepi32_ps(sb[g][t]));
          if constexpr (L.has_min) {
            __m512i sm = _mm512_setzero_si512();
            for (int p = 0; p < 4; ++p) sm = _mm512_dpwssd_epi32(sm, mn[p], _mm512_set1_epi32(ax[t]->v[p]));
            r = _mm512_sub_ps(r, _mm512_mul_ps(_mm512_mul_ps(dmin, da), _mm512_cvtepi32_ps(sm)));
          }
          facc[g][t] = _mm512_add_ps(facc[g][t], r);
        }
      }
    } else {
      // Block order (gemm.h): one integer sum per block, seeded with the offset's block total.
      if constexpr (PF) prefetch_part(rec[0] + kPrefetchBytes, std::make_integer_sequence<int, Pf<TT>::kLines>{});
      __m512i is[G][T];
      for (int g = 0; g < G; ++g)
        for (int t = 0; t < T; ++t) is[g][t] = L.offset ? _mm512_set1_epi32(ax[t]->v[8]) : _mm512_setzero_si512();
      sub_block<TT, G, T>(steps, rec, 0, aq, is);
      for (int g = 0; g < G; ++g) {
        const __m512 d = ldh(rec[g] + L.d_off);
        __m512 m = _mm512_setzero_ps();
        if constexpr (L.has_min) m = ldh(rec[g] + L.m_off);
        for (int t = 0; t < T; ++t) {
          const __m512 dd = _mm512_mul_ps(d, _mm512_set1_ps(ax[t]->d));
          facc[g][t] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(is[g][t]), facc[g][t]);
          if constexpr (L.has_min) facc[g][t] = _mm512_fmadd_ps(m, _mm512_set1_ps(ax[t]->s), facc[g][t]);
        }
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const __mmask16 m = lane_mask(c, g0 + g);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(c.out + (t0 + t) * c.ldo + (g0 + g) * kGemmGroupRows, m, facc[g][t]);
  }
}

// Q4_0/Q4_1/Q8_0 in llama.cpp's float order (gemm_llama_order(); bit-identical to the oracle,
// like matmul_tile): per row, 8 float accumulators, one per 4-value step of a 32-value block, each
// acc_i = fma(d_w * d_a, sum of step i, acc_i) block after block, then llama.cpp's hsum_float_8
// order plus the sequential fma of the Q4_1 min terms. One register per row group still
// carries 16 rows, so the cost is 8 float FMAs per 8 VPDPBUSDs.
template <DType TT, int U, int T>
inline void legacy_step(const uint8_t* rec, const uint8_t* const* aq, const Aux* const* ax, const __m512* dd,
                        __m512 (&acc)[T][8]) {
  constexpr Layout L = layout_of(TT);
  const __m512i w = wstep<TT, U>(rec, 0);
  for (int t = 0; t < T; ++t) {
    int32_t v;
    std::memcpy(&v, aq[t] + 4 * U, 4);
    const __m512i seed = L.offset ? _mm512_set1_epi32(ax[t]->v[U]) : _mm512_setzero_si512();
    const __m512i is = _mm512_dpbusd_epi32(seed, w, _mm512_set1_epi32(v));
    acc[t][U] = _mm512_fmadd_ps(dd[t], _mm512_cvtepi32_ps(is), acc[t][U]);
  }
}

template <DType TT, int T, int... U>
inline void legacy_steps(std::integer_sequence<int, U...>, const uint8_t* rec, const uint8_t* const* aq, const Aux* const* ax,
                         const __m512* dd, __m512 (&acc)[T][8]) {
  (legacy_step<TT, U, T>(rec, aq, ax, dd, acc), ...);
}

// PF: prefetch the stream kPrefetchBytes ahead (decode, see top and Pf).
template <DType TT, int T, bool PF = false>
void tile_legacy(const Ctx& c, int64_t g, int t0) {
  constexpr Layout L = layout_of(TT);
  __m512 acc[T][8], summ[T];
  for (int t = 0; t < T; ++t) {
    summ[t] = _mm512_setzero_ps();
    for (int i = 0; i < 8; ++i) acc[t][i] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < c.nb; ++b) {
    const uint8_t* rec = c.w + static_cast<size_t>(g) * c.group_bytes + static_cast<size_t>(b) * L.record;
    if constexpr (PF) prefetch_part(rec + kPrefetchBytes, std::make_integer_sequence<int, Pf<TT>::kLines>{});
    const uint8_t* aq[T];
    const Aux* ax[T];
    __m512 dd[T];
    const __m512 d = ldh(rec + L.d_off);
    for (int t = 0; t < T; ++t) {
      aq[t] = c.a + static_cast<size_t>(t0 + t) * c.a_stride + static_cast<size_t>(b) * L.a_block + L.a_qs;
      ax[t] = c.aux + static_cast<size_t>(t0 + t) * static_cast<size_t>(c.nb) + b;
      dd[t] = _mm512_mul_ps(d, _mm512_set1_ps(ax[t]->d));
    }
    legacy_steps<TT, T>(std::make_integer_sequence<int, 8>{}, rec, aq, ax, dd, acc);
    if constexpr (L.has_min) {
      const __m512 m = ldh(rec + L.m_off);
      for (int t = 0; t < T; ++t) summ[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(ax[t]->s), summ[t]);
    }
  }
  const __mmask16 mask = lane_mask(c, g);
  for (int t = 0; t < T; ++t) {
    const __m512* a = acc[t];
    const __m512 r = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a[4], a[0]), _mm512_add_ps(a[6], a[2])),
                                   _mm512_add_ps(_mm512_add_ps(a[5], a[1]), _mm512_add_ps(a[7], a[3])));
    _mm512_mask_storeu_ps(c.out + (t0 + t) * c.ldo + g * kGemmGroupRows, mask, _mm512_add_ps(r, summ[t]));
  }
}

template <DType TT, int G>
void tile_n(const Ctx& c, int64_t g0, int t0, int n) {
  if constexpr (G == 1) {
    switch (n) {
      case 1:
        tile<TT, 1, 1>(c, g0, t0);
        return;
      case 2:
        tile<TT, 1, 2>(c, g0, t0);
        return;
      case 3:
        tile<TT, 1, 3>(c, g0, t0);
        return;
      case 4:
        tile<TT, 1, 4>(c, g0, t0);
        return;
      case 5:
        tile<TT, 1, 5>(c, g0, t0);
        return;
      case 6:
        tile<TT, 1, 6>(c, g0, t0);
        return;
      case 7:
        tile<TT, 1, 7>(c, g0, t0);
        return;
      default:
        tile<TT, 1, 8>(c, g0, t0);
        return;
    }
  } else {
    static_assert(G == 2);  // 3 or 4 tokens (1 or 2 go to run_decode)
    if (n == 3)
      tile<TT, 2, 3>(c, g0, t0);
    else
      tile<TT, 2, 4>(c, g0, t0);
  }
}

// Decode: one prefetched stream, group after group (see top), for every packed type.
template <DType TT>
void run_decode(const Ctx& c, int n_tok, int64_t g_begin, int64_t g_end, bool llama_order) {
  // The range's first kPrefetchBytes at once; then each group prefetches as it goes, up to
  // the groups whose prefetch would pass the end of the weight: the first of those prefetches
  // the rest of the weight at once. Offsets from c.w (pf_next: all below it is prefetched).
  const size_t w_bytes = static_cast<size_t>(c.w_end - c.w);
  const size_t start = static_cast<size_t>(g_begin) * c.group_bytes;
  size_t pf_next = std::min(start + kPrefetchBytes, w_bytes);
  prefetch_lines(c.w + start, c.w + pf_next);
  for (int64_t g = g_begin; g < g_end; ++g) {
    const size_t grp = static_cast<size_t>(g) * c.group_bytes;
    // Past the last line this group's records would prefetch: its last record's parts.
    const size_t reach = grp + static_cast<size_t>(c.nb - 1) * layout_of(TT).record + kPrefetchBytes +
                         64 * static_cast<size_t>(Pf<TT>::kParts * Pf<TT>::kLines);
    const bool pf = reach <= w_bytes;
    if (!pf && pf_next < w_bytes) {
      prefetch_lines(c.w + std::min(std::max(pf_next, grp + kPrefetchBytes), w_bytes), c.w_end);
      pf_next = w_bytes;
    }
    if constexpr (!layout_of(TT).kquant) {
      if (llama_order) {
        if (n_tok == 1)
          pf ? tile_legacy<TT, 1, true>(c, g, 0) : tile_legacy<TT, 1>(c, g, 0);
        else
          pf ? tile_legacy<TT, 2, true>(c, g, 0) : tile_legacy<TT, 2>(c, g, 0);
        continue;
      }
    }
    if (n_tok == 1)
      pf ? tile<TT, 1, 1, true>(c, g, 0) : tile<TT, 1, 1>(c, g, 0);
    else
      pf ? tile<TT, 1, 2, true>(c, g, 0) : tile<TT, 1, 2>(c, g, 0);
  }
}

template <DType TT>
void run(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo, int64_t r0,
         int64_t r1, bool llama_order) {
  const int64_t g_begin = r0 / kGemmGroupRows;
  const int64_t g_end = (r1 + kGemmGroupRows - 1) / kGemmGroupRows;
  const Ctx c{w.data.get(), w.group_bytes(), w.n_blocks, a, a_stride, aux, out, ldo, r0, r1, w.data.get() + w.packed_bytes()};
  if (n_tok <= 2) {
    run_decode<TT>(c, n_tok, g_begin, g_end, llama_order);
    return;
  }
  if constexpr (!layout_of(TT).kquant) {  // llama_order only matters to Q4_0/Q4_1/Q8_0
    if (llama_order) {
      for (int64_t g = g_begin; g < g_end; ++g) {
        int t = 0;
        for (; t + 2 <= n_tok; t += 2) tile_legacy<TT, 2>(c, g, t);
        if (t < n_tok) tile_legacy<TT, 1>(c, g, t);
      }
      return;
    }
  }
  if (n_tok >= 8) {
    // Token tiles of 8, a few groups at a time: the groups' records stay in L1/L2 while
    // the activations of all tokens stream past them.
    for (int64_t g = g_begin; g < g_end; ++g) {
      int t = 0;
      for (; t + 8 <= n_tok; t += 8) tile<TT, 1, 8>(c, g, t);
      if (t < n_tok) tile_n<TT, 1>(c, g, t, n_tok - t);
    }
    return;
  }
  const int G = n_tok <= 4 ? 2 : 1;
  int64_t g = g_begin;
  if (G == 2)
    for (; g + 2 <= g_end; g += 2) tile_n<TT, 2>(c, g, 0, n_tok);
  for (; g < g_end; ++g) tile_n<TT, 1>(c, g, 0, n_tok);
}

}  // namespace

void gemm_vnni(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo,
               int64_t r0, int64_t r1, bool llama_order) {
  switch (w.type) {
    case DType::Q4_0:
      run<DType::Q4_0>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    case DType::Q4_1:
      run<DType::Q4_1>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    case DType::Q8_0:
      run<DType::Q8_0>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    case DType::Q4_K:
      run<DType::Q4_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    case DType::Q5_K:
      run<DType::Q5_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    case DType::Q6_K:
      run<DType::Q6_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, llama_order);
      return;
    default:
      gemm_ref(w, a, a_stride, n_tok, out, ldo, r0, r1, llama_order);
      return;
  }
}

}  // namespace docdsa::kernels::detail::gemm
