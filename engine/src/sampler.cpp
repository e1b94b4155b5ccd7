#include "docdsa/engine/sampler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

namespace docdsa {

namespace {
// Past this many repeated tokens the DRY penalty is already decisive; the cap keeps the power
// finite and the scan short.
constexpr int kDryMaxMatch = 64;
// A word this many tokens long or longer gets no more leniency (see SamplerParams).
constexpr int kMaxWordTokens = 8;
}  // namespace

SamplerParams answer_sampling() {
  SamplerParams p;
  p.greedy = true;
  p.dry_multiplier = 0.8f;
  p.dry_base = 1.75f;
  p.dry_allowed_length = 3;
  p.ngram_size = 4;
  p.ngram_max = 2;
  return p;
}

std::vector<uint8_t> token_classes(const Tokenizer& tok, std::string_view breakers) {
  std::vector<uint8_t> out(static_cast<size_t>(tok.n_vocab()), 0);
  auto wordy = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80; };
  for (TokenId t = 0; t < tok.n_vocab(); ++t) {
    const std::string piece = tok.token_to_piece(t, false);
    uint8_t c = 0;
    if (!breakers.empty() && piece.find_first_of(breakers) != std::string::npos) c |= kBreaker;
    if (!piece.empty() && wordy(piece.front())) c |= kWordStart;
    if (!piece.empty() && wordy(piece.back())) c |= kWordEnd;
    out[static_cast<size_t>(t)] = c;
  }
  return out;
}

std::vector<TokenId> token_forms(const Tokenizer& tok) {
  std::vector<TokenId> out(static_cast<size_t>(tok.n_vocab()));
  std::unordered_map<std::string, TokenId> first;  // normalised text -> lowest id
  for (TokenId t = 0; t < tok.n_vocab(); ++t) {
    std::string piece = tok.token_to_piece(t, false);
    piece.erase(0, piece.find_first_not_of(' '));
    for (char& c : piece) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[static_cast<size_t>(t)] = piece.empty() ? t : first.try_emplace(std::move(piece), t).first->second;
  }
  return out;
}

TokenId argmax(const float* logits, int n_vocab) {
  int best = 0;
  for (int i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Sampler::Sampler(SamplerParams p, std::vector<uint8_t> classes, std::vector<TokenId> forms)
    : p_(std::move(p)), classes_(std::move(classes)), forms_(std::move(forms)), rng_(p_.seed) {}

TokenId Sampler::form(TokenId t) const {
  return t >= 0 && static_cast<size_t>(t) < forms_.size() ? forms_[static_cast<size_t>(t)] : t;
}

bool Sampler::has(TokenId t, uint8_t flag) const {
  return t >= 0 && static_cast<size_t>(t) < classes_.size() && (classes_[static_cast<size_t>(t)] & flag) != 0;
}

// The generated text ends inside a word that is still short: a token starting with a letter
// or digit would continue it.
bool Sampler::word_open(const std::vector<TokenId>& g) const {
  int len = 0;  // tokens of the current word
  for (size_t i = g.size(); i-- > 0;) {
    if (!has(g[i], kWordEnd)) break;
    ++len;
    if (!has(g[i], kWordStart) || i == 0 || !has(g[i - 1], kWordEnd)) break;  // the word's first token
  }
  return len > 0 && len < kMaxWordTokens;
}

void Sampler::penalize(float* logits, int n_vocab, const std::vector<TokenId>& g) const {
  const int n = static_cast<int>(g.size());
  auto valid = [&](TokenId t) { return t >= 0 && t < n_vocab; };
  const bool open = word_open(g);
  auto finishes_word = [&](TokenId t) { return open && has(t, kWordStart); };

  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0 && n > 0) {
    std::vector<TokenId> seen(g.end() - std::min(n, p_.repeat_last_n), g.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (TokenId t : seen) {
      if (!valid(t)) continue;
      float& l = logits[t];
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }

  // DRY: for each earlier position j, the repeated sequence is the longest run ending just
  // before j that equals the run ending at the last token; g[j] would extend it.
  if (p_.dry_multiplier > 0.0f && n >= 2 && !has(g[static_cast<size_t>(n - 1)], kBreaker)) {
    const int from = p_.dry_last_n > 0 ? std::max(0, n - p_.dry_last_n) : 0;
    std::unordered_map<TokenId, int> match;  // candidate -> longest repeated sequence it extends
    for (int j = from + 1; j < n; ++j) {
      const TokenId cand = g[static_cast<size_t>(j)];
      // A breaker ends a sequence, it does not extend one.
      if (has(cand, kBreaker) || !valid(cand) || finishes_word(cand)) continue;
      int k = 0;
      while (k < kDryMaxMatch && j - 1 - k >= from) {
        const TokenId a = g[static_cast<size_t>(j - 1 - k)];
        if (a != g[static_cast<size_t>(n - 1 - k)] || has(a, kBreaker)) break;
        ++k;
      }
      if (k >= p_.dry_allowed_length) {
        int& m = match[cand];
        m = std::max(m, k);
      }
    }
    for (const auto& [t, k] : match) {
      const double pen =
          static_cast<double>(p_.dry_multiplier) * std::pow(static_cast<double>(p_.dry_base), k - p_.dry_allowed_length);
      logits[t] -= static_cast<float>(std::min(pen, 1e30));
    }
  }

  // N-gram block: count (by form) what followed each earlier occurrence of the last
  // ngram_size-1 tokens' forms; every token of a form seen ngram_max times is blocked.
  const int N = p_.ngram_size;
  if (N > 0 && p_.ngram_max > 0 && n >= N - 1) {
    std::unordered_map<TokenId, int> count;
    for (int j = N - 1; j < n; ++j) {
      bool same = true;
      for (int m = 1; m < N && same; ++m) same = form(g[static_cast<size_t>(j - m)]) == form(g[static_cast<size_t>(n - m)]);
      if (same) ++count[form(g[static_cast<size_t>(j)])];
    }
    auto block = [&](TokenId t) {
      if (valid(t) && !finishes_word(t)) logits[t] = -std::numeric_limits<float>::infinity();
    };
    for (const auto& [f, c] : count) {
      if (c < p_.ngram_max) continue;
      if (forms_.empty()) {
        block(f);
      } else {
        for (TokenId t = 0; t < std::min<TokenId>(n_vocab, static_cast<TokenId>(forms_.size())); ++t)
          if (forms_[static_cast<size_t>(t)] == f) block(t);
      }
    }
  }
}

TokenId Sampler::sample(const float* logits, int n_vocab, const std::vector<TokenId>& generated) {
  work_.assign(logits, logits + n_vocab);
  penalize(work_.data(), n_vocab, generated);
  if (p_.greedy || p_.temperature <= 0.0f) return argmax(work_.data(), n_vocab);
  cand_.resize(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cand_[static_cast<size_t>(i)] = {work_[static_cast<size_t>(i)], i};
  // Sort descending by logit (ties: lower id first) and keep the top k.
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t k = p_.top_k > 0 ? std::min<size_t>(static_cast<size_t>(p_.top_k), cand_.size()) : cand_.size();
  std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), by_logit);
  cand_.resize(k);
  // Blocked tokens (-infinity) never make the cut, unless nothing else is left.
  while (k > 1 && std::isinf(cand_[k - 1].first)) --k;
  cand_.resize(k);
  // Softmax with temperature.
  const float mx = cand_.front().first;
  std::vector<double> probs(k);
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) {
    probs[i] = std::exp(static_cast<double>((cand_[i].first - mx) / p_.temperature));
    sum += probs[i];
  }
  // Top-p: the smallest prefix whose mass reaches p.
  size_t keep = k;
  if (p_.top_p < 1.0f) {
    double acc = 0.0;
    for (size_t i = 0; i < k; ++i) {
      acc += probs[i] / sum;
      if (acc >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  std::discrete_distribution<size_t> dist(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(keep));
  return cand_[dist(rng_)].second;
}

}  // namespace docdsa
