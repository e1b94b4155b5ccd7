// Test helper: writes GGUF v3 files (metadata of every type, tensors in any supported type),
// and tiny random llama/qwen2 models for unit tests that need no downloaded weights.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "docdsa/kernels/quant.h"

namespace docdsa::testing {

class GgufWriter {
 public:
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  void add_f32s(const std::string& key, const std::vector<float>& v);
  // Quantises `values` (row-major, ne[0] contiguous) to `type`.
  void add_tensor(const std::string& name, std::vector<int64_t> ne, kernels::DType type, const std::vector<float>& values);
  std::vector<uint8_t> bytes(uint32_t version = 3) const;
  void write(const std::string& path) const;

 private:
  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    kernels::DType type;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
};

struct TinyModelOptions {
  std::string arch = "llama";          // or "qwen2"
  kernels::DType weight_type = kernels::DType::Q4_1;
  int n_layer = 2, n_embd = 64, n_head = 4, n_head_kv = 2, n_ff = 128, n_ctx_train = 512;
  bool tied_output = true;
  uint32_t seed = 1;
};

// A tiny byte-level BPE vocabulary (all 256 byte tokens, a few merges, ChatML specials) and
// random weights: small enough to build in milliseconds, real enough to run end to end.
void write_tiny_model(const std::string& path, const TinyModelOptions& opt);

}  // namespace docdsa::testing
