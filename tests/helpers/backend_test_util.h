// What the Backend tests (engine/backend_test.cpp, engine/backend_cuda_test.cpp) build their
// cases from: a backend configuration for a model shape, quantised test weights with the values
// a reference sees, and host <-> backend copies of activations.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "docdsa/engine/backend.h"
#include "docdsa/engine/model.h"
#include "docdsa/kernels/gemm.h"
#include "docdsa/kernels/quant.h"
#include "random_fill.h"

namespace docdsa::test {

// The model shape both backend tests use: two layers, six query heads in groups of three over
// two KV heads of head_dim 64 (RoPE over all of it), a 37-token vocabulary; the width, the FFN
// and the trained context are each test's.
inline ModelConfig model_shape(int n_embd, int n_ff, int n_ctx_train) {
  ModelConfig c;
  c.arch = "llama";
  c.n_layer = 2;
  c.n_embd = n_embd;
  c.n_head = 6;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_ff = n_ff;
  c.n_vocab = 37;
  c.n_ctx_train = n_ctx_train;
  c.n_rot = 64;
  c.rope_base = 10000.0f;
  c.rms_eps = 1e-5f;
  return c;
}

inline BackendConfig backend_config(const ModelConfig& c, int n_ctx, int n_batch, bool neox = false) {
  BackendConfig bc;
  bc.n_ctx = n_ctx;
  bc.n_batch = n_batch;
  bc.n_threads = 2;
  bc.rope.n_rot = c.n_rot;
  bc.rope.neox = neox;
  bc.rope.theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  return bc;
}

// A weight in `type` with its values as the reference sees them (dequantised).
struct TestWeight {
  Weight w;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // [n_out, n_in]
};
inline TestWeight make_weight(kernels::DType type, int64_t n_in, int64_t n_out, uint32_t seed) {
  TestWeight t;
  const std::vector<float> v = random_normal(static_cast<size_t>(n_in * n_out), seed, 0.5f);
  const size_t rb = kernels::row_bytes(type, n_in);
  t.bytes.resize(rb * n_out);
  t.values.resize(v.size());
  for (int64_t r = 0; r < n_out; ++r) {
    kernels::quantize_row(type, v.data() + r * n_in, t.bytes.data() + r * rb, n_in);
    kernels::dequantize_row(type, t.bytes.data() + r * rb, t.values.data() + r * n_in, n_in);
  }
  t.w.type = type;
  t.w.n_in = n_in;
  t.w.n_out = n_out;
  t.w.data = t.bytes.data();
  t.w.row_stride = rb;
  // The packed GEMM form, as CpuBackend::prepare makes it for a model's weights (other
  // backends ignore it); the rows stay in `bytes`, whose buffer moves with t.
  if (kernels::gemm_should_pack(type))
    t.w.prepared = std::make_shared<kernels::PackedWeight>(kernels::pack_weight(type, t.bytes.data(), n_out, n_in, rb));
  return t;
}

// The first n rows of t, on the host.
inline std::vector<float> down(Backend& b, Tensor t, int n) {
  std::vector<float> v(static_cast<size_t>(n) * t.cols);
  b.download(t, n, v.data());
  return v;
}

// A new rows x cols tensor holding v.
inline Tensor up(Backend& b, const std::vector<float>& v, int rows, int64_t cols) {
  Tensor t = b.alloc(rows, cols);
  b.upload(t, rows, v.data());
  return t;
}

}  // namespace docdsa::test
