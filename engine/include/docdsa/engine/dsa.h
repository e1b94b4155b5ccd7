// DeepSeek-style sparse attention (DSA) for any llama-family model: the attention mode and
// its parameters, the training-free lightning indexer (a per-layer, per-KV-group low-rank
// projection of the keys fitted on calibration text and kept in a sidecar file), and the
// per-run cost report (DESIGN.md, "Cost model").
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/engine/tokenizer.h"
#include "docdsa/kernels/indexer.h"

namespace docdsa {

class Model;

enum class AttentionMode { kDense, kDsa };
const char* attention_mode_name(AttentionMode m);

// Which queries score the indexer keys: every query head (H_I = n_head) or one summed query
// per KV group (H_I = n_head_kv: a third of the work for SmolLM2).
enum class IndexerHeads { kQuery, kGroup };

struct DsaParams {
  AttentionMode mode = AttentionMode::kDsa;
  int top_k = 2048;   // keys each query token attends (sinks and window included)
  int sinks = 64;     // first tokens always kept
  int window = 512;   // most recent tokens always kept
  int dense_layers = 0;  // the first N layers attend densely (their attention is the most diffuse)
  IndexerHeads heads = IndexerHeads::kQuery;
  kernels::IndexCombine combine = kernels::IndexCombine::kMax;  // chosen by measurement (README)
};
// Checks k, sinks and window (k >= 1, sinks + window < k); the message names the option.
Status validate(const DsaParams& p);

// The training-free indexer: for layer l and KV group g, P[l][g] (rank x head_dim, orthonormal
// rows: the top principal directions of that head's keys on calibration text). Indexer key of
// token s: concat_g P[l][g] k_g(s) (n_head_kv * rank dims, int8); indexer query of head h:
// P[l][g(h)] q_h. Their dot product approximates q_h . k(s) — Loki's low-rank keys.
class Indexer {
 public:
  static constexpr int kDefaultRank = 16;

  // Fits the projections by running the model densely over `tokens`.
  static Result<std::unique_ptr<Indexer>> calibrate(const Model& model, std::span<const TokenId> tokens, int rank,
                                                    int n_threads, const std::function<bool(int, int)>& progress = {});
  // Reads a sidecar; fails with a clear message when it was made for another model file.
  static Result<std::unique_ptr<Indexer>> load(const std::string& path, const Model& model);
  Status save(const std::string& path) const;

  // $XDG_CACHE_HOME/docdsa/indexers/<model name>-<fingerprint>-r<rank>.dsaidx
  static std::string default_path(const Model& model, int rank);
  // The sidecar at default_path(), calibrating on the text file `calibration_text` (the apps
  // ship one: resources/calibration/calibration.txt) and saving it on first use.
  static Result<std::unique_ptr<Indexer>> load_or_calibrate(const Model& model, int rank, int n_threads,
                                                            const std::string& calibration_text,
                                                            const std::function<bool(int, int)>& progress = {});
  // Up to max_tokens tokens of the calibration text file at `path` ('#' lines are comments).
  static Result<std::vector<TokenId>> calibration_tokens(const Model& model, const std::string& path, int max_tokens);
  // Identity of a model file's attention weights (XXH3 of shapes and Q/K tensors).
  static uint64_t fingerprint(const Model& model);

  int rank() const { return rank_; }
  int n_layer() const { return n_layer_; }
  int n_head_kv() const { return n_kv_; }
  int head_dim() const { return head_dim_; }
  int key_dim() const { return n_kv_ * rank_; }
  int calibration_tokens() const { return n_calib_; }
  const float* proj(int layer, int group) const {
    return p_.data() + (static_cast<size_t>(layer) * n_kv_ + group) * rank_ * head_dim_;
  }

 private:
  Indexer() = default;
  uint64_t fingerprint_ = 0;
  int n_layer_ = 0, n_kv_ = 0, head_dim_ = 0, rank_ = 0, n_calib_ = 0;
  std::vector<float> p_;
};

// What a run cost and what dense attention would have cost (DESIGN.md, "Cost model").
struct CostReport {
  const char* device = "cpu";  // the backend's name (static string)
  AttentionMode mode = AttentionMode::kDsa;
  int top_k = 0;
  int64_t prompt_tokens = 0;     // prefilled
  int64_t decoded_tokens = 0;    // generated one at a time
  int64_t context_tokens = 0;    // largest context reached
  double attn_flops_dense = 0;   // Σ_t 4·H_q·d·(t+1) per layer
  double attn_flops_dsa = 0;     // Σ_t [2·H_I·d_I·(t+1) + 4·H_q·d·|S_t|] per layer
  double linear_flops = 0;       // same in both modes
  double decode_bytes_dense = 0;  // KV bytes read by the decoded tokens, dense
  double decode_bytes_dsa = 0;    // KV + indexer bytes read by the decoded tokens, DSA
  double weight_bytes_per_token = 0;
  double prefill_seconds = 0;    // measured
  double decode_seconds = 0;     // measured
  // Dense times: measured when a dense comparison run was made, else estimated from the
  // measured times and the FLOP (prefill) or byte (decode) ratio.
  double dense_prefill_seconds = 0;
  double dense_decode_seconds = 0;
  bool dense_measured = false;
  int64_t selected_keys = 0;     // Σ |S_t| over query tokens and layers (DSA rows only)
  int64_t sparse_rows = 0;       // query tokens x layers that used a sparse selection

  void add(const CostReport& o);
  // Fills dense_*_seconds from the ratios unless dense_measured.
  void estimate_dense_times();
  double bytes_per_decoded_token_dense() const;
  double bytes_per_decoded_token_dsa() const;
};

}  // namespace docdsa
