// Which model file to use. --model (or $DOCDSA_MODEL) takes a path or a short name from the
// registry of known models (`smollm2-135m`, `qwen2.5-coder-1.5b`, or the aliases `small` and
// `better`); without one, the default is the best known model installed in the model folders:
// $DOCDSA_MODEL_DIR alone when set, else $XDG_DATA_HOME/docdsa/models, the build's source tree
// models/ and the install prefix's share/docdsa/models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "docdsa/base/resources.h"  // locate_resource, for the apps that include this header
#include "docdsa/engine/result.h"

namespace docdsa {

// The small model: what scripts/test.sh always fetches and the model-labelled tests run.
inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

// A model scripts/fetch_model.sh knows how to fetch and verify.
struct KnownModel {
  const char* name;   // short name for --model: "smollm2-135m"
  const char* alias;  // "small" or "better" (scripts/fetch_model.sh takes the same word)
  const char* file;   // file name in a model folder
  const char* title;  // "SmolLM2 135M Instruct (Q4_1)"
  int64_t bytes;      // size of the verified file
  const char* sha256;
  int context;        // trained context in tokens
  const char* speed;  // speed class: "fast" or "slower"
  const char* hint;   // what to expect, for the GUI and `docdsa models`
  int quality;        // higher answers better; the default is the highest installed
};

// Best answers first.
const std::vector<KnownModel>& known_models();
// By short name, alias or file name (case-insensitive); nullptr when unknown.
const KnownModel* find_known_model(std::string_view name);

// The folders searched for models, in order.
std::vector<std::string> model_dirs();

struct InstalledModel {
  const KnownModel* known = nullptr;  // nullptr: another GGUF found in a model folder
  std::string path;
  int64_t bytes = 0;
};
// The known models present in `dirs` (the first folder holding a file wins), best first, then
// any other *.gguf files there by name. Files are found by name; fetch_model.sh verified them.
std::vector<InstalledModel> installed_models(const std::vector<std::string>& dirs);
// The best known model in `dirs`; the error names the folders and how to fetch a model.
Result<std::string> default_model_path(const std::vector<std::string>& dirs);

// Resolves --model (a path, a short name or empty), then $DOCDSA_MODEL, then the default.
// A short name that is not installed is an error naming the command that fetches it.
Result<std::string> locate_model(const std::string& explicit_path);
// The same against explicit folders (tests).
Result<std::string> locate_model_in(const std::string& name_or_path, const std::vector<std::string>& dirs);

}  // namespace docdsa
