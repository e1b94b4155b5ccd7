// DSA end to end on tiny synthetic models: exact dense behaviour while the context fits in k,
// selections that always hold the sinks and the local window, batched sparse prefill (query
// blocks sharing a gathered union with masks) agreeing with token-by-token decode, the same
// selections on any thread count, indexer sidecars that refuse another model's file, and the
// cost report's accounting.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  return (docdsa::test::scratch_dir() / ("docdsa-dsa-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

std::unique_ptr<Model> tiny(const std::string& name, uint32_t seed = 1) {
  testing::TinyModelOptions o;
  o.seed = seed;
  o.n_head = 4;
  o.n_head_kv = 2;
  const std::string p = tmp_path(name);
  testing::write_tiny_model(p, o);
  auto m = Model::load(p);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<TokenId> some_tokens(int n, int n_vocab, int salt = 0) {
  std::vector<TokenId> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 37 + 11 + salt * (i / 7)) % (n_vocab - 20));
  return ids;
}

std::unique_ptr<Indexer> calibrated(const Model& m) {
  auto ix = Indexer::calibrate(m, some_tokens(300, m.config().n_vocab, 3), 8, 2);
  EXPECT_TRUE(ix.ok()) << (ix.ok() ? "" : ix.error().message);
  return ix.ok() ? std::move(*ix) : nullptr;
}

SessionParams sparse_params(const Indexer* ix, int n_ctx, int n_batch, int threads) {
  SessionParams sp;
  sp.n_ctx = n_ctx;
  sp.n_batch = n_batch;
  sp.n_threads = threads;
  sp.dsa.top_k = 128;
  sp.dsa.sinks = 16;
  sp.dsa.window = 32;
  sp.indexer = ix;
  return sp;
}

// Selections by (layer, position), as a selection_tap records them.
using Selections = std::map<std::pair<int, int>, std::vector<int32_t>>;
struct SelectionDiff {
  int compared = 0, differ = 0;
};
// Rows whose context fits in k (sparse_params: 128) select everything; compares the sparse
// rows of `b` with the same rows of `a`.
SelectionDiff compare_sparse_selections(const Selections& a, const Selections& b) {
  SelectionDiff d;
  for (const auto& [key, sel] : b) {
    if (key.second + 1 <= 128) continue;
    ++d.compared;
    auto it = a.find(key);
    d.differ += it == a.end() || it->second != sel;
  }
  return d;
}

std::vector<float> all_logits(Session& s, const std::vector<TokenId>& ids) {
  std::vector<float> out;
  const int V = s.model().config().n_vocab;
  if (s.params().n_batch == 1) {
    for (TokenId t : ids) {
      const TokenId one[1] = {t};
      EXPECT_TRUE(s.decode(one).ok());
      out.insert(out.end(), s.logits(), s.logits() + V);
    }
  } else {
    EXPECT_TRUE(s.decode(ids, Logits::kAll).ok());
    for (size_t i = 0; i < ids.size(); ++i) out.insert(out.end(), s.logits_at(static_cast<int>(i)), s.logits_at(static_cast<int>(i)) + V);
  }
  return out;
}

TEST(Dsa, ContextWithinKIsExactlyDense) {
  auto m = tiny("fits.gguf");
  ASSERT_TRUE(m);
  const auto ids = some_tokens(200, m->config().n_vocab);
  SessionParams dense;
  dense.n_ctx = 256;
  dense.dsa.mode = AttentionMode::kDense;
  SessionParams dsa = dense;
  dsa.dsa.mode = AttentionMode::kDsa;  // k = 2048 > context: no indexer needed, same arithmetic
  auto a = Session::create(*m, dense);
  auto b = Session::create(*m, dsa);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(all_logits(**a, ids), all_logits(**b, ids));
}

TEST(Dsa, SelectionsKeepSinksAndWindowAndHaveSizeK) {
  auto m = tiny("sel.gguf");
  ASSERT_TRUE(m);
  auto ix = calibrated(*m);
  ASSERT_TRUE(ix);
  SessionParams sp = sparse_params(ix.get(), 400, 64, 2);
  int checked = 0;
  sp.selection_tap = [&](int, int pos, std::span<const int32_t> sel) {
    const int ctx = pos + 1;
    ASSERT_EQ(static_cast<int>(sel.size()), std::min(ctx, 128)) << "pos " << pos;
    for (size_t i = 1; i < sel.size(); ++i) ASSERT_LT(sel[i - 1], sel[i]) << "not ascending/unique at pos " << pos;
    ASSERT_EQ(sel.back(), pos);
    if (ctx > 128) {
      for (int i = 0; i < 16; ++i) ASSERT_EQ(sel[static_cast<size_t>(i)], i);
      for (int i = 0; i < 32; ++i) ASSERT_EQ(sel[sel.size() - 32 + static_cast<size_t>(i)], pos - 31 + i);
    }
    ++checked;
  };
  auto s = Session::create(*m, sp);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE((*s)->decode(some_tokens(390, m->config().n_vocab)).ok());
  EXPECT_GT(checked, 0);
  EXPECT_GT((*s)->cost().sparse_rows, 0);
}

// Sparse prefill in blocks (unions + masks, split across threads) must equal token-by-token
// sparse decode: same selections, same attention. Rows whose context still fits in k take
// the gathered path with a full selection and must match dense attention too.
TEST(Dsa, BatchedSparsePrefillMatchesTokenByToken) {
  auto m = tiny("batch.gguf");
  ASSERT_TRUE(m);
  auto ix = calibrated(*m);
  ASSERT_TRUE(ix);
  const auto ids = some_tokens(330, m->config().n_vocab, 5);
  Selections sel_a, sel_b;
  SessionParams pa = sparse_params(ix.get(), 400, 96, 2);
  pa.selection_tap = [&](int il, int pos, std::span<const int32_t> s) { sel_a[{il, pos}].assign(s.begin(), s.end()); };
  SessionParams pb = sparse_params(ix.get(), 400, 1, 1);
  pb.selection_tap = [&](int il, int pos, std::span<const int32_t> s) { sel_b[{il, pos}].assign(s.begin(), s.end()); };
  auto a = Session::create(*m, pa);
  auto b = Session::create(*m, pb);
  ASSERT_TRUE(a.ok() && b.ok());
  const auto la = all_logits(**a, ids), lb = all_logits(**b, ids);
  ASSERT_EQ(la.size(), lb.size());
  // The union path sums in a different order than a row's own list, and the synthetic
  // model's quantised activations can turn a last-bit difference into a visible one, so
  // almost every row (not every row) must agree closely, and none may be far off.
  const int V = m->config().n_vocab;
  int close = 0;
  double worst = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    double w = 0;
    for (int j = 0; j < V; ++j) w = std::max(w, static_cast<double>(std::fabs(la[t * V + j] - lb[t * V + j])));
    close += w < 2e-3;
    worst = std::max(worst, w);
  }
  EXPECT_GE(close, static_cast<int>(ids.size()) * 97 / 100);
  EXPECT_LT(worst, 1.0);
  const SelectionDiff sd = compare_sparse_selections(sel_a, sel_b);
  EXPECT_GT(sd.compared, 300);
  EXPECT_EQ(sd.differ, 0) << "selections depend on batching or thread count";

  SessionParams pd;
  pd.n_ctx = 400;
  pd.dsa.mode = AttentionMode::kDense;
  auto d = Session::create(*m, pd);
  ASSERT_TRUE(d.ok());
  const auto ld = all_logits(**d, ids);
  double worst_fit = 0, worst_sparse = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    const double diff = std::fabs(la[i] - ld[i]);
    (static_cast<int>(i) / V < 128 ? worst_fit : worst_sparse) = std::max(i / V < 128 ? worst_fit : worst_sparse, diff);
  }
  EXPECT_LT(worst_fit, 2e-3) << "rows with context <= k must equal dense";
  EXPECT_GT(worst_sparse, 0.0) << "rows past k should have used a sparse selection";
}

// The indexer queries of one token take n_head x rank floats and its key n_head_kv x rank:
// 2048 each here (Llama-3.2-1B with --indexer-rank 64 has the same), past the fixed
// 1024-float stack arrays they once used. Sized from the model, sparse decoding runs and
// agrees between batched prefill and token-by-token decode.
TEST(Dsa, IndexerWiderThanTheOldFixedScratchRuns) {
  testing::TinyModelOptions o;
  o.n_layer = 1;
  o.n_embd = 2048;
  o.n_head = 32;
  o.n_head_kv = 32;
  o.n_ff = 128;
  const std::string p = tmp_path("wide.gguf");
  testing::write_tiny_model(p, o);
  auto m = Model::load(p);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ((*m)->config().head_dim, 64);
  auto ix = Indexer::calibrate(**m, some_tokens(200, (*m)->config().n_vocab, 3), 64, 2);
  ASSERT_TRUE(ix.ok()) << ix.error().message;
  ASSERT_GT((*m)->config().n_head * (*ix)->rank(), 1024);
  ASSERT_GT((*ix)->key_dim(), 1024);
  const auto ids = some_tokens(180, (*m)->config().n_vocab, 4);
  Selections sel_a, sel_b;
  SessionParams pa = sparse_params(ix->get(), 256, 64, 2);
  pa.selection_tap = [&](int il, int pos, std::span<const int32_t> s) { sel_a[{il, pos}].assign(s.begin(), s.end()); };
  SessionParams pb = sparse_params(ix->get(), 256, 1, 1);
  pb.selection_tap = [&](int il, int pos, std::span<const int32_t> s) { sel_b[{il, pos}].assign(s.begin(), s.end()); };
  auto a = Session::create(**m, pa);
  auto b = Session::create(**m, pb);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->sparse());
  const auto la = all_logits(**a, ids), lb = all_logits(**b, ids);
  ASSERT_EQ(la.size(), lb.size());
  for (float x : la) ASSERT_TRUE(std::isfinite(x));
  const SelectionDiff sd = compare_sparse_selections(sel_a, sel_b);
  EXPECT_GT(sd.compared, 40);
  EXPECT_EQ(sd.differ, 0);
  fs::remove(p);
}

TEST(Dsa, ForceDenseOnASparseSessionIsDense) {
  auto m = tiny("force.gguf");
  ASSERT_TRUE(m);
  auto ix = calibrated(*m);
  ASSERT_TRUE(ix);
  const auto ids = some_tokens(300, m->config().n_vocab, 2);
  auto s = Session::create(*m, sparse_params(ix.get(), 400, 64, 2));
  ASSERT_TRUE(s.ok());
  (*s)->force_dense(true);
  SessionParams pd;
  pd.n_ctx = 400;
  pd.n_batch = 64;
  pd.dsa.mode = AttentionMode::kDense;
  auto d = Session::create(*m, pd);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(all_logits(**s, ids), all_logits(**d, ids));
  EXPECT_EQ((*s)->cost().sparse_rows, 0);
}

TEST(Dsa, CostReportCountsTheSaving) {
  auto m = tiny("cost.gguf");
  ASSERT_TRUE(m);
  auto ix = calibrated(*m);
  ASSERT_TRUE(ix);
  auto s = Session::create(*m, sparse_params(ix.get(), 600, 128, 2));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->decode(some_tokens(500, m->config().n_vocab)).ok());
  const TokenId one[1] = {5};
  ASSERT_TRUE((*s)->decode(one).ok());
  const CostReport& c = (*s)->cost();
  EXPECT_EQ(c.prompt_tokens, 500);
  EXPECT_EQ(c.decoded_tokens, 1);
  EXPECT_EQ(c.context_tokens, 501);
  const ModelConfig& cfg = m->config();
  double dense = 0;
  for (int t = 1; t <= 501; ++t) dense += 4.0 * cfg.n_head * cfg.head_dim * t * cfg.n_layer;
  EXPECT_DOUBLE_EQ(c.attn_flops_dense, dense);
  EXPECT_LT(c.attn_flops_dsa, c.attn_flops_dense);
  EXPECT_LT(c.decode_bytes_dsa, c.decode_bytes_dense);
  EXPECT_GT(c.prefill_seconds, 0.0);
  CostReport e = c;
  e.estimate_dense_times();
  EXPECT_GT(e.dense_prefill_seconds, e.prefill_seconds);
  EXPECT_FALSE(e.dense_measured);
}

TEST(Dsa, BadParametersAndSidecarsGiveClearErrors) {
  auto m = tiny("bad.gguf");
  ASSERT_TRUE(m);
  SessionParams sp;
  sp.n_ctx = 4096;
  sp.dsa.top_k = 0;
  auto s = Session::create(*m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("--topk"), std::string::npos) << s.error().message;
  sp.dsa.top_k = 100;
  sp.dsa.sinks = 64;
  sp.dsa.window = 64;
  s = Session::create(*m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("smaller than --topk"), std::string::npos) << s.error().message;
  sp.dsa = DsaParams{};
  s = Session::create(*m, sp);  // 4096 > k = 2048 and no indexer
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("indexer"), std::string::npos) << s.error().message;

  auto ix = calibrated(*m);
  ASSERT_TRUE(ix);
  const std::string side = tmp_path("ix.dsaidx");
  ASSERT_TRUE(ix->save(side).ok());
  auto back = Indexer::load(side, *m);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ((*back)->rank(), 8);
  EXPECT_EQ(std::vector<float>((*back)->proj(1, 1), (*back)->proj(1, 1) + 8 * m->config().head_dim),
            std::vector<float>(ix->proj(1, 1), ix->proj(1, 1) + 8 * m->config().head_dim));
  auto other = tiny("other.gguf", 99);
  ASSERT_TRUE(other);
  auto wrong = Indexer::load(side, *other);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("different model file"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find(side), std::string::npos);
  fs::resize_file(side, fs::file_size(side) - 100);
  auto cut = Indexer::load(side, *m);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("truncated"), std::string::npos) << cut.error().message;
  std::ofstream(side, std::ios::trunc) << "not an indexer at all, just text";
  auto junk = Indexer::load(side, *m);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("not a DocDSA indexer"), std::string::npos) << junk.error().message;
  fs::remove(side);
  EXPECT_FALSE(Indexer::calibrate(*m, some_tokens(300, m->config().n_vocab), 6, 1).ok()) << "rank must be a multiple of 4";
}

}  // namespace
}  // namespace docdsa
