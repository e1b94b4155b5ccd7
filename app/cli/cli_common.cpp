#include "cli_common.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "docdsa/app/json_text.h"
#include "docdsa/engine/model_locator.h"

namespace docdsa::cli {

Globals& globals() {
  static Globals g;
  return g;
}

void add_global_options(CLI::App& app) {
  Globals& g = globals();
  app.add_option("-m,--model", g.model_path, "Model: a name from `docdsa models` (small, better, smollm2-135m, qwen2.5-coder-1.5b) or a GGUF file "
                 "(default: $DOCDSA_MODEL, then the best installed model)");
  app.add_option("-t,--threads", g.threads, "Worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("-v,--verbose", g.verbose, "More log output (repeat for debug)");
  app.add_flag("--json", g.json, "Machine-readable JSON output");
}

void setup_logging() {
  auto logger = spdlog::stderr_color_mt("docdsa");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");
  const int v = globals().verbose;
  spdlog::set_level(v >= 2 ? spdlog::level::debug : v == 1 ? spdlog::level::info : spdlog::level::warn);
}

int report(const Error& e) {
  const int code = e.code == ErrorCode::kInvalidArgument ? kUsage : e.code == ErrorCode::kCancelled ? kInterrupted : kFailed;
  if (globals().json) {
    print_json({{"error", {{"code", error_code_name(e.code)}, {"message", e.message}}}});
  } else {
    std::cerr << "docdsa: " << e.message << "\n";
  }
  return code;
}

// User text (titles, answers) may hold invalid UTF-8: never let the dump throw.
void print_json(const nlohmann::json& j) { std::cout << dump_json(j, 2) << std::endl; }

std::unique_ptr<Model> load_model_or_report(int* exit_code) {
  auto path = locate_model(globals().model_path);
  if (!path.ok()) {
    report(path.error());
    *exit_code = kNoModel;
    return nullptr;
  }
  spdlog::info("loading model {}", *path);
  auto m = Model::load(*path);
  if (!m.ok()) {
    report(m.error());
    *exit_code = m.error().code == ErrorCode::kNotFound ? kNoModel : kFailed;
    return nullptr;
  }
  const auto& c = (*m)->config();
  spdlog::info("{} ({}): {} layers, n_embd {}, heads {}/{}, vocab {}, trained ctx {}", c.name, c.arch, c.n_layer, c.n_embd,
               c.n_head, c.n_head_kv, c.n_vocab, c.n_ctx_train);
  return std::move(*m);
}

void add_db_option(CLI::App* sub, std::string& db) {
  sub->add_option("--db", db, "Library file (default: $XDG_DATA_HOME/docdsa/library.sqlite)");
}
void add_password_option(CLI::App* sub, std::string& password) {
  sub->add_option("--password", password, "Password for encrypted PDFs");
}
void add_prices_option(CLI::App* sub, std::string& prices) {
  sub->add_option("--prices", prices, "Price table JSON (default: $XDG_CONFIG_HOME/docdsa/prices.json, else the bundled one)");
}

void add_attention_options(CLI::App* sub, AttentionOptions& o) {
  sub->add_option("--device", o.device, "Where the model runs: auto (CUDA when built with it and a GPU is present), cpu or cuda (exit 1 when unusable)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str()->group("Model");
  sub->add_option("--attention", o.mode, "Attention: dsa (sparse, default) or dense")
      ->check(CLI::IsMember({"dsa", "dense"}))->group("Attention");
  sub->add_option("--topk", o.dsa.top_k, "Keys each token attends under DSA, sinks and window included")
      ->capture_default_str()->group("Attention");
  sub->add_option("--sinks", o.dsa.sinks, "First tokens every selection keeps")->capture_default_str()->group("Attention");
  sub->add_option("--window", o.dsa.window, "Most recent tokens every selection keeps")->capture_default_str()->group("Attention");
  sub->add_option("--dense-layers", o.dsa.dense_layers, "First layers that attend densely")->capture_default_str()->group("Attention");
  sub->add_option("--indexer-rank", o.rank, "Indexer key dimensions per KV head")->capture_default_str()->group("Attention");
  sub->add_option("--indexer-heads", o.heads, "Indexer queries: query (one per query head) or group (one per KV head)")
      ->check(CLI::IsMember({"query", "group"}))->capture_default_str()->group("Attention");
  sub->add_option("--indexer-score", o.combine, "Combine head scores by max (default, measured best) or relu (sum of ReLU, DeepSeek's formula)")
      ->check(CLI::IsMember({"relu", "max"}))->capture_default_str()->group("Attention");
  sub->add_option("--rope-scaling", o.rope_scaling, "RoPE scaling beyond the trained context: none, linear, ntk, yarn (default: the model file's; "
                  "a Qwen2 file without one: yarn x4 past its trained context)")
      ->check(CLI::IsMember({"none", "linear", "ntk", "yarn"}))->group("Attention");
  sub->add_option("--extend-group", o.extend_group,
                  "DSA context extension past the trained length: -1 auto (default: on where no RoPE scaling applies), 0 off, "
                  "G >= 2 fixed grouping")
      ->capture_default_str()->group("Attention");
  sub->add_option("--extend-window", o.extend_window, "Distances kept exact by the extension (default: half the trained context)")
      ->group("Attention");
  sub->add_option("--rope-factor", o.rope_factor, "RoPE scaling factor (default: context / trained context; Qwen2's yarn: at least 4)")->group("Attention");
}

Result<SessionParams> session_params(const Model& model, const AttentionOptions& o, int n_ctx,
                                     std::unique_ptr<Indexer>& holder, int observe_k) {
  return make_session_params(model, o, globals().threads, n_ctx, holder, observe_k);
}

}  // namespace docdsa::cli
