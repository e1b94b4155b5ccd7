// One conversation's state over a loaded model: KV cache (f16, sized to the request),
// scratch buffers and the thread pool. decode() appends tokens and runs the forward pass.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/engine/thread_pool.h"
#include "docdsa/kernels/ops.h"

namespace docdsa {

struct SessionParams {
  int n_ctx = 4096;     // KV cache capacity in tokens
  int n_threads = 0;    // 0: all cores
  int n_batch = 256;    // prefill tokens per forward pass
  // Reproduce llama.cpp's CPU flash-attention arithmetic exactly (slow; AVX-512 only). For
  // oracle comparisons; the default blocked kernels agree with it within float tolerance.
  bool exact_attention = false;
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
  uint64_t kv_bytes() const;

 private:
  Session(const Model& model, SessionParams params);
  Status forward(std::span<const TokenId> tokens, bool all_logits, int logits_offset);
  // Causal attention of the n tokens at p0.. in layer il over the cache: q_ -> attn_.
  void attention(int il, int n, int p0);
  int64_t k_head_stride() const;  // elements of one KV head's blocked K cache

  const Model& model_;
  SessionParams params_;
  ThreadPool pool_;
  int n_past_ = 0;
  std::vector<std::vector<uint16_t>> k_cache_;  // [layer][n_head_kv][blocked K] f16 (kernels/attention.h)
  std::vector<std::vector<uint16_t>> v_cache_;  // [layer][n_ctx * kv_dim] f16
  kernels::RopeParams rope_;
  // Scratch, sized for n_batch tokens.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;
  std::vector<uint8_t> act_;  // activations quantised for the matmuls
  std::vector<float> attn_part_, attn_lse_;  // split-K partial results
  std::vector<float> logits_;
  const float* last_logits_ = nullptr;
  int n_logit_rows_ = 0;
};

}  // namespace docdsa
