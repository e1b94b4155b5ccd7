// Shared pieces of the command line: global options, model loading with clear errors, exit
// codes, and JSON / human output.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"

namespace docdsa::cli {

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

void register_tokenize(CLI::App& app);
void register_generate(CLI::App& app);
void register_bench(CLI::App& app);
void register_library(CLI::App& app);  // ingest, list, show, search, remove

}  // namespace docdsa::cli
