// Internal: the packed GEMM layout (see gemm.h) shared by the packer, the scalar reference and
// the VNNI kernels, and the per-token block data the kernels broadcast.
#pragma once

#include <cstddef>
#include <cstdint>

#include "docdsa/kernels/gemm.h"

namespace docdsa::kernels::detail::gemm {

// One record = one block of kGemmGroupRows rows. A "step" is 4 consecutive k-values:
// 64 bytes of unpacked u8 weights (lane i = row i, bytes 4i..4i+3).
struct Layout {
  bool ok = false;
  bool kquant = false;
  int block = 0;       // values per block
  int sub_steps = 0;   // steps per scaled sub-block (the whole block for Q4_0/Q4_1/Q8_0)
  int n_sub = 0;       // sub-blocks per block
  int hbits = 0;       // high-bit planes above the nibbles (Q5_K 1, Q6_K 2)
  bool bytes = false;  // one byte per value (Q8_0) instead of nibbles
  int offset = 0;      // real value = stored - offset (Q4_0 8, Q8_0 128, Q6_K 32)
  bool has_min = false;
  size_t h_off = 0, sc_off = 0, mn_off = 0, d_off = 0, m_off = 0, record = 0;
  size_t a_block = 0;  // activation block bytes (Q8_0 34, Q8_1 36, Q8_K 292)
  size_t a_qs = 0;     // offset of its int8 values
};

constexpr Layout layout_of(DType t) {
  Layout l;
  l.ok = true;
  constexpr size_t R = kGemmGroupRows;
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q8_0:
      l.block = kQK;
      l.sub_steps = 8;
      l.n_sub = 1;
      l.bytes = t == DType::Q8_0;
      l.offset = t == DType::Q4_0 ? 8 : t == DType::Q8_0 ? 128 : 0;
      l.has_min = t == DType::Q4_1;
      l.d_off = l.bytes ? R * kQK : R * kQK / 2;
      l.m_off = l.d_off + 2 * R;
      l.record = l.m_off + (l.has_min ? 2 * R : 0);
      l.a_block = t == DType::Q4_1 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
      l.a_qs = t == DType::Q4_1 ? 4 : 2;
      return l;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      l.kquant = true;
      l.block = kQKK;
      l.sub_steps = t == DType::Q6_K ? 4 : 8;
      l.n_sub = t == DType::Q6_K ? 16 : 8;
      l.hbits = t == DType::Q4_K ? 0 : t == DType::Q5_K ? 1 : 2;
      l.offset = t == DType::Q6_K ? 32 : 0;
      l.has_min = t != DType::Q6_K;
      l.h_off = R * kQKK / 2;
      l.sc_off = l.h_off + R * kQKK * static_cast<size_t>(l.hbits) / 8;
      l.mn_off = l.sc_off + R * static_cast<size_t>(l.n_sub);  // one byte per sub-block and row
      l.d_off = l.mn_off + (l.has_min ? R * static_cast<size_t>(l.n_sub) : 0);
      l.m_off = l.d_off + 2 * R;
      l.record = l.m_off + (l.has_min ? 2 * R : 0);
      l.a_block = sizeof(BlockQ8_K);
      l.a_qs = 4;
      return l;
    default:
      return Layout{};
  }
}

// Byte position of value (lane, k) in a record, and of its high bits.
inline size_t q_pos(const Layout& l, int lane, int k) {
  if (l.bytes) return 64 * static_cast<size_t>(k / 4) + 4 * static_cast<size_t>(lane) + k % 4;
  return 64 * static_cast<size_t>(k / 8) + 4 * static_cast<size_t>(lane) + k % 4;  // nibble: k%8 >= 4 is high
}
// High bits: plane zmm h covers 8/hbits steps; step u within it at bit hbits*u of each byte.
inline void h_pos(const Layout& l, int lane, int k, size_t* byte, int* shift) {
  const int spb = 8 / l.hbits;
  const int s = k / 4;
  *byte = l.h_off + 64 * static_cast<size_t>(s / spb) + 4 * static_cast<size_t>(lane) + k % 4;
  *shift = l.hbits * (s % spb);
}
inline int stored_q(const Layout& l, const uint8_t* rec, int lane, int k) {
  const size_t p = q_pos(l, lane, k);
  if (l.bytes) return rec[p];
  int q = (k % 8 >= 4) ? rec[p] >> 4 : rec[p] & 0xF;
  if (l.hbits) {
    size_t hb;
    int sh;
    h_pos(l, lane, k, &hb, &sh);
    q |= ((rec[hb] >> sh) & ((1 << l.hbits) - 1)) << 4;
  }
  return q;
}
// Block scales (d, and m or dmin) are the file's fp16 values, 16 per record at d_off/m_off.
// Sub-block scales: K-quants one byte per (sub-block j, lane) at sc_off + 16 j + lane (Q6_K
// signed); Q4_K/Q5_K mins in pairs at mn_off + 32 (j / 2) + 2 lane + j % 2, so a pair loads
// as the two int16 halves of a dword.
inline size_t sc_pos(const Layout& l, int lane, int j) {
  return l.sc_off + 16 * static_cast<size_t>(j) + lane;
}
inline size_t mn_pos(const Layout& l, int lane, int j) {
  return l.mn_off + 32 * static_cast<size_t>(j / 2) + 2 * static_cast<size_t>(lane) + j % 2;
}

// F16/BF16: a group keeps the file's 2-byte values, rearranged: F16 k-major (per k, 16 lanes of
// 2 bytes: one VCVTPH2PS gives the group's 16 row values), BF16 in k-pairs (per pair, 16 lanes
// of 4 bytes: one VDPBF16PS operand). Records of kHalfBlock k-values follow one another, so
// half_pos() is a position within the group.
constexpr int kHalfBlock = 32;
constexpr size_t kHalfRecord = size_t{kGemmGroupRows} * kHalfBlock * 2;
constexpr bool is_half(DType t) {
  return t == DType::F16 || t == DType::BF16;
}
inline size_t half_pos(DType t, int lane, int64_t k) {
  if (t == DType::F16) return 32 * static_cast<size_t>(k) + 2 * static_cast<size_t>(lane);
  return 64 * static_cast<size_t>(k / 2) + 4 * static_cast<size_t>(lane) + 2 * static_cast<size_t>(k % 2);
}
// Scalar reference: per (row, token) one fused multiply-add chain in k order (BF16: within a
// pair the odd value first, as VDPBF16PS accumulates; bf16 products are exact in fp32, so each
// step rounds once either way). Activations in the vec-dot type (F16 or BF16 rows).
void gemm_half_ref(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0,
                   int64_t r1);
// AVX-512 (gemm_half.cpp), bit-exact with gemm_half_ref for normal numbers (VDPBF16PS treats
// subnormal inputs and results as zero).
// `bf16_dot`: BF16 with VDPBF16PS (the CPU must have AVX512_BF16), else with FMAs.
void gemm_half(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0, int64_t r1,
               bool bf16_dot);

// What the kernels broadcast per (token, block), built once per call from the activations.
struct Aux {
  float d;        // activation scale
  float s;        // Q4_1: the Q8_1 block's d * sum
  int32_t v[16];  // Q4_0/Q8_0: v[i] = -offset * sum(a over step i) (llama.cpp's order), v[8]
                  // their block total (the block order);
                  // Q6_K: v[j] = -32 * bsums[j];
                  // Q4_K/Q5_K: v[p] = int16 pair (bsums[4p]+bsums[4p+1], bsums[4p+2]+bsums[4p+3])
};
void build_aux(DType t, const uint8_t* a, size_t a_stride, int n_tok, int64_t n_blocks, Aux* out);
// A thread-local buffer of at least `n` Aux (grows, never shrinks).
Aux* aux_scratch(size_t n);
// The same for floats. Both live in repack.cpp, built without AVX-512 flags: a template such as
// std::vector's destructor instantiated in an AVX-512 file could be the copy the linker keeps.
float* float_scratch(size_t n);

// `llama_order`: Q4_0/Q4_1/Q8_0 in llama.cpp's float order, else in the block order (gemm.h).
void gemm_ref(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0,
              int64_t r1, bool llama_order);
// `aux`: build_aux() of the same activation rows (n_tok * n_blocks entries).
void gemm_vnni(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo,
               int64_t r0, int64_t r1, bool llama_order);
// n_tok a multiple of 16; needs the AMX tile state granted (gemm_amx_supported()).
void gemm_amx(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, const Aux* aux, float* out, int64_t ldo,
              int64_t r0, int64_t r1);

}  // namespace docdsa::kernels::detail::gemm
