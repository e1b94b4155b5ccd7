// Sparse prefill on the CPU backend against the per-row path it replaces: a batch of query
// rows (blocks of 16 sharing one gathered union, a partial last block) must select exactly the
// top-k sets that token-by-token decode selects for the same rows, and attend to give the
// same outputs, both within float tolerance of a double-precision reference over each row's
// own selection. Run on every SIMD build the CPU has, with head_dim 64 in groups of three.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "backend_test_util.h"
#include "docdsa/engine/backend.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/quant.h"
#include "gguf_writer.h"
#include "random_fill.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

std::vector<double> reference(const ModelConfig& c, const float* q, const std::vector<float>& K, const std::vector<float>& V,
                              std::span<const int32_t> sel) {
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, kv_dim = c.n_head_kv * hd;
  std::vector<double> out(static_cast<size_t>(c.n_head) * hd, 0.0);
  for (int h = 0; h < c.n_head; ++h) {
    const int g = h / group;
    std::vector<double> s(sel.size());
    double mx = -INFINITY;
    for (size_t i = 0; i < sel.size(); ++i) {
      double dot = 0;
      for (int d = 0; d < hd; ++d)
        dot += static_cast<double>(q[h * hd + d]) * kernels::round_fp16(K[static_cast<size_t>(sel[i]) * kv_dim + g * hd + d]);
      s[i] = dot / std::sqrt(static_cast<double>(hd));
      mx = std::max(mx, s[i]);
    }
    double sum = 0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    for (size_t i = 0; i < sel.size(); ++i)
      for (int d = 0; d < hd; ++d)
        out[static_cast<size_t>(h) * hd + d] +=
            s[i] / sum * kernels::round_fp16(V[static_cast<size_t>(sel[i]) * kv_dim + g * hd + d]);
  }
  return out;
}

TEST(DsaPrefill, BatchedSelectsAndAttendsLikeEachRowAlone) {
  testing::TinyModelOptions o;
  o.n_embd = 384;  // head_dim 64
  o.n_head = 6;
  o.n_head_kv = 2;
  const std::string path =
      (docdsa::test::scratch_dir() / ("docdsa-dsa-prefill-" + std::to_string(::getpid()))).string();
  testing::write_tiny_model(path, o);
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  std::vector<TokenId> calib;
  for (int i = 0; i < 300; ++i) calib.push_back((i * 37 + 11) % 200);
  auto ix = Indexer::calibrate(**m, calib, 16, 2);
  ASSERT_TRUE(ix.ok()) << ix.error().message;
  const ModelConfig& c = (*m)->config();
  ASSERT_EQ(c.head_dim, 64);
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const int n_ctx = 1200, filled = 1139, p_last = 1000;  // last batch: 139 rows, a partial block of 11
  const auto K = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 71);
  const auto V = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 72);
  std::vector<float> Q = test::random_normal(static_cast<size_t>(n_ctx) * q_dim, 73);
  for (float& x : Q) x = kernels::round_fp16(x);
  const auto rows = [](const std::vector<float>& v, int p0, int n, int w) {
    return std::vector<float>(v.begin() + static_cast<int64_t>(p0) * w, v.begin() + static_cast<int64_t>(p0 + n) * w);
  };
  const auto config = [&](int n_batch) {
    BackendConfig bc = test::backend_config(c, n_ctx, n_batch);
    bc.indexer = ix->get();
    bc.dsa.top_k = 256;
    bc.dsa.sinks = 8;
    bc.dsa.window = 40;
    bc.idx_heads = c.n_head;
    return bc;
  };
  std::vector<kernels::Isa> isas;
  if (kernels::detected_isa() >= kernels::Isa::kAvx2) isas.push_back(kernels::Isa::kAvx2);
  if (kernels::detected_isa() >= kernels::Isa::kAvx512) isas.push_back(kernels::Isa::kAvx512);
  const kernels::Isa prev = kernels::active_isa();
  for (kernels::Isa isa : isas) {
    kernels::set_active_isa(isa);
    auto a = make_cpu_backend(c, config(200));
    auto b = make_cpu_backend(c, config(1));
    ASSERT_TRUE(a.ok() && b.ok());
    Backend& A = **a;
    Backend& B = **b;
    // Batched: fill in batches of 200, then select and attend the last batch at once.
    std::vector<std::vector<int32_t>> sel_a;
    std::vector<float> out_a;
    for (int p0 = 0; p0 < filled; p0 += 200) {
      const int n = std::min(200, filled - p0);
      const Tensor k = test::up(A, rows(K, p0, n, kv_dim), n, kv_dim), q = test::up(A, rows(Q, p0, n, q_dim), n, q_dim);
      A.store_kv(0, k, test::up(A, rows(V, p0, n, kv_dim), n, kv_dim), n, p0);
      A.store_index(0, q, k, n, p0);
      if (p0 != p_last) continue;
      A.select(0, n, p0);
      for (int t = 0; t < n; ++t) sel_a.emplace_back(A.selection(t).begin(), A.selection(t).end());
      const Tensor out = A.alloc(n, q_dim);
      A.attention(0, q, out, n, p0, true);
      out_a = test::down(A, out, n);
    }
    ASSERT_EQ(static_cast<int>(sel_a.size()), filled - p_last);
    // Per row: the same positions one token at a time (decode's path), compared row by row.
    int checked = 0;
    for (int pos = 0; pos < filled; ++pos) {
      const Tensor k = test::up(B, rows(K, pos, 1, kv_dim), 1, kv_dim), q = test::up(B, rows(Q, pos, 1, q_dim), 1, q_dim);
      B.store_kv(0, k, test::up(B, rows(V, pos, 1, kv_dim), 1, kv_dim), 1, pos);
      B.store_index(0, q, k, 1, pos);
      if (pos < p_last) continue;
      const int t = pos - p_last;
      B.select(0, 1, pos);
      const std::vector<int32_t> sel_b(B.selection(0).begin(), B.selection(0).end());
      ASSERT_EQ(sel_a[static_cast<size_t>(t)], sel_b) << "position " << pos << " isa " << kernels::isa_name(isa);
      ASSERT_EQ(static_cast<int>(sel_b.size()), 256);
      const Tensor out = B.alloc(1, q_dim);
      B.attention(0, q, out, 1, pos, true);
      const std::vector<float> ob = test::down(B, out, 1);
      const std::vector<double> ref = reference(c, &Q[static_cast<size_t>(pos) * q_dim], K, V, sel_b);
      for (int i = 0; i < q_dim; ++i) {
        const float oa = out_a[static_cast<size_t>(t) * q_dim + i];
        ASSERT_NEAR(oa, ob[static_cast<size_t>(i)], 1e-5) << "position " << pos << " element " << i;
        ASSERT_NEAR(oa, ref[static_cast<size_t>(i)], 2e-4) << "position " << pos << " element " << i;
      }
      ++checked;
    }
    EXPECT_EQ(checked, filled - p_last);
  }
  kernels::set_active_isa(prev);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace docdsa
