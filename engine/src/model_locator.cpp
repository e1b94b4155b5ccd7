#include "docdsa/engine/model_locator.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

namespace docdsa {
namespace fs = std::filesystem;

namespace {
bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string names_list() {
  std::string s;
  for (const auto& k : known_models()) s += std::string(s.empty() ? "" : ", ") + k.name + " (" + k.alias + ")";
  return s;
}

std::string dirs_list(const std::vector<std::string>& dirs) {
  std::string s;
  for (const auto& d : dirs) s += "\n  " + d;
  return s;
}
}  // namespace

const std::vector<KnownModel>& known_models() {
  // Sizes and hashes are those scripts/fetch_model.sh verifies; keep the two in step.
  static const std::vector<KnownModel> models = {
      {"qwen2.5-coder-1.5b", "better", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "Qwen2.5 Coder 1.5B Instruct (Q4_K_M)",
       1117320768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 32768, "slower",
       "better answers, slower (about 11x the weights read per token)", 2},
      {"smollm2-135m", "small", kDefaultModelFile, "SmolLM2 135M Instruct (Q4_1)", 98362432,
       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 8192, "fast",
       "fast; weaker answers, often wrong or repetitive", 1},
  };
  return models;
}

const KnownModel* find_known_model(std::string_view name) {
  for (const auto& k : known_models())
    if (iequal(name, k.name) || iequal(name, k.alias) || iequal(name, k.file)) return &k;
  return nullptr;
}

std::vector<std::string> model_dirs() {
  // One folder when set: fetch_model.sh installs there, and tests get a folder of their own.
  if (const char* d = std::getenv("DOCDSA_MODEL_DIR"); d && *d) return {d};
  std::vector<std::string> c;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    c.push_back(std::string(xdg) + "/docdsa/models");
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    c.push_back(std::string(home) + "/.local/share/docdsa/models");
  }
  c.push_back(std::string(DOCDSA_SOURCE_DIR) + "/models");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) c.push_back((exe.parent_path().parent_path() / "share/docdsa/models").string());
  return c;
}

std::vector<InstalledModel> installed_models(const std::vector<std::string>& dirs) {
  std::vector<InstalledModel> out;
  std::error_code ec;
  for (const auto& k : known_models()) {
    for (const auto& d : dirs) {
      const fs::path p = fs::path(d) / k.file;
      if (!fs::is_regular_file(p, ec)) continue;
      out.push_back({&k, p.string(), static_cast<int64_t>(fs::file_size(p, ec))});
      break;
    }
  }
  std::vector<InstalledModel> other;
  for (const auto& d : dirs) {
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path p = it->path();
      if (p.extension() != ".gguf" || find_known_model(p.filename().string()) || !it->is_regular_file(ec)) continue;
      const bool seen = std::any_of(other.begin(), other.end(),
                                    [&](const InstalledModel& m) { return fs::path(m.path).filename() == p.filename(); });
      if (!seen) other.push_back({nullptr, p.string(), static_cast<int64_t>(it->file_size(ec))});
    }
    ec.clear();
  }
  std::sort(other.begin(), other.end(), [](const InstalledModel& a, const InstalledModel& b) { return a.path < b.path; });
  out.insert(out.end(), other.begin(), other.end());
  return out;
}

Result<std::string> default_model_path(const std::vector<std::string>& dirs) {
  // known_models() is best first, and so is installed_models(): the first known one wins.
  for (const auto& m : installed_models(dirs))
    if (m.known) return m.path;
  return make_error(
      ErrorCode::kNotFound,
      "no model found. Looked for " + names_list() + " in:" + dirs_list(dirs) +
          "\nRun scripts/fetch_model.sh (or scripts/demo.sh) to download them, or pass --model PATH / set DOCDSA_MODEL.");
}

Result<std::string> locate_model_in(const std::string& name_or_path, const std::vector<std::string>& dirs) {
  if (name_or_path.empty()) return default_model_path(dirs);
  std::error_code ec;
  if (fs::exists(name_or_path, ec)) return name_or_path;  // a file beats a name
  if (const KnownModel* k = find_known_model(name_or_path)) {
    for (const auto& d : dirs)
      if (fs::is_regular_file(fs::path(d) / k->file, ec)) return (fs::path(d) / k->file).string();
    return make_error(ErrorCode::kNotFound, std::string("model ") + k->name + " is not installed (looked for " + k->file +
                                                " in:" + dirs_list(dirs) + ")\nRun: scripts/fetch_model.sh " + k->alias);
  }
  // A bare word is meant as a name; anything with a folder or a .gguf ending is a path, and
  // Model::load names it in its error.
  if (name_or_path.find('/') == std::string::npos && fs::path(name_or_path).extension() != ".gguf")
    return make_error(ErrorCode::kNotFound, "unknown model '" + name_or_path + "'. Known models: " + names_list() +
                                                "; or give the path of a GGUF file. `docdsa models` lists what is installed.");
  return name_or_path;
}

Result<std::string> locate_model(const std::string& explicit_path) {
  if (!explicit_path.empty()) return locate_model_in(explicit_path, model_dirs());
  if (const char* env = std::getenv("DOCDSA_MODEL"); env && *env) return locate_model_in(env, model_dirs());
  return default_model_path(model_dirs());
}

}  // namespace docdsa
