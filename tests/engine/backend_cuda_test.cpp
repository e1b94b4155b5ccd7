// The CUDA backend against the CPU backend, operation by operation, on the same inputs (label
// gpu; SKIPPED without a GPU or driver): row operations, every weight type's products at decode
// (GEMV) and prefill (cuBLAS) batch sizes, RoPE, the KV cache with dense attention, and DSA —
// the same selections as the CPU from the same indexer queries and keys (bit-exact int8
// scores), then sparse attention over them. The CPU quantises activations for its products
// and rounds queries to f16; the tolerances allow for that and nothing more.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "docdsa/engine/backend.h"
#include "docdsa/engine/backend_cuda.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/quant.h"
#include "gguf_writer.h"
#include "backend_test_util.h"
#include "random_fill.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

using kernels::DType;

ModelConfig shape() { return test::model_shape(192, 320, 4096); }

using test::down;
using test::make_weight;
using test::TestWeight;
using test::up;

// Worst |a - b| relative to the largest |b|.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0, scale = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return worst / scale;
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << why;
  }
  // The same configuration on both backends.
  void make(const ModelConfig& c, const BackendConfig& bc) {
    auto g = make_cuda_backend(c, bc);
    ASSERT_TRUE(g.ok()) << g.error().message;
    auto h = make_cpu_backend(c, bc);
    ASSERT_TRUE(h.ok()) << h.error().message;
    gpu = std::move(*g);
    cpu = std::move(*h);
  }
  std::unique_ptr<Backend> gpu, cpu;
};

TEST_F(CudaBackendTest, RowOperationsMatchCpu) {
  const ModelConfig c = shape();
  make(c, test::backend_config(c, 64, 70, false));
  ASSERT_TRUE(gpu);
  const TestWeight norm = make_weight(DType::F32, c.n_embd, 1, 3);
  for (int n : {1, 5, 70}) {
    SCOPED_TRACE("rows " + std::to_string(n));
    const auto xv = test::random_normal(static_cast<size_t>(n) * c.n_embd, 1 + n), yv = test::random_normal(static_cast<size_t>(n) * c.n_embd, 2 + n);
    std::vector<float> r[2];
    Backend* bs[2] = {gpu.get(), cpu.get()};
    for (int i = 0; i < 2; ++i) {
      Backend& b = *bs[i];
      Tensor x = up(b, xv, n, c.n_embd), y = up(b, yv, n, c.n_embd), out = b.alloc(n, c.n_embd);
      b.rms_norm(x, norm.w, c.rms_eps, out, n);
      b.add(out, y, n);
      b.add_bias(out, norm.w, n);
      b.swiglu(out, y, n);
      r[i] = down(b, out, n);
    }
    EXPECT_LT(rel_err(r[0], r[1]), 1e-5);
  }
}

TEST_F(CudaBackendTest, EmbedMatmulAndLogitsMatchCpuForEveryType) {
  const ModelConfig c = shape();
  make(c, test::backend_config(c, 64, 70, false));
  ASSERT_TRUE(gpu);
  for (DType type :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(kernels::info(type).name);
    const int64_t n_in = kernels::info(type).block_size == kernels::kQKK ? 256 : c.n_embd;
    const TestWeight table = make_weight(type, n_in, c.n_vocab, 7), w = make_weight(type, n_in, 53, 11);
    const std::vector<TokenId> ids = {36, 0, 5, 5, 17};
    std::vector<float> e[2];
    Backend* bs[2] = {gpu.get(), cpu.get()};
    for (int i = 0; i < 2; ++i) {
      Tensor x = bs[i]->alloc(5, n_in);
      bs[i]->embed(table.w, ids, x);
      e[i] = down(*bs[i], x, 5);
    }
    EXPECT_EQ(e[0], e[1]) << "embed";
    for (int n : {1, 5, 70}) {  // GEMV, GEMV with several rows, cuBLAS
      SCOPED_TRACE("rows " + std::to_string(n));
      const auto av = test::random_normal(static_cast<size_t>(n) * n_in, 20 + n);
      std::vector<float> y[2], lg[2];
      for (int i = 0; i < 2; ++i) {
        Tensor a = up(*bs[i], av, n, n_in), out = bs[i]->alloc(n, 53);
        const MatJob job{&w.w, a, out};
        bs[i]->matmul(std::span(&job, 1), n);
        y[i] = down(*bs[i], out, n);
        lg[i].resize(static_cast<size_t>(n) * c.n_vocab);
        bs[i]->logits(table.w, a, n, lg[i].data());
      }
      EXPECT_LT(rel_err(y[0], y[1]), 2e-2) << "matmul";
      EXPECT_LT(rel_err(lg[0], lg[1]), 2e-2) << "logits";
    }
  }
}

TEST_F(CudaBackendTest, RopeKvCacheAndDenseAttentionMatchCpu) {
  const ModelConfig c = shape();
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, n_ctx = 700;
  for (bool neox : {false, true}) {
    make(c, test::backend_config(c, n_ctx, 64, neox));
    ASSERT_TRUE(gpu);
    const auto K = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 61), V = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 62),
               Q = test::random_normal(static_cast<size_t>(n_ctx) * q_dim, 63);
    Backend* bs[2] = {gpu.get(), cpu.get()};
    std::vector<float> out[2], qr[2];
    for (int i = 0; i < 2; ++i) {
      Backend& b = *bs[i];
      for (int p0 = 0; p0 < 650; p0 += 64) {  // batches straddling cache blocks; the last is 10 rows
        const int n = std::min(64, 650 - p0);
        const auto rows = [&](const std::vector<float>& v, int w) {
          return std::vector<float>(v.begin() + static_cast<long>(p0) * w, v.begin() + static_cast<long>(p0 + n) * w);
        };
        Tensor q = up(b, rows(Q, q_dim), n, q_dim), k = up(b, rows(K, kv_dim), n, kv_dim);
        b.rope(q, k, n, p0);
        b.store_kv(1, k, up(b, rows(V, kv_dim), n, kv_dim), n, p0);
        Tensor o = b.alloc(n, q_dim);
        b.attention(1, q, o, n, p0, false);
        if (p0 + n == 650) {
          out[i] = down(b, o, n);
          qr[i] = down(b, q, n);
        }
      }
      // A decode step: one token at 650 (split over blocks on the GPU).
      Tensor q = up(b, std::vector<float>(Q.begin() + 650 * q_dim, Q.begin() + 651 * q_dim), 1, q_dim);
      Tensor k = up(b, std::vector<float>(K.begin() + 650 * kv_dim, K.begin() + 651 * kv_dim), 1, kv_dim);
      b.rope(q, k, 1, 650);
      b.store_kv(1, k, k, 1, 650);
      Tensor o = b.alloc(1, q_dim);
      b.attention(1, q, o, 1, 650, false);
      const auto d = down(b, o, 1);
      out[i].insert(out[i].end(), d.begin(), d.end());
    }
    EXPECT_LT(rel_err(qr[0], qr[1]), 2e-3) << "rope (the CPU rounds queries to f16)";
    EXPECT_LT(rel_err(out[0], out[1]), 5e-3) << "attention";
    std::vector<uint16_t> kg(static_cast<size_t>(gpu->k_head_stride())), kc(kg.size());
    gpu->cache_read(1, Backend::CachePart::kKeys, 1, 0, kg.data(), kg.size() * 2);
    cpu->cache_read(1, Backend::CachePart::kKeys, 1, 0, kc.data(), kc.size() * 2);
    int differ = 0;
    for (size_t j = 0; j < kg.size(); ++j)
      differ += std::fabs(kernels::fp16_to_fp32(kg[j]) - kernels::fp16_to_fp32(kc[j])) > 1e-2f;
    EXPECT_EQ(differ, 0) << "K cache in the CPU's blocked layout";
  }
}

TEST_F(CudaBackendTest, DsaSelectionsEqualCpuAndSparseAttentionMatches) {
  testing::TinyModelOptions o;
  o.n_head = 6;
  o.n_head_kv = 2;
  o.n_embd = 384;  // head_dim 64
  const std::string path =
      (docdsa::test::scratch_dir() / ("docdsa-cuda-backend-test-" + std::to_string(::getpid()))).string();
  testing::write_tiny_model(path, o);
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  std::vector<TokenId> calib;
  for (int i = 0; i < 300; ++i) calib.push_back((i * 37 + 11) % 200);
  auto ix = Indexer::calibrate(**m, calib, 16, 2);
  ASSERT_TRUE(ix.ok()) << ix.error().message;
  const ModelConfig& c = (*m)->config();
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, n_ctx = 1200, filled = 1111;
  for (IndexerHeads heads : {IndexerHeads::kQuery, IndexerHeads::kGroup}) {
    BackendConfig bc = test::backend_config(c, n_ctx, 64, c.rope_neox);
    bc.indexer = ix->get();
    bc.dsa.top_k = 128;
    bc.dsa.sinks = 5;
    bc.dsa.window = 17;
    bc.dsa.heads = heads;
    bc.idx_heads = heads == IndexerHeads::kQuery ? c.n_head : c.n_head_kv;
    make(c, bc);
    ASSERT_TRUE(gpu);
    const auto K = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 71), V = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 72);
    std::vector<float> Q = test::random_normal(static_cast<size_t>(n_ctx) * q_dim, 73);
    for (float& x : Q) x = kernels::round_fp16(x);  // what both backends attend with
    Backend* bs[2] = {gpu.get(), cpu.get()};
    std::vector<float> out[2];
    std::vector<std::vector<int32_t>> sel[2];
    for (int i = 0; i < 2; ++i) {
      Backend& b = *bs[i];
      for (int p0 = 0; p0 < filled; p0 += 64) {
        const int n = std::min(64, filled - p0);
        const auto rows = [&](const std::vector<float>& v, int w) {
          return std::vector<float>(v.begin() + static_cast<long>(p0) * w, v.begin() + static_cast<long>(p0 + n) * w);
        };
        const Tensor k = up(b, rows(K, kv_dim), n, kv_dim), q = up(b, rows(Q, q_dim), n, q_dim);
        b.store_kv(0, k, up(b, rows(V, kv_dim), n, kv_dim), n, p0);
        b.store_index(0, q, k, n, p0);
        b.select(0, n, p0);
        for (int t = 0; t < n; ++t) {
          const auto s = b.selection(t);
          sel[i].emplace_back(s.begin(), s.end());
        }
        Tensor o = b.alloc(n, q_dim);
        b.attention(0, q, o, n, p0, true);
        const auto d = down(b, o, n);
        out[i].insert(out[i].end(), d.begin(), d.end());
      }
    }
    ASSERT_EQ(sel[0].size(), sel[1].size());
    for (size_t t = 0; t < sel[0].size(); ++t) ASSERT_EQ(sel[0][t], sel[1][t]) << "position " << t;
    EXPECT_LT(rel_err(out[0], out[1]), 5e-3) << "sparse attention";
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace docdsa
