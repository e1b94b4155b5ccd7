#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "docdsa/engine/chat_template.h"
#include "docdsa/engine/sampler.h"

namespace docdsa {
namespace {

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  const std::vector<float> l = {0.1f, 3.0f, 3.0f, -1.0f};
  EXPECT_EQ(argmax(l.data(), 4), 1);
  SamplerParams p;
  p.greedy = true;
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
}

TEST(Sampler, SeededSamplingIsReproducibleAndTopKOneIsGreedy) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[static_cast<size_t>(i)] = static_cast<float>((i * 37) % 11) * 0.3f;
  SamplerParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler a(p), b(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.sample(l.data(), 100, {}), b.sample(l.data(), 100, {}));
  p.top_k = 1;
  p.repeat_penalty = 1.0f;
  Sampler k1(p);
  EXPECT_EQ(k1.sample(l.data(), 100, {}), argmax(l.data(), 100));
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  const std::vector<float> l = {2.0f, 1.9f};
  SamplerParams p;
  p.temperature = 0.01f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.repeat_penalty = 1.5f;
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 2, {0}), 1);
}

// ---- repetition control -------------------------------------------------------------------

// The most times any n-gram of `ids` occurs.
int max_ngram_count(const std::vector<TokenId>& ids, size_t n) {
  std::map<std::vector<TokenId>, int> count;
  int best = 0;
  for (size_t i = 0; i + n <= ids.size(); ++i)
    best = std::max(best, ++count[std::vector<TokenId>(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                                       ids.begin() + static_cast<std::ptrdiff_t>(i + n))]);
  return best;
}

// A stubborn looping "model" over 16 tokens: after each token of `cycle` it prefers the next one
// by `margin`; after any other token it goes back to the cycle's start. Tokens 10-14 are its
// weaker alternatives.
struct LoopModel {
  std::vector<TokenId> cycle;
  float margin;
  std::vector<float> logits(const std::vector<TokenId>& gen) const {
    std::vector<float> l(16, -5.0f);
    for (int t = 10; t < 15; ++t) l[static_cast<size_t>(t)] = -0.1f * static_cast<float>(t - 10);
    TokenId want = cycle.front();
    if (!gen.empty())
      for (size_t i = 0; i < cycle.size(); ++i)
        if (cycle[i] == gen.back()) want = cycle[(i + 1) % cycle.size()];
    l[static_cast<size_t>(want)] = margin;
    return l;
  }
  std::vector<TokenId> run(Sampler& s, int n) const {
    std::vector<TokenId> gen;
    for (int i = 0; i < n; ++i) gen.push_back(s.sample(logits(gen).data(), 16, gen));
    return gen;
  }
};

SamplerParams plain_greedy() {
  SamplerParams p;
  p.greedy = true;
  return p;
}

TEST(Repetition, AnswerDefaultsBreakAGreedyLoop) {
  const LoopModel m{{1, 2, 3, 4, 5, 6}, 3.0f};
  Sampler plain(plain_greedy());
  EXPECT_GT(max_ngram_count(m.run(plain, 60), 4), 8);  // without control: the loop
  const SamplerParams p = answer_sampling();
  ASSERT_TRUE(p.greedy);
  Sampler s(p);
  const auto gen = m.run(s, 60);
  EXPECT_LE(max_ngram_count(gen, 4), 2);
}

TEST(Repetition, DryAloneStopsTheThirdCopy) {
  const LoopModel m{{1, 2, 3, 4, 5, 6}, 3.0f};
  SamplerParams p = plain_greedy();
  p.dry_multiplier = 0.8f;
  p.dry_base = 1.75f;
  p.dry_allowed_length = 3;
  Sampler s(p);
  const auto gen = m.run(s, 60);
  // The whole cycle never comes three times in a row.
  std::vector<TokenId> three;
  for (int i = 0; i < 3; ++i) three.insert(three.end(), m.cycle.begin(), m.cycle.end());
  EXPECT_EQ(std::search(gen.begin(), gen.end(), three.begin(), three.end()), gen.end());
  // ... but it starts right away: the first copy is whole.
  EXPECT_TRUE(std::equal(m.cycle.begin(), m.cycle.end(), gen.begin()));
}

TEST(Repetition, AConfidentSingleRepeatIsAllowed) {
  // A six-token phrase the model is sure of (margin 5): said twice, as a quote may be.
  const LoopModel m{{1, 2, 3, 4, 5, 6}, 5.0f};
  Sampler s(answer_sampling());
  const auto gen = m.run(s, 12);
  std::vector<TokenId> twice = m.cycle;
  twice.insert(twice.end(), m.cycle.begin(), m.cycle.end());
  EXPECT_EQ(gen, twice);
  // A third time is a loop.
  Sampler s2(answer_sampling());
  const auto more = m.run(s2, 18);
  EXPECT_NE(std::vector<TokenId>(more.begin() + 12, more.end()), m.cycle);
}

TEST(Repetition, DryPenaltyGrowsWithTheRepeatedLength) {
  SamplerParams p = plain_greedy();
  p.dry_multiplier = 0.5f;
  p.dry_base = 2.0f;
  p.dry_allowed_length = 2;
  Sampler s(p);
  auto penalty = [&](const std::vector<TokenId>& gen, TokenId t) {
    std::vector<float> l(16, 0.0f);
    s.penalize(l.data(), 16, gen);
    return -l[static_cast<size_t>(t)];
  };
  // 1 2 3 | 9 | 1 2 3: token 4 would repeat nothing; 9 follows "1 2 3" (3 tokens): 0.5 * 2^(3-2).
  EXPECT_FLOAT_EQ(penalty({1, 2, 3, 9, 1, 2, 3}, 9), 1.0f);
  EXPECT_FLOAT_EQ(penalty({1, 2, 3, 9, 1, 2, 3}, 4), 0.0f);
  // Two tokens repeated (the allowed length): the multiplier itself.
  EXPECT_FLOAT_EQ(penalty({2, 3, 9, 1, 2, 3}, 9), 0.5f);
  // One token repeated: below the allowed length, no penalty.
  EXPECT_FLOAT_EQ(penalty({3, 9, 1, 2, 3}, 9), 0.0f);
  // The longest repeat counts: 9 follows "2 3" once and "1 2 3" once.
  EXPECT_FLOAT_EQ(penalty({5, 2, 3, 9, 1, 2, 3, 9, 1, 2, 3}, 9), 0.5f * 16.0f);  // "2 3 9 1 2 3": 6 tokens
}

TEST(Repetition, BreakersResetTheMatch) {
  SamplerParams p = plain_greedy();
  p.dry_multiplier = 0.5f;
  p.dry_base = 2.0f;
  p.dry_allowed_length = 2;
  std::vector<uint8_t> breakers(16, 0);
  breakers[7] = 1;  // say "\n"
  Sampler s(p, breakers);
  auto penalty = [&](const std::vector<TokenId>& gen, TokenId t) {
    std::vector<float> l(16, 0.0f);
    s.penalize(l.data(), 16, gen);
    return -l[static_cast<size_t>(t)];
  };
  // Without the breaker "1 7 2 3" repeats as 4 tokens; across it only "2 3" counts.
  EXPECT_FLOAT_EQ(penalty({1, 7, 2, 3, 9, 1, 7, 2, 3}, 9), 0.5f);
  Sampler nob(p);
  std::vector<float> l(16, 0.0f);
  nob.penalize(l.data(), 16, {1, 7, 2, 3, 9, 1, 7, 2, 3});
  EXPECT_FLOAT_EQ(-l[9], 0.5f * 4.0f);
  // A breaker never extends a sequence: a new line after a repeated line is free.
  EXPECT_FLOAT_EQ(penalty({1, 2, 3, 7, 1, 2, 3}, 7), 0.0f);
  // Ending on a breaker: nothing is being repeated.
  EXPECT_FLOAT_EQ(penalty({1, 2, 7, 1, 2, 7}, 1), 0.0f);
}

TEST(Repetition, NgramBlockCapsOccurrences) {
  SamplerParams p = plain_greedy();
  p.ngram_size = 3;
  p.ngram_max = 2;
  Sampler s(p);
  auto blocked = [&](const std::vector<TokenId>& gen, TokenId t) {
    std::vector<float> l(16, 1.0f);
    s.penalize(l.data(), 16, gen);
    return std::isinf(l[static_cast<size_t>(t)]);
  };
  EXPECT_FALSE(blocked({1, 2, 3, 1, 2}, 3));        // "1 2 3" once: a second is fine
  EXPECT_TRUE(blocked({1, 2, 3, 1, 2, 3, 1, 2}, 3));  // twice: a third is not
  EXPECT_FALSE(blocked({1, 2, 3, 1, 2, 3, 1, 2}, 4));
  const std::vector<float> flat = {0.0f, 0.0f, 0.0f, 5.0f, 1.0f};
  EXPECT_EQ(s.sample(flat.data(), 5, {1, 2, 3, 1, 2, 3, 1, 2}), 4);  // greedy takes the next best
}

// Forms: token 7 is token 1 with a capital ("The" / " the"); the block counts them as one.
TEST(Repetition, NgramBlockCountsTokensOfOneFormAlike) {
  SamplerParams p = plain_greedy();
  p.ngram_size = 4;
  p.ngram_max = 2;
  std::vector<TokenId> forms(16);
  for (TokenId t = 0; t < 16; ++t) forms[static_cast<size_t>(t)] = t;
  forms[7] = 1;
  Sampler by_form(p, {}, forms), by_token(p);
  auto blocked = [&](const Sampler& s, const std::vector<TokenId>& gen, TokenId t) {
    std::vector<float> l(16, 1.0f);
    s.penalize(l.data(), 16, gen);
    return std::isinf(l[static_cast<size_t>(t)]);
  };
  const std::vector<TokenId> gen = {1, 2, 3, 4, 5, 7, 2, 3, 4, 6, 1, 2, 3};
  EXPECT_TRUE(blocked(by_form, gen, 4));    // "the court in dothard" twice: not a third time
  EXPECT_FALSE(blocked(by_token, gen, 4));  // token ids alone miss the capitalised copy
  // A follower's other forms are blocked too: after "... 2 3" twice followed by 4, 4 is the form.
  forms[9] = 4;
  Sampler by_form2(p, {}, forms);
  EXPECT_TRUE(blocked(by_form2, gen, 9));
}

TEST(Repetition, TheRestOfAWordIsNeverCut) {
  // " The", " Doth", "ard", " case", " is" (the word pieces of "The Dothard case is"), "1" a digit.
  std::vector<uint8_t> cls(16, kWordEnd);  // ids 0-15: " word" pieces: start with a space
  cls[2] = kWordStart | kWordEnd;          // "ard" continues " Doth"
  cls[5] = kWordStart | kWordEnd;          // "1"
  SamplerParams p = answer_sampling();
  Sampler s(p, cls);
  auto after = [&](const std::vector<TokenId>& gen, TokenId t) {
    std::vector<float> l(16, 0.0f);
    s.penalize(l.data(), 16, gen);
    return l[static_cast<size_t>(t)];
  };
  // "The Dothard case is" twice, then " The Doth": "ard" stays free, though it extends a
  // 7-token repeat (DRY); the next word pays instead.
  const std::vector<TokenId> twice = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1};
  EXPECT_EQ(after(twice, 2), 0.0f);
  std::vector<TokenId> thrice = twice;
  thrice.push_back(2);
  EXPECT_TRUE(std::isinf(after(thrice, 3)));  // " case" would make " The Doth ard case" a third time
  // Without word classes the same token would be cut mid-word.
  Sampler plain(p);
  std::vector<float> l(16, 0.0f);
  plain.penalize(l.data(), 16, twice);
  EXPECT_LT(l[2], -5.0f);
  // A word is spared only while short: a run of digits eight long is a loop.
  EXPECT_EQ(after({9, 5, 5, 5, 5, 5, 5}, 5), 0.0f);
  EXPECT_TRUE(std::isinf(after({9, 5, 5, 5, 5, 5, 5, 5, 5}, 5)));
}

TEST(Repetition, RepeatPenaltyLooksAtTheLastGeneratedTokens) {
  SamplerParams p = plain_greedy();
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  std::vector<float> l = {4.0f, 3.0f, -1.0f, 2.0f};
  s.penalize(l.data(), 4, {0, 1, 2});  // 0 is outside the window
  EXPECT_FLOAT_EQ(l[0], 4.0f);
  EXPECT_FLOAT_EQ(l[1], 1.5f);
  EXPECT_FLOAT_EQ(l[2], -2.0f);
  EXPECT_FLOAT_EQ(l[3], 2.0f);
  const std::vector<float> raw = {5.0f, 3.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(raw.data(), 4, {0, 2}), 1);  // greedy too: 5 / 2 < 3
}

TEST(ChatTemplate, ChatMLWithDefaultSystemAndLlama3) {
  auto t = ChatTemplate::from_template_text(
      "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful<|im_end|>\n' }}{% endif %}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->apply({{"user", "Hi"}}), "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t->apply({{"system", "S"}, {"user", "Hi"}}, false), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  auto l3 = ChatTemplate::from_template_text("{{ bos_token }}<|start_header_id|>{{ role }}<|end_header_id|>");
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(l3->apply({{"user", "Hi"}}),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_FALSE(ChatTemplate::from_template_text("{{ unknown }}").ok());
}

}  // namespace
}  // namespace docdsa
