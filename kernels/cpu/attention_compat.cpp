// Attention that reproduces llama.cpp's CPU flash-attention arithmetic step for step (an
// AVX-512 build of ggml): Q rounded to f16, K.Q as ggml_vec_dot_f16 (four 16-lane FMA
// accumulators, reduced pairwise), keys visited in order with an online softmax using expf,
// and the value accumulator kept in f16 as ggml does. It is slow (one key at a time) and
// exists so the oracle tests can demand identical greedy output; production uses the blocked
// kernels, which are tested against it within a stated tolerance.
// Compiled with AVX-512 flags; attention_compat() is only called when the CPU has them.
#include <immintrin.h>

#include <cmath>
#include <limits>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels::detail {

namespace {

// ggml_vec_dot_f16 on AVX-512: x, y f16 rows of n elements.
float dot_f16_ggml(int n, const uint16_t* x, const uint16_t* y) {
  const int np = n & ~63;
  __m512 sum[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      const __m512 ax = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16 * j)));
      const __m512 ay = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + i + 16 * j)));
      sum[j] = _mm512_fmadd_ps(ax, ay, sum[j]);
    }
  }
  sum[0] = _mm512_add_ps(sum[0], sum[2]);
  sum[1] = _mm512_add_ps(sum[1], sum[3]);
  sum[0] = _mm512_add_ps(sum[0], sum[1]);
  double sumf = _mm512_reduce_add_ps(sum[0]);
  for (int i = np; i < n; ++i) sumf += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(sumf);
}

}  // namespace

void attention_compat(const AttentionArgs& a) {
  const int d = a.head_dim;
  std::vector<uint16_t> qh(static_cast<size_t>(d)), kh(static_cast<size_t>(d)), acc(static_cast<size_t>(d));
  for (int i = 0; i < a.n_rows; ++i) {
    const float* q = a.q + i * a.q_stride;
    for (int dd = 0; dd < d; ++dd) qh[static_cast<size_t>(dd)] = fp32_to_fp16(q[dd]);
    std::fill(acc.begin(), acc.end(), uint16_t{0});
    float M = -std::numeric_limits<float>::infinity(), S = 0.0f;
    const int end = std::min(a.n_keys[i], a.key_end);
    for (int j = a.key_begin; j < end; ++j) {
      const int64_t pos = a.positions ? a.positions[j] : j;
      for (int dd = 0; dd < d; ++dd) kh[static_cast<size_t>(dd)] = a.k[k_offset(pos, dd, d)];
      float s = dot_f16_ggml(d, kh.data(), qh.data());
      s = s * a.scale;
      const float Mold = M;
      float ms = 1.0f, vs = 1.0f;
      if (s > M) {
        M = s;
        ms = std::exp(Mold - M);
        for (auto& v : acc) v = fp32_to_fp16(fp16_to_fp32(v) * ms);
      } else {
        vs = std::exp(s - M);
      }
      const uint16_t* vrow = a.v + pos * a.v_stride;
      for (int dd = 0; dd < d; ++dd)
        acc[static_cast<size_t>(dd)] = fp32_to_fp16(std::fma(fp16_to_fp32(vrow[dd]), vs, fp16_to_fp32(acc[static_cast<size_t>(dd)])));
      S = std::fma(S, ms, vs);  // llama.cpp: S = S*ms + vs, contracted to one FMA by its compiler
    }
    float* out = a.out + i * a.out_stride;
    const float inv = S > 0.0f ? 1.0f / S : 0.0f;
    for (int dd = 0; dd < d; ++dd) out[dd] = fp16_to_fp32(acc[static_cast<size_t>(dd)]) * inv;
    if (a.lse) a.lse[i] = S > 0.0f ? M + std::log(S) : -std::numeric_limits<float>::infinity();
  }
}

}  // namespace docdsa::kernels::detail
