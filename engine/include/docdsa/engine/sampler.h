// Next-token choice from logits: greedy, or temperature with top-k and top-p, seeded for
// reproducibility; both after repetition control over the tokens generated so far.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "docdsa/engine/tokenizer.h"

namespace docdsa {

// Repetition control looks only at what the model generated, never at the prompt: a document
// legitimately repeats the phrases an answer must quote, and an answer that quotes it is no
// loop. Applied before the choice, greedy included (answers and summaries are greedy).
struct SamplerParams {
  bool greedy = false;
  float temperature = 0.7f;
  int top_k = 40;       // 0: off
  float top_p = 0.95f;  // 1: off
  // Windowed penalty on single tokens (CTRL-style: positive logits divided, negative multiplied).
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  // DRY ("don't repeat yourself"): a token that would extend a sequence that already occurred
  // loses dry_multiplier * dry_base^(match - dry_allowed_length) of its logit, where `match` is
  // the length of the repeated sequence before it (at least dry_allowed_length to count). A
  // match never spans a token that contains one of dry_breakers (lines, quotes, list marks).
  float dry_multiplier = 0.0f;  // 0: off
  float dry_base = 1.75f;
  int dry_allowed_length = 2;
  int dry_last_n = 0;  // generated tokens looked at; 0: all
  std::string dry_breakers = "\n:\"*";
  // Hard block: a token that would make an n-gram (of ngram_size tokens) occur more than
  // ngram_max times is never chosen.
  // Neither DRY nor the block falls on a token that finishes a word already begun (the rest
  // of a name, the next digit of a number): a repeat is cut at the next word, not misspelt.
  // A word of 8 tokens or more is no longer spared (a loop of digits).
  int ngram_size = 0;  // 0: off
  int ngram_max = 2;
  uint64_t seed = 42;
};

// Greedy answers with loop control: the defaults for answers and summaries, chosen by
// measurement on the demo's questions (see tests/engine/repetition_model_test.cpp).
SamplerParams answer_sampling();

// What repetition control needs to know of each token id (bit flags, see TokenClass).
enum TokenClass : uint8_t {
  kBreaker = 1,    // its text contains one of the DRY breakers
  kWordStart = 2,  // its text starts with a letter or digit (or a non-ASCII byte)
  kWordEnd = 4,    // ... ends with one
};
// Per token id, its TokenClass flags; `breakers`: the characters that make a DRY breaker.
std::vector<uint8_t> token_classes(const Tokenizer& tok, std::string_view breakers);
// Per token id, the lowest id with the same text once ASCII case and leading spaces are ignored
// ("The", " the" and " THE" are one form): the n-gram block counts forms, so a loop that
// restarts a sentence with a capital ("The Court in ... the court in ...") is still one n-gram.
std::vector<TokenId> token_forms(const Tokenizer& tok);

class Sampler {
 public:
  // `classes`: see token_classes(); empty: no breakers, and every token starts a word.
  // `forms`: see token_forms(); empty: each token is its own form.
  explicit Sampler(SamplerParams p, std::vector<uint8_t> classes = {}, std::vector<TokenId> forms = {});
  // `generated`: the tokens generated so far (not the prompt), for repetition control.
  TokenId sample(const float* logits, int n_vocab, const std::vector<TokenId>& generated);
  // Repetition control applied to `logits` in place (a blocked token gets -infinity).
  void penalize(float* logits, int n_vocab, const std::vector<TokenId>& generated) const;
  const SamplerParams& params() const { return p_; }

 private:
  bool has(TokenId t, uint8_t flag) const;
  bool word_open(const std::vector<TokenId>& g) const;
  TokenId form(TokenId t) const;

  SamplerParams p_;
  std::vector<uint8_t> classes_;
  std::vector<TokenId> forms_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<std::pair<float, TokenId>> cand_;
};

// Index of the largest logit; the lowest index wins a tie.
TokenId argmax(const float* logits, int n_vocab);

}  // namespace docdsa
