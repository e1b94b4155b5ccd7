// JSON text from values that carry user text. Titles, file names, document text and model
// output may hold invalid UTF-8 (a hostile file, a cut answer); nlohmann's plain dump() throws
// on it, so every dump goes through here and writes U+FFFD for the bad bytes instead.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace docdsa::app {

inline std::string dump_json(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace docdsa::app
