// Attention over the f16 token-major KV cache: one kernel for both the token-level sparse path
// (each query token its own gathered key list, as FlashMLA's sparse kernels) and the dense
// causal path (keys 0..n-1), flash-style: online softmax over 32-key batches per warp, the
// query heads of one KV group sharing every key load. Long lists are split over blocks
// (flash-decoding) and merged by log-sum-exp, so one decode token still fills the GPU.
#include <algorithm>
#include <cmath>

#include "common.cuh"

namespace docdsa::kernels::cuda {
namespace {
using detail::ceil_div;

constexpr int kWarps = 4;
constexpr int kMaxG = 8;        // query heads per block (a KV group, or an 8-head slice of it)
constexpr int kMinSplit = 256;  // keys per split at least

struct Launch {
  AttentionArgsGpu a;
  int group;    // query heads per KV head
  int hslices;  // blocks per KV group (ceil(group / kMaxG))
  int n_splits;
  int chunk;        // keys per split (multiple of 32 * kWarps)
  float* part_out;  // [t][h][split][D] when n_splits > 1
  float* part_lse;  // [t][h][split]
};

template <int D>
__global__ void __launch_bounds__(32 * kWarps) attention_kernel(Launch L) {
  // Dims each lane owns in the P.V accumulation (below 32 dims, lanes past D idle there).
  constexpr int DL = D >= 32 ? D / 32 : 1;
  const bool owns = D >= 32 || threadIdx.x % 32 < D;
  const AttentionArgsGpu& a = L.a;
  const int split = blockIdx.x;
  const int g = blockIdx.y / L.hslices;
  const int h0 = g * L.group + (blockIdx.y % L.hslices) * kMaxG;
  const int gh = min(kMaxG, (g + 1) * L.group - h0);
  const int t = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  __shared__ float q_s[kMaxG][D];
  __shared__ float m_s[kWarps][kMaxG], l_s[kWarps][kMaxG];
  __shared__ float o_s[kWarps][kMaxG][D];
  for (int i = threadIdx.x; i < gh * D; i += blockDim.x)
    q_s[i / D][i % D] = a.q[t * a.q_stride + static_cast<int64_t>(h0 + i / D) * D + i % D] * a.scale;
  __syncthreads();

  const int n = a.n_keys[t];
  const int begin = split * L.chunk;
  const int end = min(n, begin + L.chunk);
  const int32_t* plist = a.positions ? a.positions + t * a.pos_stride : nullptr;
  const __half* kbase = reinterpret_cast<const __half*>(a.k) + static_cast<int64_t>(g) * D;
  const __half* vbase = reinterpret_cast<const __half*>(a.v) + static_cast<int64_t>(g) * D;

  float m[kMaxG], l[kMaxG], acc[kMaxG][DL];
#pragma unroll
  for (int h = 0; h < kMaxG; ++h) {
    m[h] = -INFINITY, l[h] = 0.0f;
#pragma unroll
    for (int e = 0; e < DL; ++e) acc[h][e] = 0.0f;
  }

  for (int b = begin + warp * 32; b < end; b += 32 * kWarps) {
    const int j = b + lane;
    const bool valid = j < end;
    const int64_t pos = valid ? (plist ? plist[j] : j) : 0;
    float s[kMaxG];
#pragma unroll
    for (int h = 0; h < kMaxG; ++h) s[h] = 0.0f;
    if (valid) {
      const uint4* kp = reinterpret_cast<const uint4*>(kbase + pos * a.kv_stride);
#pragma unroll 4
      for (int c = 0; c < D / 8; ++c) {
        const uint4 raw = __ldg(kp + c);
        const __half2* hv = reinterpret_cast<const __half2*>(&raw);
        float kf[8];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(hv[e]);
          kf[2 * e] = f.x, kf[2 * e + 1] = f.y;
        }
#pragma unroll
        for (int h = 0; h < kMaxG; ++h) {
          if (h < gh) {
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; ++e) d += q_s[h][c * 8 + e] * kf[e];
            s[h] += d;
          }
        }
      }
    }
    float p[kMaxG];
#pragma unroll
    for (int h = 0; h < kMaxG; ++h) {
      if (h >= gh) continue;
      const float sv = valid ? s[h] : -INFINITY;
      const float mn = fmaxf(m[h], detail::warp_max(sv));
      p[h] = valid ? __expf(sv - mn) : 0.0f;
      const float corr = m[h] == -INFINITY ? 0.0f : __expf(m[h] - mn);
      l[h] = l[h] * corr + detail::warp_sum(p[h]);
      m[h] = mn;
#pragma unroll
      for (int e = 0; e < DL; ++e) acc[h][e] *= corr;
    }
    const int nb = min(32, end - b);
    for (int jj = 0; jj < nb; ++jj) {
      const int64_t pj = __shfl_sync(0xffffffffu, pos, jj);
      const __half* vp = vbase + pj * a.kv_stride + lane * DL;
      float vf[DL];
      if constexpr (DL == 1) {
        vf[0] = owns ? __half2float(*vp) : 0.0f;
      } else if constexpr (DL == 2) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(vp));
        vf[0] = f.x, vf[1] = f.y;
      } else {
        const uint2 raw = *reinterpret_cast<const uint2*>(vp);
        const float2 f0 = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
        const float2 f1 = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
        vf[0] = f0.x, vf[1] = f0.y, vf[2] = f1.x, vf[3] = f1.y;
      }
#pragma unroll
      for (int h = 0; h < kMaxG; ++h) {
        if (h >= gh) continue;
        const float ph = __shfl_sync(0xffffffffu, p[h], jj);
#pragma unroll
        for (int e = 0; e < DL; ++e) acc[h][e] += ph * vf[e];
      }
    }
  }

  // Merge the warps' partial softmax states.
#pragma unroll
  for (int h = 0; h < kMaxG; ++h) {
    if (h >= gh) continue;
    if (lane == 0) m_s[warp][h] = m[h], l_s[warp][h] = l[h];
    if (owns) {
#pragma unroll
      for (int e = 0; e < DL; ++e) o_s[warp][h][lane * DL + e] = acc[h][e];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < gh * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, m_s[w][h]);
    float sum = 0.0f, o = 0.0f;
    if (mx != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        if (m_s[w][h] == -INFINITY) continue;
        const float c = __expf(m_s[w][h] - mx);
        sum += l_s[w][h] * c;
        o += o_s[w][h][d] * c;
      }
    }
    const int hq = h0 + h;
    if (L.n_splits == 1) {
      a.out[t * a.out_stride + static_cast<int64_t>(hq) * D + d] = sum > 0.0f ? o / sum : 0.0f;
    } else {
      const int64_t slot = (static_cast<int64_t>(t) * a.n_head + hq) * L.n_splits + split;
      L.part_out[slot * D + d] = sum > 0.0f ? o / sum : 0.0f;
      if (d == 0) L.part_lse[slot] = sum > 0.0f ? mx + logf(sum) : -INFINITY;
    }
  }
}

// One block per (token, head): out = sum_p exp(lse_p - max) out_p / sum_p exp(lse_p - max).
__global__ void merge_kernel(Launch L) {
  const AttentionArgsGpu& a = L.a;
  const int t = blockIdx.y, h = blockIdx.x, D = a.head_dim;
  const int64_t slot0 = (static_cast<int64_t>(t) * a.n_head + h) * L.n_splits;
  float mx = -INFINITY;
  for (int p = 0; p < L.n_splits; ++p) mx = fmaxf(mx, L.part_lse[slot0 + p]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sum = 0.0f, o = 0.0f;
    if (mx != -INFINITY) {
      for (int p = 0; p < L.n_splits; ++p) {
        const float lse = L.part_lse[slot0 + p];
        if (lse == -INFINITY) continue;
        const float w = __expf(lse - mx);
        sum += w;
        o += w * L.part_out[(slot0 + p) * D + d];
      }
    }
    a.out[t * a.out_stride + static_cast<int64_t>(h) * D + d] = sum > 0.0f ? o / sum : 0.0f;
  }
}

}  // namespace

int attention(Context& ctx, const AttentionArgsGpu& a) {
  if (a.n_tok <= 0) return 0;
  if ((a.head_dim != 16 && a.head_dim != 32 && a.head_dim != 64 && a.head_dim != 128) || a.n_kv <= 0 || a.n_head % a.n_kv != 0 ||
      a.kv_stride % 8 != 0)
    return cudaErrorInvalidValue;
  Launch L{};
  L.a = a;
  L.group = a.n_head / a.n_kv;
  L.hslices = (L.group + kMaxG - 1) / kMaxG;
  const int64_t blocks = static_cast<int64_t>(a.n_tok) * a.n_kv * L.hslices;
  const int target = 2 * std::max(1, ctx.sm_count());
  L.n_splits = 1;
  if (blocks < target && a.max_keys > 2 * kMinSplit)
    L.n_splits = static_cast<int>(std::min<int64_t>((target + blocks - 1) / blocks, a.max_keys / kMinSplit));
  constexpr int kStep = 32 * kWarps;
  L.chunk = L.n_splits == 1 ? INT32_MAX / 2 : static_cast<int>(ceil_div(ceil_div(a.max_keys, L.n_splits), kStep) * kStep);
  if (L.n_splits > 1) {
    const size_t slots = static_cast<size_t>(a.n_tok) * a.n_head * L.n_splits;
    L.part_out = static_cast<float*>(ctx.scratch(2, slots * a.head_dim * sizeof(float)));
    L.part_lse = static_cast<float*>(ctx.scratch(3, slots * sizeof(float)));
    if (!L.part_out || !L.part_lse) return cudaErrorMemoryAllocation;
  }
  const dim3 grid(L.n_splits, a.n_kv * L.hslices, a.n_tok);
  switch (a.head_dim) {
    case 16:
      attention_kernel<16><<<grid, 32 * kWarps, 0, ctx.stream()>>>(L);
      break;
    case 32:
      attention_kernel<32><<<grid, 32 * kWarps, 0, ctx.stream()>>>(L);
      break;
    case 64:
      attention_kernel<64><<<grid, 32 * kWarps, 0, ctx.stream()>>>(L);
      break;
    default:
      attention_kernel<128><<<grid, 32 * kWarps, 0, ctx.stream()>>>(L);
      break;
  }
  if (const int e = detail::last_error()) return e;
  if (L.n_splits > 1) {
    merge_kernel<<<dim3(a.n_head, a.n_tok), 128, 0, ctx.stream()>>>(L);
    return detail::last_error();
  }
  return 0;
}

}  // namespace docdsa::kernels::cuda
