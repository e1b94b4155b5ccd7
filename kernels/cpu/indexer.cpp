// Lightning-indexer scoring (scalar and AVX-512 VNNI) and linear-time top-k selection.
#include "docdsa/kernels/indexer.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace docdsa::kernels {

namespace {
// Rounded and clamped to int8's symmetric range; NaN (from a model file's non-finite weights)
// gives 0 instead of an undefined conversion.
inline int to_q8(float f) { return f == f ? static_cast<int>(std::nearbyint(std::clamp(f, -127.0f, 127.0f))) : 0; }
}  // namespace

float index_store_key(const float* key, int dim, uint8_t* cache, int64_t pos) {
  float amax = 0.0f;
  for (int i = 0; i < dim; ++i) amax = std::max(amax, std::fabs(key[i]));
  const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int i = 0; i < dim; ++i) {
    cache[index_offset(pos, i, dim)] = static_cast<uint8_t>(to_q8(key[i] * inv) + 128);
  }
  return scale;
}

void index_quantize_query(const float* q, int n_heads, int head_dim, const float* weight, int8_t* q8, float* qscale) {
  for (int h = 0; h < n_heads; ++h) {
    const float* x = q + static_cast<int64_t>(h) * head_dim;
    float amax = 0.0f;
    for (int i = 0; i < head_dim; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < head_dim; ++i)
      q8[h * head_dim + i] = static_cast<int8_t>(to_q8(x[i] * inv));
    qscale[h] = (amax > 0.0f ? amax / 127.0f : 0.0f) * (weight ? weight[h] : 1.0f);
  }
}

namespace {

void scores_scalar(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0, int64_t s1,
                   float* out) {
  for (int64_t s = s0; s < s1; ++s) {
    float acc = q.combine == IndexCombine::kMax ? -INFINITY : 0.0f;
    for (int h = 0; h < q.n_heads; ++h) {
      int32_t dot = 0;
      for (int i = 0; i < q.head_dim; ++i)
        dot += (static_cast<int32_t>(cache[index_offset(s, q.offset[h] + i, dim)]) - 128) * q.q[h * q.head_dim + i];
      const float v = q.qscale[h] * static_cast<float>(dot);
      if (q.combine == IndexCombine::kMax) acc = std::max(acc, v);
      else acc += std::max(v, 0.0f);
    }
    out[s - s0] = acc * kscale[s];
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void scores_vnni(const IndexQuery& q, const uint8_t* cache,
                                                                          const float* kscale, int dim, int64_t s0,
                                                                          int64_t s1, float* out) {
  constexpr int kMaxHeads = 64, kMaxWords = 64;
  const int words = q.head_dim / 4;
  int32_t qw[kMaxHeads][kMaxWords];
  int32_t corr[kMaxHeads];
  for (int h = 0; h < q.n_heads; ++h) {
    int32_t sum = 0;
    for (int w = 0; w < words; ++w) std::memcpy(&qw[h][w], q.q + h * q.head_dim + 4 * w, 4);
    for (int i = 0; i < q.head_dim; ++i) sum += q.q[h * q.head_dim + i];
    corr[h] = 128 * sum;  // the keys are stored +128
  }
  const __m512 zero = _mm512_setzero_ps();
  const bool use_max = q.combine == IndexCombine::kMax;
  for (int64_t b = s0; b < s1; b += kIndexBlock) {
    const uint8_t* blk = cache + (b / kIndexBlock) * dim * kIndexBlock;
    __m512 acc = use_max ? _mm512_set1_ps(-INFINITY) : zero;
    for (int h = 0; h < q.n_heads; ++h) {
      const uint8_t* kb = blk + (q.offset[h] / 4) * 64;
      __m512i d0 = _mm512_setzero_si512(), d1 = _mm512_setzero_si512();
      int w = 0;
      for (; w + 1 < words; w += 2) {
        d0 = _mm512_dpbusd_epi32(d0, _mm512_loadu_si512(kb + w * 64), _mm512_set1_epi32(qw[h][w]));
        d1 = _mm512_dpbusd_epi32(d1, _mm512_loadu_si512(kb + (w + 1) * 64), _mm512_set1_epi32(qw[h][w + 1]));
      }
      if (w < words) d0 = _mm512_dpbusd_epi32(d0, _mm512_loadu_si512(kb + w * 64), _mm512_set1_epi32(qw[h][w]));
      const __m512i dot = _mm512_sub_epi32(_mm512_add_epi32(d0, d1), _mm512_set1_epi32(corr[h]));
      const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(q.qscale[h]));
      acc = use_max ? _mm512_max_ps(acc, v) : _mm512_add_ps(acc, _mm512_max_ps(v, zero));
    }
    const int64_t nb = std::min<int64_t>(kIndexBlock, s1 - b);
    const __mmask16 m = static_cast<__mmask16>((1u << nb) - 1u);
    const __m512 ks = _mm512_maskz_loadu_ps(m, kscale + b);
    _mm512_mask_storeu_ps(out + (b - s0), m, _mm512_mul_ps(acc, ks));
  }
}

// Maps a float to an unsigned key with the same order (negative floats reversed).
inline uint32_t order_key(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace

void index_scores(const IndexQuery& q, const uint8_t* cache, const float* kscale, int dim, int64_t s0, int64_t s1,
                  float* out, Isa isa) {
  if (s1 <= s0) return;
  if (isa == Isa::kAvx512 && q.n_heads <= 64 && q.head_dim <= 256) scores_vnni(q, cache, kscale, dim, s0, s1, out);
  else scores_scalar(q, cache, kscale, dim, s0, s1, out);
}

namespace {

// Exact top-k among the entries >= thr (which must number at least k): one pass collects
// them in index order, an nth_element on (key, index) finds the k-th, a pass over the few
// candidates emits the chosen ones in ascending order.
bool select_above(const float* scores, int64_t n, int64_t k, float thr, int32_t base, std::vector<int32_t>& out,
                  std::vector<uint64_t>& scratch) {
  scratch.clear();
  for (int64_t i = 0; i < n; ++i)
    if (scores[i] >= thr) scratch.push_back((static_cast<uint64_t>(order_key(scores[i])) << 32) | static_cast<uint32_t>(i));
  const size_t m = scratch.size();
  if (static_cast<int64_t>(m) < k) return false;
  thread_local std::vector<uint64_t> tmp;
  tmp.assign(scratch.begin(), scratch.end());
  std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<uint64_t>());
  const uint64_t kth = tmp[static_cast<size_t>(k - 1)];
  for (uint64_t c : scratch)
    if (c >= kth) out.push_back(base + static_cast<int32_t>(c & 0xFFFFFFFFu));
  return true;
}

}  // namespace

void select_topk(const float* scores, int64_t n, int64_t k, int32_t base, std::vector<int32_t>& out,
                 std::vector<uint64_t>& scratch) {
  if (k <= 0 || n <= 0) return;
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(base + static_cast<int32_t>(i));
    return;
  }
  // Long rows, small k (decode and prefill at long context): guess the threshold from a
  // strided sample so that about 1.5 k entries pass, then select exactly among those. The
  // result is the same exact top-k as below; only when the guess lets fewer than k through
  // does it fall back to the histogram.
  if (n >= 8192 && k * 8 <= n) {
    const int64_t stride = n / 2048;
    thread_local std::vector<float> sample;
    sample.clear();
    for (int64_t i = stride / 2; i < n; i += stride) sample.push_back(scores[i]);
    const double frac = std::min(1.0, 1.5 * static_cast<double>(k) / static_cast<double>(n));
    const size_t rank = std::min(sample.size() - 1, static_cast<size_t>(frac * static_cast<double>(sample.size())));
    std::nth_element(sample.begin(), sample.begin() + static_cast<int64_t>(rank), sample.end(), std::greater<float>());
    const size_t before = out.size();
    if (select_above(scores, n, k, sample[rank], base, out, scratch)) return;
    out.resize(before);
  }
  constexpr int kShift = 21;  // 2048 buckets: sign, exponent and 2 mantissa bits
  std::array<uint32_t, (1u << (32 - kShift))> hist{};
  for (int64_t i = 0; i < n; ++i) ++hist[order_key(scores[i]) >> kShift];
  int64_t above = 0;
  uint32_t b = static_cast<uint32_t>(hist.size() - 1);
  while (above + hist[b] < k) above += hist[b--];
  const int64_t need = k - above;  // taken from bucket b, 1 <= need <= hist[b]
  // Among bucket b, keep entries whose (key, index) is at least the need-th largest.
  uint64_t threshold = 0;
  if (need < hist[b]) {
    // Candidates as (key << 32 | index) — the order the tie-break defines.
    scratch.resize(hist[b]);
    uint64_t* cand = scratch.data();
    size_t m = 0;
    uint32_t kmin = UINT32_MAX, kmax = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t u = order_key(scores[i]);
      if ((u >> kShift) != b) continue;
      kmin = std::min(kmin, u);
      kmax = std::max(kmax, u);
      cand[m++] = (static_cast<uint64_t>(u) << 32) | static_cast<uint32_t>(i);
    }
    if (kmin == kmax) {
      threshold = cand[m - static_cast<size_t>(need)];  // all equal: the latest `need` indices
    } else {
      std::nth_element(cand, cand + (need - 1), cand + m, std::greater<uint64_t>());
      threshold = cand[need - 1];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = order_key(scores[i]);
    const uint32_t bu = u >> kShift;
    if (bu > b || (bu == b && ((static_cast<uint64_t>(u) << 32) | static_cast<uint32_t>(i)) >= threshold))
      out.push_back(base + static_cast<int32_t>(i));
  }
}

}  // namespace docdsa::kernels
