#include "docdsa/app/attention_options.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "docdsa/app/device.h"
#include "docdsa/app/json_text.h"
#include "docdsa/base/resources.h"

namespace docdsa::app {

Result<SessionParams> make_session_params(const Model& model, const AttentionOptions& o, int n_threads, int n_ctx,
                                          std::unique_ptr<Indexer>& holder, int observe_k) {
  SessionParams sp;
  sp.n_threads = n_threads;
  sp.n_ctx = n_ctx;
  sp.dsa = o.dsa;
  sp.dsa.mode = o.mode == "dense" ? AttentionMode::kDense : AttentionMode::kDsa;
  sp.dsa.heads = o.heads == "group" ? IndexerHeads::kGroup : IndexerHeads::kQuery;
  sp.dsa.combine = o.combine == "max" ? kernels::IndexCombine::kMax : kernels::IndexCombine::kReluSum;
  TRY_STATUS(validate(sp.dsa));
  TRY(sp.backend, resolve_device(o.device));
  sp.extend_group = o.extend_group;
  sp.extend_window = o.extend_window;
  if (!o.rope_scaling.empty()) {
    sp.rope_scaling = o.rope_scaling == "linear" ? RopeScaling::kLinear
                      : o.rope_scaling == "ntk"  ? RopeScaling::kNtk
                      : o.rope_scaling == "yarn" ? RopeScaling::kYarn
                                                 : RopeScaling::kNone;
    sp.rope_factor = o.rope_factor;
  }
  const bool sparse = sp.dsa.mode == AttentionMode::kDsa && n_ctx > sp.dsa.top_k;
  if ((sparse || observe_k > 0) && o.indexer && o.indexer->rank() == o.rank) {
    sp.indexer = o.indexer.get();
    if (!sparse) sp.observe_k = observe_k;
  } else if (sparse || observe_k > 0) {
    if (!holder || holder->rank() != o.rank) {
      const std::string path = Indexer::default_path(model, o.rank);
      if (!std::filesystem::exists(path)) {
        spdlog::warn("no DSA indexer for this model yet: calibrating one (once; saved to {})", path);
      }
      TRY(holder, Indexer::load_or_calibrate(model, o.rank, n_threads, shipped_calibration_text()));
    }
    sp.indexer = holder.get();
    if (!sparse) sp.observe_k = observe_k;
  }
  return sp;
}

nlohmann::json cost_json(CostReport c) {
  c.estimate_dense_times();
  const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  return {{"device", c.device},
          {"attention", attention_mode_name(c.mode)},
          {"top_k", c.top_k},
          {"tokens", {{"prompt", c.prompt_tokens}, {"decoded", c.decoded_tokens}, {"context", c.context_tokens}}},
          {"attention_flops",
           {{"dense", c.attn_flops_dense},
            {"dsa", c.attn_flops_dsa},
            {"saving", ratio(c.attn_flops_dense, c.attn_flops_dsa)},
            {"measured", false}}},
          {"linear_flops", c.linear_flops},
          {"bytes_per_decoded_token",
           {{"dense", c.bytes_per_decoded_token_dense()},
            {"dsa", c.bytes_per_decoded_token_dsa()},
            {"weights", c.weight_bytes_per_token},
            {"measured", false}}},
          {"seconds", {{"prefill", c.prefill_seconds}, {"decode", c.decode_seconds}, {"measured", true}}},
          {"dense_seconds",
           {{"prefill", c.dense_prefill_seconds}, {"decode", c.dense_decode_seconds}, {"measured", c.dense_measured}}},
          {"sparse_rows", c.sparse_rows},
          {"mean_selected_keys", c.sparse_rows ? static_cast<double>(c.selected_keys) / c.sparse_rows : 0.0}};
}

CostReport cost_from_json(const nlohmann::json& j) {
  CostReport c;
  if (!j.is_object()) return c;
  const auto num = [](const nlohmann::json& o, const char* a, const char* b = nullptr) -> double {
    const nlohmann::json* v = &o;
    if (!v->contains(a)) return 0.0;
    v = &(*v)[a];
    if (b) {
      if (!v->is_object() || !v->contains(b)) return 0.0;
      v = &(*v)[b];
    }
    // Finite and within what a count can hold: the report is read back from a file.
    return v->is_number() && std::isfinite(v->get<double>()) ? std::clamp(v->get<double>(), -1e15, 1e15) : 0.0;
  };
  // A stored report is read back from the library: a field of another type is left at its default.
  c.device = json_string(j, "device", "cpu") == "cuda" ? "cuda" : "cpu";  // static strings only
  c.mode = json_string(j, "attention", "dsa") == "dense" ? AttentionMode::kDense : AttentionMode::kDsa;
  c.top_k = static_cast<int>(std::clamp(num(j, "top_k"), 0.0, 1e9));
  c.prompt_tokens = static_cast<int64_t>(num(j, "tokens", "prompt"));
  c.decoded_tokens = static_cast<int64_t>(num(j, "tokens", "decoded"));
  c.context_tokens = static_cast<int64_t>(num(j, "tokens", "context"));
  c.attn_flops_dense = num(j, "attention_flops", "dense");
  c.attn_flops_dsa = num(j, "attention_flops", "dsa");
  c.linear_flops = num(j, "linear_flops");
  c.weight_bytes_per_token = num(j, "bytes_per_decoded_token", "weights");
  const double n = static_cast<double>(c.decoded_tokens);
  c.decode_bytes_dense = std::max(0.0, num(j, "bytes_per_decoded_token", "dense") - c.weight_bytes_per_token) * n;
  c.decode_bytes_dsa = std::max(0.0, num(j, "bytes_per_decoded_token", "dsa") - c.weight_bytes_per_token) * n;
  c.prefill_seconds = num(j, "seconds", "prefill");
  c.decode_seconds = num(j, "seconds", "decode");
  c.dense_prefill_seconds = num(j, "dense_seconds", "prefill");
  c.dense_decode_seconds = num(j, "dense_seconds", "decode");
  c.dense_measured = j.contains("dense_seconds") && j["dense_seconds"].is_object() && j["dense_seconds"].contains("measured") &&
                     j["dense_seconds"]["measured"].is_boolean() && j["dense_seconds"]["measured"].get<bool>();
  c.sparse_rows = static_cast<int64_t>(num(j, "sparse_rows"));
  c.selected_keys = static_cast<int64_t>(std::clamp(num(j, "mean_selected_keys") * static_cast<double>(c.sparse_rows), -1e15, 1e15));
  return c;
}

}  // namespace docdsa::app
