// Which attention a layer runs, decided per batch at run time (DESIGN.md, "DSA"): dense
// while the context fits in k (or when forced, or in the first dense_layers layers), else
// DSA — the backend selects each token's top-k positions by indexer score (plus sinks and
// window) and attends over those alone. Selections are reported to the selection tap (the
// sources of an answer) and, for diagnostics, measured against dense attention mass.
#include <vector>

#include "docdsa/engine/session.h"

namespace docdsa {

void Session::attend(int il, int n, int p0) {
  Backend& b = *backend_;
  const bool sparse = dsa_ && !force_dense_ && p0 + n > params_.dsa.top_k && il >= params_.dsa.dense_layers;
  if (sparse) {
    b.select(il, n, p0);
    if (params_.selection_tap)
      for (int t = 0; t < n; ++t) params_.selection_tap(il, p0 + t, b.selection(t));
    if (params_.recall_every > 0) {
      std::vector<int> rows;
      for (int t = 0; t < n; ++t)
        if (p0 + t + 1 > params_.dsa.top_k && (p0 + t) % params_.recall_every == 0) rows.push_back(t);
      std::vector<double> r(rows.size());
      b.attention_mass(il, act_.q, rows, p0, r.data());
      for (double x : r) {
        recall_sum_[static_cast<size_t>(il)] += x;
        ++recall_n_[static_cast<size_t>(il)];
      }
    }
  } else if (indexed_ && n == 1 && params_.observe_k > 0 && params_.selection_tap) {
    // Dense attention, but the sources still say what the indexer ranks highest.
    b.observe(il, p0, params_.observe_k);
    params_.selection_tap(il, p0, b.selection(0));
  }
  b.attention(il, act_.q, act_.attn, n, p0, sparse);
}

}  // namespace docdsa
