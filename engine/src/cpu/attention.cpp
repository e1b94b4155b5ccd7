// The CPU backend's causal attention over the KV cache for one layer, on the thread pool.
// Prefill: one task per (KV head, block of query tokens), the group's query heads sharing
// each key block. Decode (few query rows): the keys of each head are also split across
// tasks (split-K) and the partial softmax results merged, so every core stays busy.
// Sparse (DSA): a block of query tokens attends over the gathered union of its tokens'
// selections (dsa_select.cpp), per-token bit masks saying which entries each token reads;
// keys and values come from the row-major K copy and V (kernels::attention_sparse), so a
// token's work stays near its own k entries. Decode is a block of one token (no mask).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/backend_cpu.h"
#include "docdsa/engine/attention_mass.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"

namespace docdsa {
namespace {
constexpr int kQueryTokens = 16;  // query tokens per task (dense)
constexpr int kMinKeysPerSplit = 512;

// Key splits per (head, token block) task: more than one only when there are fewer tasks
// than a few per thread (decode), and never below kMinKeysPerSplit keys a part.
int choose_split(int base_tasks, int n_threads, int n_keys_max) {
  if (base_tasks >= 2 * n_threads) return 1;
  return std::max(1, std::min((2 * n_threads + base_tasks - 1) / base_tasks, n_keys_max / kMinKeysPerSplit));
}
}  // namespace

// Merges the n_split partial results of every (head, token block) task into dst. Partials are
// laid out per task slot as rows (token, head in group) of head_dim, with one log-sum-exp each.
void CpuBackend::merge_splits(int base_tasks, int n_split, int n_tblk, int first_block, int qtok, int n, float* dst,
                              int64_t dst_stride) {
  const int hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
  const size_t rows_per_task = static_cast<size_t>(qtok) * group;
  pool_.run(base_tasks, [&](int bt, int) {
    const int g = bt / n_tblk;
    const int t0 = (first_block + bt % n_tblk) * qtok;
    const int nt = std::min(qtok, n - t0);
    thread_local std::vector<const float*> outs, lses;
    outs.resize(static_cast<size_t>(n_split));
    lses.resize(static_cast<size_t>(n_split));
    // Per token, the group's heads are adjacent both in the partials and in the output.
    for (int t = 0; t < nt; ++t) {
      for (int s = 0; s < n_split; ++s) {
        const size_t slot = static_cast<size_t>(bt) * n_split + s;
        outs[static_cast<size_t>(s)] = attn_part_.data() + (slot * rows_per_task + static_cast<size_t>(t) * group) * hd;
        lses[static_cast<size_t>(s)] = attn_lse_.data() + slot * rows_per_task + static_cast<size_t>(t) * group;
      }
      kernels::merge_partials(n_split, outs.data(), lses.data(), group, hd, hd, dst + (t0 + t) * dst_stride + g * group * hd, hd);
    }
  });
}

void CpuBackend::attention(int il, Tensor qt, Tensor out, int n, int p0, bool sparse) {
  if (sparse) {
    // Rows whose context still fits in k select everything: they take the dense kernel, so
    // they match a dense run (and token-by-token decode) exactly. Blocks holding only such
    // rows are skipped; a partly dense block's dense rows are overwritten.
    const int n_dense = std::clamp(cfg_.dsa.top_k - p0, 0, n);
    attention_sparse(il, qt, out, n, n_dense / kSparseQueryTokens);
    if (n_dense > 0) attention(il, qt, out, n_dense, p0, false);
    return;
  }
  const int hd = c_.head_dim, n_kv = c_.n_head_kv, group = c_.n_head / c_.n_head_kv;
  const int kv_dim = n_kv * hd;
  const uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();
  const uint16_t* vc = v_cache_[static_cast<size_t>(il)].data();
  const int64_t kstride = k_head_stride();
  const int qtok = kQueryTokens;
  const int n_tblk = (n + qtok - 1) / qtok;
  const int n_keys_max = p0 + n;
  // Split keys when there are fewer (head, token block) tasks than a few per thread.
  const int base_tasks = n_kv * n_tblk;
  const int n_split = cfg_.exact_attention ? 1 : choose_split(base_tasks, pool_.size(), n_keys_max);
  int split_len = (n_keys_max + n_split - 1) / n_split;
  split_len = (split_len + kernels::kKeyBlock - 1) / kernels::kKeyBlock * kernels::kKeyBlock;
  const size_t rows_per_task = static_cast<size_t>(qtok) * group;
  if (n_split > 1) {
    attn_part_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task * hd);
    attn_lse_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* q = qt.data;
  float* attn = out.data;

  pool_.run(base_tasks * n_split, [&](int task, int) {
    const int split = task % n_split;
    const int bt = task / n_split;
    const int g = bt / n_tblk;
    const int t0 = (bt % n_tblk) * qtok;
    const int nt = std::min(qtok, n - t0);
    thread_local std::vector<float> qbuf, obuf;
    thread_local std::vector<int32_t> nkeys;
    qbuf.resize(static_cast<size_t>(nt) * group * hd);
    obuf.resize(qbuf.size());
    nkeys.resize(static_cast<size_t>(nt) * group);
    // Rows ordered (token, head in group).
    for (int t = 0; t < nt; ++t)
      for (int h = 0; h < group; ++h) {
        const int row = t * group + h;
        std::memcpy(&qbuf[static_cast<size_t>(row) * hd], q + (t0 + t) * qt.stride + (g * group + h) * hd, sizeof(float) * hd);
        nkeys[static_cast<size_t>(row)] = p0 + t0 + t + 1;
      }
    kernels::AttentionArgs a;
    a.head_dim = hd;
    a.n_rows = nt * group;
    a.q = qbuf.data();
    a.q_stride = hd;
    a.n_keys = nkeys.data();
    a.k = kc + g * kstride;
    a.v = vc + g * hd;
    a.v_stride = kv_dim;
    a.scale = scale;
    if (n_split == 1) {
      a.out = obuf.data();
      a.out_stride = hd;
      if (cfg_.exact_attention)
        kernels::attention_compat(a);
      else
        kernels::attention(a);
      for (int t = 0; t < nt; ++t)
        for (int h = 0; h < group; ++h)
          std::memcpy(attn + (t0 + t) * out.stride + (g * group + h) * hd, &obuf[static_cast<size_t>(t * group + h) * hd],
                      sizeof(float) * hd);
      return;
    }
    a.key_begin = split * split_len;
    a.key_end = a.key_begin + split_len;
    const size_t slot = static_cast<size_t>(bt) * n_split + split;
    a.out = attn_part_.data() + slot * rows_per_task * hd;
    a.out_stride = hd;
    a.lse = attn_lse_.data() + slot * rows_per_task;
    kernels::attention(a);
  });
  if (n_split > 1) merge_splits(base_tasks, n_split, n_tblk, 0, qtok, n, attn, out.stride);
}

void CpuBackend::attention_sparse(int il, Tensor qt, Tensor out, int n, int first_block) {
  const int hd = c_.head_dim, n_kv = c_.n_head_kv, group = c_.n_head / c_.n_head_kv;
  const int kv_dim = n_kv * hd;
  const uint16_t* kr = kr_cache_[static_cast<size_t>(il)].data();
  const uint16_t* vc = v_cache_[static_cast<size_t>(il)].data();
  const int qtok = kSparseQueryTokens;
  const int n_tblk = (n + qtok - 1) / qtok - first_block;
  if (n_tblk <= 0) return;
  int n_keys_max = 0;
  for (int b = first_block; b < first_block + n_tblk; ++b) n_keys_max = std::max(n_keys_max, static_cast<int>(qblocks_[static_cast<size_t>(b)].keys.size()));
  // Split the list when there are fewer (head, block) tasks than a few per thread (decode).
  const int base_tasks = n_kv * n_tblk;
  const int n_split = choose_split(base_tasks, pool_.size(), n_keys_max);
  int split_len = (n_keys_max + n_split - 1) / n_split;
  split_len = (split_len + 15) / 16 * 16;
  const size_t rows_per_task = static_cast<size_t>(qtok) * group;
  if (n_split > 1) {
    attn_part_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task * hd);
    attn_lse_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.run(base_tasks * n_split, [&](int task, int) {
    const int split = task % n_split;
    const int bt = task / n_split;
    const int g = bt / n_tblk;
    const int b = first_block + bt % n_tblk;
    const int t0 = b * qtok;
    const QueryBlock& qb = qblocks_[static_cast<size_t>(b)];
    kernels::SparseAttentionArgs a;
    a.head_dim = hd;
    a.n_heads = group;
    a.n_tokens = std::min(qtok, n - t0);
    a.q = qt.data + t0 * qt.stride + g * group * hd;
    a.q_stride = qt.stride;
    a.n_entries = static_cast<int32_t>(qb.keys.size());
    a.positions = qb.keys.data();
    if (qb.words > 0) {
      a.mask = qb.mask.data();
      a.mask_stride = qb.words;
    }
    a.k = kr + g * hd;
    a.k_stride = kv_dim;
    a.v = vc + g * hd;
    a.v_stride = kv_dim;
    a.scale = scale;
    if (cfg_.ext_group > 0) {
      a.key_shift = qb.shift.data();
      a.rot_cos = rot_cos_.data();
      a.rot_sin = rot_sin_.data();
      a.rot_pairs = c_.n_rot / 2;
      a.rot_neox = c_.rope_neox;
    }
    if (n_split == 1) {
      a.out = out.data + t0 * out.stride + g * group * hd;
      a.out_stride = out.stride;
      kernels::attention_sparse(a);
      return;
    }
    a.entry_begin = split * split_len;
    a.entry_end = a.entry_begin + split_len;
    const size_t slot = static_cast<size_t>(bt) * n_split + split;
    a.out = attn_part_.data() + slot * rows_per_task * hd;
    a.out_stride = static_cast<int64_t>(group) * hd;
    a.lse = attn_lse_.data() + slot * rows_per_task;
    kernels::attention_sparse(a);
  });
  if (n_split > 1) merge_splits(base_tasks, n_split, n_tblk, first_block, qtok, n, out.data, out.stride);
}

void CpuBackend::sync_key_rows(int il, int head, uint64_t offset, uint64_t bytes) {
  if (bytes == 0) return;
  const int hd = c_.head_dim, kv_dim = c_.n_head_kv * hd;
  const int64_t block_elems = static_cast<int64_t>(hd) * kernels::kKeyBlock;
  const int64_t first = static_cast<int64_t>(offset / sizeof(uint16_t)) / block_elems * kernels::kKeyBlock;
  const int64_t last = std::min<int64_t>(cfg_.n_ctx, (static_cast<int64_t>((offset + bytes - 1) / sizeof(uint16_t)) / block_elems + 1) *
                                                         kernels::kKeyBlock);
  const uint16_t* kc = k_cache_[static_cast<size_t>(il)].data() + head * k_head_stride();
  uint16_t* kr = kr_cache_[static_cast<size_t>(il)].data();
  for (int64_t pos = first; pos < last; ++pos)
    for (int dd = 0; dd < hd; ++dd) kr[pos * kv_dim + head * hd + dd] = kc[kernels::k_offset(pos, dd, hd)];
}

void CpuBackend::attention_mass(int il, Tensor qt, std::span<const int> rows, int p0, double* out) {
  const int hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
  const uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();
  const int64_t head_stride = k_head_stride();
  pool_.run(static_cast<int>(rows.size()), [&](int i, int) {
    const int t = rows[static_cast<size_t>(i)];
    out[i] = selected_attention_mass(qt.data + t * qt.stride, c_.n_head, group, hd, p0 + t, sel_[static_cast<size_t>(t)],
                                     [&](int g, int s, int d) { return kc[g * head_stride + kernels::k_offset(s, d, hd)]; });
  });
}

}  // namespace docdsa
