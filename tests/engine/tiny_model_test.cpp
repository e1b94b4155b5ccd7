// End-to-end engine checks on tiny synthetic models (written by the test helper): batched
// prefill agrees with token-by-token decode, every weight type loads and runs, qwen2's biases
// and NEOX RoPE are used, and bad files or requests fail with clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include <unistd.h>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/generate.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/kernels/ops.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  return (docdsa::test::scratch_dir() / ("docdsa-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

std::unique_ptr<Model> tiny(const testing::TinyModelOptions& o, const std::string& name) {
  const std::string p = tmp_path(name);
  testing::write_tiny_model(p, o);
  auto m = Model::load(p);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> prefill_logits(const Model& m, const std::vector<TokenId>& ids, int n_batch, int threads) {
  SessionParams sp;
  sp.n_ctx = 256;
  sp.n_batch = n_batch;
  sp.n_threads = threads;
  auto s = Session::create(m, sp);
  EXPECT_TRUE(s.ok());
  std::vector<float> out;
  if (n_batch == 1) {
    for (TokenId t : ids) {
      const TokenId one[1] = {t};
      EXPECT_TRUE((*s)->decode(one).ok());
      out.insert(out.end(), (*s)->logits(), (*s)->logits() + m.config().n_vocab);
    }
  } else {
    EXPECT_TRUE((*s)->decode(ids, Logits::kAll).ok());
    for (size_t i = 0; i < ids.size(); ++i)
      out.insert(out.end(), (*s)->logits_at(static_cast<int>(i)), (*s)->logits_at(static_cast<int>(i)) + m.config().n_vocab);
  }
  return out;
}

std::vector<TokenId> some_tokens(int n, int n_vocab) {
  std::vector<TokenId> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 37 + 11) % (n_vocab - 20));
  return ids;
}

TEST(TinyModel, BatchedPrefillMatchesIncrementalDecode) {
  for (auto wt : {kernels::DType::Q4_1, kernels::DType::F16}) {
    testing::TinyModelOptions o;
    o.weight_type = wt;
    auto m = tiny(o, std::string("batch-") + kernels::info(wt).name + ".gguf");
    ASSERT_TRUE(m);
    const auto ids = some_tokens(70, m->config().n_vocab);
    const auto a = prefill_logits(*m, ids, 1, 1);
    const auto b = prefill_logits(*m, ids, 32, 2);
    ASSERT_EQ(a.size(), b.size());
    double max_diff = 0;
    for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, static_cast<double>(std::fabs(a[i] - b[i])));
    // Same math in a different order (tiles, split-K merge): float reassociation only.
    EXPECT_LT(max_diff, 2e-3) << kernels::info(wt).name;
  }
}

// Past the trained context a qwen2 model whose file names no RoPE scaling gets Qwen's recipe,
// YaRN x4 (the DSA context extension stays off under it); within it, nothing changes; a llama
// model keeps the extension; an explicit choice wins.
TEST(TinyModel, QwenPastItsTrainedContextDefaultsToYarn) {
  testing::TinyModelOptions o;
  o.arch = "qwen2";
  o.n_ctx_train = 512;
  auto qwen = tiny(o, "yarn-qwen2.gguf");
  o.arch = "llama";
  auto llama = tiny(o, "yarn-llama.gguf");
  ASSERT_TRUE(qwen && llama);
  std::vector<TokenId> calib = some_tokens(300, qwen->config().n_vocab);
  auto ix_q = Indexer::calibrate(*qwen, calib, 8, 1);
  auto ix_l = Indexer::calibrate(*llama, calib, 8, 1);
  ASSERT_TRUE(ix_q.ok() && ix_l.ok());
  const auto make = [](const Model& m, const Indexer& ix, int n_ctx, std::optional<RopeScaling> rs = std::nullopt) {
    SessionParams sp;
    sp.n_ctx = n_ctx;
    sp.dsa.top_k = 64;
    sp.dsa.sinks = 8;
    sp.dsa.window = 16;
    sp.indexer = &ix;
    sp.rope_scaling = rs;
    auto s = Session::create(m, sp);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return std::move(*s);
  };
  const auto long_qwen = make(*qwen, **ix_q, 1500);
  EXPECT_EQ(long_qwen->rope_scaling(), RopeScaling::kYarn);
  EXPECT_FLOAT_EQ(long_qwen->rope_factor(), 4.0f);
  EXPECT_EQ(long_qwen->extend_group(), 0);
  const auto longer_qwen = make(*qwen, **ix_q, 2560);  // past 4x the trained context: n_ctx / trained
  EXPECT_FLOAT_EQ(longer_qwen->rope_factor(), 5.0f);
  const auto short_qwen = make(*qwen, **ix_q, 500);
  EXPECT_EQ(short_qwen->rope_scaling(), RopeScaling::kNone);
  const auto chosen = make(*qwen, **ix_q, 1500, RopeScaling::kNone);
  EXPECT_EQ(chosen->rope_scaling(), RopeScaling::kNone);
  EXPECT_GE(chosen->extend_group(), 2);
  const auto long_llama = make(*llama, **ix_l, 1500);
  EXPECT_EQ(long_llama->rope_scaling(), RopeScaling::kNone);
  EXPECT_GE(long_llama->extend_group(), 2);
}

TEST(TinyModel, ThreadCountDoesNotChangeResults) {
  auto m = tiny({}, "threads.gguf");
  ASSERT_TRUE(m);
  const auto ids = some_tokens(40, m->config().n_vocab);
  EXPECT_EQ(prefill_logits(*m, ids, 16, 1), prefill_logits(*m, ids, 16, 2));
}

TEST(TinyModel, EveryWeightTypeRuns) {
  for (auto wt : {kernels::DType::F32, kernels::DType::F16, kernels::DType::BF16, kernels::DType::Q8_0, kernels::DType::Q4_0,
                  kernels::DType::Q4_1, kernels::DType::Q4_K, kernels::DType::Q5_K, kernels::DType::Q6_K}) {
    testing::TinyModelOptions o;
    o.weight_type = wt;
    o.tied_output = false;
    if (kernels::info(wt).block_size == 256) {  // K-quants need rows of 256
      o.n_embd = 256;
      o.n_ff = 512;
      o.n_head = 4;
      o.n_head_kv = 4;
    }
    auto m = tiny(o, std::string("type-") + kernels::info(wt).name + ".gguf");
    ASSERT_TRUE(m) << kernels::info(wt).name;
    const auto logits = prefill_logits(*m, some_tokens(5, m->config().n_vocab), 8, 2);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x)) << kernels::info(wt).name;
  }
}

TEST(TinyModel, Qwen2UsesBiasesAndNeoxRope) {
  testing::TinyModelOptions o;
  o.arch = "qwen2";
  auto q = tiny(o, "qwen2.gguf");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->config().rope_neox);
  EXPECT_TRUE(q->layer(0).bq.present());
  auto l = tiny({}, "llama.gguf");
  EXPECT_FALSE(l->config().rope_neox);
  const auto logits = prefill_logits(*q, some_tokens(20, q->config().n_vocab), 8, 2);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

TEST(Rope, PairsFollowTheLayout) {
  // Rotating by 90 degrees (cos 0, sin 1) moves x[a] into x[b] for the pair (a, b).
  const float c[2] = {0.0f, 0.0f}, sn[2] = {1.0f, 1.0f};
  float normal[4] = {1, 2, 3, 4};
  kernels::rope_apply(normal, 4, c, sn, false);  // pairs (0,1), (2,3)
  EXPECT_NEAR(normal[0], -2, 1e-6);              // rotated by 90 degrees
  EXPECT_NEAR(normal[1], 1, 1e-6);
  EXPECT_NEAR(normal[2], -4, 1e-6);
  EXPECT_NEAR(normal[3], 3, 1e-6);
  float neox[4] = {1, 2, 3, 4};
  kernels::rope_apply(neox, 4, c, sn, true);  // pairs (0,2), (1,3)
  EXPECT_NEAR(neox[0], -3, 1e-6);
  EXPECT_NEAR(neox[2], 1, 1e-6);
  EXPECT_NEAR(neox[1], -4, 1e-6);
  EXPECT_NEAR(neox[3], 2, 1e-6);
  // The cache: position 0 is the identity, and theta grows by theta_scale per pair.
  kernels::RopeParams p;
  p.n_rot = 4;
  p.theta_scale = 0.5f;
  float cs[2], ss[2];
  kernels::rope_cache(p, 0, cs, ss);
  EXPECT_EQ(cs[0], 1.0f);
  EXPECT_EQ(ss[1], 0.0f);
  kernels::rope_cache(p, 2, cs, ss);
  EXPECT_FLOAT_EQ(cs[1], std::cos(1.0f));
}

TEST(TinyModel, BadInputsGiveClearErrors) {
  auto m = tiny({}, "bad.gguf");
  ASSERT_TRUE(m);
  SessionParams sp;
  sp.n_ctx = 16;
  auto s = Session::create(*m, sp);
  ASSERT_TRUE(s.ok());
  const auto long_prompt = some_tokens(40, m->config().n_vocab);
  auto r = generate(**s, long_prompt, GenerateParams{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfRange);
  EXPECT_NE(r.error().message.find("context"), std::string::npos);
  const TokenId bad[1] = {m->config().n_vocab + 5};
  EXPECT_EQ((*s)->decode(bad).error().code, ErrorCode::kInvalidArgument);

  // A truncated model file names the file and the tensor.
  const std::string full = tmp_path("bad.gguf"), cut = tmp_path("bad-truncated.gguf");
  const auto size = fs::file_size(full);
  fs::copy_file(full, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, size - 100);
  auto t = Model::load(cut);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find(cut), std::string::npos);
  EXPECT_NE(t.error().message.find("past the end"), std::string::npos);

  // An unsupported architecture.
  testing::GgufWriter w;
  w.add_string("general.architecture", "mamba");
  const std::string arch = tmp_path("mamba.gguf");
  w.write(arch);
  auto a = Model::load(arch);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(a.error().message.find("mamba"), std::string::npos);
}

TEST(TinyModel, GenerationStreamsAndCancels) {
  auto m = tiny({}, "gen.gguf");
  ASSERT_TRUE(m);
  SessionParams sp;
  sp.n_ctx = 512;
  auto s = Session::create(*m, sp);
  ASSERT_TRUE(s.ok());
  GenerateParams gp;
  gp.max_tokens = 10;
  gp.sampler.greedy = true;
  int seen = 0;
  gp.on_token = [&](TokenId, std::string_view) { return ++seen < 3; };
  auto r = generate(**s, m->tokenizer().encode("hello world"), gp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "cancelled");
  EXPECT_EQ(seen, 3);
}

// A cancel flag set during a prefill batch stops it between layers and keeps nothing of it;
// cleared, the same session goes on and matches a fresh one.
TEST(TinyModel, PrefillCancelsBetweenLayersAndKeepsNothing) {
  auto m = tiny({}, "cancel.gguf");
  ASSERT_TRUE(m);
  std::atomic<bool> stop{false};
  SessionParams sp;
  sp.n_ctx = 512;
  sp.cancel = &stop;
  auto s = Session::create(*m, sp);
  ASSERT_TRUE(s.ok());
  const auto ids = m->tokenizer().encode("hello world, hello again");
  ASSERT_GT(ids.size(), 2u);
  stop = true;
  auto st = (*s)->decode(ids);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kCancelled);
  EXPECT_EQ((*s)->n_past(), 0);
  stop = false;
  ASSERT_TRUE((*s)->decode(ids).ok());
  SessionParams fresh_p;
  fresh_p.n_ctx = 512;
  auto fresh = Session::create(*m, fresh_p);
  ASSERT_TRUE((*fresh)->decode(ids).ok());
  for (int i = 0; i < m->config().n_vocab; ++i) ASSERT_EQ((*s)->logits()[i], (*fresh)->logits()[i]);
  stop = true;  // a single-token decode is never interrupted midway
  const TokenId one[] = {ids[0]};
  EXPECT_TRUE((*s)->decode(one).ok());
}

}  // namespace
}  // namespace docdsa

namespace docdsa {
namespace {

// Past 1024 keys, single-token decode splits each head's keys across threads and merges the
// partial softmaxes; the result must match the unsplit batched prefill.
TEST(TinyModel, SplitKDecodeMatchesPrefill) {
  auto m = tiny({}, "splitk.gguf");
  ASSERT_TRUE(m);
  const auto ids = some_tokens(1100, m->config().n_vocab);
  SessionParams sp;
  sp.n_ctx = 1200;
  sp.n_batch = 512;
  sp.n_threads = 2;
  auto whole = Session::create(*m, sp);
  ASSERT_TRUE(whole.ok());
  ASSERT_TRUE((*whole)->decode(ids).ok());
  auto step = Session::create(*m, sp);
  ASSERT_TRUE(step.ok());
  ASSERT_TRUE((*step)->decode(std::span<const TokenId>(ids.data(), ids.size() - 1)).ok());
  const TokenId last[1] = {ids.back()};
  ASSERT_TRUE((*step)->decode(last).ok());
  double max_diff = 0;
  for (int i = 0; i < m->config().n_vocab; ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs((*whole)->logits()[i] - (*step)->logits()[i])));
  EXPECT_LT(max_diff, 2e-3);
}

}  // namespace
}  // namespace docdsa
