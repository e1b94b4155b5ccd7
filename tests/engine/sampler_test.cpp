#include <gtest/gtest.h>

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
