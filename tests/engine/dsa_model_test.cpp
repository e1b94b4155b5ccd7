// DSA with the real default model: on real text the sparse next-token distributions stay
// close to dense ones and the selections hold most of the attention mass; a passkey that
// dense attention retrieves, DSA retrieves too. Sizes are small (2K tokens, k = 512) so the
// ratio k / context matches the 8K / 2048 product setting while the test stays quick.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/generate.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"

namespace docdsa {
namespace {

const Model& model() {
  static std::unique_ptr<Model> m = [] {
    const char* p = std::getenv("DOCDSA_TEST_MODEL");
    auto r = Model::load(p ? p : "");
    if (!r.ok()) {
      ADD_FAILURE() << "cannot load DOCDSA_TEST_MODEL: " << r.error().message;
      return std::unique_ptr<Model>();
    }
    return std::move(*r);
  }();
  return *m;
}

const Indexer& indexer() {
  static std::unique_ptr<Indexer> ix = [] {
    std::ifstream f(std::string(DOCDSA_SOURCE_DIR) + "/resources/calibration/calibration.txt");
    std::stringstream ss;
    ss << f.rdbuf();
    auto toks = model().tokenizer().encode(ss.str(), true);
    toks.resize(1024);
    auto r = Indexer::calibrate(model(), toks, Indexer::kDefaultRank, 0);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return std::move(*r);
  }();
  return *ix;
}

std::vector<TokenId> essay_tokens(int n) {
  std::string text;
  for (const char* name : {"worked.txt", "startupideas.txt", "hwh.txt"}) {
    std::ifstream f(std::string(DOCDSA_CORPUS) + "/haystack/PaulGrahamEssays/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    text += ss.str();
  }
  auto t = model().tokenizer().encode(text, true);
  EXPECT_GE(static_cast<int>(t.size()), n);
  t.resize(static_cast<size_t>(n));
  return t;
}

SessionParams params(AttentionMode mode, int n_ctx) {
  SessionParams sp;
  sp.n_ctx = n_ctx;
  sp.dsa.mode = mode;
  sp.dsa.top_k = 512;
  sp.dsa.sinks = 16;
  sp.dsa.window = 128;
  sp.indexer = &indexer();
  return sp;
}

std::vector<std::vector<float>> last_logprobs(Session& s, const std::vector<TokenId>& toks, int last) {
  const size_t head = toks.size() - static_cast<size_t>(last);
  EXPECT_TRUE(s.decode(std::span(toks).first(head)).ok());
  EXPECT_TRUE(s.decode(std::span(toks).subspan(head), Logits::kAll).ok());
  const int V = s.model().config().n_vocab;
  std::vector<std::vector<float>> out;
  for (int i = 0; i < last; ++i) {
    const float* l = s.logits_at(i);
    const float mx = *std::max_element(l, l + V);
    double z = 0;
    for (int j = 0; j < V; ++j) z += std::exp(static_cast<double>(l[j] - mx));
    std::vector<float> lp(l, l + V);
    for (float& x : lp) x -= mx + static_cast<float>(std::log(z));
    out.push_back(std::move(lp));
  }
  return out;
}

TEST(DsaModel, SparseTracksDenseOnRealText) {
  const auto toks = essay_tokens(2048);
  auto dense = Session::create(model(), params(AttentionMode::kDense, 2048));
  SessionParams sp = params(AttentionMode::kDsa, 2048);
  sp.recall_every = 32;
  auto dsa = Session::create(model(), sp);
  ASSERT_TRUE(dense.ok() && dsa.ok());
  const auto a = last_logprobs(**dense, toks, 128);
  const auto b = last_logprobs(**dsa, toks, 128);
  int agree = 0;
  double kl = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    agree += std::max_element(a[i].begin(), a[i].end()) - a[i].begin() == std::max_element(b[i].begin(), b[i].end()) - b[i].begin();
    for (size_t j = 0; j < a[i].size(); ++j) kl += std::exp(static_cast<double>(a[i][j])) * (a[i][j] - b[i][j]);
  }
  kl /= static_cast<double>(a.size());
  double rsum = 0;
  int64_t rn = 0;
  for (size_t il = 0; il < (*dsa)->recall_sum().size(); ++il) {
    rsum += (*dsa)->recall_sum()[il];
    rn += (*dsa)->recall_count()[il];
  }
  ASSERT_GT(rn, 0);
  const double top1 = static_cast<double>(agree) / static_cast<double>(a.size());
  std::printf("k=512 of 2048: top-1 agreement %.3f, mean KL %.4f, recall %.4f\n", top1, kl, rsum / static_cast<double>(rn));
  EXPECT_GE(top1, 0.85);
  EXPECT_LE(kl, 0.03);
  EXPECT_GE(rsum / static_cast<double>(rn), 0.93);
  EXPECT_LT((*dsa)->cost().attn_flops_dsa, (*dsa)->cost().attn_flops_dense);
}

TEST(DsaModel, PasskeyFoundByDenseIsFoundBySparse) {
  const std::string junk = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  std::string text = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";
  for (int i = 0; i < 60; ++i) {
    if (i == 25) text += " The pass key is 68301. Remember it. 68301 is the pass key.";
    text += junk;
  }
  text += " What is the pass key? The pass key is";
  const auto prompt = model().tokenizer().encode(text, true);
  ASSERT_GT(prompt.size(), 1024u);
  std::string outs[2];
  for (int m = 0; m < 2; ++m) {
    auto s = Session::create(model(), params(m == 0 ? AttentionMode::kDense : AttentionMode::kDsa, static_cast<int>(prompt.size()) + 8));
    ASSERT_TRUE(s.ok());
    GenerateParams gp;
    gp.max_tokens = 6;
    gp.sampler.greedy = true;
    auto r = generate(**s, prompt, gp);
    ASSERT_TRUE(r.ok());
    outs[m] = r->text;
    if (m == 1) {
      EXPECT_GT((*s)->cost().sparse_rows, 0);
    }
  }
  ASSERT_NE(outs[0].find("68301"), std::string::npos) << "dense missed the passkey: " << outs[0];
  EXPECT_NE(outs[1].find("68301"), std::string::npos) << "DSA missed the passkey: " << outs[1];
}

// Rewinding a DSA session and reading something else after the kept prefix (follow-up
// questions, eval passkey's shared haystacks) gives the same logits as a session that never
// read what was dropped: nothing of the dropped tokens survives in the KV, key copies or
// indexer caches. The tail is long enough that the prefix is read sparsely.
TEST(DsaModel, RewindThenReadMatchesAFreshRead) {
  const auto toks = essay_tokens(2048);
  // Cut at 1203, inside a 16-token block: a partly filled block of stale keys would show.
  const std::vector<TokenId> a(toks.begin(), toks.begin() + 1203), dropped(toks.begin() + 1203, toks.begin() + 1700),
      tail(toks.begin() + 1700, toks.end());
  const int V = model().config().n_vocab;
  std::vector<float> logits[2];
  for (int rewound = 0; rewound < 2; ++rewound) {
    auto s = Session::create(model(), params(AttentionMode::kDsa, 2048));
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->decode(a).ok());
    if (rewound) {
      ASSERT_TRUE((*s)->decode(dropped).ok());
      (*s)->truncate(static_cast<int>(a.size()));
    }
    (*s)->reset_cost();
    ASSERT_TRUE((*s)->decode(tail, Logits::kAll).ok());
    EXPECT_GT((*s)->cost().sparse_rows, 0) << "the tail must read sparsely";
    for (size_t i = 0; i < tail.size(); ++i) logits[rewound].insert(logits[rewound].end(), (*s)->logits_at(static_cast<int>(i)), (*s)->logits_at(static_cast<int>(i)) + V);
  }
  ASSERT_EQ(logits[0].size(), logits[1].size());
  size_t differ = 0;
  for (size_t i = 0; i < logits[0].size(); ++i) differ += logits[0][i] != logits[1][i];
  EXPECT_EQ(differ, 0u) << "of " << logits[0].size() << " logits";
}

}  // namespace
}  // namespace docdsa
