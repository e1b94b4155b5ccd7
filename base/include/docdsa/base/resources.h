// Files the programs ship (prompts, prices, calibration text, icons) and where they are found.
#pragma once

#include <string>

#include "docdsa/base/result.h"

namespace docdsa {

// A file shipped under resources/: $DOCDSA_RESOURCES, the source tree's resources/, then the
// install prefix's share/docdsa/. The error lists the places tried.
Result<std::string> locate_resource(const std::string& relative);

// The calibration text shipped for fitting a model's DSA indexer (Indexer::load_or_calibrate);
// empty when it cannot be found (calibration then says so, when it is needed).
std::string shipped_calibration_text();

}  // namespace docdsa
