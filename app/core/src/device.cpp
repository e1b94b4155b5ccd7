#include "docdsa/app/device.h"

#include <spdlog/spdlog.h>

#ifdef DOCDSA_HAVE_CUDA
#include "docdsa/engine/backend_cuda.h"
#endif

namespace docdsa::app {

bool cuda_built() {
#ifdef DOCDSA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Result<BackendFactory> resolve_device(const std::string& device) {
  if (device == "cpu") return BackendFactory{};
  if (device != "auto" && device != "cuda")
    return make_error(ErrorCode::kInvalidArgument, "unknown device '" + device + "' (auto, cpu or cuda)");
#ifdef DOCDSA_HAVE_CUDA
  std::string why;
  if (!cuda_available(&why)) {
    if (device == "cuda") return make_error(ErrorCode::kUnsupported, "--device cuda: " + why);
    spdlog::info("device auto: {}; running on the CPU", why);
    return BackendFactory{};
  }
  if (device == "cuda") return BackendFactory(make_cuda_backend);
  // auto: what the CUDA backend cannot run yet (context extension) or cannot fit runs on the CPU.
  return BackendFactory([](const ModelConfig& c, const BackendConfig& cfg) -> Result<std::unique_ptr<Backend>> {
    auto b = make_cuda_backend(c, cfg);
    if (b.ok()) return b;
    spdlog::warn("{}; running on the CPU", b.error().message);
    return make_cpu_backend(c, cfg);
  });
#else
  if (device == "cuda")
    return make_error(ErrorCode::kUnsupported, "--device cuda: this build has no CUDA backend (configure with -DDOCDSA_CUDA=ON)");
  return BackendFactory{};
#endif
}

}  // namespace docdsa::app
