// Where the forward pass runs (--device, the GUI's Device setting), resolved in one place:
// auto is CUDA when this build has it and a GPU is present, else the CPU.
#pragma once

#include <string>

#include "docdsa/engine/backend.h"
#include "docdsa/engine/result.h"

namespace docdsa::app {

// Whether this build has the CUDA backend (configured with -DDOCDSA_CUDA=ON).
bool cuda_built();

// The backend factory for "auto", "cpu" or "cuda" (SessionParams::backend; empty: the CPU).
// "cuda" fails with a message starting "--device cuda:" when this build has no CUDA or no
// driver or GPU is usable; "auto" then quietly means the CPU.
Result<BackendFactory> resolve_device(const std::string& device);

}  // namespace docdsa::app
