// Causal attention over the KV cache for one layer, spread over the thread pool.
// Prefill: one task per (KV head, block of query tokens), the group's query heads sharing
// each key block. Decode (few query rows): the keys of each head are also split across
// tasks (split-K) and the partial softmax results merged, so both cores stay busy.
//
// DSA (DESIGN.md): each query token's indexer query scores every earlier token's indexer key
// (int8), the top-k positions plus the sinks and the local window are selected, and exact
// attention runs over the gathered selection only. One selection per layer and token is
// shared by all heads. A block of query tokens gathers the union of its tokens' selections
// once; per-row bit masks say which of the union each token attends.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>

#include "docdsa/engine/session.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/indexer.h"

namespace docdsa {
namespace {
constexpr int kQueryTokens = 16;   // query tokens per task (dense)
// Sparse: a block's tokens share one gathered union of their selections. Measured at 8K:
// 16 tokens 184 tok/s prefill, 4 tokens 152, 1 token 123 (overlap outweighs the larger union).
constexpr int kSparseQueryTokens = 16;
constexpr int kMinKeysPerSplit = 512;
}  // namespace

void Session::index_token(int il, int t, int pos, const float* q, const float* k) {
  const ModelConfig& c = model_.config();
  const Indexer& ix = *params_.indexer;
  const int r = ix.rank(), hd = c.head_dim, group = c.n_head / c.n_head_kv;
  const int dim = ix.key_dim();
  // Sized from the model and indexer: n_head x rank reaches thousands on larger models, past
  // what a fixed stack array holds.
  thread_local std::vector<float> scratch;
  scratch.resize(static_cast<size_t>(dim) + static_cast<size_t>(idx_heads_) * r + static_cast<size_t>(hd));
  float* key = scratch.data();                                                             // [dim]
  float* qi = key + dim;                                                                   // [idx_heads, r]
  float* qsum = qi + static_cast<size_t>(idx_heads_) * r;                                  // [hd]
  for (int g = 0; g < c.n_head_kv; ++g) {
    const float* P = ix.proj(il, g);
    const float* kg = k + g * hd;
    for (int i = 0; i < r; ++i) {
      float acc = 0.0f;
      for (int dd = 0; dd < hd; ++dd) acc += P[i * hd + dd] * kg[dd];
      key[g * r + i] = acc;
    }
  }
  idx_scale_[static_cast<size_t>(il)][static_cast<size_t>(pos)] =
      kernels::index_store_key(key, dim, idx_cache_[static_cast<size_t>(il)].data(), pos);
  const bool per_head = params_.dsa.heads == IndexerHeads::kQuery;
  for (int h = 0; h < idx_heads_; ++h) {
    const int g = per_head ? h / group : h;
    const float* qh = q + h * hd;
    if (!per_head) {
      for (int dd = 0; dd < hd; ++dd) qsum[dd] = 0.0f;
      for (int j = 0; j < group; ++j)
        for (int dd = 0; dd < hd; ++dd) qsum[dd] += q[(g * group + j) * hd + dd];
      qh = qsum;
    }
    const float* P = ix.proj(il, g);
    for (int i = 0; i < r; ++i) {
      float acc = 0.0f;
      for (int dd = 0; dd < hd; ++dd) acc += P[i * hd + dd] * qh[dd];
      qi[h * r + i] = acc;
    }
  }
  const size_t row = static_cast<size_t>(t) * idx_heads_;
  kernels::index_quantize_query(qi, idx_heads_, r, nullptr, iq8_.data() + row * r, iqs_.data() + row);
}

void Session::select(int il, int n, int p0) {
  const ModelConfig& c = model_.config();
  const int K = params_.dsa.top_k, S = params_.dsa.sinks, W = params_.dsa.window;
  const Indexer& ix = *params_.indexer;
  const int r = ix.rank(), dim = ix.key_dim();
  const uint8_t* cache = idx_cache_[static_cast<size_t>(il)].data();
  const float* kscale = idx_scale_[static_cast<size_t>(il)].data();
  const auto query = [&](int t) {
    kernels::IndexQuery iq;
    iq.n_heads = idx_heads_;
    iq.head_dim = r;
    iq.q = iq8_.data() + static_cast<size_t>(t) * idx_heads_ * r;
    iq.qscale = iqs_.data() + static_cast<size_t>(t) * idx_heads_;
    iq.offset = iq_off_.data();
    iq.combine = params_.dsa.combine;
    return iq;
  };
  // Scores [b0, mid1) of token t's query are in `scores`; choose from the middle range.
  const auto choose = [&](int t, const float* scores, int64_t b0) {
    std::vector<int32_t>& sel = sel_[static_cast<size_t>(t)];
    const int pos = p0 + t;
    sel.clear();
    if (pos + 1 <= K) {
      sel.resize(static_cast<size_t>(pos + 1));
      std::iota(sel.begin(), sel.end(), 0);
      return;
    }
    const int mid1 = pos + 1 - W;
    for (int i = 0; i < S; ++i) sel.push_back(i);
    thread_local std::vector<uint64_t> scratch;
    kernels::select_topk(scores + (S - b0), mid1 - S, K - S - W, S, sel, scratch);
    for (int i = mid1; i <= pos; ++i) sel.push_back(i);
  };
  const int64_t b0 = S / kernels::kIndexBlock * kernels::kIndexBlock;
  if (n == 1) {
    // One query over many keys: score in parallel chunks, then select.
    const int pos = p0;
    const int64_t mid1 = pos + 1 - W;
    if (pos + 1 > K) {
      const int64_t len = mid1 - b0;
      const int n_chunks = std::max<int64_t>(1, std::min<int64_t>(4 * pool_.size(), len / 4096));
      int64_t chunk = (len + n_chunks - 1) / n_chunks;
      chunk = (chunk + kernels::kIndexBlock - 1) / kernels::kIndexBlock * kernels::kIndexBlock;
      const kernels::IndexQuery iq = query(0);
      pool_.run(n_chunks, [&](int ci, int) {
        const int64_t s0 = b0 + ci * chunk;
        const int64_t s1 = std::min(mid1, s0 + chunk);
        kernels::index_scores(iq, cache, kscale, dim, s0, s1, score_buf_.data() + (s0 - b0));
      });
    }
    choose(0, score_buf_.data(), b0);
  } else {
    pool_.run(n, [&](int t, int) {
      const int pos = p0 + t;
      thread_local std::vector<float> scores;
      if (pos + 1 > K) {
        scores.resize(static_cast<size_t>(pos + 1));
        kernels::index_scores(query(t), cache, kscale, dim, b0, pos + 1 - W, scores.data());
      }
      choose(t, scores.data(), b0);
    });
  }
  if (params_.selection_tap)
    for (int t = 0; t < n; ++t) params_.selection_tap(il, p0 + t, sel_[static_cast<size_t>(t)]);
  if (params_.recall_every > 0) {
    std::vector<int> rows;
    for (int t = 0; t < n; ++t)
      if (p0 + t + 1 > K && (p0 + t) % params_.recall_every == 0) rows.push_back(t);
    std::vector<double> r(rows.size());
    pool_.run(static_cast<int>(rows.size()), [&](int i, int) {
      r[static_cast<size_t>(i)] = mass_recall(il, rows[static_cast<size_t>(i)], p0 + rows[static_cast<size_t>(i)], sel_[static_cast<size_t>(rows[static_cast<size_t>(i)])]);
    });
    for (double x : r) {
      recall_sum_[static_cast<size_t>(il)] += x;
      ++recall_n_[static_cast<size_t>(il)];
    }
  }

  // Per block of query tokens: the union of their selections and each row's mask over it.
  const int group = c.n_head / c.n_head_kv;
  const int qtok = kSparseQueryTokens;
  const int n_tblk = (n + qtok - 1) / qtok;
  if (qblocks_.size() < static_cast<size_t>(n_tblk)) qblocks_.resize(static_cast<size_t>(n_tblk));
  pool_.run(n_tblk, [&](int b, int) {
    QueryBlock& qb = qblocks_[static_cast<size_t>(b)];
    const int t0 = b * qtok;
    const int nt = std::min(qtok, n - t0);
    qb.n_keys.resize(static_cast<size_t>(nt) * group);
    if (nt == 1) {
      qb.keys = sel_[static_cast<size_t>(t0)];
      qb.words = 0;
      std::fill(qb.n_keys.begin(), qb.n_keys.end(), static_cast<int32_t>(qb.keys.size()));
    } else {
      build_union(qb, t0, nt, p0, group);
    }
    if (ext_group_ > 0) {
      // Distances past the extension window read as W + (d - W) / G: keys move forward by the
      // difference (measured from the block's last token; exact for decode).
      const int ref = p0 + t0 + nt - 1;
      qb.shift.resize(qb.keys.size());
      for (size_t j = 0; j < qb.keys.size(); ++j) {
        const int d = ref - qb.keys[j];
        qb.shift[j] = d <= ext_window_ ? 0 : (d - ext_window_) - (d - ext_window_) / ext_group_;
      }
    }
  });
}

void Session::build_union(QueryBlock& qb, int t0, int nt, int p0, int group) {
  {
    const int max_pos = p0 + t0 + nt - 1;
    thread_local std::vector<uint64_t> bits;
    thread_local std::vector<int32_t> index_of;
    bits.assign(static_cast<size_t>(max_pos / 64 + 1), 0);
    for (int t = 0; t < nt; ++t)
      for (int32_t p : sel_[static_cast<size_t>(t0 + t)]) bits[static_cast<size_t>(p) >> 6] |= 1ull << (p & 63);
    qb.keys.clear();
    index_of.resize(static_cast<size_t>(max_pos + 1));
    for (size_t w = 0; w < bits.size(); ++w)
      for (uint64_t x = bits[w]; x != 0; x &= x - 1) {
        const int32_t p = static_cast<int32_t>(w * 64 + static_cast<size_t>(std::countr_zero(x)));
        index_of[static_cast<size_t>(p)] = static_cast<int32_t>(qb.keys.size());
        qb.keys.push_back(p);
      }
    qb.words = static_cast<int>((qb.keys.size() + 31) / 32);
    qb.mask.assign(static_cast<size_t>(nt) * group * qb.words, 0u);
    for (int t = 0; t < nt; ++t) {
      uint32_t* m0 = qb.mask.data() + static_cast<size_t>(t) * group * qb.words;
      for (int32_t p : sel_[static_cast<size_t>(t0 + t)]) {
        const int32_t j = index_of[static_cast<size_t>(p)];
        m0[j / 32] |= 1u << (j % 32);
      }
      for (int h = 1; h < group; ++h) std::memcpy(m0 + h * qb.words, m0, sizeof(uint32_t) * qb.words);
      const int32_t nk = index_of[static_cast<size_t>(p0 + t0 + t)] + 1;  // its own position is always selected
      for (int h = 0; h < group; ++h) qb.n_keys[static_cast<size_t>(t * group + h)] = nk;
    }
  }
}

void Session::observe(int il, int pos) {
  const Indexer& ix = *params_.indexer;
  kernels::IndexQuery iq;
  iq.n_heads = idx_heads_;
  iq.head_dim = ix.rank();
  iq.q = iq8_.data();
  iq.qscale = iqs_.data();
  iq.offset = iq_off_.data();
  iq.combine = params_.dsa.combine;
  kernels::index_scores(iq, idx_cache_[static_cast<size_t>(il)].data(), idx_scale_[static_cast<size_t>(il)].data(), ix.key_dim(), 0,
                        pos + 1, score_buf_.data());
  thread_local std::vector<uint64_t> scratch;
  std::vector<int32_t>& sel = sel_[0];
  sel.clear();
  kernels::select_topk(score_buf_.data(), pos + 1, params_.observe_k, 0, sel, scratch);
  params_.selection_tap(il, pos, sel);
}

double Session::mass_recall(int il, int t, int pos, std::span<const int32_t> sel) const {
  const ModelConfig& c = model_.config();
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv;
  const uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<double> p(static_cast<size_t>(pos + 1));
  double total = 0.0;
  for (int h = 0; h < c.n_head; ++h) {
    const float* q = q_.data() + static_cast<size_t>(t) * c.n_head * hd + h * hd;
    const uint16_t* k = kc + (h / group) * k_head_stride();
    double mx = -INFINITY;
    for (int s = 0; s <= pos; ++s) {
      float dot = 0.0f;
      for (int dd = 0; dd < hd; ++dd) dot += q[dd] * kernels::fp16_to_fp32(k[kernels::k_offset(s, dd, hd)]);
      p[static_cast<size_t>(s)] = dot * scale;
      mx = std::max(mx, p[static_cast<size_t>(s)]);
    }
    double z = 0.0;
    for (double& x : p) z += (x = std::exp(x - mx));
    double in = 0.0;
    for (int32_t s : sel) in += p[static_cast<size_t>(s)];
    total += in / z;
  }
  return total / c.n_head;
}

void Session::count_cost(int n, int p0, bool decoding) {
  const ModelConfig& c = model_.config();
  const double L = c.n_layer, hq = c.n_head, hd = c.head_dim;
  const double Ls = dsa_ ? std::max(0, c.n_layer - params_.dsa.dense_layers) : 0;  // layers that may go sparse
  const int K = params_.dsa.top_k;
  const double kv_row = 4.0 * c.n_head_kv * c.head_dim;  // K and V bytes of one position
  const double hi = dsa_ ? static_cast<double>(idx_heads_) : 0.0;
  const double ri = dsa_ ? static_cast<double>(params_.indexer->rank()) : 0.0;
  const double ikey = dsa_ ? params_.indexer->key_dim() + 4.0 : 0.0;  // int8 key + scale
  const double linear = 2.0 * static_cast<double>(model_.linear_macs_per_token());
  const double weights = static_cast<double>(model_.weight_bytes());
  for (int t = 0; t < n; ++t) {
    const double ctx = p0 + t + 1;
    const double dense = 4.0 * hq * hd * ctx;
    const bool sparse = dsa_ && !force_dense_ && ctx > K;
    const double ls = sparse ? Ls : 0.0;
    cost_.attn_flops_dense += L * dense;
    cost_.attn_flops_dsa += (L - ls) * dense + ls * (2.0 * hi * ri * ctx + 4.0 * hq * hd * K);
    cost_.linear_flops += linear;
    cost_.selected_keys += static_cast<int64_t>(ls) * K;
    cost_.sparse_rows += static_cast<int64_t>(ls);
    if (decoding) {
      cost_.decode_bytes_dense += L * ctx * kv_row;
      cost_.decode_bytes_dsa += (L - ls) * ctx * kv_row + ls * (ctx * ikey + K * kv_row);
      cost_.weight_bytes_per_token = weights;
    }
  }
}

void Session::attention(int il, int n, int p0) {
  const ModelConfig& c = model_.config();
  const int hd = c.head_dim, n_kv = c.n_head_kv, group = c.n_head / c.n_head_kv;
  const int q_dim = c.n_head * hd, kv_dim = n_kv * hd;
  const uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();
  const uint16_t* vc = v_cache_[static_cast<size_t>(il)].data();
  const int64_t kstride = k_head_stride();
  const bool sparse = dsa_ && !force_dense_ && p0 + n > params_.dsa.top_k && il >= params_.dsa.dense_layers;
  const int qtok = sparse ? kSparseQueryTokens : kQueryTokens;
  const int n_tblk = (n + qtok - 1) / qtok;
  if (sparse) select(il, n, p0);
  else if (indexed_ && n == 1 && params_.observe_k > 0 && params_.selection_tap) observe(il, p0);
  int n_keys_max = p0 + n;
  if (sparse) {
    n_keys_max = 0;
    for (int b = 0; b < n_tblk; ++b) n_keys_max = std::max(n_keys_max, static_cast<int>(qblocks_[static_cast<size_t>(b)].keys.size()));
  }
  // Split keys when there are fewer (head, token block) tasks than a few per thread.
  int n_split = 1;
  const int base_tasks = n_kv * n_tblk;
  if (base_tasks < 2 * pool_.size() && !params_.exact_attention) {
    n_split = std::max(1, std::min((2 * pool_.size() + base_tasks - 1) / base_tasks, n_keys_max / kMinKeysPerSplit));
  }
  int split_len = (n_keys_max + n_split - 1) / n_split;
  split_len = (split_len + kernels::kKeyBlock - 1) / kernels::kKeyBlock * kernels::kKeyBlock;
  const size_t rows_per_task = static_cast<size_t>(qtok) * group;
  if (n_split > 1) {
    attn_part_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task * hd);
    attn_lse_.resize(static_cast<size_t>(base_tasks) * n_split * rows_per_task);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* q = q_.data();
  float* attn = attn_.data();

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
        std::memcpy(&qbuf[static_cast<size_t>(row) * hd], q + (t0 + t) * q_dim + (g * group + h) * hd, sizeof(float) * hd);
        nkeys[static_cast<size_t>(row)] = sparse ? qblocks_[static_cast<size_t>(bt % n_tblk)].n_keys[static_cast<size_t>(row)] : p0 + t0 + t + 1;
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
    if (sparse) {
      const QueryBlock& qb = qblocks_[static_cast<size_t>(bt % n_tblk)];
      a.positions = qb.keys.data();
      if (qb.words > 0) {
        a.mask = qb.mask.data();
        a.mask_stride = qb.words;
      }
      if (ext_group_ > 0) {
        a.key_shift = qb.shift.data();
        a.rot_cos = rot_cos_.data();
        a.rot_sin = rot_sin_.data();
        a.rot_pairs = c.n_rot / 2;
        a.rot_neox = c.rope_neox;
      }
    }
    if (n_split == 1) {
      a.out = obuf.data();
      a.out_stride = hd;
      if (params_.exact_attention) kernels::attention_compat(a);
      else kernels::attention(a);
      for (int t = 0; t < nt; ++t)
        for (int h = 0; h < group; ++h)
          std::memcpy(attn + (t0 + t) * q_dim + (g * group + h) * hd, &obuf[static_cast<size_t>(t * group + h) * hd], sizeof(float) * hd);
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
  if (n_split == 1) return;
  pool_.run(base_tasks, [&](int bt, int) {
    const int g = bt / n_tblk;
    const int t0 = (bt % n_tblk) * qtok;
    const int nt = std::min(qtok, n - t0);
    thread_local std::vector<const float*> outs, lses;
    outs.resize(static_cast<size_t>(n_split));
    lses.resize(static_cast<size_t>(n_split));
    // Per token, the group's heads are adjacent both in the partials and in attn_.
    for (int t = 0; t < nt; ++t) {
      for (int s = 0; s < n_split; ++s) {
        const size_t slot = static_cast<size_t>(bt) * n_split + s;
        outs[static_cast<size_t>(s)] = attn_part_.data() + (slot * rows_per_task + static_cast<size_t>(t) * group) * hd;
        lses[static_cast<size_t>(s)] = attn_lse_.data() + slot * rows_per_task + static_cast<size_t>(t) * group;
      }
      kernels::merge_partials(n_split, outs.data(), lses.data(), group, hd, hd, attn + (t0 + t) * q_dim + g * group * hd, hd);
    }
  });
}

}  // namespace docdsa
