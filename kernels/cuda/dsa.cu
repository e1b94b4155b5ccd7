// DSA on the device: lightning-indexer scores (int8 dp4a over the CPU's blocked uint8 cache)
// and the per-row top-k selection with sinks and window (radix select, then an index-ordered
// compaction so the positions come out ascending).
#include <cub/block/block_scan.cuh>

#include <cmath>

#include "common.cuh"

namespace docdsa::kernels::cuda {
namespace {
using detail::ceil_div;

constexpr int kScoreThreads = 128;

// Block: 128 key positions x a tile of query rows held in shared memory. Thread = position;
// the 16 positions of a cache block read one word each as a coalesced 64-byte load.
__global__ void index_scores_kernel(IndexScoresArgs a, int rows_per_block) {
  extern __shared__ int32_t smem[];
  const int words = a.head_dim / 4;
  const int per_row = a.n_heads * words;
  int32_t* qw = smem;                                                          // [rows][heads][words]
  float* qs = reinterpret_cast<float*>(smem + rows_per_block * per_row);       // [rows][heads]
  int32_t* off = reinterpret_cast<int32_t*>(qs + rows_per_block * a.n_heads);  // [heads] (words)
  const int row0 = blockIdx.y * rows_per_block;
  const int nr = min(rows_per_block, a.n_rows - row0);
  for (int i = threadIdx.x; i < nr * per_row; i += blockDim.x)
    qw[i] = reinterpret_cast<const int32_t*>(a.q)[static_cast<int64_t>(row0) * per_row + i];
  for (int i = threadIdx.x; i < nr * a.n_heads; i += blockDim.x) qs[i] = a.qscale[static_cast<int64_t>(row0) * a.n_heads + i];
  for (int i = threadIdx.x; i < a.n_heads; i += blockDim.x) off[i] = a.offset[i] / 4;
  __syncthreads();
  const int64_t s = a.s0 + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= a.s1) return;
  const uint8_t* blk = a.cache + (s / kIndexBlock) * a.dim * kIndexBlock + (s % kIndexBlock) * 4;
  const float ks = a.kscale[s];
  const bool use_max = a.combine == IndexCombine::kMax;
  for (int r = 0; r < nr; ++r) {
    const int row = row0 + r;
    float* o = a.out + static_cast<int64_t>(row) * a.ld + (s - a.s0);
    if (a.row_end && s >= a.row_end[row]) {
      *o = -INFINITY;
      continue;
    }
    float acc = use_max ? -INFINITY : 0.0f;
    for (int h = 0; h < a.n_heads; ++h) {
      const int32_t* q = qw + r * per_row + h * words;
      const uint8_t* kb = blk + off[h] * 64;
      int dot = 0;
      for (int w = 0; w < words; ++w) {
        // Keys are stored +128: flipping each byte's top bit gives the signed value.
        const int k = static_cast<int>(__ldg(reinterpret_cast<const uint32_t*>(kb + w * 64)) ^ 0x80808080u);
        dot = __dp4a(k, q[w], dot);
      }
      const float v = qs[r * a.n_heads + h] * static_cast<float>(dot);
      acc = use_max ? fmaxf(acc, v) : acc + fmaxf(v, 0.0f);
    }
    *o = acc * ks;
  }
}

// int8 rounding of indexer.cpp (to_q8): clamp to +-127, round half to even, NaN to 0.
__device__ __forceinline__ int to_q8(float f) {
  return f == f ? static_cast<int>(rintf(fminf(fmaxf(f, -127.0f), 127.0f))) : 0;
}

// One block per token. Dots are summed in the CPU's order with separate roundings
// (__fmul_rn/__fadd_rn: no fused multiply-add), so the int8 values equal the CPU's.
__global__ void index_store_kernel(IndexStoreArgs a) {
  extern __shared__ float sh[];
  const int dim = a.n_kv * a.rank, hd = a.head_dim, group = a.n_head / a.n_kv;
  float* key = sh;       // [dim]
  float* qi = sh + dim;  // [idx_heads][rank]
  __shared__ float amax_s;
  const int t = blockIdx.x;
  const float* k = a.k + t * a.k_stride;
  const float* q = a.q + t * a.q_stride;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    const int g = j / a.rank, i = j % a.rank;
    const float* P = a.proj + (static_cast<int64_t>(g) * a.rank + i) * hd;
    float acc = 0.0f;
    for (int d = 0; d < hd; ++d) acc = __fadd_rn(acc, __fmul_rn(P[d], k[g * hd + d]));
    key[j] = acc;
  }
  for (int j = threadIdx.x; j < a.idx_heads * a.rank; j += blockDim.x) {
    const int h = j / a.rank, i = j % a.rank;
    const int g = a.per_head ? h / group : h;
    const float* P = a.proj + (static_cast<int64_t>(g) * a.rank + i) * hd;
    float acc = 0.0f;
    for (int d = 0; d < hd; ++d) {
      float x;
      if (a.per_head) {
        x = q[h * hd + d];
      } else {
        x = 0.0f;
        for (int m = 0; m < group; ++m) x = __fadd_rn(x, q[(g * group + m) * hd + d]);
      }
      acc = __fadd_rn(acc, __fmul_rn(P[d], x));
    }
    qi[j] = acc;
  }
  if (threadIdx.x == 0) amax_s = 0.0f;
  __syncthreads();
  float m = 0.0f;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) m = fmaxf(m, fabsf(key[j]));
  m = detail::warp_max(m);
  if ((threadIdx.x & 31) == 0) atomicMax(reinterpret_cast<int*>(&amax_s), __float_as_int(m));  // m >= 0: int order
  __syncthreads();
  const float amax = amax_s;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  const int64_t pos = a.positions[t];
  uint8_t* blk = a.cache + (pos / kIndexBlock) * dim * kIndexBlock + (pos % kIndexBlock) * 4;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) blk[(j / 4) * 64 + j % 4] = static_cast<uint8_t>(to_q8(key[j] * inv) + 128);
  if (threadIdx.x == 0) a.kscale[pos] = amax > 0.0f ? amax / 127.0f : 1.0f;
  // The queries: one scale for all heads (index_quantize_query), their largest magnitude.
  const int nq = a.idx_heads * a.rank;
  float qm = 0.0f;
  for (int j = threadIdx.x; j < nq; j += blockDim.x) qm = fmaxf(qm, fabsf(qi[j]));
  qm = detail::warp_max(qm);
  __syncthreads();  // every thread has read amax_s
  if (threadIdx.x == 0) amax_s = 0.0f;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) atomicMax(reinterpret_cast<int*>(&amax_s), __float_as_int(qm));
  __syncthreads();
  const float qmax = amax_s;
  const float qinv = qmax > 0.0f ? 127.0f / qmax : 0.0f;
  int8_t* o = a.q8 + static_cast<int64_t>(t) * nq;
  for (int j = threadIdx.x; j < nq; j += blockDim.x) o[j] = static_cast<int8_t>(to_q8(qi[j] * qinv));
  for (int h = threadIdx.x; h < a.idx_heads; h += blockDim.x)
    a.qscale[static_cast<int64_t>(t) * a.idx_heads + h] = qmax > 0.0f ? qmax / 127.0f : 0.0f;
}

constexpr int kSelThreads = 1024;

// Maps a float to an unsigned key with the same order (indexer.cpp order_key).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void dsa_select_kernel(const float* scores, int64_t ld, int64_t base, const int32_t* pos_arr, int top_k, int sinks,
                                  int window, int32_t* sel_out, int32_t* n_sel) {
  using Scan = cub::BlockScan<int, kSelThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int hist[256];
  __shared__ uint32_t sh_prefix;
  __shared__ int sh_need, sh_equal, sh_run_sel, sh_run_eq;
  const int row = blockIdx.x;
  const int pos = pos_arr[row];
  int32_t* sel = sel_out + static_cast<int64_t>(row) * top_k;
  if (pos + 1 <= top_k) {
    for (int i = threadIdx.x; i <= pos; i += blockDim.x) sel[i] = i;
    if (threadIdx.x == 0) n_sel[row] = pos + 1;
    return;
  }
  const int mid1 = pos + 1 - window;
  const int n = mid1 - sinks;
  const int k = top_k - sinks - window;
  const float* sc = scores + static_cast<int64_t>(row) * ld + (sinks - base);
  for (int i = threadIdx.x; i < sinks; i += blockDim.x) sel[i] = i;
  for (int i = threadIdx.x; i < window; i += blockDim.x) sel[sinks + k + i] = mid1 + i;
  if (threadIdx.x == 0) n_sel[row] = top_k;

  // Radix select of the k-th largest key, 8 bits a pass from the top: `prefix` holds the
  // digits fixed so far, `need` how many of the keys with that prefix are still to take.
  if (threadIdx.x == 0) sh_prefix = 0, sh_need = k;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    const uint32_t prefix = sh_prefix;
    const uint32_t hi_mask = pass == 0 ? 0u : ~0u << (shift + 8);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const uint32_t u = order_key(sc[i]);
      if ((u & hi_mask) == prefix) atomicAdd(&hist[(u >> shift) & 255], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int need = sh_need, b = 255;
      while (hist[b] < need) need -= hist[b--];
      sh_prefix = prefix | (static_cast<uint32_t>(b) << shift);
      sh_need = need;
      sh_equal = hist[b];
    }
    __syncthreads();
  }
  // Keys above the threshold are all taken; of those equal to it, the latest `need`.
  const uint32_t thr = sh_prefix;
  const int first_eq = sh_equal - sh_need;
  if (threadIdx.x == 0) sh_run_sel = 0, sh_run_eq = 0;
  __syncthreads();
  for (int t0 = 0; t0 < n; t0 += blockDim.x) {
    const int i = t0 + threadIdx.x;
    const uint32_t u = i < n ? order_key(sc[i]) : 0u;
    const int eq = i < n && u == thr;
    int eq_rank, eq_total;
    Scan(scan_tmp).ExclusiveSum(eq, eq_rank, eq_total);
    __syncthreads();
    const int take = i < n && (u > thr || (eq && sh_run_eq + eq_rank >= first_eq));
    int at, taken;
    Scan(scan_tmp).ExclusiveSum(take, at, taken);
    if (take) sel[sinks + sh_run_sel + at] = sinks + i;
    __syncthreads();
    if (threadIdx.x == 0) sh_run_sel += taken, sh_run_eq += eq_total;
    __syncthreads();
  }
}

}  // namespace

int index_scores(const IndexScoresArgs& a, Stream s) {
  if (a.n_rows <= 0 || a.s1 <= a.s0) return 0;
  if (a.s0 % kIndexBlock != 0 || a.head_dim % 4 != 0 || a.dim % 4 != 0) return cudaErrorInvalidValue;
  const size_t per_row = static_cast<size_t>(a.n_heads) * (a.head_dim + 4);
  const int rows = static_cast<int>(std::min<size_t>(16, (40u << 10) / per_row));
  if (rows < 1) return cudaErrorInvalidValue;
  const size_t smem = rows * per_row + static_cast<size_t>(a.n_heads) * 4;
  const dim3 grid(ceil_div(a.s1 - a.s0, kScoreThreads), ceil_div(a.n_rows, rows));
  index_scores_kernel<<<grid, kScoreThreads, smem, s>>>(a, rows);
  return detail::last_error();
}

int index_store(const IndexStoreArgs& a, Stream s) {
  if (a.n_tok <= 0) return 0;
  if (a.n_kv <= 0 || a.n_head % a.n_kv != 0 || a.rank % 4 != 0 || a.idx_heads <= 0) return cudaErrorInvalidValue;
  const size_t smem = (static_cast<size_t>(a.n_kv) * a.rank + static_cast<size_t>(a.idx_heads) * a.rank) * sizeof(float);
  index_store_kernel<<<a.n_tok, 256, smem, s>>>(a);
  return detail::last_error();
}

int dsa_select(const float* scores, int64_t ld, int64_t base, const int32_t* pos, int n_rows, int top_k, int sinks, int window,
               int32_t* sel, int32_t* n_sel, Stream s) {
  if (n_rows <= 0) return 0;
  if (top_k < 1 || sinks < 0 || window < 0 || sinks + window >= top_k || base > sinks) return cudaErrorInvalidValue;
  dsa_select_kernel<<<n_rows, kSelThreads, 0, s>>>(scores, ld, base, pos, top_k, sinks, window, sel, n_sel);
  return detail::last_error();
}

}  // namespace docdsa::kernels::cuda
