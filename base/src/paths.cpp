#include "docdsa/base/paths.h"

#include <cstdlib>
#include <filesystem>

namespace docdsa {

std::string xdg_cache_home() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return xdg;
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache";
  return std::filesystem::temp_directory_path().string();
}

}  // namespace docdsa
