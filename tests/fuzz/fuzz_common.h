// Shared by the libFuzzer targets: scratch files for the APIs that read paths (one set per
// process, so parallel runs do not collide; removed at exit) and the tiny test model.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "docdsa/engine/model.h"
#include "gguf_writer.h"

namespace docdsa::fuzz {

inline std::vector<std::string>& scratch_files() {
  static std::vector<std::string> files;
  return files;
}

// A file in the temp directory named for this process and `suffix` (".pdf", ".gguf", ...).
inline const std::string& scratch_path(const std::string& suffix) {
  static std::vector<std::pair<std::string, std::string>> paths;
  for (const auto& [s, p] : paths)
    if (s == suffix) return p;
  std::error_code ec;
  const std::string p =
      (std::filesystem::temp_directory_path(ec) / ("docdsa-fuzz-" + std::to_string(getpid()) + suffix)).string();
  if (scratch_files().empty())
    std::atexit([] {
      for (const auto& f : scratch_files()) std::remove(f.c_str());
    });
  scratch_files().push_back(p);
  paths.emplace_back(suffix, p);
  return paths.back().second;
}

// Writes the bytes to scratch_path(suffix) and returns that path ("" if it cannot be written).
inline std::string write_scratch(const std::string& suffix, const uint8_t* data, size_t size) {
  const std::string& path = scratch_path(suffix);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok ? path : "";
}

// The GGUF test writer's tiny llama model (2 layers, 64 dims), written and loaded once.
inline const Model& tiny_model() {
  static std::unique_ptr<Model> model = [] {
    const std::string& path = scratch_path("-tiny.gguf");
    docdsa::testing::write_tiny_model(path, {});
    auto m = Model::load(path);
    if (!m.ok()) {
      std::fprintf(stderr, "fuzz: cannot load the tiny model: %s\n", m.error().message.c_str());
      std::abort();
    }
    return std::move(*m);
  }();
  return *model;
}

}  // namespace docdsa::fuzz
