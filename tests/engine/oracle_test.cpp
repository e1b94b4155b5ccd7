// The real default model against llama.cpp fixtures (scripts/oracle/make_fixtures.py):
// identical token ids, identical greedy continuations, and log-probabilities of llama.cpp's
// top-10 tokens within a stated tolerance. Needs the model (label "model"); the path comes
// from DOCDSA_TEST_MODEL, which CTest sets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "docdsa/engine/model.h"
#include "docdsa/engine/sampler.h"
#include "docdsa/engine/session.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/gemm.h"

namespace docdsa {
namespace {

// How close is close enough past the first position? llama.cpp's own two attention
// implementations (flash attention on and off) disagree on this model: the fixture records
// their distance at every check. Our engine must stay within the same envelope: mean top-10
// log-prob distance at most 1.5x llama.cpp's mode-to-mode mean, the worst at most 2x its
// worst, and greedy continuations agreeing for at least 80% as many tokens as llama.cpp's two
// modes agree with each other. Position 0 (no attention mixing): see FirstPositionLogitsMatchLlamaCpp.
constexpr double kMeanFactor = 1.5, kMaxFactor = 2.0, kGreedyFactor = 0.8;

const Model& model() {
  static std::unique_ptr<Model> m = [] {
    const char* p = std::getenv("DOCDSA_TEST_MODEL");
    if (p == nullptr) {
      ADD_FAILURE() << "DOCDSA_TEST_MODEL is not set (run through ctest, after scripts/fetch_model.sh)";
      return std::unique_ptr<Model>();
    }
    auto r = Model::load(p);
    if (!r.ok()) {
      ADD_FAILURE() << r.error().message << "\nRun scripts/fetch_model.sh to download the default model.";
      return std::unique_ptr<Model>();
    }
    return std::move(*r);
  }();
  if (!m) std::abort();
  return *m;
}

// Greedy continuation of n tokens without stopping at end-of-generation (as the fixtures).
std::vector<TokenId> greedy(Session& s, const std::vector<TokenId>& prompt, size_t n) {
  std::vector<TokenId> got;
  if (!s.decode(prompt).ok()) return got;
  for (size_t i = 0; i < n; ++i) {
    got.push_back(argmax(s.logits(), s.model().config().n_vocab));
    const TokenId one[1] = {got.back()};
    if (i + 1 < n && !s.decode(one).ok()) break;
  }
  return got;
}

nlohmann::json fixture(const char* name) {
  std::ifstream f(std::string(DOCDSA_FIXTURES) + "/" + name);
  EXPECT_TRUE(f.good()) << name;
  return nlohmann::json::parse(f);
}

TEST(Oracle, TokenIdsMatchLlamaCpp) {
  const auto fx = fixture("tokenizer_smollm2.json");
  int n = 0, same = 0;
  for (const auto& c : fx["cases"]) {
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<TokenId>>();
    const auto got = model().tokenizer().encode(text, false, c["parse_special"].get<bool>());
    ++n;
    if (got == want) ++same;
    EXPECT_EQ(got, want) << "text: " << nlohmann::json(text).dump();
  }
  EXPECT_GE(n, 200);
  std::printf("token agreement: %d/%d strings identical\n", same, n);
}

TEST(Oracle, DecodeRoundTripsText) {
  const auto fx = fixture("tokenizer_smollm2.json");
  for (const auto& c : fx["cases"]) {
    const std::string text = c["text"];
    const auto ids = model().tokenizer().encode(text, false, true);
    EXPECT_EQ(model().tokenizer().decode(ids, true), text);
  }
}

// Q4_0/Q4_1/Q8_0 matmuls in llama.cpp's float order (kernels/gemm.h) for one scope.
struct LlamaOrder {
  LlamaOrder() { kernels::set_gemm_llama_order(true); }
  ~LlamaOrder() { kernels::set_gemm_llama_order(false); }
};

// Position 0 (no attention mixing): with llama.cpp's matmul order, bit-identical logits. With
// the default block order (float rounding, which the quantised activations of later layers can
// magnify), the same top token and no logit further off than kMaxFactor x the worst distance
// between llama.cpp's own two attention modes (the bar past position 0).
TEST(Oracle, FirstPositionLogitsMatchLlamaCpp) {
  const auto fx = fixture("generation_smollm2.json");
  double fa_worst = 0;
  for (const auto& c : fx["cases"])
    for (const auto& chk : c["logit_checks"]) fa_worst = std::max(fa_worst, chk["flash_attn_max_logprob_diff"].get<double>());
  ASSERT_GT(fa_worst, 0.0);
  for (bool llama : {true, false}) {
    std::optional<LlamaOrder> order;
    if (llama) order.emplace();
    double worst = 0;
    for (const auto& c : fx["first_position"]) {
      SessionParams sp;
      sp.n_ctx = 8;
      auto s = Session::create(model(), sp);
      ASSERT_TRUE(s.ok());
      const TokenId one[1] = {c["token"].get<TokenId>()};
      ASSERT_TRUE((*s)->decode(one).ok());
      const float* logits = (*s)->logits();
      EXPECT_EQ(argmax(logits, model().config().n_vocab), c["top_ids"][0].get<int>()) << "token " << one[0];
      for (size_t k = 0; k < c["top_ids"].size(); ++k) {
        const int id = c["top_ids"][k];
        const float want = c["top_logits"][k].get<float>();
        if (llama) {
          EXPECT_EQ(logits[id], want) << "token " << one[0] << ", logit of " << id;
        }
        worst = std::max(worst, static_cast<double>(std::fabs(logits[id] - want)));
      }
    }
    if (!llama) {
      std::printf("first-position logits, block order: largest difference from llama.cpp %.4f (llama.cpp's modes past it: %.4f)\n",
                  worst, fa_worst);
      EXPECT_LE(worst, kMaxFactor * fa_worst);
    }
  }
}

// With exact (llama.cpp-compatible) attention and llama.cpp's matmul order, greedy output is
// compared with llama.cpp's flash-attention mode. It is bit-identical for the first positions of every prompt but not
// yet everywhere (see the engine issue's note), so the bar is the same envelope as above: at
// least as many tokens before divergence as llama.cpp's two modes share with each other.
TEST(Oracle, ExactAttentionGreedyMatchesLlamaCppFlashAttention) {
  if (!kernels::attention_compat_supported()) GTEST_SKIP() << "exact attention needs AVX-512";
  const LlamaOrder order;
  const auto fx = fixture("generation_smollm2.json");
  int identical = 0, matched = 0, generated = 0, modes_matched = 0;
  for (const auto& c : fx["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<TokenId>>();
    const auto want = c["greedy_ids_flash_attn"].get<std::vector<TokenId>>();
    SessionParams sp;
    sp.n_ctx = static_cast<int>(prompt.size() + want.size()) + 1;
    sp.exact_attention = true;
    auto s = Session::create(model(), sp);
    ASSERT_TRUE(s.ok());
    const std::vector<TokenId> got = greedy(**s, prompt, want.size());
    size_t prefix = 0;
    while (prefix < got.size() && got[prefix] == want[prefix]) ++prefix;
    matched += static_cast<int>(prefix);
    generated += static_cast<int>(want.size());
    if (got == want) ++identical;
    const auto plain = c["greedy_ids"].get<std::vector<TokenId>>();
    size_t modes = 0;
    while (modes < plain.size() && plain[modes] == want[modes]) ++modes;
    modes_matched += static_cast<int>(modes);
  }
  std::printf("exact attention vs llama.cpp flash attention: %d/%zu continuations identical, %d/%d tokens (llama.cpp's modes: %d)\n",
              identical, fx["cases"].size(), matched, generated, modes_matched);
  EXPECT_GE(matched, modes_matched);
}

TEST(Oracle, GreedyContinuationsAndLogprobsMatchLlamaCpp) {
  const auto fx = fixture("generation_smollm2.json");
  const int n_vocab = model().config().n_vocab;
  int identical = 0, total = 0, matched = 0, generated = 0, fa_matched = 0;
  double worst = 0.0, dist_sum = 0.0, fa_worst = 0.0, fa_sum = 0.0;
  int n_checks = 0;
  for (const auto& c : fx["cases"]) {
    const auto prompt = c["prompt_ids"].get<std::vector<TokenId>>();
    const auto want = c["greedy_ids"].get<std::vector<TokenId>>();
    EXPECT_EQ(model().tokenizer().encode(c["prompt"].get<std::string>(), false, true), prompt);
    SessionParams sp;
    sp.n_ctx = static_cast<int>(prompt.size() + want.size()) + 1;
    auto s = Session::create(model(), sp);
    ASSERT_TRUE(s.ok());
    // Greedy, 32 tokens, no stop on end-of-generation (as the fixture was made).
    const std::vector<TokenId> got = greedy(**s, prompt, want.size());
    ++total;
    if (got == want) ++identical;
    size_t prefix = 0;
    while (prefix < got.size() && got[prefix] == want[prefix]) ++prefix;
    matched += static_cast<int>(prefix);
    generated += static_cast<int>(want.size());
    const auto fa = c["greedy_ids_flash_attn"].get<std::vector<TokenId>>();
    size_t fa_prefix = 0;
    while (fa_prefix < fa.size() && fa[fa_prefix] == want[fa_prefix]) ++fa_prefix;
    fa_matched += static_cast<int>(fa_prefix);

    // Log-probabilities along llama.cpp's own sequence (teacher forcing).
    std::vector<TokenId> seq = prompt;
    seq.insert(seq.end(), want.begin(), want.end() - 1);
    (*s)->truncate(0);
    ASSERT_TRUE((*s)->decode(seq, Logits::kAll).ok());
    for (const auto& chk : c["logit_checks"]) {
      const int step = chk["step"];
      const float* row = (*s)->logits_at(static_cast<int>(prompt.size()) + step - 1);
      double mx = row[0];
      for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, static_cast<double>(row[i]));
      double sum = 0;
      for (int i = 0; i < n_vocab; ++i) sum += std::exp(row[i] - mx);
      const double lse = mx + std::log(sum);
      const double ref_lse = chk["logsumexp"];
      double check_worst = 0.0;
      for (size_t k = 0; k < chk["top_ids"].size(); ++k) {
        const int id = chk["top_ids"][k];
        const double ours = row[id] - lse, theirs = chk["top_logits"][k].get<double>() - ref_lse;
        check_worst = std::max(check_worst, std::fabs(ours - theirs));
      }
      const double fa_d = chk["flash_attn_max_logprob_diff"];
      worst = std::max(worst, check_worst);
      dist_sum += check_worst;
      fa_worst = std::max(fa_worst, fa_d);
      fa_sum += fa_d;
      ++n_checks;
    }
  }
  std::printf("greedy: %d/%d continuations identical, %d/%d tokens before divergence (llama.cpp flash-attn vs not: %d)\n",
              identical, total, matched, generated, fa_matched);
  std::printf("top-10 log-prob distance: mean %.4f max %.4f nats (llama.cpp flash-attn vs not: mean %.4f max %.4f)\n",
              dist_sum / n_checks, worst, fa_sum / n_checks, fa_worst);
  EXPECT_GE(total, 20);
  EXPECT_GE(matched, kGreedyFactor * fa_matched);
  EXPECT_LE(dist_sum / n_checks, kMeanFactor * fa_sum / n_checks);
  EXPECT_LE(worst, kMaxFactor * fa_worst);
}

}  // namespace
}  // namespace docdsa
