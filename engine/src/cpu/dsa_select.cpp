// DSA selection at run time, on the CPU (DESIGN.md, "DSA"): each token's lightning-indexer
// key goes into the indexer cache (int8) and its indexer queries are kept for the batch; each
// query token's queries score every earlier token's key, the top-k positions plus the sinks
// and the local window are selected, and a block of query tokens gathers the union of its
// tokens' selections once, with per-row bit masks over it (attention.cpp reads them).
// One selection per layer and token is shared by all heads.
#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>

#include "cpu/backend_cpu.h"
#include "docdsa/kernels/indexer.h"

namespace docdsa {

void CpuBackend::store_index(int il, Tensor qt, Tensor kt, int n, int p0) {
  const Indexer& ix = *cfg_.indexer;
  const int r = ix.rank(), hd = c_.head_dim, group = c_.n_head / c_.n_head_kv;
  const int dim = ix.key_dim(), idx_heads = cfg_.idx_heads;
  const bool per_head = cfg_.dsa.heads == IndexerHeads::kQuery;
  pool_.run(n, [&](int t, int) {
    const int pos = p0 + t;
    const float* q = qt.data + t * qt.stride;
    const float* k = kt.data + t * kt.stride;
    // Sized from the model and indexer: n_head x rank reaches thousands on larger models, past
    // what a fixed stack array holds.
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(dim) + static_cast<size_t>(idx_heads) * r + static_cast<size_t>(hd));
    float* key = scratch.data();                            // [dim]
    float* qi = key + dim;                                  // [idx_heads, r]
    float* qsum = qi + static_cast<size_t>(idx_heads) * r;  // [hd]
    for (int g = 0; g < c_.n_head_kv; ++g) {
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
    for (int h = 0; h < idx_heads; ++h) {
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
    const size_t row = static_cast<size_t>(t) * idx_heads;
    kernels::index_quantize_query(qi, idx_heads, r, nullptr, iq8_.data() + row * r, iqs_.data() + row);
  });
}

void CpuBackend::select(int il, int n, int p0) {
  const int K = cfg_.dsa.top_k, S = cfg_.dsa.sinks, W = cfg_.dsa.window;
  const Indexer& ix = *cfg_.indexer;
  const int r = ix.rank(), dim = ix.key_dim(), idx_heads = cfg_.idx_heads;
  const uint8_t* cache = idx_cache_[static_cast<size_t>(il)].data();
  const float* kscale = idx_scale_[static_cast<size_t>(il)].data();
  const auto query = [&](int t) {
    kernels::IndexQuery iq;
    iq.n_heads = idx_heads;
    iq.head_dim = r;
    iq.q = iq8_.data() + static_cast<size_t>(t) * idx_heads * r;
    iq.qscale = iqs_.data() + static_cast<size_t>(t) * idx_heads;
    iq.offset = iq_off_.data();
    iq.combine = cfg_.dsa.combine;
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
    // Blocks of query rows score together (each cache block read once for all of them), then
    // each row selects from its own range; the scores are the same as one row's alone.
    constexpr int kRows = kSparseQueryTokens;
    pool_.run((n + kRows - 1) / kRows, [&](int blk, int) {
      const int t0 = blk * kRows;
      const int t1 = std::min(n, t0 + kRows);
      const int ts = std::clamp(K - p0, t0, t1);  // rows from ts on are past k and score
      thread_local std::vector<float> scores;
      thread_local std::vector<kernels::IndexQuery> qs;
      int64_t len = 0;
      if (ts < t1) {
        const int64_t s1 = p0 + t1 - W;  // the last row's range; earlier rows use a prefix
        len = s1 - b0;
        scores.resize(static_cast<size_t>(t1 - ts) * static_cast<size_t>(len));
        qs.clear();
        for (int t = ts; t < t1; ++t) qs.push_back(query(t));
        kernels::index_scores_block(qs.data(), t1 - ts, cache, kscale, dim, b0, s1, scores.data(), len);
      }
      for (int t = t0; t < t1; ++t) choose(t, t < ts ? nullptr : scores.data() + static_cast<size_t>(t - ts) * len, b0);
    });
  }

  // Per block of query tokens: the union of their selections and each token's mask over it.
  const int qtok = kSparseQueryTokens;
  const int n_tblk = (n + qtok - 1) / qtok;
  if (qblocks_.size() < static_cast<size_t>(n_tblk)) qblocks_.resize(static_cast<size_t>(n_tblk));
  const int ext_group = cfg_.ext_group, ext_window = cfg_.ext_window;
  pool_.run(n_tblk, [&](int b, int) {
    QueryBlock& qb = qblocks_[static_cast<size_t>(b)];
    const int t0 = b * qtok;
    const int nt = std::min(qtok, n - t0);
    if (p0 + t0 + nt <= K) {
      // Every row's context fits in k: attention() gives these rows the dense kernel and never
      // reads the block's union, so none is built.
      qb.keys.clear();
      qb.mask.clear();
      qb.shift.clear();
      qb.words = 0;
      return;
    }
    if (nt == 1) {
      qb.keys = sel_[static_cast<size_t>(t0)];
      qb.words = 0;
    } else {
      build_union(qb, t0, nt, p0);
    }
    if (ext_group > 0) {
      // Distances past the extension window read as W + (d - W) / G: keys move forward by the
      // difference (measured from the block's last token; exact for decode).
      const int ref = p0 + t0 + nt - 1;
      qb.shift.resize(qb.keys.size());
      for (size_t j = 0; j < qb.keys.size(); ++j) {
        const int d = ref - qb.keys[j];
        qb.shift[j] = d <= ext_window ? 0 : (d - ext_window) - (d - ext_window) / ext_group;
      }
    }
  });
}

namespace {
// Sets bit j of mask for each selected position, j its index in the union (rank of its bitmap
// word plus the set bits below it in the word).
inline void mark_union(const int32_t* sel, size_t n, const uint64_t* bits, const int32_t* rank, uint32_t* mask) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t p = sel[i];
    const size_t w = static_cast<size_t>(p) >> 6;
    const int32_t j = rank[w] + std::popcount(bits[w] & ((1ull << (p & 63)) - 1));
    mask[j / 32] |= 1u << (j % 32);
  }
}
// The same with the POPCNT instruction (the baseline build calls libgcc's bit count, 1% of a
// 128K prefill), for the AVX2 and AVX-512 paths.
__attribute__((target("popcnt"))) void mark_union_popcnt(const int32_t* sel, size_t n, const uint64_t* bits, const int32_t* rank,
                                                         uint32_t* mask) {
  mark_union(sel, n, bits, rank, mask);
}
}  // namespace

void CpuBackend::build_union(QueryBlock& qb, int t0, int nt, int p0) {
  const int max_pos = p0 + t0 + nt - 1;
  thread_local std::vector<uint64_t> bits;
  thread_local std::vector<int32_t> rank;  // [word]: union entries before the word's first position
  const size_t n_words = static_cast<size_t>(max_pos / 64 + 1);
  bits.assign(n_words, 0);
  for (int t = 0; t < nt; ++t)
    for (int32_t p : sel_[static_cast<size_t>(t0 + t)]) bits[static_cast<size_t>(p) >> 6] |= 1ull << (p & 63);
  qb.keys.clear();
  rank.resize(n_words);
  for (size_t w = 0; w < n_words; ++w) {
    rank[w] = static_cast<int32_t>(qb.keys.size());
    for (uint64_t x = bits[w]; x != 0; x &= x - 1)
      qb.keys.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(std::countr_zero(x))));
  }
  qb.words = static_cast<int>((qb.keys.size() + 31) / 32);
  qb.mask.assign(static_cast<size_t>(nt) * qb.words, 0u);
  // A position's union index from the bitmap's ranks (one small array, L1-resident) rather
  // than a per-position table, which spans the whole context and misses cache at long ones.
  // Every AVX2 or AVX-512 CPU has POPCNT; the kernels' ISA choice (DOCDSA_ISA caps it) says which.
  const bool popcnt = kernels::active_isa() != kernels::Isa::kScalar;
  for (int t = 0; t < nt; ++t) {
    const std::vector<int32_t>& sel = sel_[static_cast<size_t>(t0 + t)];
    uint32_t* m0 = qb.mask.data() + static_cast<size_t>(t) * qb.words;
    if (popcnt) mark_union_popcnt(sel.data(), sel.size(), bits.data(), rank.data(), m0);
    else mark_union(sel.data(), sel.size(), bits.data(), rank.data(), m0);
  }
}

void CpuBackend::observe(int il, int pos, int k) {
  const Indexer& ix = *cfg_.indexer;
  kernels::IndexQuery iq;
  iq.n_heads = cfg_.idx_heads;
  iq.head_dim = ix.rank();
  iq.q = iq8_.data();
  iq.qscale = iqs_.data();
  iq.offset = iq_off_.data();
  iq.combine = cfg_.dsa.combine;
  kernels::index_scores(iq, idx_cache_[static_cast<size_t>(il)].data(), idx_scale_[static_cast<size_t>(il)].data(), ix.key_dim(),
                        0, pos + 1, score_buf_.data());
  thread_local std::vector<uint64_t> scratch;
  std::vector<int32_t>& sel = sel_[0];
  sel.clear();
  kernels::select_topk(score_buf_.data(), pos + 1, k, 0, sel, scratch);
}

}  // namespace docdsa
