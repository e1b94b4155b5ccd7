// Internal helpers shared by the scalar reference and the SIMD kernels: per-type dot
// signatures and the K-quant unpacking (bits -> int8 values plus integer sub-block scales),
// so every ISA computes the same integer sums.
#pragma once

#include <cmath>
#include <cstdint>

#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/quant.h"

namespace docdsa::kernels::detail {

// The helpers below are static: this header is included by files built with AVX2 and AVX-512
// flags, and an inline function with external linkage that the compiler did not inline would be
// one weak symbol whose copy the linker picks at random, maybe an AVX-512 one called on a CPU
// without it.

// Unpacked K-quant block: q holds the 256 integer weights as unsigned values (Q6_K's are
// stored +32, so 0..63, and `offset` records it), sc/mn the integer scale and min of each
// sub-block. Unsigned weights let SIMD use u8 x s8 multiply-adds directly.
struct KBlock {
  alignas(64) int8_t q[kQKK];
  int32_t sc[16];
  int32_t mn[16];
  int n_sub;    // 8 sub-blocks of 32 (Q4_K, Q5_K) or 16 of 16 (Q6_K)
  float d;
  float dmin;   // 0 for Q6_K
  int offset;   // 32 for Q6_K: the real weight is q - offset
};

static inline void k4_scale_min(int j, const uint8_t* q, int32_t* d, int32_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

static inline void unpack_q4_k(const BlockQ4_K& b, KBlock* k) {
  k->n_sub = 8;
  k->offset = 0;
  k->d = fp16_to_fp32(b.d);
  k->dmin = fp16_to_fp32(b.dmin);
  const uint8_t* q = b.qs;
  for (int j = 0; j < 4; ++j) {  // 64 values per pass: low nibbles, then high nibbles
    k4_scale_min(2 * j, b.scales, &k->sc[2 * j], &k->mn[2 * j]);
    k4_scale_min(2 * j + 1, b.scales, &k->sc[2 * j + 1], &k->mn[2 * j + 1]);
    for (int l = 0; l < 32; ++l) {
      k->q[64 * j + l] = static_cast<int8_t>(q[l] & 0xF);
      k->q[64 * j + 32 + l] = static_cast<int8_t>(q[l] >> 4);
    }
    q += 32;
  }
}

static inline void unpack_q5_k(const BlockQ5_K& b, KBlock* k) {
  k->n_sub = 8;
  k->offset = 0;
  k->d = fp16_to_fp32(b.d);
  k->dmin = fp16_to_fp32(b.dmin);
  const uint8_t* ql = b.qs;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 4; ++j) {
    k4_scale_min(2 * j, b.scales, &k->sc[2 * j], &k->mn[2 * j]);
    k4_scale_min(2 * j + 1, b.scales, &k->sc[2 * j + 1], &k->mn[2 * j + 1]);
    for (int l = 0; l < 32; ++l) {
      k->q[64 * j + l] = static_cast<int8_t>((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0));
      k->q[64 * j + 32 + l] = static_cast<int8_t>((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0));
    }
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

static inline void unpack_q6_k(const BlockQ6_K& b, KBlock* k) {
  k->n_sub = 16;
  k->offset = 32;
  k->d = fp16_to_fp32(b.d);
  k->dmin = 0.0f;
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  for (int n = 0; n < 2; ++n) {  // two halves of 128
    int8_t* y = k->q + 128 * n;
    for (int l = 0; l < 32; ++l) {
      y[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)));
      y[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)));
      y[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)));
      y[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)));
    }
    ql += 64;
    qh += 32;
  }
  for (int j = 0; j < 16; ++j) {
    k->sc[j] = b.scales[j];
    k->mn[j] = 0;
  }
}

static inline void unpack_k(DType t, const void* block, KBlock* k) {
  switch (t) {
    case DType::Q4_K: unpack_q4_k(*static_cast<const BlockQ4_K*>(block), k); break;
    case DType::Q5_K: unpack_q5_k(*static_cast<const BlockQ5_K*>(block), k); break;
    default: unpack_q6_k(*static_cast<const BlockQ6_K*>(block), k); break;
  }
}

// Combines per-sub-block integer sums (sums[j] = Σ q*a over sub-block j) into the block's dot.
static inline float k_block_finish(const KBlock& k, const BlockQ8_K& a, const int32_t* sums) {
  int32_t sumi = 0;
  if (k.offset != 0) {
    for (int j = 0; j < k.n_sub; ++j) sumi += k.sc[j] * (sums[j] - k.offset * a.bsums[j]);
  } else {
    for (int j = 0; j < k.n_sub; ++j) sumi += k.sc[j] * sums[j];
  }
  float r = k.d * a.d * static_cast<float>(sumi);
  if (k.n_sub == 8) {
    int32_t summ = 0;
    for (int j = 0; j < 8; ++j) summ += k.mn[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    r -= k.dmin * a.d * static_cast<float>(summ);
  }
  return r;
}

using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

// Per-ISA entry points (defined in quant_ref.cpp, quant_avx2.cpp, quant_avx512.cpp).
namespace ref {
float vec_dot(DType w, int64_t n, const void* wrow, const void* arow);
void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1);
}  // namespace ref
namespace avx2 {
float vec_dot(DType w, int64_t n, const void* wrow, const void* arow);
void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1);
}  // namespace avx2
namespace avx512 {
float vec_dot(DType w, int64_t n, const void* wrow, const void* arow);
void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1);
// Bit-identical to the scalar quantize_row(Q8_K): the activations of every K-quant product.
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb);
// Bit-identical to the scalar quantize_row(Q8_0 / Q8_1): Q4_0/Q8_0 and Q4_1 products' activations.
void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb);
void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb);
}  // namespace avx512

}  // namespace docdsa::kernels::detail
