// DSA on the device against the CPU definition: lightning-indexer scores bit for bit
// (kernels/cpu/indexer.cpp, scalar) and the per-row selection with sinks and window exactly as
// engine/src/attention.cpp chooses it (kernels::select_topk), including heavy ties.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "docdsa/kernels/indexer.h"

namespace docdsa::kernels::cuda {
namespace {
using testing::CudaTest;
using testing::download;
using testing::upload;

struct IndexFixture {
  int n_kv, rank, dim, n_heads;
  int64_t n_ctx;
  std::vector<uint8_t> cache;
  std::vector<float> kscale;
  std::vector<int8_t> q;
  std::vector<float> qscale;
  std::vector<int32_t> offset;
  IndexFixture(int n_kv_, int rank_, int n_heads_, int64_t n_ctx_, int n_rows, uint32_t seed)
      : n_kv(n_kv_), rank(rank_), dim(n_kv_ * rank_), n_heads(n_heads_), n_ctx(n_ctx_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int64_t blocks = (n_ctx + kIndexBlock - 1) / kIndexBlock;
    cache.assign(static_cast<size_t>(blocks * kIndexBlock * dim), 128);
    kscale.resize(static_cast<size_t>(blocks * kIndexBlock));
    std::vector<float> key(static_cast<size_t>(dim));
    for (int64_t s = 0; s < n_ctx; ++s) {
      for (auto& x : key) x = nd(rng);
      kscale[s] = index_store_key(key.data(), dim, cache.data(), s);
    }
    q.resize(static_cast<size_t>(n_rows) * n_heads * rank);
    qscale.resize(static_cast<size_t>(n_rows) * n_heads);
    std::vector<float> qf(static_cast<size_t>(n_heads) * rank), w(static_cast<size_t>(n_heads));
    for (auto& x : w) x = std::abs(nd(rng));
    for (int r = 0; r < n_rows; ++r) {
      for (auto& x : qf) x = nd(rng);
      index_quantize_query(qf.data(), n_heads, rank, w.data(), q.data() + static_cast<size_t>(r) * n_heads * rank,
                           qscale.data() + static_cast<size_t>(r) * n_heads);
    }
    const int group = n_heads / n_kv;
    for (int h = 0; h < n_heads; ++h) offset.push_back((h / std::max(1, group)) % n_kv * rank);
  }
};

TEST_F(CudaTest, IndexScoresMatchCpuBitForBit) {
  struct Case {
    int n_kv, rank, n_heads, n_rows;
    int64_t n_ctx, s0;
  };
  for (const Case& c :
       {Case{1, 16, 1, 1, 37, 0}, Case{3, 16, 9, 5, 1001, 16}, Case{3, 16, 3, 17, 777, 48}, Case{2, 32, 12, 33, 4099, 64}}) {
    for (IndexCombine comb : {IndexCombine::kMax, IndexCombine::kReluSum}) {
      SCOPED_TRACE("heads " + std::to_string(c.n_heads) + " rows " + std::to_string(c.n_rows) + " ctx " +
                   std::to_string(c.n_ctx));
      IndexFixture f(c.n_kv, c.rank, c.n_heads, c.n_ctx, c.n_rows, 3);
      std::vector<int32_t> row_end(static_cast<size_t>(c.n_rows));
      for (int r = 0; r < c.n_rows; ++r) row_end[r] = static_cast<int32_t>(c.n_ctx - (c.n_rows - 1 - r) * 2);
      auto dcache = upload(f.cache);
      auto dks = upload(f.kscale);
      auto dq = upload(f.q);
      auto dqs = upload(f.qscale);
      auto doff = upload(f.offset);
      auto dend = upload(row_end);
      const int64_t ld = c.n_ctx - c.s0 + 3;
      DeviceArray<float> dout(static_cast<size_t>(c.n_rows * ld));
      IndexScoresArgs a;
      a.n_rows = c.n_rows;
      a.n_heads = c.n_heads;
      a.head_dim = c.rank;
      a.q = dq.get();
      a.qscale = dqs.get();
      a.offset = doff.get();
      a.combine = comb;
      a.cache = dcache.get();
      a.kscale = dks.get();
      a.dim = f.dim;
      a.s0 = c.s0;
      a.s1 = c.n_ctx;
      a.row_end = dend.get();
      a.out = dout.get();
      a.ld = ld;
      ASSERT_CUDA_OK(index_scores(a, nullptr));
      const auto out = download(dout);
      std::vector<float> ref(static_cast<size_t>(c.n_ctx));
      for (int r = 0; r < c.n_rows; ++r) {
        IndexQuery iq;
        iq.n_heads = c.n_heads;
        iq.head_dim = c.rank;
        iq.q = f.q.data() + static_cast<size_t>(r) * c.n_heads * c.rank;
        iq.qscale = f.qscale.data() + static_cast<size_t>(r) * c.n_heads;
        iq.offset = f.offset.data();
        iq.combine = comb;
        kernels::index_scores(iq, f.cache.data(), f.kscale.data(), f.dim, c.s0, c.n_ctx, ref.data(), Isa::kScalar);
        for (int64_t s = c.s0; s < c.n_ctx; ++s) {
          const float got = out[r * ld + (s - c.s0)];
          if (s >= row_end[r])
            ASSERT_EQ(got, -INFINITY);
          else
            ASSERT_EQ(got, ref[s - c.s0]) << "row " << r << " position " << s;
        }
      }
    }
  }
}

// The CPU backend's store_index (engine/src/cpu/dsa_select.cpp), step by step.
TEST_F(CudaTest, IndexStoreMatchesCpuKeysAndQueries) {
  struct Case {
    int n_kv, n_head, hd, rank;
    bool per_head;
    int n_tok;
  };
  for (const Case& c : {Case{3, 9, 64, 16, true, 5}, Case{3, 9, 64, 16, false, 1}, Case{2, 12, 128, 16, true, 7},
                        Case{1, 5, 128, 32, false, 3}}) {
    SCOPED_TRACE("heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_kv) + (c.per_head ? " per head" : " per group"));
    std::mt19937 rng(static_cast<uint32_t>(c.n_head + c.rank));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int dim = c.n_kv * c.rank, group = c.n_head / c.n_kv, idx_heads = c.per_head ? c.n_head : c.n_kv;
    const int64_t q_stride = c.n_head * c.hd, k_stride = c.n_kv * c.hd + 8, n_ctx = 64;
    std::vector<float> proj(static_cast<size_t>(c.n_kv) * c.rank * c.hd), q(static_cast<size_t>(c.n_tok * q_stride)),
        k(static_cast<size_t>(c.n_tok * k_stride));
    for (auto* v : {&proj, &q, &k})
      for (auto& x : *v) x = nd(rng);
    std::vector<int32_t> pos(static_cast<size_t>(c.n_tok));
    for (int t = 0; t < c.n_tok; ++t) pos[t] = 3 + 7 * t;
    // CPU
    std::vector<uint8_t> cache(static_cast<size_t>(n_ctx * dim), 128);
    std::vector<float> kscale(static_cast<size_t>(n_ctx), 0.0f), qscale(static_cast<size_t>(c.n_tok * idx_heads));
    std::vector<int8_t> q8(static_cast<size_t>(c.n_tok * idx_heads * c.rank));
    for (int t = 0; t < c.n_tok; ++t) {
      std::vector<float> key(static_cast<size_t>(dim)), qi(static_cast<size_t>(idx_heads * c.rank)),
          qsum(static_cast<size_t>(c.hd));
      for (int g = 0; g < c.n_kv; ++g)
        for (int i = 0; i < c.rank; ++i) {
          float acc = 0.0f;
          for (int d = 0; d < c.hd; ++d) acc += proj[(g * c.rank + i) * c.hd + d] * k[t * k_stride + g * c.hd + d];
          key[g * c.rank + i] = acc;
        }
      kscale[pos[t]] = index_store_key(key.data(), dim, cache.data(), pos[t]);
      for (int h = 0; h < idx_heads; ++h) {
        const int g = c.per_head ? h / group : h;
        const float* qh = q.data() + t * q_stride + h * c.hd;
        if (!c.per_head) {
          std::fill(qsum.begin(), qsum.end(), 0.0f);
          for (int j = 0; j < group; ++j)
            for (int d = 0; d < c.hd; ++d) qsum[d] += q[t * q_stride + (g * group + j) * c.hd + d];
          qh = qsum.data();
        }
        for (int i = 0; i < c.rank; ++i) {
          float acc = 0.0f;
          for (int d = 0; d < c.hd; ++d) acc += proj[(g * c.rank + i) * c.hd + d] * qh[d];
          qi[h * c.rank + i] = acc;
        }
      }
      index_quantize_query(qi.data(), idx_heads, c.rank, nullptr, q8.data() + t * idx_heads * c.rank,
                           qscale.data() + t * idx_heads);
    }
    // GPU
    auto dproj = upload(proj);
    auto dq = upload(q);
    auto dk = upload(k);
    auto dpos = upload(pos);
    auto dcache = upload(std::vector<uint8_t>(cache.size(), 128));
    auto dks = upload(std::vector<float>(kscale.size(), 0.0f));
    DeviceArray<int8_t> dq8(q8.size());
    DeviceArray<float> dqs(qscale.size());
    IndexStoreArgs a;
    a.n_tok = c.n_tok;
    a.n_kv = c.n_kv;
    a.n_head = c.n_head;
    a.head_dim = c.hd;
    a.rank = c.rank;
    a.idx_heads = idx_heads;
    a.per_head = c.per_head;
    a.proj = dproj.get();
    a.k = dk.get();
    a.k_stride = k_stride;
    a.q = dq.get();
    a.q_stride = q_stride;
    a.positions = dpos.get();
    a.cache = dcache.get();
    a.kscale = dks.get();
    a.q8 = dq8.get();
    a.qscale = dqs.get();
    ASSERT_CUDA_OK(index_store(a, nullptr));
    EXPECT_EQ(download(dcache), cache);
    EXPECT_EQ(download(dks), kscale);
    EXPECT_EQ(download(dq8), q8);
    EXPECT_EQ(download(dqs), qscale);
  }
}

// The engine's rule (attention.cpp `choose`) on the CPU.
std::vector<int32_t> cpu_select(const float* scores, int64_t base, int pos, int K, int S, int W) {
  std::vector<int32_t> sel;
  if (pos + 1 <= K) {
    sel.resize(static_cast<size_t>(pos + 1));
    std::iota(sel.begin(), sel.end(), 0);
    return sel;
  }
  const int mid1 = pos + 1 - W;
  for (int i = 0; i < S; ++i) sel.push_back(i);
  std::vector<uint64_t> scratch;
  select_topk(scores + (S - base), mid1 - S, K - S - W, S, sel, scratch);
  for (int i = mid1; i <= pos; ++i) sel.push_back(i);
  return sel;
}

TEST_F(CudaTest, DsaSelectMatchesEngineRule) {
  struct Case {
    int K, S, W, n_ctx;
    int levels;
  };  // levels > 0: scores drawn from few values (ties)
  for (const Case& c : {Case{64, 4, 8, 300, 0}, Case{64, 4, 8, 300, 3}, Case{2048, 64, 512, 9001, 0},
                        Case{2048, 64, 512, 9001, 7}, Case{100, 0, 1, 5000, 1}, Case{512, 16, 100, 70001, 0}}) {
    SCOPED_TRACE("k " + std::to_string(c.K) + " ctx " + std::to_string(c.n_ctx) + " levels " + std::to_string(c.levels));
    std::mt19937 rng(static_cast<uint32_t>(c.K + c.levels));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_int_distribution<int> lv(0, std::max(0, c.levels - 1));
    const std::vector<int32_t> pos = {0, c.K - 1, c.K, c.K + 1, c.n_ctx / 2, c.n_ctx - 2, c.n_ctx - 1};
    const int n_rows = static_cast<int>(pos.size());
    const int64_t base = c.S / kIndexBlock * kIndexBlock, ld = c.n_ctx - base + 1;
    std::vector<float> scores(static_cast<size_t>(n_rows * ld));
    for (auto& x : scores) x = c.levels > 0 ? static_cast<float>(lv(rng)) - 1.0f : nd(rng);
    scores[3] = -0.0f;  // signed zeros order alike on both sides
    auto ds = upload(scores);
    auto dp = upload(pos);
    DeviceArray<int32_t> sel(static_cast<size_t>(n_rows * c.K)), nsel(static_cast<size_t>(n_rows));
    ASSERT_CUDA_OK(dsa_select(ds.get(), ld, base, dp.get(), n_rows, c.K, c.S, c.W, sel.get(), nsel.get(), nullptr));
    const auto hs = download(sel), hn = download(nsel);
    for (int r = 0; r < n_rows; ++r) {
      const auto ref = cpu_select(scores.data() + r * ld, base, pos[r], c.K, c.S, c.W);
      ASSERT_EQ(hn[r], static_cast<int32_t>(ref.size())) << "row " << r;
      const std::vector<int32_t> got(hs.begin() + r * c.K, hs.begin() + r * c.K + hn[r]);
      ASSERT_EQ(got, ref) << "row " << r << " position " << pos[r];
    }
  }
}

// observe(): the k best of [0, pos] with neither sinks nor window, as select_topk.
TEST_F(CudaTest, PlainTopKMatchesSelectTopk) {
  const int n = 3001, k = 100;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> lv(0, 20);
  std::vector<float> scores(static_cast<size_t>(n));
  for (auto& x : scores) x = static_cast<float>(lv(rng));  // many ties
  const std::vector<int32_t> pos = {n - 1};
  auto ds = upload(scores);
  auto dp = upload(pos);
  DeviceArray<int32_t> sel(static_cast<size_t>(k)), nsel(1);
  ASSERT_CUDA_OK(dsa_select(ds.get(), n, 0, dp.get(), 1, k, 0, 0, sel.get(), nsel.get(), nullptr));
  std::vector<int32_t> ref;
  std::vector<uint64_t> scratch;
  select_topk(scores.data(), n, k, 0, ref, scratch);
  EXPECT_EQ(download(nsel)[0], k);
  EXPECT_EQ(download(sel), ref);
}

TEST_F(CudaTest, DsaSelectRejectsBadParameters) {
  EXPECT_NE(dsa_select(nullptr, 0, 0, nullptr, 1, 10, 5, 5, nullptr, nullptr, nullptr), 0);   // sinks + window >= k
  EXPECT_NE(dsa_select(nullptr, 0, 0, nullptr, 1, 10, 2, -1, nullptr, nullptr, nullptr), 0);  // negative window
}

}  // namespace
}  // namespace docdsa::kernels::cuda
