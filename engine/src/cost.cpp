// The cost model (DESIGN.md, "Cost model"): what a run's attention and linear layers cost,
// counted as the work is done, against what dense attention would have cost; and the
// report's sums and dense-time estimates.
#include <algorithm>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/session.h"

namespace docdsa {

void Session::count_cost(int n, int p0, bool decoding) {
  const ModelConfig& c = model_.config();
  const double L = c.n_layer, hq = c.n_head, hd = c.head_dim;
  const double Ls = dsa_ ? std::max(0, c.n_layer - params_.dsa.dense_layers) : 0;  // layers that may go sparse
  const int K = params_.dsa.top_k;
  const double kv_row = 4.0 * c.n_head_kv * c.head_dim;  // K and V bytes of one position
  const double hi = dsa_ ? static_cast<double>(idx_heads_) : 0.0;
  const double ri = dsa_ ? static_cast<double>(params_.indexer->rank()) : 0.0;
  const double ikey = dsa_ ? params_.indexer->key_dim() + 4.0 : 0.0;  // int8 key + scale
  const double linear = 2.0 * static_cast<double>(model_.linear_macs_per_token());
  const double weights = static_cast<double>(model_.weight_bytes());
  for (int t = 0; t < n; ++t) {
    const double ctx = p0 + t + 1;
    const double dense = 4.0 * hq * hd * ctx;
    const bool sparse = dsa_ && !force_dense_ && ctx > K;
    const double ls = sparse ? Ls : 0.0;
    cost_.attn_flops_dense += L * dense;
    cost_.attn_flops_dsa += (L - ls) * dense + ls * (2.0 * hi * ri * ctx + 4.0 * hq * hd * K);
    cost_.linear_flops += linear;
    cost_.selected_keys += static_cast<int64_t>(ls) * K;
    cost_.sparse_rows += static_cast<int64_t>(ls);
    if (decoding) {
      cost_.decode_bytes_dense += L * ctx * kv_row;
      cost_.decode_bytes_dsa += (L - ls) * ctx * kv_row + ls * (ctx * ikey + K * kv_row);
      cost_.weight_bytes_per_token = weights;
    }
  }
}

void CostReport::add(const CostReport& o) {
  device = o.device;  // a total over runs on one device names it
  prompt_tokens += o.prompt_tokens;
  decoded_tokens += o.decoded_tokens;
  context_tokens = std::max(context_tokens, o.context_tokens);
  attn_flops_dense += o.attn_flops_dense;
  attn_flops_dsa += o.attn_flops_dsa;
  linear_flops += o.linear_flops;
  decode_bytes_dense += o.decode_bytes_dense;
  decode_bytes_dsa += o.decode_bytes_dsa;
  weight_bytes_per_token = std::max(weight_bytes_per_token, o.weight_bytes_per_token);
  prefill_seconds += o.prefill_seconds;
  decode_seconds += o.decode_seconds;
  dense_prefill_seconds += o.dense_prefill_seconds;
  dense_decode_seconds += o.dense_decode_seconds;
  dense_measured = dense_measured && o.dense_measured;
  selected_keys += o.selected_keys;
  sparse_rows += o.sparse_rows;
}

double CostReport::bytes_per_decoded_token_dense() const {
  return decoded_tokens ? decode_bytes_dense / static_cast<double>(decoded_tokens) + weight_bytes_per_token : 0.0;
}
double CostReport::bytes_per_decoded_token_dsa() const {
  return decoded_tokens ? decode_bytes_dsa / static_cast<double>(decoded_tokens) + weight_bytes_per_token : 0.0;
}

void CostReport::estimate_dense_times() {
  if (dense_measured) return;
  // Prefill is compute-bound: scale by total FLOPs. Decode is memory-bound: scale by bytes.
  const double dsa_flops = linear_flops + attn_flops_dsa;
  const double dense_flops = linear_flops + attn_flops_dense;
  dense_prefill_seconds = dsa_flops > 0 ? prefill_seconds * dense_flops / dsa_flops : prefill_seconds;
  const double bd = bytes_per_decoded_token_dsa();
  dense_decode_seconds = bd > 0 ? decode_seconds * bytes_per_decoded_token_dense() / bd : decode_seconds;
}

}  // namespace docdsa
