// Shared pieces of the command line: global options, model loading with clear errors, exit
// codes, and JSON / human output.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/engine/result.h"
#include "docdsa/app/attention_options.h"

namespace docdsa::cli {

// The Qt-free application core (app/core) is shared with the GUI.
using namespace docdsa::app;  // NOLINT(google-build-using-namespace)

// Exit codes: 0 ok, 1 the work failed (bad input file, model error), 2 usage error,
// 3 model missing, 130 cancelled by Ctrl-C.
enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kNoModel = 3, kInterrupted = 130 };

struct Globals {
  std::function<int()> command;  // the chosen subcommand, run after parsing
  std::string model_path;
  int threads = 0;
  int verbose = 0;
  bool json = false;
};

Globals& globals();
void add_global_options(CLI::App& app);
void setup_logging();

// Loads the model named by --model / DOCDSA_MODEL / the default; prints the error on failure.
std::unique_ptr<Model> load_model_or_report(int* exit_code);
int report(const Error& e);  // prints "docdsa: <message>" (or JSON) and returns the exit code
void print_json(const nlohmann::json& j);

// Options for the commands that read the library: --db, --password, and --prices where costs are shown.
void add_db_option(CLI::App* sub, std::string& db);
void add_password_option(CLI::App* sub, std::string& password);
void add_prices_option(CLI::App* sub, std::string& prices);

// --attention, --topk, --sinks, --window, --indexer-*, --rope-scaling, --rope-factor.
void add_attention_options(CLI::App* sub, AttentionOptions& o);
// Session parameters for a context of n_ctx tokens; loads (or calibrates on first use) the
// indexer into `holder` when the context is longer than top-k. observe_k > 0 (sources): the
// indexer is loaded even when attention stays dense, and reports that many picks per layer.
Result<SessionParams> session_params(const Model& model, const AttentionOptions& o, int n_ctx,
                                     std::unique_ptr<Indexer>& holder, int observe_k = 0);

void register_tokenize(CLI::App& app);
void register_generate(CLI::App& app);
void register_bench(CLI::App& app);
void register_library(CLI::App& app);  // ingest, list, show, search, remove
void register_calibrate(CLI::App& app);
void register_ask(CLI::App& app);       // ask, chat, summarize
void register_eval(CLI::App& app);      // eval fidelity, eval passkey, eval qa
void register_eval_qa(CLI::App* eval);  // eval qa (cmd_eval_qa.cpp)
void register_models(CLI::App& app);     // models (cmd_models.cpp)
void register_cache(CLI::App& app);      // cache list|clear (cmd_cache.cpp)
// The model's short name (smollm2-135m), else its file name without .gguf.
std::string model_short_name(const Model& model);
// Calibrates the DSA indexer once for a new model, with a labelled progress bar, so that a
// command's first question does not pause silently; kOk or the reported error's exit code.
// The loaded indexer goes into o.indexer, so the command's sessions do not load it again.
int prepare_indexer_or_report(const Model& model, AttentionOptions& o);

}  // namespace docdsa::cli
