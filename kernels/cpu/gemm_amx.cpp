// AMX int8 tile kernels for the packed GEMM (layout in gemm_impl.h), for batches of 16 tokens.
//
// The packed layout already is what a tile multiply wants on its B side: a 4-value "step" of
// 16 rows is 64 bytes, lane i = row i, so the steps of one sub-block are a B tile of
// (sub-block / 4) rows of 64 bytes. Nibbles are unpacked to bytes once per (row group, block)
// into a small buffer that every token tile of the call reuses; Q8_0's bytes load directly.
// The A side is the quantised activations themselves (signed bytes, one token per tile row,
// the activation row stride as the tile stride), so TDPBSUD (signed x unsigned) gives
// C[token][row].
//
// K-quant sub-block scales do not fit an int8 operand next to the quant (6-bit scale x 4..6-bit
// quant), and one tile product per 16/32-value sub-block leaves the vector side scaling every
// C tile, which measured barely faster than VNNI (1.0-1.25x). Here the scale is
// folded into the weights when a block is unpacked: p = scale x quant (at most 14 bits) splits
// into a low byte plane (unsigned) and a high byte plane (unsigned, Q6_K signed), and
// C = A.lo + 256 A.hi over the whole 256-value block in full-width tile products (K = 64),
// which is exactly the reference's integer sum of scale x sub-block sum. Q6_K's offset of 32
// becomes -32 * sum_j scale_j * bsums_j (int16 pairs, VPDPWSSD), the mins of Q4_K/Q5_K the
// same as in the VNNI kernel. The float side is detail::ref::vec_dot's order, unfused, so the
// K-quants stay bit-exact with the VNNI kernels. Q4_0/Q4_1/Q8_0 take one product per 32-value
// block, fused into the accumulator block after block: the block order (gemm.h), as
// the VNNI kernels; llama.cpp's per-4-value lane order cannot be had from a tile.
//
// The unpacked planes of a (row group, block) serve every 16-token tile of the call, so the
// caller's token blocks should be large (engine/src/cpu/matmul.cpp). Compiled with AMX,
// AVX-512 and -ffp-contract=off.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "gemm_impl.h"

namespace docdsa::kernels::detail::gemm {
namespace {

constexpr int kTok = 16;  // tokens per tile (A and C rows)

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// K-quants: tiles 0/1 C (lo, hi planes: 16 tokens x 16 rows int32), 2/3 A (16 tokens x 64
// bytes), 4-7 B (16 steps x 64 bytes: lo/hi of two K chunks). Q4_0/Q4_1/Q8_0: 0/1 C, 2/3 A
// (16 tokens x 32 bytes), 4/5 B (8 steps x 64 bytes).
void load_config(bool kquant) {
  TileConfig c;
  for (int i = 0; i < 8; ++i) {
    c.colsb[i] = 64;
    c.rows[i] = kTok;
  }
  if (!kquant) {
    c.colsb[2] = c.colsb[3] = 32;
    c.rows[4] = c.rows[5] = 8;
  }
  _tile_loadconfig(&c);
}

inline __m512 ldh(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

struct Scratch {
  alignas(64) uint8_t b[kGemmGroupRows * kQKK];   // one block of a group, one byte per value
  alignas(64) uint8_t hi[kGemmGroupRows * kQKK];  // K-quants: b holds the low bytes of scale x quant, hi the high
  alignas(64) int32_t c[2][kTok * kGemmGroupRows];
  __m512i scp[8];          // Q6_K: the block's sub-block scales as int16 pairs (2p, 2p+1) per row
  std::vector<float> acc;  // [tokens][16] float sums of the current group
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// One block of a group as 64-byte steps of unsigned bytes (the B tiles of its sub-blocks).
template <DType TT>
inline void unpack(const uint8_t* rec, uint8_t* dst) {
  constexpr Layout L = layout_of(TT);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  for (int j = 0; j < L.n_sub; ++j) {
    __m512i h = _mm512_setzero_si512();
    if constexpr (L.hbits != 0) h = _mm512_loadu_si512(rec + L.h_off + 64 * j);  // one plane per sub-block
    for (int c = 0; c < L.sub_steps / 2; ++c) {
      const __m512i x = _mm512_loadu_si512(rec + 64 * (j * L.sub_steps / 2 + c));
      __m512i q[2] = {_mm512_and_si512(x, m4), _mm512_and_si512(_mm512_srli_epi16(x, 4), m4)};
      if constexpr (L.hbits != 0) {
        const __m512i hm = _mm512_set1_epi8(static_cast<char>(((1 << L.hbits) - 1) << 4));
        for (int u = 0; u < 2; ++u) {
          const int sh = L.hbits * (2 * c + u) - 4;  // bits of step 2c+u -> bit 4
          const __m512i hs =
              sh > 0 ? _mm512_srli_epi16(h, static_cast<unsigned>(sh)) : _mm512_slli_epi16(h, static_cast<unsigned>(-sh));
          q[u] = _mm512_ternarylogic_epi32(q[u], hs, hm, 0xF8);  // q | (hs & hm)
        }
      }
      _mm512_store_si512(dst + 64 * (j * L.sub_steps + 2 * c), q[0]);
      _mm512_store_si512(dst + 64 * (j * L.sub_steps + 2 * c + 1), q[1]);
    }
  }
}

// A K-quant block of a group as the low and high byte planes of scale x quant, in 64-byte
// steps (lane i = row i); Q6_K also its scale pairs.
template <DType TT>
inline void unpack_scaled(const uint8_t* rec, Scratch& s) {
  constexpr Layout L = layout_of(TT);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i mlo = _mm512_set1_epi16(0x00FF);
  const __m512i m16 = _mm512_set1_epi32(0xFFFF);
  for (int j = 0; j < L.n_sub; ++j) {
    const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + L.sc_off + 16 * j));
    const __m512i sc32 = L.offset ? _mm512_cvtepi8_epi32(s8) : _mm512_cvtepu8_epi32(s8);
    const __m512i scw = _mm512_or_si512(_mm512_and_si512(sc32, m16), _mm512_slli_epi32(sc32, 16));  // both words
    if constexpr (L.offset != 0) {
      if (j % 2 == 0)
        s.scp[j / 2] = _mm512_and_si512(sc32, m16);
      else
        s.scp[j / 2] = _mm512_or_si512(s.scp[j / 2], _mm512_slli_epi32(sc32, 16));
    }
    __m512i h = _mm512_setzero_si512();
    if constexpr (L.hbits != 0) h = _mm512_loadu_si512(rec + L.h_off + 64 * j);
    for (int c = 0; c < L.sub_steps / 2; ++c) {
      const __m512i x = _mm512_loadu_si512(rec + 64 * (j * L.sub_steps / 2 + c));
      __m512i q[2] = {_mm512_and_si512(x, m4), _mm512_and_si512(_mm512_srli_epi16(x, 4), m4)};
      for (int u = 0; u < 2; ++u) {
        if constexpr (L.hbits != 0) {
          const __m512i hm = _mm512_set1_epi8(static_cast<char>(((1 << L.hbits) - 1) << 4));
          const int sh = L.hbits * (2 * c + u) - 4;
          const __m512i hs =
              sh > 0 ? _mm512_srli_epi16(h, static_cast<unsigned>(sh)) : _mm512_slli_epi16(h, static_cast<unsigned>(-sh));
          q[u] = _mm512_ternarylogic_epi32(q[u], hs, hm, 0xF8);
        }
        // 16-bit products of the even and the odd bytes, then their low and high bytes back in place.
        const __m512i pe = _mm512_mullo_epi16(_mm512_and_si512(q[u], mlo), scw);
        const __m512i po = _mm512_mullo_epi16(_mm512_srli_epi16(q[u], 8), scw);
        const size_t at = 64 * static_cast<size_t>(j * L.sub_steps + 2 * c + u);
        _mm512_store_si512(s.b + at, _mm512_or_si512(_mm512_and_si512(pe, mlo), _mm512_slli_epi16(po, 8)));
        _mm512_store_si512(s.hi + at, _mm512_or_si512(_mm512_srli_epi16(pe, 8), _mm512_andnot_si512(mlo, po)));
      }
    }
  }
}

// C tile `ci` = A (16 tokens, 32 bytes from `a`) x B (the block's 8 steps), stored to c.
// A macro: GCC's tile intrinsics paste their tile numbers into the assembly text.
#define DOCDSA_AMX_PRODUCT(ci, ai, bi, a, a_stride, b, c) \
  do {                                                    \
    _tile_zero(ci);                                       \
    _tile_loadd(ai, (a), static_cast<long>(a_stride));    \
    _tile_loadd(bi, (b), 64);                             \
    _tile_dpbsud(ci, ai, bi);                             \
    _tile_stored(ci, (c), 64);                            \
  } while (0)

inline __mmask16 lane_mask(int64_t r0, int64_t r1, int64_t g) {
  const int64_t base = g * kGemmGroupRows;
  const int64_t lo = r0 > base ? r0 - base : 0;
  const int64_t hi = r1 - base < kGemmGroupRows ? r1 - base : kGemmGroupRows;
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// One K chunk (64 values) of a K-quant block: C0 += A.lo, C1 += A.hi (tiles A, B as named).
#define DOCDSA_AMX_CHUNK(ai, bl, bh, hi_signed, a, a_stride, lo, hi) \
  do {                                                               \
    _tile_loadd(ai, (a), static_cast<long>(a_stride));               \
    _tile_loadd(bl, (lo), 64);                                       \
    _tile_loadd(bh, (hi), 64);                                       \
    _tile_dpbsud(0, ai, bl);                                         \
    if (hi_signed)                                                   \
      _tile_dpbssd(1, ai, bh);                                       \
    else                                                             \
      _tile_dpbsud(1, ai, bh);                                       \
  } while (0)

// One token tile of one block of a K-quant group: acc[t] += the block's contribution.
// `ab`: the first token's activation block (Q8_K).
template <DType TT>
inline void kquant_block(const uint8_t* rec, const Scratch& s, const uint8_t* ab, size_t a_stride, const Aux* const* ax,
                         float* acc, int32_t* c0, int32_t* c1) {
  constexpr Layout L = layout_of(TT);
  constexpr bool kSigned = L.offset != 0;  // Q6_K: signed scales, so signed high bytes
  const uint8_t* aq = ab + L.a_qs;
  _tile_zero(0);
  _tile_zero(1);
  DOCDSA_AMX_CHUNK(2, 4, 5, kSigned, aq, a_stride, s.b, s.hi);
  DOCDSA_AMX_CHUNK(3, 6, 7, kSigned, aq + 64, a_stride, s.b + 1024, s.hi + 1024);
  DOCDSA_AMX_CHUNK(2, 4, 5, kSigned, aq + 128, a_stride, s.b + 2048, s.hi + 2048);
  DOCDSA_AMX_CHUNK(3, 6, 7, kSigned, aq + 192, a_stride, s.b + 3072, s.hi + 3072);
  _tile_stored(0, c0, 64);
  _tile_stored(1, c1, 64);
  const __m512 d = ldh(rec + L.d_off);
  __m512 dmin = _mm512_setzero_ps();
  __m512i mn[4];
  if constexpr (L.has_min) {
    dmin = ldh(rec + L.m_off);
    for (int p = 0; p < 4; ++p)
      mn[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + L.mn_off + 32 * p)));
  }
  for (int t = 0; t < kTok; ++t) {
    const uint8_t* at = ab + static_cast<size_t>(t) * a_stride;
    __m512i sb = _mm512_add_epi32(_mm512_load_si512(c0 + 16 * t), _mm512_slli_epi32(_mm512_load_si512(c1 + 16 * t), 8));
    if constexpr (L.offset != 0) {  // - 32 * sum_j scale_j * bsums_j
      __m512i so = _mm512_setzero_si512();
      for (int p = 0; p < 8; ++p) {
        int32_t pair;
        std::memcpy(&pair, at + offsetof(BlockQ8_K, bsums) + 4 * p, 4);
        so = _mm512_dpwssd_epi32(so, s.scp[p], _mm512_set1_epi32(pair));
      }
      sb = _mm512_sub_epi32(sb, _mm512_slli_epi32(so, 5));
    }
    const __m512 vda = _mm512_set1_ps(ax[t]->d);
    __m512 r = _mm512_mul_ps(_mm512_mul_ps(d, vda), _mm512_cvtepi32_ps(sb));
    if constexpr (L.has_min) {
      __m512i sm = _mm512_setzero_si512();
      for (int p = 0; p < 4; ++p) sm = _mm512_dpwssd_epi32(sm, mn[p], _mm512_set1_epi32(ax[t]->v[p]));
      r = _mm512_sub_ps(r, _mm512_mul_ps(_mm512_mul_ps(dmin, vda), _mm512_cvtepi32_ps(sm)));
    }
    _mm512_storeu_ps(acc + 16 * t, _mm512_add_ps(_mm512_loadu_ps(acc + 16 * t), r));
  }
}

// The same for Q4_0/Q4_1/Q8_0: one product per block, acc = fma(d_w * d_a, sum, acc), then
// acc = fma(m, s, acc) (the block order, gemm.h).
template <DType TT>
inline void legacy_block(const uint8_t* rec, const uint8_t* bw, const uint8_t* aq, size_t a_stride, const Aux* const* ax,
                         float* acc, int32_t* cb) {
  constexpr Layout L = layout_of(TT);
  DOCDSA_AMX_PRODUCT(0, 2, 4, aq, a_stride, bw, cb);
  const __m512 d = ldh(rec + L.d_off);
  __m512 m = _mm512_setzero_ps();
  if constexpr (L.has_min) m = ldh(rec + L.m_off);
  for (int t = 0; t < kTok; ++t) {
    __m512i is = _mm512_load_si512(cb + 16 * t);
    if constexpr (L.offset != 0) is = _mm512_add_epi32(is, _mm512_set1_epi32(ax[t]->v[8]));
    __m512 r = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(ax[t]->d)), _mm512_cvtepi32_ps(is), _mm512_loadu_ps(acc + 16 * t));
    if constexpr (L.has_min) r = _mm512_fmadd_ps(m, _mm512_set1_ps(ax[t]->s), r);
    _mm512_storeu_ps(acc + 16 * t, r);
  }
}

template <DType TT>
void run(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo, int64_t r0,
         int64_t r1) {
  constexpr Layout L = layout_of(TT);
  const int64_t nb = w.n_blocks;
  const int n_tiles = n_tok / kTok;
  Scratch& s = scratch();
  if (s.acc.size() < static_cast<size_t>(n_tiles) * kTok * 16) s.acc.resize(static_cast<size_t>(n_tiles) * kTok * 16);
  float* acc = s.acc.data();
  load_config(L.kquant);
  const int64_t g_begin = r0 / kGemmGroupRows;
  const int64_t g_end = (r1 + kGemmGroupRows - 1) / kGemmGroupRows;
  for (int64_t g = g_begin; g < g_end; ++g) {
    std::memset(acc, 0, static_cast<size_t>(n_tiles) * kTok * 16 * sizeof(float));
    const uint8_t* grp = w.data.get() + static_cast<size_t>(g) * w.group_bytes();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* rec = grp + static_cast<size_t>(b) * L.record;
      const uint8_t* bw = rec;
      if constexpr (L.kquant) {
        unpack_scaled<TT>(rec, s);
      } else if constexpr (!L.bytes) {
        unpack<TT>(rec, s.b);
        bw = s.b;
      }
      for (int tt = 0; tt < n_tiles; ++tt) {
        const int t0 = tt * kTok;
        const uint8_t* ab = a + static_cast<size_t>(t0) * a_stride + static_cast<size_t>(b) * L.a_block;
        const Aux* ax[kTok];
        for (int t = 0; t < kTok; ++t) ax[t] = aux + static_cast<size_t>(t0 + t) * static_cast<size_t>(nb) + b;
        if constexpr (L.kquant) {
          kquant_block<TT>(rec, s, ab, a_stride, ax, acc + static_cast<size_t>(t0) * 16, s.c[0], s.c[1]);
        } else {
          legacy_block<TT>(rec, bw, ab + L.a_qs, a_stride, ax, acc + static_cast<size_t>(t0) * 16, s.c[0]);
        }
      }
    }
    const __mmask16 m = lane_mask(r0, r1, g);
    for (int t = 0; t < n_tiles * kTok; ++t)
      _mm512_mask_storeu_ps(out + t * ldo + g * kGemmGroupRows, m, _mm512_loadu_ps(acc + 16 * t));
  }
  _tile_release();
}

}  // namespace

#undef DOCDSA_AMX_PRODUCT
#undef DOCDSA_AMX_CHUNK

void gemm_amx(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo,
              int64_t r0, int64_t r1) {
  switch (w.type) {
    case DType::Q4_0:
      return run<DType::Q4_0>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    case DType::Q4_1:
      return run<DType::Q4_1>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    case DType::Q8_0:
      return run<DType::Q8_0>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    case DType::Q4_K:
      return run<DType::Q4_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    case DType::Q5_K:
      return run<DType::Q5_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    case DType::Q6_K:
      return run<DType::Q6_K>(w, a, a_stride, n_tok, aux, out, ldo, r0, r1);
    default:  // no tile kernel for this type: the VNNI one covers every packed type
      return gemm_vnni(w, a, a_stride, n_tok, aux, out, ldo, r0, r1, /*llama_order=*/false);
  }
}

}  // namespace docdsa::kernels::detail::gemm
