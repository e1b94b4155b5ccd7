// Where the model file comes from when no path is given: --model, then $DOCDSA_MODEL, then the
// default model in $XDG_DATA_HOME/docdsa/models, the build's source tree models/, and the
// install prefix's share/docdsa/models.
#pragma once

#include <string>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

// The places searched for the default model, in order.
std::vector<std::string> default_model_candidates();
// Resolves the model path; the error lists what was tried and how to get the model.
Result<std::string> locate_model(const std::string& explicit_path);
// A file shipped under resources/ (prompts, prices, calibration text): $DOCDSA_RESOURCES,
// the source tree's resources/, then the install prefix's share/docdsa/.
Result<std::string> locate_resource(const std::string& relative);

}  // namespace docdsa
