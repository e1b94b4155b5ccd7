// Scalar reference of the packed GEMM: reads the packed layout value by value and repeats
// the arithmetic of the kernels it stands for (K-quants: detail::ref::vec_dot's; Q4_0, Q4_1,
// Q8_0: the block order, or llama.cpp's lane order as the AVX-512 matmul_tile), so it checks
// the packing and is the oracle of the VNNI and AMX kernels (bit-exact, see gemm.h). Slow;
// used by tests and by CPUs without AVX-512 VNNI only when a caller packs anyway.
#include <cmath>
#include <cstring>

#include "docdsa/kernels/fp16.h"
#include "gemm_impl.h"

namespace docdsa::kernels::detail::gemm {
namespace {

float get_f16(const uint8_t* rec, size_t off, int lane) {
  uint16_t v;
  std::memcpy(&v, rec + off + 2 * lane, 2);
  return fp16_to_fp32(v);
}

float dot_row(const PackedWeight& w, const Layout& l, int64_t r, const uint8_t* arow, bool llama_order) {
  const uint8_t* grp = w.data.get() + static_cast<size_t>(r / kGemmGroupRows) * w.group_bytes();
  const int lane = static_cast<int>(r % kGemmGroupRows);
  float s = 0.0f;
  float lanes[8] = {}, summ = 0.0f;
  for (int64_t b = 0; b < w.n_blocks; ++b) {
    const uint8_t* rec = grp + static_cast<size_t>(b) * l.record;
    const uint8_t* ab = arow + static_cast<size_t>(b) * l.a_block;
    const auto* aq = reinterpret_cast<const int8_t*>(ab + l.a_qs);
    const float dw = get_f16(rec, l.d_off, lane);
    if (!l.kquant) {
      float da, sa = 0.0f;
      if (l.has_min) {
        const auto& a = *reinterpret_cast<const BlockQ8_1*>(ab);
        da = fp16_to_fp32(a.d);
        sa = fp16_to_fp32(a.s);
        if (llama_order) summ = std::fma(get_f16(rec, l.m_off, lane), sa, summ);
      } else {
        da = fp16_to_fp32(reinterpret_cast<const BlockQ8_0*>(ab)->d);
      }
      const float dd = dw * da;
      if (!llama_order) {  // the block order: one integer sum per block, two FMAs, block after block
        int32_t sumi = 0;
        for (int k = 0; k < l.block; ++k) sumi += (stored_q(l, rec, lane, k) - l.offset) * aq[k];
        s = std::fma(dd, static_cast<float>(sumi), s);
        if (l.has_min) s = std::fma(get_f16(rec, l.m_off, lane), sa, s);
        continue;
      }
      for (int i = 0; i < 8; ++i) {  // llama.cpp's order: 8 lane accumulators, fused multiply-adds
        int32_t sumi = 0;
        for (int k = 4 * i; k < 4 * i + 4; ++k) sumi += (stored_q(l, rec, lane, k) - l.offset) * aq[k];
        lanes[i] = std::fma(dd, static_cast<float>(sumi), lanes[i]);
      }
      continue;
    }
    const auto& a = *reinterpret_cast<const BlockQ8_K*>(ab);
    const int sub = l.block / l.n_sub;
    int32_t sumi = 0;
    for (int j = 0; j < l.n_sub; ++j) {
      int32_t acc = 0;
      for (int k = j * sub; k < (j + 1) * sub; ++k) acc += stored_q(l, rec, lane, k) * aq[k];
      const int32_t sc = l.offset ? static_cast<int8_t>(rec[sc_pos(l, lane, j)]) : rec[sc_pos(l, lane, j)];
      sumi += sc * (acc - l.offset * a.bsums[j]);
    }
    float r2 = dw * a.d * static_cast<float>(sumi);
    if (l.has_min) {
      int32_t summ = 0;
      for (int j = 0; j < l.n_sub; ++j) summ += rec[mn_pos(l, lane, j)] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
      r2 -= get_f16(rec, l.m_off, lane) * a.d * static_cast<float>(summ);
    }
    s += r2;
  }
  if (!l.kquant && llama_order) return ((lanes[4] + lanes[0]) + (lanes[6] + lanes[2])) + ((lanes[5] + lanes[1]) + (lanes[7] + lanes[3])) + summ;
  return s;
}

}  // namespace

void gemm_ref(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0,
              int64_t r1, bool llama_order) {
  const Layout l = layout_of(w.type);
  for (int t = 0; t < n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r) out[t * ldo + r] = dot_row(w, l, r, a + static_cast<size_t>(t) * a_stride, llama_order);
}

void gemm_half_ref(const PackedWeight& w, const uint8_t* a, size_t a_stride, int n_tok, float* out, int64_t ldo, int64_t r0,
                   int64_t r1) {
  const bool f16 = w.type == DType::F16;
  const auto value = [f16](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return f16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  };
  for (int t = 0; t < n_tok; ++t) {
    const uint8_t* arow = a + static_cast<size_t>(t) * a_stride;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* grp = w.data.get() + static_cast<size_t>(r / kGemmGroupRows) * w.group_bytes();
      const int lane = static_cast<int>(r % kGemmGroupRows);
      float s = 0.0f;
      for (int64_t k0 = 0; k0 < w.n_in; k0 += 2)
        for (int64_t k : {f16 ? k0 : k0 + 1, f16 ? k0 + 1 : k0})
          s = std::fma(value(grp + half_pos(w.type, lane, k)), value(arow + 2 * static_cast<size_t>(k)), s);
      out[t * ldo + r] = s;
    }
  }
}

}  // namespace docdsa::kernels::detail::gemm
