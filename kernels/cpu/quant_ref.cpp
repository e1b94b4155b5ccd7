// Scalar reference for every type: the definition the SIMD kernels are tested against.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "quant_common.h"

namespace docdsa::kernels {

namespace {

const TypeInfo kF32{"F32", 1, 4, DType::F32, true};
const TypeInfo kF16{"F16", 1, 2, DType::F16, true};
const TypeInfo kBF16{"BF16", 1, 2, DType::BF16, true};
const TypeInfo kQ4_0{"Q4_0", kQK, sizeof(BlockQ4_0), DType::Q8_0, true};
const TypeInfo kQ4_1{"Q4_1", kQK, sizeof(BlockQ4_1), DType::Q8_1, true};
const TypeInfo kQ8_0{"Q8_0", kQK, sizeof(BlockQ8_0), DType::Q8_0, true};
const TypeInfo kQ8_1{"Q8_1", kQK, sizeof(BlockQ8_1), DType::Q8_1, false};
const TypeInfo kQ4_K{"Q4_K", kQKK, sizeof(BlockQ4_K), DType::Q8_K, true};
const TypeInfo kQ5_K{"Q5_K", kQKK, sizeof(BlockQ5_K), DType::Q8_K, true};
const TypeInfo kQ6_K{"Q6_K", kQKK, sizeof(BlockQ6_K), DType::Q8_K, true};
const TypeInfo kQ8_K{"Q8_K", kQKK, sizeof(BlockQ8_K), DType::Q8_K, false};

// Round half to even, as the x86 activation quantisers in llama.cpp do. Every caller wants a
// value in [-128, 127]: clamping first (NaN -> 0) keeps the conversion defined when a model
// file's non-finite weights make the activations inf or NaN.
inline int nearest_int(float f) { return f == f ? static_cast<int>(std::nearbyint(std::clamp(f, -128.0f, 127.0f))) : 0; }

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f;
    for (int l = 0; l < kQK; ++l) amax = std::max(amax, std::fabs(x[l]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int l = 0; l < kQK; ++l) y[i].qs[l] = static_cast<int8_t>(nearest_int(x[l] * id));
    x += kQK;
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f;
    for (int l = 0; l < kQK; ++l) amax = std::max(amax, std::fabs(x[l]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int l = 0; l < kQK; ++l) {
      const int q = nearest_int(x[l] * id);
      y[i].qs[l] = static_cast<int8_t>(q);
      sum += q;
    }
    y[i].d = fp32_to_fp16(d);
    y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
    x += kQK;
  }
}

void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f, max = 0.0f;
    for (int l = 0; l < kQKK; ++l) {
      const float ax = std::fabs(x[l]);
      if (ax > amax) { amax = ax; max = x[l]; }
    }
    if (amax == 0.0f) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      x += kQKK;
      continue;
    }
    const float iscale = -128.0f / max;
    for (int l = 0; l < kQKK; ++l) y[i].qs[l] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[l])));
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
    x += kQKK;
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f, max = 0.0f;
    for (int l = 0; l < kQK; ++l) {
      if (std::fabs(x[l]) > amax) { amax = std::fabs(x[l]); max = x[l]; }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int l = 0; l < kQK / 2; ++l) {
      const int q0 = std::min(15, static_cast<int>(x[l] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[l + kQK / 2] * id + 8.5f));
      y[i].qs[l] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    x += kQK;
  }
}

void quantize_q4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float mn = x[0], mx = x[0];
    for (int l = 1; l < kQK; ++l) { mn = std::min(mn, x[l]); mx = std::max(mx, x[l]); }
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(mn);
    for (int l = 0; l < kQK / 2; ++l) {
      const int q0 = std::min(15, static_cast<int>((x[l] - mn) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[l + kQK / 2] - mn) * id + 0.5f));
      y[i].qs[l] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    x += kQK;
  }
}

// Simple (not optimal) K-quant encoders, used to build synthetic test models.
void pack_k4_scales(const int* sc, const int* mn, uint8_t* scales) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = static_cast<uint8_t>(sc[j] & 63);
      scales[j + 4] = static_cast<uint8_t>(mn[j] & 63);
    } else {
      scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((sc[j] >> 4) << 6));
      scales[j] = static_cast<uint8_t>(scales[j] | ((mn[j] >> 4) << 6));
    }
  }
}

template <int kLevels>
void quantize_k_minmax(const float* x, uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales, uint8_t* q) {
  float sub_scale[8], sub_min[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    float mn = x[32 * j], mx = x[32 * j];
    for (int l = 1; l < 32; ++l) { mn = std::min(mn, x[32 * j + l]); mx = std::max(mx, x[32 * j + l]); }
    mn = std::min(mn, 0.0f);
    sub_scale[j] = (mx - mn) / (kLevels - 1);
    sub_min[j] = -mn;
    max_scale = std::max(max_scale, sub_scale[j]);
    max_min = std::max(max_min, sub_min[j]);
  }
  const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
  int sc[8], mi[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? std::min(63, nearest_int(sub_scale[j] / d)) : 0;
    mi[j] = dmin > 0 ? std::min(63, nearest_int(sub_min[j] / dmin)) : 0;
  }
  std::memset(scales, 0, 12);
  pack_k4_scales(sc, mi, scales);
  *d_out = fp32_to_fp16(d);
  *dmin_out = fp32_to_fp16(dmin);
  const float dd = fp16_to_fp32(*d_out), dm = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    const float s = dd * sc[j], m = dm * mi[j];
    for (int l = 0; l < 32; ++l) {
      const int v = s > 0 ? nearest_int((x[32 * j + l] + m) / s) : 0;
      q[32 * j + l] = static_cast<uint8_t>(std::clamp(v, 0, kLevels - 1));
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    uint8_t q[kQKK];
    quantize_k_minmax<16>(x, &y[i].d, &y[i].dmin, y[i].scales, q);
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) y[i].qs[32 * j + l] = static_cast<uint8_t>(q[64 * j + l] | (q[64 * j + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    uint8_t q[kQKK];
    quantize_k_minmax<32>(x, &y[i].d, &y[i].dmin, y[i].scales, q);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        const int lo = q[64 * j + l], hi = q[64 * j + 32 + l];
        y[i].qs[32 * j + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        if (lo & 16) y[i].qh[l] = static_cast<uint8_t>(y[i].qh[l] | (1 << (2 * j)));
        if (hi & 16) y[i].qh[l] = static_cast<uint8_t>(y[i].qh[l] | (2 << (2 * j)));
      }
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float sub[16], max_abs_scale = 0.0f;
    for (int j = 0; j < 16; ++j) {
      float amax = 0.0f;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
      sub[j] = amax / 31.0f;
      max_abs_scale = std::max(max_abs_scale, sub[j]);
    }
    const float d = max_abs_scale / 127.0f;
    y[i].d = fp32_to_fp16(d);
    const float dd = fp16_to_fp32(y[i].d);
    int8_t q[kQKK];
    for (int j = 0; j < 16; ++j) {
      y[i].scales[j] = static_cast<int8_t>(d > 0 ? std::min(127, nearest_int(sub[j] / d)) : 0);
      const float s = dd * y[i].scales[j];
      for (int l = 0; l < 16; ++l)
        q[16 * j + l] = static_cast<int8_t>(s > 0 ? std::clamp(nearest_int(x[16 * j + l] / s), -32, 31) : 0);
    }
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int n = 0; n < 2; ++n) {
      const int8_t* v = q + 128 * n;
      uint8_t* ql = y[i].ql + 64 * n;
      uint8_t* qh = y[i].qh + 32 * n;
      for (int l = 0; l < 32; ++l) {
        const int q1 = v[l] + 32, q2 = v[l + 32] + 32, q3 = v[l + 64] + 32, q4 = v[l + 96] + 32;
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

Isa cpu_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return Isa::kAvx512;
  // Every AVX2 CPU has F16C; clang cannot name it in __builtin_cpu_supports.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return Isa::kAvx2;
  return Isa::kScalar;
}

Isa initial_isa() {
  Isa isa = cpu_isa();
  if (const char* env = std::getenv("DOCDSA_ISA")) {
    std::string_view v(env);
    Isa want = v == "scalar" ? Isa::kScalar : v == "avx2" ? Isa::kAvx2 : Isa::kAvx512;
    isa = std::min(isa, want);
  }
  return isa;
}

std::atomic<Isa>& isa_slot() {
  static std::atomic<Isa> slot{initial_isa()};
  return slot;
}

}  // namespace

const TypeInfo* type_info(uint32_t t) {
  switch (static_cast<DType>(t)) {
    case DType::F32: return &kF32;
    case DType::F16: return &kF16;
    case DType::BF16: return &kBF16;
    case DType::Q4_0: return &kQ4_0;
    case DType::Q4_1: return &kQ4_1;
    case DType::Q8_0: return &kQ8_0;
    case DType::Q8_1: return &kQ8_1;
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    case DType::Q6_K: return &kQ6_K;
    case DType::Q8_K: return &kQ8_K;
  }
  return nullptr;
}

size_t row_bytes(DType t, int64_t n) {
  const TypeInfo& ti = info(t);
  return static_cast<size_t>(n / ti.block_size) * ti.block_bytes;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512-vnni";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = initial_isa();
  return isa;
}
Isa active_isa() { return isa_slot().load(std::memory_order_relaxed); }
void set_active_isa(Isa isa) { isa_slot().store(std::min(isa, detected_isa())); }

void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(y, src, static_cast<size_t>(n) * 4); return;
    case DType::F16: {
      const auto* x = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
      return;
    }
    case DType::BF16: {
      const auto* x = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
      return;
    }
    case DType::Q4_0: {
      const auto* x = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(x[i].d);
        for (int l = 0; l < kQK / 2; ++l) {
          y[l] = static_cast<float>((x[i].qs[l] & 0xF) - 8) * d;
          y[l + kQK / 2] = static_cast<float>((x[i].qs[l] >> 4) - 8) * d;
        }
      }
      return;
    }
    case DType::Q4_1: {
      const auto* x = static_cast<const BlockQ4_1*>(src);
      for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int l = 0; l < kQK / 2; ++l) {
          y[l] = static_cast<float>(x[i].qs[l] & 0xF) * d + m;
          y[l + kQK / 2] = static_cast<float>(x[i].qs[l] >> 4) * d + m;
        }
      }
      return;
    }
    case DType::Q8_0: {
      const auto* x = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(x[i].d);
        for (int l = 0; l < kQK; ++l) y[l] = static_cast<float>(x[i].qs[l]) * d;
      }
      return;
    }
    case DType::Q8_1: {
      const auto* x = static_cast<const BlockQ8_1*>(src);
      for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(x[i].d);
        for (int l = 0; l < kQK; ++l) y[l] = static_cast<float>(x[i].qs[l]) * d;
      }
      return;
    }
    case DType::Q8_K: {
      const auto* x = static_cast<const BlockQ8_K*>(src);
      for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK)
        for (int l = 0; l < kQKK; ++l) y[l] = static_cast<float>(x[i].qs[l]) * x[i].d;
      return;
    }
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: {
      const auto* base = static_cast<const uint8_t*>(src);
      const size_t bb = info(t).block_bytes;
      detail::KBlock k;
      for (int64_t i = 0; i < n / kQKK; ++i, y += kQKK) {
        detail::unpack_k(t, base + i * bb, &k);
        const int sub = kQKK / k.n_sub;
        for (int j = 0; j < k.n_sub; ++j) {
          const float s = k.d * static_cast<float>(k.sc[j]);
          const float m = k.dmin * static_cast<float>(k.mn[j]);
          for (int l = 0; l < sub; ++l) y[j * sub + l] = s * static_cast<float>(k.q[j * sub + l] - k.offset) - m;
        }
      }
      return;
    }
  }
}

void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); return;
    case DType::F16: {
      auto* y = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
      return;
    }
    case DType::BF16: {
      auto* y = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
      return;
    }
    // Activations of every legacy-quant product, like Q8_K below (7% of a 16K SmolLM2 prefill scalar).
    case DType::Q8_0:
      if (active_isa() == Isa::kAvx512)
        detail::avx512::quantize_q8_0(x, static_cast<BlockQ8_0*>(dst), n / kQK);
      else
        quantize_q8_0(x, static_cast<BlockQ8_0*>(dst), n / kQK);
      return;
    case DType::Q8_1:
      if (active_isa() == Isa::kAvx512)
        detail::avx512::quantize_q8_1(x, static_cast<BlockQ8_1*>(dst), n / kQK);
      else
        quantize_q8_1(x, static_cast<BlockQ8_1*>(dst), n / kQK);
      return;
    case DType::Q8_K:
      // Every K-quant product quantises its activations to Q8_K: a measurable share of prefill.
      if (active_isa() == Isa::kAvx512)
        detail::avx512::quantize_q8_k(x, static_cast<BlockQ8_K*>(dst), n / kQKK);
      else
        quantize_q8_k(x, static_cast<BlockQ8_K*>(dst), n / kQKK);
      return;
    case DType::Q4_0: quantize_q4_0(x, static_cast<BlockQ4_0*>(dst), n / kQK); return;
    case DType::Q4_1: quantize_q4_1(x, static_cast<BlockQ4_1*>(dst), n / kQK); return;
    case DType::Q4_K: quantize_q4_k(x, static_cast<BlockQ4_K*>(dst), n / kQKK); return;
    case DType::Q5_K: quantize_q5_k(x, static_cast<BlockQ5_K*>(dst), n / kQKK); return;
    case DType::Q6_K: quantize_q6_k(x, static_cast<BlockQ6_K*>(dst), n / kQKK); return;
  }
}

namespace detail::ref {

float vec_dot(DType t, int64_t n, const void* wrow, const void* arow) {
  switch (t) {
    case DType::F32: {
      const auto* w = static_cast<const float*>(wrow);
      const auto* a = static_cast<const float*>(arow);
      float s = 0.0f;
      for (int64_t i = 0; i < n; ++i) s += w[i] * a[i];
      return s;
    }
    case DType::F16:
    case DType::BF16: {
      const auto* w = static_cast<const uint16_t*>(wrow);
      const auto* a = static_cast<const uint16_t*>(arow);
      float s = 0.0f;
      if (t == DType::F16) {
        for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(w[i]) * fp16_to_fp32(a[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) s += bf16_to_fp32(w[i]) * bf16_to_fp32(a[i]);
      }
      return s;
    }
    case DType::Q4_0: {
      const auto* w = static_cast<const BlockQ4_0*>(wrow);
      const auto* a = static_cast<const BlockQ8_0*>(arow);
      float s = 0.0f;
      for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int l = 0; l < kQK / 2; ++l) {
          sumi += ((w[i].qs[l] & 0xF) - 8) * a[i].qs[l];
          sumi += ((w[i].qs[l] >> 4) - 8) * a[i].qs[l + kQK / 2];
        }
        s += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * static_cast<float>(sumi);
      }
      return s;
    }
    case DType::Q4_1: {
      const auto* w = static_cast<const BlockQ4_1*>(wrow);
      const auto* a = static_cast<const BlockQ8_1*>(arow);
      float s = 0.0f;
      for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int l = 0; l < kQK / 2; ++l) {
          sumi += (w[i].qs[l] & 0xF) * a[i].qs[l];
          sumi += (w[i].qs[l] >> 4) * a[i].qs[l + kQK / 2];
        }
        s += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * static_cast<float>(sumi) +
             fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
      }
      return s;
    }
    case DType::Q8_0: {
      const auto* w = static_cast<const BlockQ8_0*>(wrow);
      const auto* a = static_cast<const BlockQ8_0*>(arow);
      float s = 0.0f;
      for (int64_t i = 0; i < n / kQK; ++i) {
        int sumi = 0;
        for (int l = 0; l < kQK; ++l) sumi += w[i].qs[l] * a[i].qs[l];
        s += fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d) * static_cast<float>(sumi);
      }
      return s;
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
        const int sub = kQKK / k.n_sub;
        int32_t sums[16];
        for (int j = 0; j < k.n_sub; ++j) {
          int32_t acc = 0;
          for (int l = 0; l < sub; ++l) acc += k.q[j * sub + l] * a[i].qs[j * sub + l];
          sums[j] = acc;
        }
        s += k_block_finish(k, a[i], sums);
      }
      return s;
    }
    default: return 0.0f;
  }
}

void matmul_tile(const MatmulArgs& p, int64_t r0, int64_t r1) {
  for (int t = 0; t < p.n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r)
      p.out[t * p.ldo + r] = detail::ref::vec_dot(p.wtype, p.n_in, p.w + r * p.w_stride, p.a + t * p.a_stride);
}

}  // namespace detail::ref

float vec_dot(DType w, int64_t n, const void* wrow, const void* arow, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return detail::avx512::vec_dot(w, n, wrow, arow);
    case Isa::kAvx2: return detail::avx2::vec_dot(w, n, wrow, arow);
    default: return detail::ref::vec_dot(w, n, wrow, arow);
  }
}

void matmul_tile(const MatmulArgs& args, int64_t r0, int64_t r1, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: detail::avx512::matmul_tile(args, r0, r1); return;
    case Isa::kAvx2: detail::avx2::matmul_tile(args, r0, r1); return;
    default: detail::ref::matmul_tile(args, r0, r1); return;
  }
}

}  // namespace docdsa::kernels
