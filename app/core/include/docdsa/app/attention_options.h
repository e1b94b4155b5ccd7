// The attention settings a person chooses (command-line flags or GUI settings), turned into
// engine session parameters, and the cost report as JSON — one code path for CLI and GUI.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/engine/session.h"

namespace docdsa::app {

struct AttentionOptions {
  std::string mode = "dsa";  // "dsa" or "dense"
  DsaParams dsa;
  int rank = Indexer::kDefaultRank;
  std::string heads = "query";  // "query" or "group"
  std::string combine = "max";  // "max" or "relu"
  std::string rope_scaling;     // empty: the model file's
  float rope_factor = 0.0f;
  int extend_group = -1;
  int extend_window = 0;
  std::string device = "auto";  // "auto", "cpu" or "cuda" (device.h)
  // The indexer already loaded for this model (the CLI's prepare step), used instead of loading
  // it again; null (or another rank): make_session_params loads it when needed.
  std::shared_ptr<const Indexer> indexer;
};

// Session parameters for a context of n_ctx tokens; loads (or calibrates on first use) the
// indexer into `holder` when the context is longer than top-k. observe_k > 0 (sources): the
// indexer is loaded even when attention stays dense, and reports that many picks per layer.
Result<SessionParams> make_session_params(const Model& model, const AttentionOptions& o, int n_threads, int n_ctx,
                                          std::unique_ptr<Indexer>& holder, int observe_k = 0);

nlohmann::json cost_json(CostReport c);
// The report back from cost_json's output (as stored with each run); missing fields stay 0.
CostReport cost_from_json(const nlohmann::json& j);

}  // namespace docdsa::app
