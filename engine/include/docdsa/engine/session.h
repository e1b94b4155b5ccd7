// One conversation's state over a loaded model: KV cache (f16, sized to the request),
// scratch buffers and the thread pool. decode() appends tokens and runs the forward pass.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/memory_budget.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/engine/thread_pool.h"
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
  // RoPE scaling: the model file's unless set here. factor 0: n_ctx / trained context.
  std::optional<RopeScaling> rope_scaling;
  float rope_factor = 0.0f;
  // Context extension for DSA beyond the trained length (Self-Extend-style, applied to the
  // gathered keys only): keys farther than extend_window from the query are re-positioned so
  // that distance d reads as extend_window + (d - extend_window) / G. extend_group: 0 off,
  // -1 auto (on when n_ctx exceeds the trained context; G fits n_ctx into it), or G >= 2.
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
  int n_threads() const { return pool_.size(); }
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
  Session(const Model& model, SessionParams params);
  Status forward(std::span<const TokenId> tokens, bool all_logits, int logits_offset);
  // Causal attention of the n tokens at p0.. in layer il over the cache: q_ -> attn_.
  void attention(int il, int n, int p0);
  // DSA: top-k selection for each of the n query tokens (sel_), then the per-block unions.
  void select(int il, int n, int p0);
  // DSA: the indexer key of the token at pos (into the cache) and its indexer queries (row t).
  void index_token(int il, int t, int pos, const float* q, const float* k);
  void count_cost(int n, int p0, bool decoding);
  struct QueryBlock;
  void build_union(QueryBlock& qb, int t0, int nt, int p0, int group);
  void observe(int il, int pos);
  int64_t k_head_stride() const;  // elements of one KV head's blocked K cache

  const Model& model_;
  SessionParams params_;
  ThreadPool pool_;
  int n_past_ = 0;
  std::vector<std::vector<uint16_t>> k_cache_;  // [layer][n_head_kv][blocked K] f16 (kernels/attention.h)
  std::vector<std::vector<uint16_t>> v_cache_;  // [layer][n_ctx * kv_dim] f16
  kernels::RopeParams rope_;
  RopeScaling rope_scaling_ = RopeScaling::kNone;
  float rope_factor_ = 1.0f;
  // Scratch, sized for n_batch tokens.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;
  std::vector<uint8_t> act_;  // activations quantised for the matmuls
  std::vector<float> attn_part_, attn_lse_;  // split-K partial results
  // DSA state: indexer cache per layer (kernels/indexer.h layout) and key scales, the
  // batch's indexer queries, selections and per-query-block unions with row masks.
  bool dsa_ = false;
  bool indexed_ = false;  // the indexer cache is kept (DSA, or observe_k)
  bool force_dense_ = false;
  int idx_heads_ = 0;
  std::vector<std::vector<uint8_t>> idx_cache_;
  std::vector<std::vector<float>> idx_scale_;
  std::vector<int8_t> iq8_;
  std::vector<float> iqs_;
  std::vector<int32_t> iq_off_;
  std::vector<std::vector<int32_t>> sel_;
  struct QueryBlock {
    std::vector<int32_t> keys;    // union of the block's selections, ascending
    std::vector<uint32_t> mask;   // [rows][words]: row = token * group + head
    std::vector<int32_t> n_keys;  // [rows] union entries up to the row's own position
    std::vector<int32_t> shift;   // context extension: RoPE shift per union entry
    int words = 0;
  };
  std::vector<QueryBlock> qblocks_;
  std::vector<float> score_buf_;  // decode: scores of one query over all keys
  int ext_group_ = 0, ext_window_ = 0;  // context extension (0: off)
  std::vector<float> rot_cos_, rot_sin_;  // [shift][n_rot/2]
  CostReport cost_;
  std::vector<double> recall_sum_;
  std::vector<int64_t> recall_n_;
  double mass_recall(int il, int t, int pos, std::span<const int32_t> sel) const;
  std::vector<float> logits_;
  const float* last_logits_ = nullptr;
  int n_logit_rows_ = 0;
};

}  // namespace docdsa
