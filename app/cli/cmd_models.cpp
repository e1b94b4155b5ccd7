// docdsa models [--json]: the known and installed models, their size, trained context, speed
// class and which one ask, chat and summarize use by default. Also the one-time indexer
// calibration with a labelled progress bar, run before a command's first question.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli_common.h"
#include "docdsa/engine/gguf.h"
#include "docdsa/engine/model_locator.h"
#include "progress.h"

namespace docdsa::cli {
namespace {

namespace fs = std::filesystem;

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b >= (int64_t{1} << 30))
    std::snprintf(buf, sizeof(buf), "%.1f GB", static_cast<double>(b) / 1e9);
  else
    std::snprintf(buf, sizeof(buf), "%.0f MB", static_cast<double>(b) / 1e6);
  return buf;
}

// The trained context written in the file (<arch>.context_length); 0 when unreadable.
int file_context(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f.ok()) return 0;
  auto arch = (*f)->get_string_or("general.architecture", "");
  if (!arch.ok() || arch->empty()) return 0;
  auto n = (*f)->get_uint_or(std::string(*arch) + ".context_length", 0);
  return n.ok() && *n < (uint64_t{1} << 31) ? static_cast<int>(*n) : 0;
}

// A model that is neither fast nor known: guessed from its size (bytes read per token).
const char* speed_from_size(int64_t bytes) {
  return bytes < 400'000'000 ? "fast" : bytes < 2'500'000'000 ? "slower" : "slow";
}

int run_models() {
  const auto dirs = model_dirs();
  const auto installed = installed_models(dirs);
  auto def = locate_model("");
  const std::string def_path = def.ok() ? *def : std::string();
  nlohmann::json list = nlohmann::json::array();
  std::string def_name;
  const auto add = [&](const KnownModel* k, const std::string& path, int64_t bytes, bool present) {
    const std::string name = k ? k->name : fs::path(path).stem().string();
    const int ctx = present ? file_context(path) : 0;
    const bool is_def = present && !def_path.empty() && fs::path(path) == fs::path(def_path);
    if (is_def) def_name = name;
    nlohmann::json j = {{"name", name},
                        {"installed", present},
                        {"path", present ? path : std::string()},
                        {"file", k ? k->file : fs::path(path).filename().string()},
                        {"bytes", present ? bytes : (k ? k->bytes : 0)},
                        {"context", ctx > 0 ? ctx : (k ? k->context : 0)},
                        {"speed", k ? k->speed : speed_from_size(bytes)},
                        {"hint", k ? k->hint : "a GGUF file found in a model folder"},
                        {"default", is_def}};
    if (k) j["title"] = k->title, j["alias"] = k->alias;
    if (k && !present) j["fetch"] = std::string("scripts/fetch_model.sh ") + k->alias;
    list.push_back(j);
  };
  for (const auto& m : installed) add(m.known, m.path, m.bytes, true);
  for (const auto& k : known_models()) {
    const bool have = std::any_of(installed.begin(), installed.end(), [&](const InstalledModel& m) { return m.known == &k; });
    if (!have) add(&k, k.file, 0, false);
  }
  // $DOCDSA_MODEL naming a file outside the model folders is still the default: show it.
  if (!def_path.empty() && def_name.empty()) {
    std::error_code ec;
    add(nullptr, def_path, static_cast<int64_t>(fs::file_size(def_path, ec)), fs::is_regular_file(def_path, ec));
  }
  if (globals().json) {
    print_json({{"models", list}, {"default", def_name.empty() ? nlohmann::json() : nlohmann::json(def_name)}, {"dirs", dirs}});
    return kOk;
  }
  std::printf("%-2s%-22s %-9s %-9s %-7s %s\n", "", "MODEL", "SIZE", "CONTEXT", "SPEED", "");
  for (const auto& j : list) {
    const bool present = j["installed"].get<bool>();
    std::printf("%-2s%-22s %-9s %-9s %-7s %s\n", j["default"].get<bool>() ? "*" : "", j["name"].get<std::string>().c_str(),
                present ? human_bytes(j["bytes"].get<int64_t>()).c_str() : "-", std::to_string(j["context"].get<int>()).c_str(),
                j["speed"].get<std::string>().c_str(),
                present ? j["hint"].get<std::string>().c_str() : ("not installed: run " + j["fetch"].get<std::string>()).c_str());
  }
  if (def_name.empty()) {
    std::printf("\nNo model installed. Run scripts/fetch_model.sh to download them.\n");
  } else {
    std::printf("\n* the default for ask, chat and summarize (%s); pick another with --model NAME or PATH.\n", def_path.c_str());
  }
  return kOk;
}

}  // namespace

std::string model_short_name(const Model& model) {
  const std::string file = fs::path(model.path()).filename().string();
  const KnownModel* k = find_known_model(file);
  return k ? k->name : fs::path(file).stem().string();
}

int prepare_indexer_or_report(const Model& model, AttentionOptions& o) {
  const std::string path = Indexer::default_path(model, o.rank);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (auto ix = Indexer::load(path, model); ix.ok()) {
      o.indexer = std::move(*ix);  // kept: the sessions use it instead of loading it again
      return kOk;
    }
  }
  const std::string label = "calibrating indexer for " + model_short_name(model) + " (once)";
  if (!globals().json && !isatty(STDERR_FILENO)) std::fprintf(stderr, "docdsa: %s\n", label.c_str());
  spdlog::info("{}: saved to {}", label, path);
  ProgressBar bar(label, 1, !globals().json);
  auto ix = Indexer::load_or_calibrate(model, o.rank, globals().threads, shipped_calibration_text(), [&](int done, int total) {
    bar.set_total(total);
    bar.update(done);
    return true;
  });
  bar.finish();
  if (!ix.ok()) return report(ix.error());
  o.indexer = std::move(*ix);
  return kOk;
}

void register_models(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("models", "List the installed models: size, trained context, speed and the default");
  sub->callback([] { globals().command = [] { return run_models(); }; });
}

}  // namespace docdsa::cli
