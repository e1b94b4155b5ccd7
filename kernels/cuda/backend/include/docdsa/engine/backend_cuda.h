// The CUDA backend (issue 13): the engine's Backend (docdsa/engine/backend.h) on one GPU, over
// the kernels of kernels/cuda. Weights are uploaded once, in their file types, on first use;
// the KV cache (f16, token-major), the indexer cache and all activations live on the device;
// only logits, DSA selections (for the selection taps) and diagnostics cross to the host.
// Built with DOCDSA_CUDA=ON (library engine_cuda).
#pragma once

#include <memory>
#include <string>

#include "docdsa/engine/backend.h"

namespace docdsa {

// Whether a CUDA device can be used; otherwise `why` says what is missing (driver, device).
bool cuda_available(std::string* why = nullptr);

// Fails with a clear message when no GPU or driver is usable, when the caches do not fit in
// the GPU's free memory, or for what the CUDA backend does not run yet (context extension).
Result<std::unique_ptr<Backend>> make_cuda_backend(const ModelConfig& c, const BackendConfig& cfg);

}  // namespace docdsa
