// Per-user directories the programs write to (caches), following the XDG base-directory rules.
#pragma once

#include <string>

namespace docdsa {

// $XDG_CACHE_HOME, else $HOME/.cache, else the system temporary directory (never empty).
std::string xdg_cache_home();

}  // namespace docdsa
