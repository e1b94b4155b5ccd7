// A llama-family model loaded from GGUF: hyper-parameters, weight views into the memory map,
// tokenizer and chat template. Loading validates every tensor's shape and type and names
// the one that is wrong.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "docdsa/engine/chat_template.h"
#include "docdsa/engine/gguf.h"
#include "docdsa/engine/result.h"
#include "docdsa/engine/tokenizer.h"
#include "docdsa/kernels/quant.h"

namespace docdsa {

enum class RopeScaling { kNone, kLinear, kNtk, kYarn };
const char* rope_scaling_name(RopeScaling s);

struct ModelConfig {
  std::string arch;        // "llama", "qwen2"
  std::string name;
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_rot = 0;           // rotated dims per head
  bool rope_neox = false;  // pairing (i, i + n_rot/2) instead of (2i, 2i+1)
  float rope_base = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_factor = 1.0f;
  int rope_orig_ctx = 0;   // YaRN's original context
  // Past the trained context, in a file that names no RoPE scaling: YaRN with at least this
  // factor (the architecture's published recipe; 0: none, DSA's context extension instead).
  float default_yarn_factor = 0.0f;
  float rms_eps = 1e-5f;
};

struct Weight {
  kernels::DType type = kernels::DType::F32;
  int64_t n_in = 0;   // row length (ne[0])
  int64_t n_out = 0;  // rows (ne[1])
  const uint8_t* data = nullptr;
  size_t row_stride = 0;
  // Optional form of the rows a backend prepared once (repacked int8 tiles for the CPU GEMM);
  // the backend's matmul (cpu/matmul.cpp) uses it when set, else the rows. Written only by
  // Model::prepare_weights, once, before any session of the model computes.
  mutable std::shared_ptr<const void> prepared;
  bool present() const { return data != nullptr; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

struct LayerWeights {
  Weight attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, ffn_gate, ffn_up, ffn_down;
};

class Model {
 public:
  // Loads and validates the model. Errors name the file and the key or tensor.
  static Result<std::unique_ptr<Model>> load(const std::string& path);

  const ModelConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ChatTemplate& chat_template() const { return chat_; }
  const gguf::File& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }

  const Weight& tok_embd() const { return tok_embd_; }
  const Weight& output_norm() const { return output_norm_; }
  const Weight& output() const { return output_; }
  const LayerWeights& layer(int il) const { return layers_[static_cast<size_t>(il)]; }
  // Bytes of all weights (what one decode step streams through, roughly).
  uint64_t weight_bytes() const;
  // Multiply-adds per token of the linear layers (attention excluded).
  uint64_t linear_macs_per_token() const;

  // Makes Weight::prepared of every matrix weight (projections, FFN, output) once per model:
  // the first call runs `make` on each (a null result leaves the rows in use) and releases the
  // file pages of the rows it replaced (gguf::File::release); later calls, from any session
  // and thread, return once that is done.
  void prepare_weights(const std::function<std::shared_ptr<const void>(const Weight&)>& make) const;

 private:
  Model() = default;
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_;
  ModelConfig cfg_;
  Weight tok_embd_, output_norm_, output_;
  std::vector<LayerWeights> layers_;
  mutable std::once_flag prepared_once_;
};

}  // namespace docdsa
