// Row and element-wise ops of the forward pass: RMSNorm, RoPE, SwiGLU, residual add, bias,
// f16 KV-cache writes and the greedy argmax over logits.
#include <cfloat>

#include "common.cuh"

namespace docdsa::kernels::cuda {
namespace {
using detail::ceil_div;

// One block per row; the sum of squares in f32 through a warp-shuffle tree.
__global__ void rms_norm_kernel(const float* x, int64_t xs, const float* w, float* y, int64_t ys, int n, float eps) {
  const float* xr = x + blockIdx.x * xs;
  float* yr = y + blockIdx.x * ys;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float part[32];
  ss = detail::warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    v = detail::warp_sum(v);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float scale = 1.0f / sqrtf(part[0] / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = (xr[i] * scale) * w[i];
}

// One thread per position runs rope_cache's loop, so theta accumulates the same way.
__global__ void rope_table_kernel(RopeParams p, int n_pos, float* cos_out, float* sin_out) {
  const int pos = blockIdx.x * blockDim.x + threadIdx.x;
  if (pos >= n_pos) return;
  float theta = static_cast<float>(pos);
  float mscale = p.attn_factor;
  if (p.ext_factor != 0.0f && p.freq_scale != 1.0f) mscale *= 1.0f + 0.1f * logf(1.0f / p.freq_scale);
  const int half = p.n_rot / 2;
  for (int i = 0; i < half; ++i) {
    float t = p.freq_scale * theta;
    if (p.ext_factor != 0.0f) {
      const float yv = (static_cast<float>(i) - p.corr_low) / fmaxf(0.001f, p.corr_high - p.corr_low);
      const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, yv))) * p.ext_factor;
      t = t * (1.0f - ramp) + theta * ramp;
    }
    cos_out[static_cast<int64_t>(pos) * half + i] = cosf(t) * mscale;
    sin_out[static_cast<int64_t>(pos) * half + i] = sinf(t) * mscale;
    theta *= p.theta_scale;
  }
}

__global__ void rope_apply_kernel(float* x, int n_tok, int n_heads, int64_t tok_stride, int64_t head_stride,
                                  const int32_t* positions, const float* cos_t, const float* sin_t, int n_rot, bool neox) {
  const int half = n_rot / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n_tok) * n_heads * half) return;
  const int r = static_cast<int>(i % half);
  const int h = static_cast<int>((i / half) % n_heads);
  const int t = static_cast<int>(i / (static_cast<int64_t>(half) * n_heads));
  float* v = x + t * tok_stride + h * head_stride;
  const int64_t row = static_cast<int64_t>(positions[t]) * half + r;
  const float c = cos_t[row], s = sin_t[row];
  const int a = neox ? r : 2 * r, b = neox ? r + half : 2 * r + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

__global__ void swiglu_kernel(float* g, int64_t gs, const float* u, int64_t us, int rows, int n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(rows) * n) return;
  float* gp = g + (i / n) * gs + i % n;
  *gp = *gp / (1.0f + expf(-*gp)) * u[(i / n) * us + i % n];
}

__global__ void add_kernel(float* y, int64_t ys, const float* x, int64_t xs, int rows, int n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < static_cast<int64_t>(rows) * n) y[(i / n) * ys + i % n] += x[(i / n) * xs + i % n];
}

__global__ void bias_kernel(float* y, const float* b, int rows, int n, int64_t stride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < static_cast<int64_t>(rows) * n) y[(i / n) * stride + i % n] += b[i % n];
}

__global__ void kv_write_kernel(const float* k, int64_t ks, const float* v, int64_t vs, int n_tok, int width,
                                const int32_t* positions, __half* kc, __half* vc, int64_t kv_stride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n_tok) * width) return;
  const int64_t t = i / width, c = i % width;
  const int64_t dst = static_cast<int64_t>(positions[t]) * kv_stride + c;
  kc[dst] = __float2half_rn(k[t * ks + c]);
  vc[dst] = __float2half_rn(v[t * vs + c]);
}

// One block: each thread keeps its best (value, lowest index), then a shared-memory tree.
__global__ void argmax_kernel(const float* x, int n, int32_t* out) {
  float best = -FLT_MAX;
  int bi = n;
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    if (x[i] > best || bi == n) best = x[i], bi = i;
  __shared__ float sv[1024];
  __shared__ int si[1024];
  sv[threadIdx.x] = best;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) {
      const float v2 = sv[threadIdx.x + o];
      const int i2 = si[threadIdx.x + o];
      const bool take =
          i2 < n && (si[threadIdx.x] == n || v2 > sv[threadIdx.x] || (v2 == sv[threadIdx.x] && i2 < si[threadIdx.x]));
      if (take) sv[threadIdx.x] = v2, si[threadIdx.x] = i2;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = si[0] == n ? 0 : si[0];
}

}  // namespace

int rms_norm(const float* x, int64_t x_stride, const float* w, float* y, int64_t y_stride, int rows, int n, float eps, Stream s) {
  if (rows <= 0) return 0;
  rms_norm_kernel<<<rows, n >= 1024 ? 1024 : 256, 0, s>>>(x, x_stride, w, y, y_stride, n, eps);
  return detail::last_error();
}

int rope_table(const RopeParams& p, int n_pos, float* cos_out, float* sin_out, Stream s) {
  if (n_pos <= 0) return 0;
  rope_table_kernel<<<ceil_div(n_pos, 128), 128, 0, s>>>(p, n_pos, cos_out, sin_out);
  return detail::last_error();
}

int rope_apply(float* x, int n_tok, int n_heads, int64_t tok_stride, int64_t head_stride, const int32_t* positions,
               const float* cos_t, const float* sin_t, int n_rot, bool neox, Stream s) {
  const int64_t n = static_cast<int64_t>(n_tok) * n_heads * (n_rot / 2);
  if (n <= 0) return 0;
  rope_apply_kernel<<<ceil_div(n, 256), 256, 0, s>>>(x, n_tok, n_heads, tok_stride, head_stride, positions, cos_t, sin_t, n_rot,
                                                     neox);
  return detail::last_error();
}

int swiglu(float* gate, int64_t gate_stride, const float* up, int64_t up_stride, int rows, int n, Stream s) {
  const int64_t total = static_cast<int64_t>(rows) * n;
  if (total <= 0) return 0;
  swiglu_kernel<<<ceil_div(total, 256), 256, 0, s>>>(gate, gate_stride, up, up_stride, rows, n);
  return detail::last_error();
}

int add(float* y, int64_t y_stride, const float* x, int64_t x_stride, int rows, int n, Stream s) {
  const int64_t total = static_cast<int64_t>(rows) * n;
  if (total <= 0) return 0;
  add_kernel<<<ceil_div(total, 256), 256, 0, s>>>(y, y_stride, x, x_stride, rows, n);
  return detail::last_error();
}

int add_bias_rows(float* y, const float* b, int rows, int n, int64_t stride, Stream s) {
  const int64_t total = static_cast<int64_t>(rows) * n;
  if (total <= 0) return 0;
  bias_kernel<<<ceil_div(total, 256), 256, 0, s>>>(y, b, rows, n, stride);
  return detail::last_error();
}

int kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int n_tok, int n_kv, int head_dim,
             const int32_t* positions, uint16_t* k_cache, uint16_t* v_cache, int64_t kv_stride, Stream s) {
  const int width = n_kv * head_dim;
  const int64_t total = static_cast<int64_t>(n_tok) * width;
  if (total <= 0) return 0;
  kv_write_kernel<<<ceil_div(total, 256), 256, 0, s>>>(k, k_stride, v, v_stride, n_tok, width, positions,
                                                       reinterpret_cast<__half*>(k_cache), reinterpret_cast<__half*>(v_cache),
                                                       kv_stride);
  return detail::last_error();
}

int argmax(const float* logits, int n, int32_t* out, Stream s) {
  if (n <= 0) return cudaErrorInvalidValue;
  argmax_kernel<<<1, 1024, 0, s>>>(logits, n, out);
  return detail::last_error();
}

}  // namespace docdsa::kernels::cuda
