// JSON text from values that carry user text. Titles, file names, document text and model
// output may hold invalid UTF-8 (a hostile file, a cut answer); nlohmann's plain dump() throws
// on it, so every dump goes through here and writes U+FFFD for the bad bytes instead.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace docdsa::app {

inline std::string dump_json(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Fields of JSON read back from a file (a library row: sources, cost reports): the value when
// `j` is an object and the field has the expected type, else `fallback`. nlohmann's value()
// and get() throw on a wrong type, and an exception in a Qt slot or a pool task aborts.
inline std::string json_string(const nlohmann::json& j, const char* key, const std::string& fallback = {}) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}
inline double json_number(const nlohmann::json& j, const char* key, double fallback = 0.0) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}
// An integer field that fits in int, else `fallback`.
inline int json_int(const nlohmann::json& j, const char* key, int fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    return v <= static_cast<uint64_t>(INT32_MAX) ? static_cast<int>(v) : fallback;
  }
  const auto v = it->get<int64_t>();
  return v >= INT32_MIN && v <= INT32_MAX ? static_cast<int>(v) : fallback;
}

}  // namespace docdsa::app
