#include "docdsa/engine/model_locator.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace docdsa {
namespace fs = std::filesystem;

std::vector<std::string> default_model_candidates() {
  std::vector<std::string> c;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    c.push_back(std::string(xdg) + "/docdsa/models/" + kDefaultModelFile);
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    c.push_back(std::string(home) + "/.local/share/docdsa/models/" + kDefaultModelFile);
  }
  c.push_back(std::string(DOCDSA_SOURCE_DIR) + "/models/" + kDefaultModelFile);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) c.push_back((exe.parent_path().parent_path() / "share/docdsa/models" / kDefaultModelFile).string());
  return c;
}

Result<std::string> locate_model(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* env = std::getenv("DOCDSA_MODEL"); env && *env) return std::string(env);
  std::string tried;
  for (const auto& p : default_model_candidates()) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
    tried += "\n  " + p;
  }
  return make_error(ErrorCode::kNotFound,
                    "no model found. Looked for the default model in:" + tried +
                        "\nRun scripts/fetch_model.sh (or scripts/demo.sh) to download it, or pass --model PATH / set DOCDSA_MODEL.");
}

Result<std::string> locate_resource(const std::string& relative) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("DOCDSA_RESOURCES"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back(fs::path(DOCDSA_SOURCE_DIR) / "resources");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "share/docdsa");
  std::string tried;
  for (const auto& d : dirs) {
    const fs::path p = d / relative;
    if (fs::is_regular_file(p, ec)) return p.string();
    tried += "\n  " + p.string();
  }
  return make_error(ErrorCode::kNotFound, "resource " + relative + " not found; looked in:" + tried);
}

}  // namespace docdsa
