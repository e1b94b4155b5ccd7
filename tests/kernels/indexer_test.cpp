// Lightning-indexer kernels: the VNNI scores equal the scalar ones exactly (integer dots), the
// int8 scores rank keys like the float dot products they approximate, and top-k selection
// equals a full sort with the documented tie-break, on every input shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "docdsa/kernels/indexer.h"

namespace docdsa::kernels {
namespace {

std::vector<int32_t> brute_topk(const std::vector<float>& s, int64_t k, int32_t base) {
  std::vector<int32_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return s[a] != s[b] ? s[a] > s[b] : a > b; });
  idx.resize(static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(s.size()))));
  std::sort(idx.begin(), idx.end());
  for (auto& i : idx) i += base;
  return idx;
}

TEST(Indexer, SelectTopkEqualsSortWithTieBreak) {
  std::mt19937 rng(7);
  std::vector<uint64_t> scratch;
  for (int trial = 0; trial < 76; ++trial) {
    // Short rows take the histogram path; long ones (>= 2048, k <= 3n/4) the sampled threshold
    // (falling back to the histogram when the guess lets fewer than k through).
    const int n = trial < 60 ? 1 + static_cast<int>(rng() % 5000) : 2048 + static_cast<int>(rng() % 40000);
    std::vector<float> s(static_cast<size_t>(n));
    const int kind = trial % 4;
    for (auto& x : s) {
      if (kind == 0) x = std::normal_distribution<float>(0, 1)(rng);            // signed
      else if (kind == 1) x = std::max(0.0f, std::normal_distribution<float>(0, 1)(rng));  // ReLU: many zeros
      else if (kind == 2) x = static_cast<float>(rng() % 4);                    // heavy ties
      else x = 1.0f + static_cast<float>(rng() % 1000) * 1e-7f;                 // one bucket
    }
    for (int64_t k : {int64_t{1}, int64_t{7}, int64_t{n / 8}, int64_t{n / 3}, int64_t{n * 3 / 4}, int64_t{n - 1}, int64_t{n},
                      int64_t{n + 5}}) {
      if (k < 1) continue;
      const std::vector<int32_t> want = brute_topk(s, k, 100);
      // The sampled path filters with AVX-512 compress where present, else scalar: both exact.
      for (Isa isa : {Isa::kScalar, detected_isa()}) {
        const Isa prev = active_isa();
        set_active_isa(isa);
        std::vector<int32_t> got;
        select_topk(s.data(), n, k, 100, got, scratch);
        set_active_isa(prev);
        ASSERT_EQ(got, want) << "trial " << trial << " n " << n << " k " << k << " isa " << isa_name(isa);
      }
    }
  }
}

TEST(Indexer, VnniScoresEqualScalar) {
  if (detected_isa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0, 1);
  const int dim = 48, r = 16, heads = 9, n = 777;
  std::vector<uint8_t> cache(static_cast<size_t>((n + 15) / 16 * 16) * dim, 128);
  std::vector<float> kscale(static_cast<size_t>((n + 15) / 16 * 16), 0.0f);
  for (int p = 0; p < n; ++p) {
    std::vector<float> key(dim);
    for (auto& x : key) x = nd(rng);
    kscale[static_cast<size_t>(p)] = index_store_key(key.data(), dim, cache.data(), p);
  }
  std::vector<float> qf(static_cast<size_t>(heads) * r);
  for (auto& x : qf) x = nd(rng);
  std::vector<int8_t> q8(qf.size());
  std::vector<float> qs(heads);
  index_quantize_query(qf.data(), heads, r, nullptr, q8.data(), qs.data());
  std::vector<int32_t> off(heads);
  for (int h = 0; h < heads; ++h) off[static_cast<size_t>(h)] = (h / 3) * r;
  for (IndexCombine comb : {IndexCombine::kReluSum, IndexCombine::kMax}) {
    IndexQuery iq{heads, r, q8.data(), qs.data(), off.data(), comb};
    std::vector<float> a(n), b(n);
    index_scores(iq, cache.data(), kscale.data(), dim, 16, n, a.data() + 16, Isa::kScalar);
    index_scores(iq, cache.data(), kscale.data(), dim, 16, n, b.data() + 16, Isa::kAvx512);
    EXPECT_EQ(a, b);
  }
}

// A block of query rows scored as one GEMM equals each row scored alone, bit for bit, at
// row counts around the kernel's 16-row groups and ranges that end inside a cache block.
TEST(Indexer, BlockScoresEqualEachRowAlone) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0, 1);
  const int dim = 48, r = 16, heads = 9, n = 1013;
  std::vector<uint8_t> cache(static_cast<size_t>((n + 15) / 16 * 16) * dim, 128);
  std::vector<float> kscale(static_cast<size_t>((n + 15) / 16 * 16), 0.0f);
  for (int p = 0; p < n; ++p) {
    std::vector<float> key(dim);
    for (auto& x : key) x = nd(rng);
    kscale[static_cast<size_t>(p)] = index_store_key(key.data(), dim, cache.data(), p);
  }
  std::vector<int32_t> off(heads);
  for (int h = 0; h < heads; ++h) off[static_cast<size_t>(h)] = (h / 3) * r;
  for (int rows : {1, 5, 16, 17, 35}) {
    std::vector<int8_t> q8(static_cast<size_t>(rows) * heads * r);
    std::vector<float> qs(static_cast<size_t>(rows) * heads);
    for (int i = 0; i < rows; ++i) {
      std::vector<float> qf(static_cast<size_t>(heads) * r);
      for (auto& x : qf) x = nd(rng);
      index_quantize_query(qf.data(), heads, r, nullptr, q8.data() + static_cast<size_t>(i) * heads * r,
                           qs.data() + static_cast<size_t>(i) * heads);
    }
    for (IndexCombine comb : {IndexCombine::kReluSum, IndexCombine::kMax}) {
      std::vector<IndexQuery> iq;
      for (int i = 0; i < rows; ++i)
        iq.push_back({heads, r, q8.data() + static_cast<size_t>(i) * heads * r, qs.data() + static_cast<size_t>(i) * heads,
                      off.data(), comb});
      for (auto [s0, s1] : {std::pair<int64_t, int64_t>{0, n}, {32, 33}, {16, 500}}) {
        const int64_t len = s1 - s0;
        for (Isa isa : {Isa::kScalar, detected_isa()}) {
          std::vector<float> block(static_cast<size_t>(rows) * len, -1.0f);
          index_scores_block(iq.data(), rows, cache.data(), kscale.data(), dim, s0, s1, block.data(), len, isa);
          for (int i = 0; i < rows; ++i) {
            std::vector<float> one(static_cast<size_t>(len));
            index_scores(iq[static_cast<size_t>(i)], cache.data(), kscale.data(), dim, s0, s1, one.data(), Isa::kScalar);
            ASSERT_EQ(std::vector<float>(block.begin() + i * len, block.begin() + (i + 1) * len), one)
                << "rows " << rows << " row " << i << " range " << s0 << ".." << s1 << " isa " << isa_name(isa);
          }
        }
      }
    }
  }
}

// The SIMD scorers take eight 16-key blocks at a time with one-block tails: key widths of
// one, three and five words per head, one to a dozen heads, ranges from inside one block to
// past several eight-block groups, starting on any block and ending inside one, rows with one
// scale for all heads and rows with weighted heads, each row equal to the scalar reference bit
// for bit (one row alone and in blocks of rows).
TEST(Indexer, SimdScoresEqualScalarAtAwkwardShapes) {
  std::mt19937 rng(29);
  std::normal_distribution<float> nd(0, 1);
  struct Shape {
    int r, heads, groups;
  };
  for (Shape sh : {Shape{4, 1, 1}, Shape{12, 4, 2}, Shape{20, 12, 3}, Shape{16, 9, 3}}) {
    const int dim = sh.groups * sh.r, n = 16 * 37 + 5;
    std::vector<uint8_t> cache(static_cast<size_t>((n + 15) / 16 * 16) * dim, 128);
    std::vector<float> kscale(static_cast<size_t>((n + 15) / 16 * 16), 0.0f);
    for (int p = 0; p < n; ++p) {
      std::vector<float> key(static_cast<size_t>(dim));
      for (auto& x : key) x = nd(rng);
      kscale[static_cast<size_t>(p)] = index_store_key(key.data(), dim, cache.data(), p);
    }
    std::vector<int32_t> off(static_cast<size_t>(sh.heads));
    for (int h = 0; h < sh.heads; ++h) off[static_cast<size_t>(h)] = (h * sh.groups / sh.heads) * sh.r;
    const int rows = 17;
    std::vector<int8_t> q8(static_cast<size_t>(rows) * sh.heads * sh.r);
    std::vector<float> qs(static_cast<size_t>(rows) * sh.heads);
    // Rows 1, 7 and 13 carry head weights (a scale per head: the float combine); the others
    // share one scale (max takes the integer path, four rows at a time where four in a row do),
    // so a block mixes lone rows of both kinds with groups of four.
    std::vector<float> weight(static_cast<size_t>(sh.heads));
    for (int h = 0; h < sh.heads; ++h) weight[static_cast<size_t>(h)] = 0.5f + 0.25f * static_cast<float>(h);
    for (int i = 0; i < rows; ++i) {
      std::vector<float> qf(static_cast<size_t>(sh.heads) * sh.r);
      for (auto& x : qf) x = nd(rng);
      index_quantize_query(qf.data(), sh.heads, sh.r, i % 6 == 1 ? weight.data() : nullptr,
                           q8.data() + static_cast<size_t>(i) * sh.heads * sh.r, qs.data() + static_cast<size_t>(i) * sh.heads);
    }
    for (IndexCombine comb : {IndexCombine::kReluSum, IndexCombine::kMax}) {
      std::vector<IndexQuery> iq;
      for (int i = 0; i < rows; ++i)
        iq.push_back({sh.heads, sh.r, q8.data() + static_cast<size_t>(i) * sh.heads * sh.r,
                      qs.data() + static_cast<size_t>(i) * sh.heads, off.data(), comb});
      for (auto [s0, s1] : {std::pair<int64_t, int64_t>{0, n}, {16, 16 * 9 + 1}, {48, 48 + 16 * 8}, {32, 47}, {0, 16 * 17 - 3}}) {
        const int64_t len = s1 - s0;
        std::vector<float> block(static_cast<size_t>(rows) * len, -1.0f);
        index_scores_block(iq.data(), rows, cache.data(), kscale.data(), dim, s0, s1, block.data(), len, detected_isa());
        for (int i = 0; i < rows; ++i) {
          std::vector<float> want(static_cast<size_t>(len)), one(static_cast<size_t>(len));
          index_scores(iq[static_cast<size_t>(i)], cache.data(), kscale.data(), dim, s0, s1, want.data(), Isa::kScalar);
          index_scores(iq[static_cast<size_t>(i)], cache.data(), kscale.data(), dim, s0, s1, one.data(), detected_isa());
          const std::string what = "r " + std::to_string(sh.r) + " heads " + std::to_string(sh.heads) + " row " +
                                   std::to_string(i) + " range " + std::to_string(s0) + ".." + std::to_string(s1);
          ASSERT_EQ(one, want) << what;
          ASSERT_EQ(std::vector<float>(block.begin() + i * len, block.begin() + (i + 1) * len), want) << what;
        }
      }
    }
  }
}

TEST(Indexer, Int8ScoresTrackFloatDots) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  const int dim = 16, n = 512;
  std::vector<uint8_t> cache(static_cast<size_t>(n) * dim, 128);
  std::vector<float> kscale(n), keys(static_cast<size_t>(n) * dim), q(dim);
  for (auto& x : keys) x = nd(rng);
  for (auto& x : q) x = nd(rng);
  for (int p = 0; p < n; ++p) kscale[static_cast<size_t>(p)] = index_store_key(keys.data() + p * dim, dim, cache.data(), p);
  std::vector<int8_t> q8(dim);
  float qs = 0;
  index_quantize_query(q.data(), 1, dim, nullptr, q8.data(), &qs);
  const int32_t off = 0;
  IndexQuery iq{1, dim, q8.data(), &qs, &off, IndexCombine::kMax};
  std::vector<float> got(n);
  index_scores(iq, cache.data(), kscale.data(), dim, 0, n, got.data());
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    float dot = 0;
    for (int i = 0; i < dim; ++i) dot += q[static_cast<size_t>(i)] * keys[static_cast<size_t>(p) * dim + i];
    worst = std::max(worst, static_cast<double>(std::fabs(dot - got[static_cast<size_t>(p)])));
  }
  EXPECT_LT(worst, 0.15);  // int8 on both sides of a 16-dim dot of unit normals (|dot| ~ 4)
}

}  // namespace
}  // namespace docdsa::kernels
