// Forward pass of the llama family (llama, qwen2 = llama + QKV bias + NEOX RoPE), top to
// bottom: embed -> [RMSNorm -> QKV -> RoPE -> cache -> attention -> out-proj -> residual ->
// RMSNorm -> SwiGLU FFN -> residual] x n_layer -> RMSNorm -> logits.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "docdsa/engine/session.h"
#include "docdsa/kernels/attention.h"
#include "docdsa/kernels/fp16.h"
#include "docdsa/kernels/ops.h"

namespace docdsa {
namespace {

using kernels::DType;

constexpr int kTokenBlock = 64;  // tokens per matmul tile sweep (activations stay in cache)

// One matrix product y[t, :] = W x[t, :] over n_tok rows of x.
struct MatJob {
  const Weight* w;
  const float* x;        // [n_tok, x_stride]
  int64_t x_stride;
  float* y;              // [n_tok, y_stride]
  int64_t y_stride;
};

// Quantises each distinct (input, vec-dot type) once, then runs every job's row chunks as
// tasks of one parallel section.
void run_matmuls(ThreadPool& pool, std::initializer_list<MatJob> jobs, int n_tok, std::vector<uint8_t>& act) {
  // One quantised copy per distinct (input, vec-dot type); each job points at its copy.
  struct Quantised { const float* x; int64_t x_stride, n_in; DType type; size_t offset, stride; };
  std::vector<Quantised> qs;
  std::vector<size_t> job_q;
  size_t used = 0;
  for (const MatJob& j : jobs) {
    const DType vt = kernels::info(j.w->type).vec_dot_type;
    size_t k = 0;
    while (k < qs.size() && !(qs[k].x == j.x && qs[k].type == vt)) ++k;
    if (k == qs.size()) {
      const size_t stride = (kernels::row_bytes(vt, j.w->n_in) + 63) / 64 * 64;
      qs.push_back({j.x, j.x_stride, j.w->n_in, vt, used, stride});
      used += stride * static_cast<size_t>(n_tok);
    }
    job_q.push_back(k);
  }
  if (act.size() < used) act.resize(used);
  pool.run(static_cast<int>(qs.size()) * n_tok, [&](int task, int) {
    const Quantised& q = qs[static_cast<size_t>(task / n_tok)];
    const int t = task % n_tok;
    kernels::quantize_row(q.type, q.x + t * q.x_stride, act.data() + q.offset + t * q.stride, q.n_in);
  });
  // Row chunks of every job.
  struct Chunk { const MatJob* job; const Quantised* q; int64_t r0, r1; };
  std::vector<Chunk> chunks;
  const int64_t target_tasks = static_cast<int64_t>(pool.size()) * 8;
  size_t ji = 0;
  for (const MatJob& j : jobs) {
    const Quantised* q = &qs[job_q[ji++]];
    int64_t chunk = (j.w->n_out + target_tasks - 1) / target_tasks;
    chunk = std::max<int64_t>(16, (chunk + 15) / 16 * 16);
    for (int64_t r = 0; r < j.w->n_out; r += chunk) chunks.push_back({&j, q, r, std::min(j.w->n_out, r + chunk)});
  }
  pool.run(static_cast<int>(chunks.size()), [&](int task, int) {
    const Chunk& c = chunks[static_cast<size_t>(task)];
    for (int t0 = 0; t0 < n_tok; t0 += kTokenBlock) {
      kernels::MatmulArgs a;
      a.wtype = c.job->w->type;
      a.n_in = c.job->w->n_in;
      a.w = c.job->w->data;
      a.w_stride = c.job->w->row_stride;
      a.a = act.data() + c.q->offset + t0 * c.q->stride;
      a.a_stride = c.q->stride;
      a.n_tok = std::min(kTokenBlock, n_tok - t0);
      a.out = c.job->y + t0 * c.job->y_stride;
      a.ldo = c.job->y_stride;
      kernels::matmul_tile(a, c.r0, c.r1);
    }
  });
}

}  // namespace

Status Session::forward(std::span<const TokenId> tokens, bool want_logits, int logits_offset) {
  const ModelConfig& c = model_.config();
  const int n = static_cast<int>(tokens.size());
  const int p0 = n_past_;
  const int n_embd = c.n_embd, hd = c.head_dim, n_head = c.n_head, n_kv = c.n_head_kv;
  const int q_dim = n_head * hd, kv_dim = n_kv * hd;
  float* x = x_.data();      // [n, n_embd] residual stream
  float* xn = xn_.data();    // [n, n_embd] normalised / projected
  float* q = q_.data();      // [n, q_dim]
  float* k = k_.data();      // [n, kv_dim]
  float* v = v_.data();      // [n, kv_dim]
  float* attn = attn_.data();  // [n, q_dim]

  // Token embeddings.
  const Weight& emb = model_.tok_embd();
  pool_.run(n, [&](int t, int) {
    kernels::dequantize_row(emb.type, emb.data + static_cast<size_t>(tokens[t]) * emb.row_stride, x + t * n_embd, n_embd);
  });

  for (int il = 0; il < c.n_layer; ++il) {
    // Nothing of this batch is kept: n_past_ only advances after the last layer.
    if (n > 1 && params_.cancel && params_.cancel->load(std::memory_order_relaxed)) return make_error(ErrorCode::kCancelled, "cancelled");
    const LayerWeights& L = model_.layer(il);
    uint16_t* kc = k_cache_[static_cast<size_t>(il)].data();  // [n_kv][blocked n_ctx x hd] f16
    uint16_t* vc = v_cache_[static_cast<size_t>(il)].data();  // [n_ctx, kv_dim] f16
    const int64_t kstride = k_head_stride();

    // Attention input norm. [n, n_embd]
    pool_.run(n, [&](int t, int) { kernels::rms_norm(x + t * n_embd, L.attn_norm.f32(), xn + t * n_embd, n_embd, c.rms_eps); });
    // Q, K, V projections. [n, q_dim], [n, kv_dim], [n, kv_dim]
    run_matmuls(pool_, {{&L.wq, xn, n_embd, q, q_dim}, {&L.wk, xn, n_embd, k, kv_dim}, {&L.wv, xn, n_embd, v, kv_dim}}, n, act_);
    // Biases (qwen2), RoPE, and the new keys and values into the f16 cache.
    pool_.run(n, [&](int t, int) {
      float* qt = q + t * q_dim;
      float* kt = k + t * kv_dim;
      float* vt = v + t * kv_dim;
      if (L.bq.present()) kernels::add(qt, L.bq.f32(), q_dim);
      if (L.bk.present()) kernels::add(kt, L.bk.f32(), kv_dim);
      if (L.bv.present()) kernels::add(vt, L.bv.f32(), kv_dim);
      const int pos = p0 + t;
      float cos_t[128], sin_t[128];  // n_rot <= head_dim <= 256
      kernels::rope_cache(rope_, pos, cos_t, sin_t);
      for (int h = 0; h < n_head; ++h) kernels::rope_apply(qt + h * hd, c.n_rot, cos_t, sin_t, c.rope_neox);
      for (int h = 0; h < n_kv; ++h) kernels::rope_apply(kt + h * hd, c.n_rot, cos_t, sin_t, c.rope_neox);
      // Q is rounded to f16 like the cache, as llama.cpp's f16 K.Q product does.
      for (int i = 0; i < q_dim; ++i) qt[i] = kernels::round_fp16(qt[i]);
      for (int g = 0; g < n_kv; ++g)
        for (int dd = 0; dd < hd; ++dd) kc[g * kstride + kernels::k_offset(pos, dd, hd)] = kernels::fp32_to_fp16(kt[g * hd + dd]);
      uint16_t* vdst = vc + static_cast<size_t>(pos) * kv_dim;
      for (int i = 0; i < kv_dim; ++i) vdst[i] = kernels::fp32_to_fp16(vt[i]);
      if (indexed_) index_token(il, t, pos, qt, kt);
    });
    if (params_.qk_tap) params_.qk_tap(il, n, q, k);
    attention(il, n, p0);
    // Output projection and residual. [n, n_embd]
    run_matmuls(pool_, {{&L.wo, attn, q_dim, xn, n_embd}}, n, act_);
    pool_.run(n, [&](int t, int) {
      kernels::add(x + t * n_embd, xn + t * n_embd, n_embd);
      kernels::rms_norm(x + t * n_embd, L.ffn_norm.f32(), xn + t * n_embd, n_embd, c.rms_eps);
    });
    // SwiGLU feed-forward and residual. [n, n_ff] -> [n, n_embd]
    float* gate = gate_.data();
    float* up = up_.data();
    run_matmuls(pool_, {{&L.ffn_gate, xn, n_embd, gate, c.n_ff}, {&L.ffn_up, xn, n_embd, up, c.n_ff}}, n, act_);
    pool_.run(n, [&](int t, int) { kernels::swiglu(gate + t * c.n_ff, up + t * c.n_ff, c.n_ff); });
    run_matmuls(pool_, {{&L.ffn_down, gate, c.n_ff, xn, n_embd}}, n, act_);
    pool_.run(n, [&](int t, int) { kernels::add(x + t * n_embd, xn + t * n_embd, n_embd); });
  }

  if (want_logits) {
    // Final norm and vocabulary projection, for the last token or for all of them.
    const int first = logits_offset < 0 ? n - 1 : 0;
    const int rows = n - first;
    float* out = logits_.data() + static_cast<size_t>(logits_offset < 0 ? 0 : logits_offset) * c.n_vocab;
    pool_.run(rows, [&](int r, int) {
      kernels::rms_norm(x + (first + r) * n_embd, model_.output_norm().f32(), xn + r * n_embd, n_embd, c.rms_eps);
    });
    run_matmuls(pool_, {{&model_.output(), xn, n_embd, out, c.n_vocab}}, rows, act_);
  }
  n_past_ += n;
  return {};
}

}  // namespace docdsa
