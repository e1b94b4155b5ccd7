// Scalar reference attention (two-pass softmax), the partial-result merge, and the ISA dispatch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa::kernels {

namespace {
// Re-rotates one key (floats) by `shift` positions: the rotary pairs are (r, r + P) in the NeoX
// layout, (2r, 2r + 1) otherwise. Both the dense and the sparse reference take their
// extension shifts through it.
template <class Args>
void shift_key(const Args& a, float* key, int32_t shift) {
  const float* c = a.rot_cos + static_cast<int64_t>(shift) * a.rot_pairs;
  const float* sn = a.rot_sin + static_cast<int64_t>(shift) * a.rot_pairs;
  for (int r = 0; r < a.rot_pairs; ++r) {
    const int ia = a.rot_neox ? r : 2 * r, ib = a.rot_neox ? r + a.rot_pairs : 2 * r + 1;
    const float x0 = key[ia], x1 = key[ib];
    key[ia] = x0 * c[r] - x1 * sn[r];
    key[ib] = x0 * sn[r] + x1 * c[r];
  }
}
}  // namespace
namespace detail {
namespace avx2 {
void attention_impl(const AttentionArgs& a);
bool attention_sparse_impl(const SparseAttentionArgs& a);
}  // namespace avx2
namespace avx512 {
void attention_impl(const AttentionArgs& a);
bool attention_sparse_impl(const SparseAttentionArgs& a);
}  // namespace avx512

// Per token and head: a two-pass softmax over the entries its mask holds, keys rotated as
// asked. The SIMD kernels are tested against it.
void attention_sparse_ref(const SparseAttentionArgs& a) {
  const int d = a.head_dim;
  const int32_t begin = a.entry_begin, end = std::min(a.n_entries, a.entry_end);
  std::vector<float> s, keys;
  for (int t = 0; t < a.n_tokens; ++t) {
    std::vector<int32_t> js;
    for (int32_t j = begin; j < end; ++j)
      if (a.mask == nullptr || ((a.mask[t * a.mask_stride + j / 32] >> (j % 32)) & 1u) != 0) js.push_back(j);
    keys.assign(js.size() * static_cast<size_t>(d), 0.0f);
    for (size_t i = 0; i < js.size(); ++i) {
      const int32_t j = js[i];
      float* key = &keys[i * static_cast<size_t>(d)];
      const int64_t pos = a.positions[j];
      for (int dd = 0; dd < d; ++dd) key[dd] = fp16_to_fp32(a.k[pos * a.k_stride + dd]);
      if (a.key_shift && a.key_shift[j] != 0) shift_key(a, key, a.key_shift[j]);
    }
    for (int h = 0; h < a.n_heads; ++h) {
      const float* q = a.q + t * a.q_stride + static_cast<int64_t>(h) * d;
      float* out = a.out + t * a.out_stride + static_cast<int64_t>(h) * d;
      float* lse = a.lse ? a.lse + static_cast<int64_t>(t) * a.n_heads + h : nullptr;
      for (int dd = 0; dd < d; ++dd) out[dd] = 0.0f;
      if (js.empty()) {
        if (lse) *lse = -std::numeric_limits<float>::infinity();
        continue;
      }
      s.assign(js.size(), 0.0f);
      float mx = -INFINITY;
      for (size_t i = 0; i < js.size(); ++i) {
        float dot = 0.0f;
        for (int dd = 0; dd < d; ++dd) dot += q[dd] * keys[i * static_cast<size_t>(d) + dd];
        s[i] = dot * a.scale;
        mx = std::max(mx, s[i]);
      }
      float sum = 0.0f;
      for (float& x : s) {
        x = std::exp(x - mx);
        sum += x;
      }
      for (size_t i = 0; i < js.size(); ++i) {
        const uint16_t* v = a.v + a.positions[js[i]] * a.v_stride;
        const float p = s[i] / sum;
        for (int dd = 0; dd < d; ++dd) out[dd] += p * fp16_to_fp32(v[dd]);
      }
      if (lse) *lse = mx + std::log(sum);
    }
  }
}

void attention_ref(const AttentionArgs& a) {
  std::vector<float> s;
  for (int i = 0; i < a.n_rows; ++i) {
    const int begin = a.key_begin;
    const int end = std::min(a.n_keys[i], a.key_end);
    const float* q = a.q + i * a.q_stride;
    float* out = a.out + i * a.out_stride;
    for (int dd = 0; dd < a.head_dim; ++dd) out[dd] = 0.0f;
    if (end <= begin) {
      if (a.lse) a.lse[i] = -std::numeric_limits<float>::infinity();
      continue;
    }
    s.assign(static_cast<size_t>(end - begin), 0.0f);
    float mx = -INFINITY;
    for (int j = begin; j < end; ++j) {
      const int64_t pos = a.positions ? a.positions[j] : j;
      float key[256];
      for (int dd = 0; dd < a.head_dim; ++dd) key[dd] = fp16_to_fp32(a.k[k_offset(pos, dd, a.head_dim)]);
      if (a.key_shift && a.key_shift[j] != 0) shift_key(a, key, a.key_shift[j]);
      float dot = 0.0f;
      for (int dd = 0; dd < a.head_dim; ++dd) dot += q[dd] * key[dd];
      s[j - begin] = mask_bit(a, i, j) ? dot * a.scale : -INFINITY;
      mx = std::max(mx, s[j - begin]);
    }
    if (mx == -INFINITY) {
      if (a.lse) a.lse[i] = mx;
      continue;
    }
    float sum = 0.0f;
    for (float& x : s) {
      x = std::exp(x - mx);
      sum += x;
    }
    for (int j = begin; j < end; ++j) {
      const int64_t pos = a.positions ? a.positions[j] : j;
      const uint16_t* v = a.v + pos * a.v_stride;
      const float p = s[j - begin] / sum;
      for (int dd = 0; dd < a.head_dim; ++dd) out[dd] += p * fp16_to_fp32(v[dd]);
    }
    if (a.lse) a.lse[i] = mx + std::log(sum);
  }
}
void attention_compat(const AttentionArgs& a);
}  // namespace detail

bool attention_compat_supported() { return detected_isa() == Isa::kAvx512; }
void attention_compat(const AttentionArgs& args) { detail::attention_compat(args); }

void attention_sparse(const SparseAttentionArgs& args, Isa isa) {
  if (isa == Isa::kAvx512 && detail::avx512::attention_sparse_impl(args)) return;
  if (isa == Isa::kAvx2 && detail::avx2::attention_sparse_impl(args)) return;
  detail::attention_sparse_ref(args);
}

void attention(const AttentionArgs& args, Isa isa) {
  switch (isa) {
    case Isa::kAvx512: detail::avx512::attention_impl(args); return;
    case Isa::kAvx2: detail::avx2::attention_impl(args); return;
    default: detail::attention_ref(args); return;
  }
}

void merge_partials(int n_parts, const float* const* outs, const float* const* lses, int n_rows, int head_dim,
                    int64_t stride, float* out, int64_t out_stride) {
  for (int i = 0; i < n_rows; ++i) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int p = 0; p < n_parts; ++p) mx = std::max(mx, lses[p][i]);
    float* o = out + i * out_stride;
    for (int dd = 0; dd < head_dim; ++dd) o[dd] = 0.0f;
    if (mx == -std::numeric_limits<float>::infinity()) continue;
    float wsum = 0.0f;
    for (int p = 0; p < n_parts; ++p) {
      const float w = std::exp(lses[p][i] - mx);
      wsum += w;
      const float* src = outs[p] + i * stride;
      for (int dd = 0; dd < head_dim; ++dd) o[dd] += w * src[dd];
    }
    for (int dd = 0; dd < head_dim; ++dd) o[dd] /= wsum;
  }
}

}  // namespace docdsa::kernels
