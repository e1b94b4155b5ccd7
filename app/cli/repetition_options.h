// The repetition-control options shared by generate, ask, chat and summarize.
#pragma once

#include <CLI/CLI.hpp>

#include "docdsa/engine/sampler.h"

namespace docdsa::cli {

// Adds --repeat-penalty, --dry-*, --no-repeat-ngram and --ngram-max to `sub`, their defaults
// shown from `p`.
void add_repetition_options(CLI::App* sub, SamplerParams& p);

}  // namespace docdsa::cli
