// Forward pass of the llama family (llama, qwen2 = llama + QKV bias + NEOX RoPE), top to
// bottom: embed -> [RMSNorm -> QKV -> RoPE -> cache -> attention -> out-proj -> residual ->
// RMSNorm -> SwiGLU FFN -> residual] x n_layer -> RMSNorm -> logits.
// Every step is one whole-batch operation on the session's Backend (backend.h), which owns
// the buffers; the pairing layout of RoPE (qwen2's NEOX) is part of the backend's RoPE setup.
#include "docdsa/engine/session.h"

namespace docdsa {

Status Session::forward(std::span<const TokenId> tokens, bool want_logits, int logits_offset) {
  const ModelConfig& c = model_.config();
  Backend& b = *backend_;
  const int n = static_cast<int>(tokens.size());
  const int p0 = n_past_;
  const Activations& a = act_;

  // Token embeddings into the residual stream x. [n, n_embd]
  b.embed(model_.tok_embd(), tokens, a.x);

  for (int il = 0; il < c.n_layer; ++il) {
    // Nothing of this batch is kept: n_past_ only advances after the last layer.
    if (n > 1 && params_.cancel && params_.cancel->load(std::memory_order_relaxed))
      return make_error(ErrorCode::kCancelled, "cancelled");
    const LayerWeights& L = model_.layer(il);

    // Attention input norm. [n, n_embd]
    b.rms_norm(a.x, L.attn_norm, c.rms_eps, a.xn, n);
    // Q, K, V projections (+ biases: qwen2). [n, q_dim], [n, kv_dim], [n, kv_dim]
    const MatJob qkv[] = {{&L.wq, a.xn, a.q}, {&L.wk, a.xn, a.k}, {&L.wv, a.xn, a.v}};
    b.matmul(qkv, n);
    if (L.bq.present()) b.add_bias(a.q, L.bq, n);
    if (L.bk.present()) b.add_bias(a.k, L.bk, n);
    if (L.bv.present()) b.add_bias(a.v, L.bv, n);
    // Positions, then the new keys and values (and indexer keys) into the caches.
    b.rope(a.q, a.k, n, p0);
    b.store_kv(il, a.k, a.v, n, p0);
    if (indexed_) b.store_index(il, a.q, a.k, n, p0);
    if (params_.qk_tap) {
      tap_q_.resize(static_cast<size_t>(n) * a.q.cols);
      tap_k_.resize(static_cast<size_t>(n) * a.k.cols);
      b.download(a.q, n, tap_q_.data());
      b.download(a.k, n, tap_k_.data());
      params_.qk_tap(il, n, tap_q_.data(), tap_k_.data());
    }
    // Causal attention over the cache, dense or sparse (attend.cpp). [n, q_dim]
    attend(il, n, p0);
    // Output projection and residual. [n, n_embd]
    const MatJob wo[] = {{&L.wo, a.attn, a.xn}};
    b.matmul(wo, n);
    b.add(a.x, a.xn, n);

    // SwiGLU feed-forward and residual. [n, n_ff] -> [n, n_embd]
    b.rms_norm(a.x, L.ffn_norm, c.rms_eps, a.xn, n);
    const MatJob gate_up[] = {{&L.ffn_gate, a.xn, a.gate}, {&L.ffn_up, a.xn, a.up}};
    b.matmul(gate_up, n);
    b.swiglu(a.gate, a.up, n);
    const MatJob down[] = {{&L.ffn_down, a.gate, a.xn}};
    b.matmul(down, n);
    b.add(a.x, a.xn, n);
  }

  if (want_logits) {
    // Final norm and vocabulary projection, for the last token or for all of them.
    const int first = logits_offset < 0 ? n - 1 : 0;
    const int rows = n - first;
    float* out = logits_.data() + static_cast<size_t>(logits_offset < 0 ? 0 : logits_offset) * c.n_vocab;
    b.rms_norm(a.x.from_row(first), model_.output_norm(), c.rms_eps, a.xn, rows);
    b.logits(model_.output(), a.xn, rows, out);
  }
  n_past_ += n;
  return {};
}

}  // namespace docdsa
