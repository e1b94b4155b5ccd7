// Next-token choice from logits: greedy, or temperature with top-k, top-p and a repetition
// penalty, seeded for reproducibility.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "docdsa/engine/tokenizer.h"

namespace docdsa {

struct SamplerParams {
  bool greedy = false;
  float temperature = 0.7f;
  int top_k = 40;             // 0: off
  float top_p = 0.95f;        // 1: off
  float repeat_penalty = 1.1f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerParams p);
  // `history`: tokens so far (prompt and generated), for the repetition penalty.
  TokenId sample(const float* logits, int n_vocab, const std::vector<TokenId>& history);
  const SamplerParams& params() const { return p_; }

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, TokenId>> cand_;
};

// Index of the largest logit; the lowest index wins a tie.
TokenId argmax(const float* logits, int n_vocab);

}  // namespace docdsa
