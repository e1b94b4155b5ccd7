// AVX-512 kernels of the packed F16/BF16 GEMM (layout in gemm_impl.h). A tile is G groups of
// 16 rows by T tokens, one fp32 accumulator register per (group, token):
//   F16:  per k, the group's 16 weights converted (VCVTPH2PS) meet T activations broadcast from
//         a float copy of the tile's rows, in G*T FMAs;
//   BF16: per k-pair, one register of 16 rows' pairs meets T activation pairs broadcast as
//         dwords in G*T VDPBF16PS (on CPUs with AVX512_BF16), or in 2*G*T FMAs on the pairs
//         widened to fp32 (AVX-512 without it).
// Each (row, token) sum is one accumulator chain in k order, the order gemm_half_ref() follows,
// so results are bit-exact with it and do not depend on the batch size or the tile shape.
// Prefill runs 1x8 tiles (each weight register feeds 8 tokens), decode up to 8x1 (independent
// chains keep the weight loads in flight).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "docdsa/kernels/fp16.h"

#include "gemm_impl.h"

namespace docdsa::kernels {
namespace detail::gemm {
namespace {

struct HalfCtx {
  const uint8_t* w;
  size_t group_bytes;
  const uint8_t* a;  // the tile's first activation row
  size_t a_stride;
  const float* af;  // F16: the tile's activations as floats, n_in apart
  int64_t n_in;
  float* out;
  int64_t ldo;
  int64_t r0, r1;
};

// Rows [r0, r1) of group g as a store mask.
inline __mmask16 rows_mask(const HalfCtx& c, int64_t g) {
  const int64_t base = g * kGemmGroupRows;
  const int lo = static_cast<int>(std::max<int64_t>(0, c.r0 - base));
  const int hi = static_cast<int>(std::min<int64_t>(kGemmGroupRows, c.r1 - base));
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

template <int G, int T>
inline void store(const HalfCtx& c, int64_t g0, __m512 (&acc)[G][T]) {
  for (int g = 0; g < G; ++g) {
    const __mmask16 m = rows_mask(c, g0 + g);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(c.out + t * c.ldo + (g0 + g) * kGemmGroupRows, m, acc[g][t]);
  }
}

// A tile's accumulators, zeroed, and its groups' packed rows.
template <int G, int T>
struct Acc {
  __m512 acc[G][T];
  const uint8_t* grp[G];
  Acc(const HalfCtx& c, int64_t g0) {
    for (auto& row : acc)
      for (auto& x : row) x = _mm512_setzero_ps();
    for (int g = 0; g < G; ++g) grp[g] = c.w + static_cast<size_t>(g0 + g) * c.group_bytes;
  }
};

template <int G, int T>
void tile_f16(const HalfCtx& c, int64_t g0) {
  Acc<G, T> t_(c, g0);
  auto& acc = t_.acc;
  const auto& grp = t_.grp;
  const float* af = c.af;
  for (int64_t k = 0; k < c.n_in; ++k) {
    const size_t off = 32 * static_cast<size_t>(k);  // half_pos(F16, 0, k)
    for (int g = 0; g < G; ++g) {
      const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(grp[g] + off)));
      for (int t = 0; t < T; ++t) acc[g][t] = _mm512_fmadd_ps(w, _mm512_set1_ps(af[t * c.n_in + k]), acc[g][t]);
    }
  }
  store<G, T>(c, g0, acc);
}

inline int32_t pair_at(const HalfCtx& c, int t, int64_t p) {
  int32_t v;
  std::memcpy(&v, c.a + static_cast<size_t>(t) * c.a_stride + 4 * static_cast<size_t>(p), 4);
  return v;
}

template <int G, int T>
__attribute__((target("avx512bf16"))) void tile_bf16_dp(const HalfCtx& c, int64_t g0) {
  Acc<G, T> t_(c, g0);
  auto& acc = t_.acc;
  const auto& grp = t_.grp;
  const int64_t n_pairs = c.n_in / 2;
  for (int64_t p = 0; p < n_pairs; ++p) {
    const size_t off = 64 * static_cast<size_t>(p);  // half_pos(BF16, 0, 2 p)
    __m512i ap[T];
    for (int t = 0; t < T; ++t) ap[t] = _mm512_set1_epi32(pair_at(c, t, p));
    for (int g = 0; g < G; ++g) {
      const __m512i w = _mm512_loadu_si512(grp[g] + off);
      for (int t = 0; t < T; ++t) acc[g][t] = _mm512_dpbf16_ps(acc[g][t], (__m512bh)w, (__m512bh)ap[t]);
    }
  }
  store<G, T>(c, g0, acc);
}

// The same sums without VDPBF16PS: each pair widened to two fp32 registers (bf16 -> fp32 is a
// shift), the odd value first as the instruction accumulates.
template <int G, int T>
void tile_bf16_fma(const HalfCtx& c, int64_t g0) {
  Acc<G, T> t_(c, g0);
  auto& acc = t_.acc;
  const auto& grp = t_.grp;
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  const int64_t n_pairs = c.n_in / 2;
  for (int64_t p = 0; p < n_pairs; ++p) {
    const size_t off = 64 * static_cast<size_t>(p);  // half_pos(BF16, 0, 2 p)
    __m512 a_odd[T], a_even[T];
    for (int t = 0; t < T; ++t) {
      const auto v = static_cast<uint32_t>(pair_at(c, t, p));
      a_odd[t] = _mm512_set1_ps(fp32_from_bits(v & 0xFFFF0000u));
      a_even[t] = _mm512_set1_ps(fp32_from_bits(v << 16));
    }
    for (int g = 0; g < G; ++g) {
      const __m512i w = _mm512_loadu_si512(grp[g] + off);
      const __m512 w_odd = _mm512_castsi512_ps(_mm512_and_si512(w, hi_mask));
      const __m512 w_even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      for (int t = 0; t < T; ++t) {
        acc[g][t] = _mm512_fmadd_ps(w_odd, a_odd[t], acc[g][t]);
        acc[g][t] = _mm512_fmadd_ps(w_even, a_even[t], acc[g][t]);
      }
    }
  }
  store<G, T>(c, g0, acc);
}

enum class Kind { kF16, kBf16Dot, kBf16Fma };

template <int G, int T>
void tile(Kind kind, const HalfCtx& c, int64_t g0) {
  if (kind == Kind::kF16) tile_f16<G, T>(c, g0);
  else if (kind == Kind::kBf16Dot) tile_bf16_dp<G, T>(c, g0);
  else tile_bf16_fma<G, T>(c, g0);
}

// Groups [g0, g1) for the tile's T tokens.
template <int T>
void sweep(Kind kind, const HalfCtx& c, int64_t g0, int64_t g1) {
  for (int64_t g = g0; g < g1; ++g) tile<1, T>(kind, c, g);
}

// One token: up to 8 groups per tile, so a chunk of a few groups still runs independent chains
// (one chain waits on the FMA latency; the rows stream from memory at 2 bytes per product).
void sweep_one_token(Kind kind, const HalfCtx& c, int64_t g0, int64_t g1) {
  int64_t g = g0;
  for (; g + 8 <= g1; g += 8) tile<8, 1>(kind, c, g);
  switch (g1 - g) {
    case 7: tile<7, 1>(kind, c, g); break;
    case 6: tile<6, 1>(kind, c, g); break;
    case 5: tile<5, 1>(kind, c, g); break;
    case 4: tile<4, 1>(kind, c, g); break;
    case 3: tile<3, 1>(kind, c, g); break;
    case 2: tile<2, 1>(kind, c, g); break;
    case 1: tile<1, 1>(kind, c, g); break;
    default: break;
  }
}

}  // namespace

void gemm_half(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0, int64_t r1,
               bool bf16_dot) {
  constexpr int kT = 8;
  const Kind kind = w.type == DType::F16 ? Kind::kF16 : bf16_dot ? Kind::kBf16Dot : Kind::kBf16Fma;
  const int64_t g0 = r0 / kGemmGroupRows, g1 = (r1 + kGemmGroupRows - 1) / kGemmGroupRows;
  float* af = kind == Kind::kF16 ? float_scratch(static_cast<size_t>(std::min(n_tok, kT)) * static_cast<size_t>(w.n_in)) : nullptr;
  for (int t0 = 0; t0 < n_tok; t0 += kT) {
    const int nt = std::min(kT, n_tok - t0);
    const HalfCtx c{w.data.get(), w.group_bytes(), a + static_cast<size_t>(t0) * a_stride, a_stride, af, w.n_in,
                    out + static_cast<int64_t>(t0) * ldo, ldo, r0, r1};
    if (af)  // F16: the tile's activations once as floats (exact), n_in apart
      for (int t = 0; t < nt; ++t) {
        const auto* src = reinterpret_cast<const uint16_t*>(c.a + static_cast<size_t>(t) * a_stride);
        for (int64_t k = 0; k < w.n_in; k += 16)
          _mm512_storeu_ps(af + t * w.n_in + k, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k))));
      }
    switch (nt) {
      case 1: sweep_one_token(kind, c, g0, g1); break;
      case 2: sweep<2>(kind, c, g0, g1); break;
      case 3: sweep<3>(kind, c, g0, g1); break;
      case 4: sweep<4>(kind, c, g0, g1); break;
      case 5: sweep<5>(kind, c, g0, g1); break;
      case 6: sweep<6>(kind, c, g0, g1); break;
      case 7: sweep<7>(kind, c, g0, g1); break;
      default: sweep<8>(kind, c, g0, g1); break;
    }
  }
}

}  // namespace detail::gemm
}  // namespace docdsa::kernels
