// Runs on every machine with DOCDSA_CUDA (label unit): without a GPU or driver the CUDA backend
// refuses with a message naming --device cuda and the cause; with one, it refuses what it
// cannot run with a message naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "docdsa/engine/backend_cuda.h"

namespace docdsa {
namespace {

ModelConfig shape() {
  ModelConfig c;
  c.arch = "llama";
  c.n_layer = 1;
  c.n_embd = 128;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 64;
  c.n_ff = 256;
  c.n_vocab = 10;
  c.n_rot = 64;
  return c;
}

BackendConfig config(const ModelConfig& c) {
  BackendConfig bc;
  bc.n_ctx = 64;
  bc.n_batch = 8;
  bc.rope.n_rot = c.n_rot;
  bc.rope.theta_scale = std::pow(10000.0f, -2.0f / static_cast<float>(c.n_rot));
  return bc;
}

TEST(CudaBackendErrors, ClearMessageWithoutDriverOrForUnsupportedShapes) {
  std::string why;
  ModelConfig c = shape();
  if (!cuda_available(&why)) {
    auto b = make_cuda_backend(c, config(c));
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.error().message.find("--device cuda"), std::string::npos) << b.error().message;
    return;
  }
  c.head_dim = 96;  // no attention kernel for it
  auto b = make_cuda_backend(c, config(c));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("head sizes"), std::string::npos) << b.error().message;
}

}  // namespace
}  // namespace docdsa
