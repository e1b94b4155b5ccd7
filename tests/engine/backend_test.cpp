// Every Backend operation against a plain reference, at awkward sizes: batches that are not a
// multiple of any tile (1, 5, 70 rows), output widths that are not multiples of 16, head
// groups of three, positions that straddle cache blocks. The references are written here in
// double precision from the definitions, not from the kernels, so a backend that gets an
// operation wrong fails whichever kernels it uses.
//
// Backends under test come from backends(): the CPU backend always; a device backend adds
// itself there (and its tests carry the gpu label), so each of its operations is held to the
// same references and tolerances.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

#include "docdsa/engine/backend.h"
#ifdef DOCDSA_BACKEND_TEST_CUDA
#include "docdsa/engine/backend_cuda.h"
#endif
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

struct BackendKind {
  const char* name;
  std::function<Result<std::unique_ptr<Backend>>(const ModelConfig&, const BackendConfig&)> make;
  bool (*available)(std::string* why) = nullptr;  // null: always; else its tests skip when false
};

// The CUDA build compiles this file a second time (cuda_backend_ops_tests, label gpu) for the
// CUDA backend alone, so that the unit label never holds tests that need a GPU.
std::vector<BackendKind> backends() {
#ifdef DOCDSA_BACKEND_TEST_CUDA
  return {{"cuda", make_cuda_backend, cuda_available}};
#else
  return {{"cpu", make_cpu_backend}};
#endif
}
// Test names and failure logs say which backend, not the parameter's bytes.
void PrintTo(const BackendKind& k, std::ostream* os) {
  *os << k.name;
}

// A model shape with a group of three query heads per KV head and head_dim 64.
ModelConfig shape() { return test::model_shape(96, 160, 512); }

using test::down;
using test::make_weight;
using test::TestWeight;
using test::up;

// Worst |a - b| relative to the largest |b| (1 when b is all zeros).
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return worst / std::max(scale, 1e-30);
}

class BackendOps : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam().available && !GetParam().available(&why)) GTEST_SKIP() << GetParam().name << ": " << why;
  }
  std::unique_ptr<Backend> make(const ModelConfig& c, const BackendConfig& bc) {
    auto b = GetParam().make(c, bc);
    EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
    return b.ok() ? std::move(*b) : nullptr;
  }
};

TEST_P(BackendOps, RowOperationsMatchTheirDefinitions) {
  const ModelConfig c = shape();
  auto b = make(c, test::backend_config(c, 64, 70));
  ASSERT_TRUE(b);
  for (int n : {1, 5, 70}) {
    SCOPED_TRACE("rows " + std::to_string(n));
    const auto xv = test::random_normal(static_cast<size_t>(n) * c.n_embd, 1 + n);
    const auto yv = test::random_normal(static_cast<size_t>(n) * c.n_embd, 2 + n);
    const TestWeight norm = make_weight(DType::F32, c.n_embd, 1, 3);
    // rms_norm
    Tensor x = up(*b, xv, n, c.n_embd), out = b->alloc(n, c.n_embd);
    b->rms_norm(x, norm.w, c.rms_eps, out, n);
    std::vector<double> ref(xv.size());
    for (int t = 0; t < n; ++t) {
      double ss = 0.0;
      for (int i = 0; i < c.n_embd; ++i) ss += static_cast<double>(xv[t * c.n_embd + i]) * xv[t * c.n_embd + i];
      const double inv = 1.0 / std::sqrt(ss / c.n_embd + c.rms_eps);
      for (int i = 0; i < c.n_embd; ++i) ref[t * c.n_embd + i] = xv[t * c.n_embd + i] * inv * norm.values[i];
    }
    EXPECT_LT(rel_err(down(*b, out, n), ref), 1e-5) << "rms_norm";
    // add, add_bias
    Tensor y = up(*b, yv, n, c.n_embd);
    b->add(x, y, n);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(xv[i]) + yv[i];
    EXPECT_LT(rel_err(down(*b, x, n), ref), 1e-6) << "add";
    b->add_bias(x, norm.w, n);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += norm.values[i % c.n_embd];
    EXPECT_LT(rel_err(down(*b, x, n), ref), 1e-6) << "add_bias";
    // swiglu
    Tensor g = up(*b, xv, n, c.n_embd), u = up(*b, yv, n, c.n_embd);
    b->swiglu(g, u, n);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = xv[i] / (1.0 + std::exp(-static_cast<double>(xv[i]))) * yv[i];
    EXPECT_LT(rel_err(down(*b, g, n), ref), 1e-5) << "swiglu";
  }
}

TEST_P(BackendOps, EmbedAndMatmulEveryWeightType) {
  const ModelConfig c = shape();
  auto b = make(c, test::backend_config(c, 64, 70));
  ASSERT_TRUE(b);
  for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    SCOPED_TRACE(kernels::info(type).name);
    const TestWeight table = make_weight(type, c.n_embd, c.n_vocab, 7);
    const std::vector<TokenId> ids = {36, 0, 5, 5, 17};
    Tensor x = b->alloc(5, c.n_embd);
    b->embed(table.w, ids, x);
    std::vector<double> ref;
    for (TokenId id : ids)
      for (int i = 0; i < c.n_embd; ++i) ref.push_back(table.values[static_cast<size_t>(id) * c.n_embd + i]);
    EXPECT_LT(rel_err(down(*b, x, 5), ref), 1e-6) << "embed";

    // Two products of one input (one quantised copy shared) and one of another; 37 and 53
    // output rows are no multiple of a chunk; 70 tokens cross a 64-token tile.
    const TestWeight w1 = make_weight(type, c.n_embd, 37, 11), w2 = make_weight(type, c.n_embd, 53, 12);
    const TestWeight w3 = make_weight(type, 160, 37, 13);
    for (int n : {1, 5, 70}) {
      SCOPED_TRACE("rows " + std::to_string(n));
      const auto av = test::random_normal(static_cast<size_t>(n) * c.n_embd, 20 + n), bv = test::random_normal(static_cast<size_t>(n) * 160, 30 + n);
      Tensor a = up(*b, av, n, c.n_embd), a2 = up(*b, bv, n, 160);
      Tensor y1 = b->alloc(n, 37), y2 = b->alloc(n, 53), y3 = b->alloc(n, 37);
      const MatJob jobs[] = {{&w1.w, a, y1}, {&w2.w, a, y2}, {&w3.w, a2, y3}};
      b->matmul(jobs, n);
      const auto check = [&](const TestWeight& w, const std::vector<float>& in, Tensor y, const char* what) {
        std::vector<double> r(static_cast<size_t>(n) * w.w.n_out);
        for (int t = 0; t < n; ++t)
          for (int64_t o = 0; o < w.w.n_out; ++o) {
            double acc = 0.0;
            for (int64_t i = 0; i < w.w.n_in; ++i) acc += static_cast<double>(w.values[o * w.w.n_in + i]) * in[t * w.w.n_in + i];
            r[t * w.w.n_out + o] = acc;
          }
        // Activations are quantised to the weight's vec-dot type (8 bits for the quants).
        EXPECT_LT(rel_err(down(*b, y, n), r), 0.02) << what;
      };
      check(w1, av, y1, "matmul 1");
      check(w2, av, y2, "matmul 2 (same input)");
      check(w3, bv, y3, "matmul 3");
      // logits: the same product into host memory
      std::vector<float> host(static_cast<size_t>(n) * 37);
      b->logits(w1.w, a, n, host.data());
      EXPECT_EQ(host, down(*b, y1, n)) << "logits";
    }
  }
}

// Rotation of pairs (2i, 2i+1) or (i, i + n_rot/2) by pos * base^(-2i/n_rot).
void rope_ref(std::vector<double>& x, int heads, int hd, int pos, double base, bool neox) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i) {
      const double th = pos * std::pow(base, -2.0 * i / hd);
      const int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
      double& x0 = x[h * hd + a];
      double& x1 = x[h * hd + b];
      const double r0 = x0 * std::cos(th) - x1 * std::sin(th), r1 = x0 * std::sin(th) + x1 * std::cos(th);
      x0 = r0;
      x1 = r1;
    }
}

TEST_P(BackendOps, RopeRotatesBothLayoutsAtAnyPosition) {
  const ModelConfig c = shape();
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  for (bool neox : {false, true}) {
    SCOPED_TRACE(neox ? "neox" : "normal");
    auto b = make(c, test::backend_config(c, 64, 8, neox));
    ASSERT_TRUE(b);
    const int n = 5, p0 = 3001;
    const auto qv = test::random_normal(static_cast<size_t>(n) * q_dim, 41), kv = test::random_normal(static_cast<size_t>(n) * kv_dim, 42);
    Tensor q = up(*b, qv, n, q_dim), k = up(*b, kv, n, kv_dim);
    b->rope(q, k, n, p0);
    std::vector<double> rq, rk;
    for (int t = 0; t < n; ++t) {
      std::vector<double> a(qv.begin() + t * q_dim, qv.begin() + (t + 1) * q_dim),
          bb(kv.begin() + t * kv_dim, kv.begin() + (t + 1) * kv_dim);
      rope_ref(a, c.n_head, c.head_dim, p0 + t, c.rope_base, neox);
      rope_ref(bb, c.n_head_kv, c.head_dim, p0 + t, c.rope_base, neox);
      rq.insert(rq.end(), a.begin(), a.end());
      rk.insert(rk.end(), bb.begin(), bb.end());
    }
    // Angles are accumulated in float (as llama.cpp does): ~1e-4 at position 3000; queries
    // may be rounded to f16.
    EXPECT_LT(rel_err(down(*b, q, n), rq), 2e-3) << "queries";
    EXPECT_LT(rel_err(down(*b, k, n), rk), 5e-4) << "keys";
  }
}

// Softmax attention of query row (head h of token t) over the positions `keys` of the f16
// cache as stored: K, V rounded to f16.
std::vector<double> attention_ref(const ModelConfig& c, const std::vector<float>& q, int t, const std::vector<float>& K,
                                  const std::vector<float>& V, const std::vector<int32_t>& keys) {
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv, kv_dim = c.n_head_kv * hd;
  std::vector<double> out(static_cast<size_t>(c.n_head) * hd, 0.0);
  for (int h = 0; h < c.n_head; ++h) {
    const int g = h / group;
    std::vector<double> s;
    double mx = -INFINITY;
    for (int32_t p : keys) {
      double d = 0.0;
      for (int i = 0; i < hd; ++i)
        d += static_cast<double>(q[static_cast<size_t>(t) * c.n_head * hd + h * hd + i]) *
             kernels::round_fp16(K[p * kv_dim + g * hd + i]);
      s.push_back(d / std::sqrt(static_cast<double>(hd)));
      mx = std::max(mx, s.back());
    }
    double z = 0.0;
    for (double& x : s) z += (x = std::exp(x - mx));
    for (size_t j = 0; j < keys.size(); ++j)
      for (int i = 0; i < hd; ++i) out[h * hd + i] += s[j] / z * kernels::round_fp16(V[keys[j] * kv_dim + g * hd + i]);
  }
  return out;
}

TEST_P(BackendOps, DenseAttentionOverTheCacheIsCausal) {
  const ModelConfig c = shape();
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const int n_ctx = 1200;
  auto b = make(c, test::backend_config(c, n_ctx, 70));
  ASSERT_TRUE(b);
  const auto K = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 51), V = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 52);
  // Fill positions 0..1130 in batches of 70 (the last one short), in layer 1.
  const int filled = 1131;
  for (int p0 = 0; p0 < filled; p0 += 70) {
    const int n = std::min(70, filled - p0);
    std::vector<float> kb(K.begin() + p0 * kv_dim, K.begin() + (p0 + n) * kv_dim),
        vb(V.begin() + p0 * kv_dim, V.begin() + (p0 + n) * kv_dim);
    b->store_kv(1, up(*b, kb, n, kv_dim), up(*b, vb, n, kv_dim), n, p0);
  }
  // Prefill-shaped (5 rows at 1126..1130) and decode-shaped (1 row at 1130: split-K).
  for (auto [n, p0] : {std::pair{5, 1126}, std::pair{1, 1130}}) {
    SCOPED_TRACE("rows " + std::to_string(n));
    std::vector<float> qv = test::random_normal(static_cast<size_t>(n) * q_dim, 53 + n);
    for (float& x : qv) x = kernels::round_fp16(x);
    Tensor q = up(*b, qv, n, q_dim), out = b->alloc(n, q_dim);
    b->attention(1, q, out, n, p0, false);
    std::vector<double> ref;
    for (int t = 0; t < n; ++t) {
      std::vector<int32_t> keys(static_cast<size_t>(p0 + t + 1));
      for (size_t j = 0; j < keys.size(); ++j) keys[j] = static_cast<int32_t>(j);
      const auto r = attention_ref(c, qv, t, K, V, keys);
      ref.insert(ref.end(), r.begin(), r.end());
    }
    EXPECT_LT(rel_err(down(*b, out, n), ref), 2e-3);
  }
  // The cache as bytes: what was stored reads back, a write lands where a read finds it.
  std::vector<uint16_t> v16(kv_dim);
  b->cache_read(1, Backend::CachePart::kValues, 0, 7ull * kv_dim * 2, v16.data(), v16.size() * 2);
  for (int i = 0; i < kv_dim; ++i) EXPECT_EQ(kernels::fp16_to_fp32(v16[i]), kernels::round_fp16(V[7 * kv_dim + i]));
}

TEST_P(BackendOps, SparseAttentionReadsEachTokensSelection) {
  // A tiny real model for a calibrated indexer; the backend gets random keys and queries.
  testing::TinyModelOptions o;
  o.n_head = 6;
  o.n_head_kv = 2;
  o.n_embd = 96;
  const std::string path =
      (docdsa::test::scratch_dir() / ("docdsa-backend-test-" + std::to_string(::getpid()))).string();
  testing::write_tiny_model(path, o);
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  std::vector<TokenId> calib;
  for (int i = 0; i < 300; ++i) calib.push_back((i * 37 + 11) % 200);
  auto ix = Indexer::calibrate(**m, calib, 8, 2);
  ASSERT_TRUE(ix.ok()) << ix.error().message;
  const ModelConfig& c = (*m)->config();
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  const int n_ctx = 300;
  BackendConfig bc = test::backend_config(c, n_ctx, 40, c.rope_neox);
  bc.indexer = ix->get();
  bc.dsa.top_k = 40;
  bc.dsa.sinks = 3;
  bc.dsa.window = 7;
  bc.idx_heads = c.n_head;
  auto b = make(c, bc);
  ASSERT_TRUE(b);
  const auto K = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 61), V = test::random_normal(static_cast<size_t>(n_ctx) * kv_dim, 62);
  std::vector<float> Q = test::random_normal(static_cast<size_t>(n_ctx) * q_dim, 63);
  for (float& x : Q) x = kernels::round_fp16(x);
  const int filled = 237;
  for (int p0 = 0; p0 < filled; p0 += 40) {
    const int n = std::min(40, filled - p0);
    const auto rows = [&](const std::vector<float>& v, int w) {
      return std::vector<float>(v.begin() + p0 * w, v.begin() + (p0 + n) * w);
    };
    const Tensor k = up(*b, rows(K, kv_dim), n, kv_dim), q = up(*b, rows(Q, q_dim), n, q_dim);
    b->store_kv(0, k, up(*b, rows(V, kv_dim), n, kv_dim), n, p0);
    b->store_index(0, q, k, n, p0);
    if (p0 + n < filled) continue;
    // The last batch: 37 rows at 200..236, all past k: each reads its own selection of the union.
    b->select(0, n, p0);
    Tensor out = b->alloc(n, q_dim);
    b->attention(0, q, out, n, p0, true);
    std::vector<double> ref;
    for (int t = 0; t < n; ++t) {
      const auto sel = b->selection(t);
      const int pos = p0 + t;
      ASSERT_EQ(static_cast<int>(sel.size()), std::min(pos + 1, bc.dsa.top_k)) << "position " << pos;
      ASSERT_TRUE(std::is_sorted(sel.begin(), sel.end()));
      for (int s = 0; s < bc.dsa.sinks; ++s) EXPECT_TRUE(std::binary_search(sel.begin(), sel.end(), s)) << "sink " << s;
      for (int s = pos - bc.dsa.window + 1; s <= pos; ++s)
        EXPECT_TRUE(std::binary_search(sel.begin(), sel.end(), s)) << "window " << s;
      std::vector<float> qt(Q.begin() + pos * q_dim, Q.begin() + (pos + 1) * q_dim);
      const auto r = attention_ref(c, qt, 0, K, V, std::vector<int32_t>(sel.begin(), sel.end()));
      ref.insert(ref.end(), r.begin(), r.end());
    }
    EXPECT_LT(rel_err(down(*b, out, n), ref), 2e-3);
  }
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendOps, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<BackendKind>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace docdsa
