// One conversation's state over a loaded model: its position, RoPE and DSA settings, cost
// report, and the Backend that holds its caches (sized to the request) and runs the forward
// pass. decode() appends tokens and runs the forward pass.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "docdsa/engine/backend.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/memory_budget.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/kernels/ops.h"

namespace docdsa {

struct SessionParams {
  int n_ctx = 4096;     // KV cache capacity in tokens
  int n_threads = 0;    // 0: all cores
  int n_batch = 256;    // prefill tokens per forward pass
  // Polled between the layers of a prefill batch (may be null): a cancel then stops within
  // one layer's time instead of one batch's (seconds at 128K). decode() returns kCancelled and
  // the interrupted batch is not kept; single-token decode is never interrupted midway.
  const std::atomic<bool>* cancel = nullptr;
  // Reproduce llama.cpp's CPU flash-attention arithmetic exactly (slow; AVX-512 only). For
  // oracle comparisons; the default blocked kernels agree with it within float tolerance.
  bool exact_attention = false;
  // Attention mode (DSA by default) and its parameters. DSA over a context longer than
  // top_k needs an indexer (Indexer::load_or_calibrate); with n_ctx <= top_k it is dense.
  DsaParams dsa;
  const Indexer* indexer = nullptr;  // not owned; must outlive the session
  // RoPE scaling: the model file's unless set here. factor 0: n_ctx / trained context. A qwen2
  // file that names none gets Qwen's recipe past its trained context: YaRN, factor
  // max(4, n_ctx / trained) (chosen by eval passkey at 64K over the extension below).
  std::optional<RopeScaling> rope_scaling;
  float rope_factor = 0.0f;
  // Context extension for DSA beyond the trained length (Self-Extend-style, applied to the
  // gathered keys only): keys farther than extend_window from the query are re-positioned so
  // that distance d reads as extend_window + (d - extend_window) / G. extend_group: 0 off,
  // -1 auto (on when n_ctx exceeds the trained context and no RoPE scaling applies; G fits
  // n_ctx into it), or G >= 2.
  int extend_group = -1;
  int extend_window = 0;  // 0: half the trained context
  // Observers (may be empty). qk_tap: post-RoPE queries [n, q_dim] and keys [n, kv_dim] of
  // each layer (calibration). selection_tap: the positions a query token's sparse attention
  // read in a layer (sources of an answer).
  std::function<void(int layer, int n, const float* q, const float* k)> qk_tap;
  std::function<void(int layer, int pos, std::span<const int32_t> selected)> selection_tap;
  // Diagnostics (docdsa eval fidelity): for every recall_every-th sparse query token, the share
  // of its dense attention mass (over all keys, averaged over heads) that the selection holds.
  int recall_every = 0;
  // Sources when attention is dense (the context fits in k, or --attention dense): with an
  // indexer and a selection_tap, each decoded token also reports the observe_k positions
  // the indexer ranks highest in every layer (diagnostic only; attention stays dense).
  int observe_k = 0;
  // Where create() reads how much memory is free before it sizes the caches (memory_budget.h);
  // null: the system's files and DOCDSA_MEMORY_LIMIT. Tests point it at fake cgroup files.
  const MemorySources* memory = nullptr;
  // Where the forward pass runs; empty: the CPU (make_cpu_backend). The application resolves
  // --device into a factory (app/core device.h).
  BackendFactory backend;
};

enum class Logits { kLast, kAll };

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(const Model& model, SessionParams params);
  ~Session();

  // Runs tokens at positions n_past().. and appends them to the cache. Progress is reported
  // per batch (done, total); returning false from it cancels (kCancelled; the cache keeps
  // the batches already done).
  Status decode(std::span<const TokenId> tokens, Logits which = Logits::kLast,
                const std::function<bool(int, int)>& progress = {});

  // Logits of the last decoded token, or of token i of the last decode() with Logits::kAll.
  const float* logits() const { return last_logits_; }
  const float* logits_at(int i) const;
  int n_logit_rows() const { return n_logit_rows_; }

  int n_past() const { return n_past_; }
  int n_ctx() const { return params_.n_ctx; }
  void truncate(int n_past);  // forget tokens from n_past on (follow-ups, rewinds)
  const Model& model() const { return model_; }
  int n_threads() const;
  uint64_t kv_bytes() const;       // KV cache bytes
  uint64_t indexer_bytes() const;  // indexer cache bytes (0 when dense)
  const SessionParams& params() const { return params_; }
  bool sparse() const { return dsa_; }  // DSA with an indexer over a context longer than k
  // Runs attention densely from now on (true) or sparsely again (false) over the same caches;
  // the indexer cache keeps being filled, so a sparse session can compare both on one context.
  void force_dense(bool on) { force_dense_ = on; }
  bool dense_forced() const { return force_dense_; }
  const kernels::RopeParams& rope() const { return rope_; }
  RopeScaling rope_scaling() const { return rope_scaling_; }
  float rope_factor() const { return rope_factor_; }
  int extend_group() const { return ext_group_; }  // 0: no context extension
  int extend_window() const { return ext_window_; }

  // Costs counted since creation or reset_cost(); decode() adds its measured time as prefill
  // (several tokens) or decode (one token).
  const CostReport& cost() const { return cost_; }
  void reset_cost();
  // Attention-mass recall per layer (sum, count) when params().recall_every > 0.
  const std::vector<double>& recall_sum() const { return recall_sum_; }
  const std::vector<int64_t>& recall_count() const { return recall_n_; }

 private:
  friend struct SessionStateAccess;  // session_state.cpp: saves and loads the caches
  Session(const Model& model, SessionParams params);
  // The forward pass of the model's architecture (models/llama.cpp), as whole-batch
  // operations on backend_.
  Status forward(std::span<const TokenId> tokens, bool all_logits, int logits_offset);
  // Attention of the n tokens at p0.. in layer il (q -> attn): dense, or DSA with its
  // selection made by the backend, the sources reported and recall measured (attend.cpp).
  void attend(int il, int n, int p0);
  void count_cost(int n, int p0, bool decoding);  // cost.cpp

  const Model& model_;
  SessionParams params_;
  int n_past_ = 0;
  // The backend owns the caches (KV, indexer) and every activation buffer; layouts are its own.
  std::unique_ptr<Backend> backend_;
  struct Activations {
    Tensor x, xn;        // [n_batch, n_embd] residual stream, normalised / projected
    Tensor q, k, v;      // [n_batch, q_dim], [n_batch, kv_dim] x 2
    Tensor attn;         // [n_batch, q_dim]
    Tensor gate, up;     // [n_batch, n_ff]
  } act_;
  std::vector<float> tap_q_, tap_k_;  // host copies for qk_tap
  kernels::RopeParams rope_;
  RopeScaling rope_scaling_ = RopeScaling::kNone;
  float rope_factor_ = 1.0f;
  bool dsa_ = false;
  bool indexed_ = false;  // the indexer cache is kept (DSA, or observe_k)
  bool force_dense_ = false;
  int idx_heads_ = 0;
  int ext_group_ = 0, ext_window_ = 0;  // context extension (0: off)
  CostReport cost_;
  std::vector<double> recall_sum_;
  std::vector<int64_t> recall_n_;
  std::vector<float> logits_;
  const float* last_logits_ = nullptr;
  int n_logit_rows_ = 0;
};

}  // namespace docdsa
