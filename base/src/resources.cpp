#include "docdsa/base/resources.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace docdsa {
namespace fs = std::filesystem;

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

std::string shipped_calibration_text() {
  auto p = locate_resource("calibration/calibration.txt");
  return p.ok() ? *p : std::string();
}

}  // namespace docdsa
