#include "docdsa/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace docdsa {

TokenId argmax(const float* logits, int n_vocab) {
  int best = 0;
  for (int i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Sampler::Sampler(SamplerParams p) : p_(p), rng_(p.seed) {}

TokenId Sampler::sample(const float* logits, int n_vocab, const std::vector<TokenId>& history) {
  if (p_.greedy || p_.temperature <= 0.0f) return argmax(logits, n_vocab);
  cand_.resize(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cand_[static_cast<size_t>(i)] = {logits[i], i};
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    std::unordered_set<TokenId> seen;
    const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (size_t i = from; i < history.size(); ++i) seen.insert(history[i]);
    for (TokenId t : seen) {
      if (t < 0 || t >= n_vocab) continue;
      float& l = cand_[static_cast<size_t>(t)].first;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  // Sort descending by logit (ties: lower id first) and keep the top k.
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t k = p_.top_k > 0 ? std::min<size_t>(static_cast<size_t>(p_.top_k), cand_.size()) : cand_.size();
  std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), by_logit);
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
      if (acc >= p_.top_p) { keep = i + 1; break; }
    }
  }
  std::discrete_distribution<size_t> dist(probs.begin(), probs.begin() + static_cast<std::ptrdiff_t>(keep));
  return cand_[dist(rng_)].second;
}

}  // namespace docdsa
