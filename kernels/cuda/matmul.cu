// Matrix products on quantised weights: the decode GEMV (dequantise in registers, one warp per
// row), dequantisation to 16-bit tiles plus cuBLAS for prefill, and embedding row gathers.
#include <cublas_v2.h>

#include <algorithm>

#include "common.cuh"

namespace docdsa::kernels::cuda {
namespace {
using detail::ceil_div;
using detail::dequant32;

constexpr int kGemvWarps = 4;
constexpr int kMaxGemvTok = 8;

// Lane l of the warp for row r takes chunks l, l + 32, ...: neighbouring lanes read
// neighbouring blocks, and each chunk is dotted with every token's activations.
template <DType T>
__global__ void gemv_kernel(const uint8_t* w, size_t w_stride, int64_t rows, int64_t chunks, const float* x, int64_t ldx,
                            int n_tok, float* y, int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const uint8_t* row = w + r * w_stride;
  float acc[kMaxGemvTok] = {};
  float v[32];
  for (int64_t c = lane; c < chunks; c += 32) {
    dequant32<T>(row, c, v);
#pragma unroll
    for (int t = 0; t < kMaxGemvTok; ++t) {
      if (t >= n_tok) break;
      const float4* xp = reinterpret_cast<const float4*>(x + t * ldx + c * 32);
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 a = __ldg(xp + i);
        s += v[4 * i] * a.x + v[4 * i + 1] * a.y + v[4 * i + 2] * a.z + v[4 * i + 3] * a.w;
      }
      acc[t] += s;
    }
  }
#pragma unroll
  for (int t = 0; t < kMaxGemvTok; ++t) {
    if (t >= n_tok) break;
    const float s = detail::warp_sum(acc[t]);
    if (lane == 0) y[t * ldy + r] = s;
  }
}

template <DType T>
__global__ void dequant_kernel(const uint8_t* w, size_t w_stride, int64_t r0, int64_t n, int64_t chunks, void* dst, bool bf16) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * chunks) return;
  const int64_t r = i / chunks, c = i % chunks;
  float v[32];
  dequant32<T>(w + (r0 + r) * w_stride, c, v);
  if (bf16) {
    __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(dst) + (r * chunks + c) * 16;
#pragma unroll
    for (int k = 0; k < 16; ++k) o[k] = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
  } else {
    __half2* o = reinterpret_cast<__half2*>(dst) + (r * chunks + c) * 16;
#pragma unroll
    for (int k = 0; k < 16; ++k) o[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
  }
}

template <DType T>
__global__ void get_rows_kernel(const uint8_t* w, size_t w_stride, const int32_t* ids, int n, int64_t chunks, float* out,
                                int64_t ld) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * chunks) return;
  const int64_t r = i / chunks, c = i % chunks;
  float v[32];
  dequant32<T>(w + static_cast<int64_t>(ids[r]) * w_stride, c, v);
  float* o = out + r * ld + c * 32;
#pragma unroll
  for (int k = 0; k < 32; ++k) o[k] = v[k];
}

__global__ void to_half_kernel(const float* x, int64_t ldx, int n_tok, int64_t cols, void* dst, bool bf16) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_tok * cols) return;
  const int64_t t = i / cols, c = i % cols;
  const float v = x[t * ldx + c];
  if (bf16)
    static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(v);
  else
    static_cast<__half*>(dst)[i] = __float2half_rn(v);
}

template <DType T>
int launch_gemv(const Weight& w, const float* x, int64_t ldx, int n_tok, float* y, int64_t ldy, Stream s) {
  gemv_kernel<T><<<ceil_div(w.rows, kGemvWarps), 32 * kGemvWarps, 0, s>>>(static_cast<const uint8_t*>(w.data), w.row_stride,
                                                                          w.rows, w.cols / 32, x, ldx, n_tok, y, ldy);
  return detail::last_error();
}

template <DType T>
int launch_dequant(const Weight& w, int64_t r0, int64_t n, void* dst, Half h, Stream s) {
  const int64_t chunks = w.cols / 32;
  dequant_kernel<T><<<ceil_div(n * chunks, 128), 128, 0, s>>>(static_cast<const uint8_t*>(w.data), w.row_stride, r0, n, chunks,
                                                              dst, h == Half::kBF16);
  return detail::last_error();
}

template <DType T>
int launch_get_rows(const Weight& w, const int32_t* ids, int n, float* out, int64_t ld, Stream s) {
  const int64_t chunks = w.cols / 32;
  get_rows_kernel<T>
      <<<ceil_div(n * chunks, 128), 128, 0, s>>>(static_cast<const uint8_t*>(w.data), w.row_stride, ids, n, chunks, out, ld);
  return detail::last_error();
}

bool valid(const Weight& w) {
  return gemv_supported(w.type) && w.cols % info(w.type).block_size == 0 && w.cols % 32 == 0;
}

}  // namespace

bool gemv_supported(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q8_0:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

int gemv(const Weight& w, const float* x, int64_t ldx, int n_tok, float* y, int64_t ldy, Stream s) {
  if (!valid(w) || n_tok < 1 || n_tok > kMaxGemvTok || ldx % 4 != 0) return cudaErrorInvalidValue;
  DOCDSA_CUDA_TYPE_SWITCH(w.type, launch_gemv, w, x, ldx, n_tok, y, ldy, s);
}

int dequantize(const Weight& w, int64_t r0, int64_t n, void* dst, Half h, Stream s) {
  if (!valid(w) || r0 < 0 || r0 + n > w.rows) return cudaErrorInvalidValue;
  if (n == 0) return 0;
  DOCDSA_CUDA_TYPE_SWITCH(w.type, launch_dequant, w, r0, n, dst, h, s);
}

int get_rows(const Weight& table, const int32_t* ids, int n, float* out, int64_t ld, Stream s) {
  if (!valid(table)) return cudaErrorInvalidValue;
  if (n == 0) return 0;
  DOCDSA_CUDA_TYPE_SWITCH(table.type, launch_get_rows, table, ids, n, out, ld, s);
}

int gemm(Context& ctx, const Weight& w, const float* x, int64_t ldx, int n_tok, float* y, int64_t ldy, Half h) {
  if (!valid(w) || n_tok < 1) return cudaErrorInvalidValue;
  const Stream s = ctx.stream();
  // Weight rows are dequantised in tiles so the 16-bit copy stays small (a vocabulary-sized
  // output matrix would otherwise need its whole f16 image at once).
  const int64_t tile = std::min<int64_t>(w.rows, std::max<int64_t>(256, (int64_t{64} << 20) / (2 * w.cols)));
  void* xh = ctx.scratch(0, static_cast<size_t>(n_tok) * w.cols * 2);
  void* wh = ctx.scratch(1, static_cast<size_t>(tile) * w.cols * 2);
  if (!xh || !wh) return cudaErrorMemoryAllocation;
  const bool bf = h == Half::kBF16;
  to_half_kernel<<<ceil_div(n_tok * w.cols, 256), 256, 0, s>>>(x, ldx, n_tok, w.cols, xh, bf);
  if (const int e = detail::last_error()) return e;
  const cudaDataType_t dt = bf ? CUDA_R_16BF : CUDA_R_16F;
  auto* handle = static_cast<cublasHandle_t>(ctx.blas());
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t r0 = 0; r0 < w.rows; r0 += tile) {
    const int64_t n = std::min(tile, w.rows - r0);
    if (const int e = dequantize(w, r0, n, wh, h, s)) return e;
    // Row-major y[t][r] = sum_c w[r][c] x[t][c] is, column-major, Y^T = W^T' X^T: op(A) = T.
    const cublasStatus_t st = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), n_tok, static_cast<int>(w.cols),
                                           &alpha, wh, dt, static_cast<int>(w.cols), xh, dt, static_cast<int>(w.cols), &beta,
                                           y + r0, CUDA_R_32F, static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) return cudaErrorUnknown;
  }
  return 0;
}

}  // namespace docdsa::kernels::cuda
