// Shared device helpers: error codes, half conversions and dequantisation of 32-element chunks
// of every weight type (the layouts of kernels/include/docdsa/kernels/quant.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "docdsa/kernels/cuda.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels::cuda::detail {

inline int last_error() {
  return static_cast<int>(cudaGetLastError());
}

// The dequantisers also compile for the host, so tests/kernels/cuda_host_test.cpp checks their
// block indexing against dequantize_row on machines without a GPU.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float h2f(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float bf2f(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}
__device__ __forceinline__ float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
#define DOCDSA_UNROLL _Pragma("unroll")
#else
#define DOCDSA_UNROLL
inline float h2f(uint16_t h) {
  return fp16_to_fp32(h);
}
inline float bf2f(uint16_t h) {
  return bf16_to_fp32(h);
}
inline float mul_rn(float a, float b) {
  return a * b;
}
#endif

#ifdef __CUDACC__  // device-only helpers (the host test compiles this header with g++)
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
#endif

__host__ __device__ __forceinline__ uint16_t ld16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

// K-quant 6-bit scale and min of sub-block j (quant_common.h k4_scale_min).
__host__ __device__ __forceinline__ void k4_scale_min(int j, const uint8_t* q, int* d, int* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Elements [32 c, 32 c + 32) of a row, dequantised into y, bit for bit as dequantize_row
// (mul_rn keeps nvcc from fusing the scale and the offset into one rounding). The chunk is
// the unit each thread works on: a whole block for the 32-element types, a sub-block for the
// K-quants.
template <DType T>
__host__ __device__ __forceinline__ void dequant32(const uint8_t* row, int64_t c, float* y) {
  if constexpr (T == DType::F32) {
    const float4* p = reinterpret_cast<const float4*>(row) + c * 8;
    DOCDSA_UNROLL
    for (int i = 0; i < 8; ++i) {
      const float4 v = p[i];
      y[4 * i] = v.x, y[4 * i + 1] = v.y, y[4 * i + 2] = v.z, y[4 * i + 3] = v.w;
    }
  } else if constexpr (T == DType::F16 || T == DType::BF16) {
    const uint32_t* p = reinterpret_cast<const uint32_t*>(row) + c * 16;
    DOCDSA_UNROLL
    for (int i = 0; i < 16; ++i) {
      const uint32_t w = p[i];
      y[2 * i] = T == DType::F16 ? h2f(w & 0xFFFF) : bf2f(w & 0xFFFF);
      y[2 * i + 1] = T == DType::F16 ? h2f(w >> 16) : bf2f(w >> 16);
    }
  } else if constexpr (T == DType::Q4_0) {
    const uint8_t* b = row + c * sizeof(BlockQ4_0);
    const float d = h2f(ld16(b));
    DOCDSA_UNROLL
    for (int l = 0; l < 16; ++l) {
      const int q = b[2 + l];
      y[l] = static_cast<float>((q & 0xF) - 8) * d;
      y[l + 16] = static_cast<float>((q >> 4) - 8) * d;
    }
  } else if constexpr (T == DType::Q4_1) {
    const uint8_t* b = row + c * sizeof(BlockQ4_1);
    const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
    DOCDSA_UNROLL
    for (int l = 0; l < 16; ++l) {
      const int q = b[4 + l];
      y[l] = mul_rn(static_cast<float>(q & 0xF), d) + m;
      y[l + 16] = mul_rn(static_cast<float>(q >> 4), d) + m;
    }
  } else if constexpr (T == DType::Q8_0) {
    const uint8_t* b = row + c * sizeof(BlockQ8_0);
    const float d = h2f(ld16(b));
    DOCDSA_UNROLL
    for (int l = 0; l < 32; ++l) y[l] = static_cast<float>(static_cast<int8_t>(b[2 + l])) * d;
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    constexpr size_t kBytes = T == DType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K);
    const uint8_t* b = row + (c / 8) * kBytes;
    const int j = static_cast<int>(c % 8);
    const float d = h2f(ld16(b)), dmin = h2f(ld16(b + 2));
    int sc, mn;
    k4_scale_min(j, b + 4, &sc, &mn);
    const float s = d * static_cast<float>(sc), m = dmin * static_cast<float>(mn);
    const uint8_t* qs = b + 16 + (T == DType::Q5_K ? 32 : 0) + 32 * (j / 2);
    const int shift = (j & 1) * 4;
    DOCDSA_UNROLL
    for (int l = 0; l < 32; ++l) {
      int q = (qs[l] >> shift) & 0xF;
      if constexpr (T == DType::Q5_K) q += ((b[16 + l] >> j) & 1) << 4;
      y[l] = mul_rn(s, static_cast<float>(q)) - m;
    }
  } else if constexpr (T == DType::Q6_K) {
    const uint8_t* b = row + (c / 8) * sizeof(BlockQ6_K);
    const int j = static_cast<int>(c % 8), n = j / 4, m = j % 4;
    const uint8_t* ql = b + 64 * n + (m & 1) * 32;
    const uint8_t* qh = b + 128 + 32 * n;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192) + 8 * n + 2 * m;
    const float d = h2f(ld16(b + 208));
    const float s0 = d * static_cast<float>(scales[0]), s1 = d * static_cast<float>(scales[1]);
    const int lshift = (m >> 1) * 4, hshift = 2 * m;
    DOCDSA_UNROLL
    for (int l = 0; l < 32; ++l) {
      const int q = ((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4);
      y[l] = (l < 16 ? s0 : s1) * static_cast<float>(q - 32);
    }
  }
}

// Returns FN<T>(args...) for the weight type t as a template argument (C++17: CMake 3.25
// cannot ask nvcc for C++20).
#define DOCDSA_CUDA_TYPE_SWITCH(t, FN, ...)           \
  switch (t) {                                        \
    case DType::F32:                                  \
      return FN<DType::F32>(__VA_ARGS__);             \
    case DType::F16:                                  \
      return FN<DType::F16>(__VA_ARGS__);             \
    case DType::BF16:                                 \
      return FN<DType::BF16>(__VA_ARGS__);            \
    case DType::Q4_0:                                 \
      return FN<DType::Q4_0>(__VA_ARGS__);            \
    case DType::Q4_1:                                 \
      return FN<DType::Q4_1>(__VA_ARGS__);            \
    case DType::Q8_0:                                 \
      return FN<DType::Q8_0>(__VA_ARGS__);            \
    case DType::Q4_K:                                 \
      return FN<DType::Q4_K>(__VA_ARGS__);            \
    case DType::Q5_K:                                 \
      return FN<DType::Q5_K>(__VA_ARGS__);            \
    case DType::Q6_K:                                 \
      return FN<DType::Q6_K>(__VA_ARGS__);            \
    default:                                          \
      return static_cast<int>(cudaErrorInvalidValue); \
  }

inline unsigned ceil_div(int64_t a, int64_t b) {
  return static_cast<unsigned>((a + b - 1) / b);
}

}  // namespace docdsa::kernels::cuda::detail
