#include "gguf_writer.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

namespace docdsa::testing {
namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}
void put_str(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}
void key(std::vector<uint8_t>& out, const std::string& k, uint32_t type) {
  put_str(out, k);
  put<uint32_t>(out, type);
}

}  // namespace

void GgufWriter::add_u32(const std::string& k, uint32_t v) { key(kv_, k, 4); put(kv_, v); ++n_kv_; }
void GgufWriter::add_i32(const std::string& k, int32_t v) { key(kv_, k, 5); put(kv_, v); ++n_kv_; }
void GgufWriter::add_u64(const std::string& k, uint64_t v) { key(kv_, k, 10); put(kv_, v); ++n_kv_; }
void GgufWriter::add_f32(const std::string& k, float v) { key(kv_, k, 6); put(kv_, v); ++n_kv_; }
void GgufWriter::add_bool(const std::string& k, bool v) { key(kv_, k, 7); put<uint8_t>(kv_, v ? 1 : 0); ++n_kv_; }
void GgufWriter::add_string(const std::string& k, const std::string& v) { key(kv_, k, 8); put_str(kv_, v); ++n_kv_; }
void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(kv_, k, 9);
  put<uint32_t>(kv_, 8);
  put<uint64_t>(kv_, v.size());
  for (const auto& s : v) put_str(kv_, s);
  ++n_kv_;
}
void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(kv_, k, 9);
  put<uint32_t>(kv_, 5);
  put<uint64_t>(kv_, v.size());
  for (int32_t x : v) put(kv_, x);
  ++n_kv_;
}
void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  key(kv_, k, 9);
  put<uint32_t>(kv_, 6);
  put<uint64_t>(kv_, v.size());
  for (float x : v) put(kv_, x);
  ++n_kv_;
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, kernels::DType type, const std::vector<float>& values) {
  Tensor t{name, std::move(ne), type, {}};
  const int64_t row = t.ne[0];
  const int64_t rows = static_cast<int64_t>(values.size()) / row;
  const size_t rb = kernels::row_bytes(type, row);
  t.data.resize(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) kernels::quantize_row(type, values.data() + r * row, t.data.data() + r * rb, row);
  tensors_.push_back(std::move(t));
}

std::vector<uint8_t> GgufWriter::bytes(uint32_t version) const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, 0x46554747);
  put<uint32_t>(out, version);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  out.insert(out.end(), kv_.begin(), kv_.end());
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<int64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset += (t.data.size() + 31) / 32 * 32;
  }
  out.resize((out.size() + 31) / 32 * 32, 0);
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize((out.size() + 31) / 32 * 32, 0);
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const auto b = bytes();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_tiny_model(const std::string& path, const TinyModelOptions& o) {
  GgufWriter w;
  const std::string a = o.arch;
  w.add_string("general.architecture", a);
  w.add_string("general.name", "tiny-test-" + a);
  w.add_u32(a + ".block_count", static_cast<uint32_t>(o.n_layer));
  w.add_u32(a + ".context_length", static_cast<uint32_t>(o.n_ctx_train));
  w.add_u32(a + ".embedding_length", static_cast<uint32_t>(o.n_embd));
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(o.n_ff));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(o.n_head));
  w.add_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(o.n_head_kv));
  w.add_f32(a + ".rope.freq_base", 10000.0f);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  // Vocabulary: GPT-2 byte symbols for all 256 bytes, then merges, then specials.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  auto byte_text = [](int b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    static int next = 0;
    static int map[256];
    static bool init = false;
    if (!init) {
      for (int i = 0; i < 256; ++i) {
        const bool pr = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF);
        map[i] = pr ? i : 256 + next++;
      }
      init = true;
    }
    (void)printable;
    const uint32_t cp = static_cast<uint32_t>(map[b]);
    std::string s;
    if (cp < 0x80) s.push_back(static_cast<char>(cp));
    else { s.push_back(static_cast<char>(0xC0 | (cp >> 6))); s.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
    return s;
  };
  for (int b = 0; b < 256; ++b) { tokens.push_back(byte_text(b)); types.push_back(1); }
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or", "l d", "\xC4\xA0wor ld"};
  for (const auto& m : merges) {
    const size_t sp = m.find(' ');
    tokens.push_back(m.substr(0, sp) + m.substr(sp + 1));
    types.push_back(1);
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) { tokens.push_back(s); types.push_back(3); }
  while (tokens.size() % 32 != 0) { tokens.push_back("<pad" + std::to_string(tokens.size()) + ">"); types.push_back(5); }
  const int n_vocab = static_cast<int>(tokens.size());
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "smollm");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", merges);
  w.add_u32("tokenizer.ggml.eos_token_id", 256 + static_cast<uint32_t>(merges.size()) + 2);
  w.add_u32("tokenizer.ggml.bos_token_id", 256 + static_cast<uint32_t>(merges.size()) + 1);
  w.add_string("tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{m.role}}\n{{m.content}}<|im_end|>\n{% endfor %}");

  std::mt19937 rng(o.seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto randv = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng) * scale;
    return v;
  };
  auto ones = [](size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = 1.0f + 0.01f * static_cast<float>(i % 7);
    return v;
  };
  const int hd = o.n_embd / o.n_head;
  const int64_t q_dim = static_cast<int64_t>(o.n_head) * hd, kv_dim = static_cast<int64_t>(o.n_head_kv) * hd;
  const auto wt = o.weight_type;
  const float ws = 1.0f / std::sqrt(static_cast<float>(o.n_embd));
  w.add_tensor("token_embd.weight", {o.n_embd, n_vocab}, wt, randv(static_cast<size_t>(o.n_embd) * n_vocab, 1.0f));
  w.add_tensor("output_norm.weight", {o.n_embd}, kernels::DType::F32, ones(static_cast<size_t>(o.n_embd)));
  if (!o.tied_output) w.add_tensor("output.weight", {o.n_embd, n_vocab}, wt, randv(static_cast<size_t>(o.n_embd) * n_vocab, ws));
  for (int il = 0; il < o.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    w.add_tensor(p + "attn_norm.weight", {o.n_embd}, kernels::DType::F32, ones(static_cast<size_t>(o.n_embd)));
    w.add_tensor(p + "attn_q.weight", {o.n_embd, q_dim}, wt, randv(static_cast<size_t>(o.n_embd * q_dim), ws));
    w.add_tensor(p + "attn_k.weight", {o.n_embd, kv_dim}, wt, randv(static_cast<size_t>(o.n_embd * kv_dim), ws));
    w.add_tensor(p + "attn_v.weight", {o.n_embd, kv_dim}, wt, randv(static_cast<size_t>(o.n_embd * kv_dim), ws));
    if (o.arch == "qwen2") {
      w.add_tensor(p + "attn_q.bias", {q_dim}, kernels::DType::F32, randv(static_cast<size_t>(q_dim), 0.1f));
      w.add_tensor(p + "attn_k.bias", {kv_dim}, kernels::DType::F32, randv(static_cast<size_t>(kv_dim), 0.1f));
      w.add_tensor(p + "attn_v.bias", {kv_dim}, kernels::DType::F32, randv(static_cast<size_t>(kv_dim), 0.1f));
    }
    w.add_tensor(p + "attn_output.weight", {q_dim, o.n_embd}, wt, randv(static_cast<size_t>(q_dim * o.n_embd), ws));
    w.add_tensor(p + "ffn_norm.weight", {o.n_embd}, kernels::DType::F32, ones(static_cast<size_t>(o.n_embd)));
    w.add_tensor(p + "ffn_gate.weight", {o.n_embd, o.n_ff}, wt, randv(static_cast<size_t>(o.n_embd) * o.n_ff, ws));
    w.add_tensor(p + "ffn_up.weight", {o.n_embd, o.n_ff}, wt, randv(static_cast<size_t>(o.n_embd) * o.n_ff, ws));
    w.add_tensor(p + "ffn_down.weight", {o.n_ff, o.n_embd}, wt, randv(static_cast<size_t>(o.n_ff) * o.n_embd, 1.0f / std::sqrt(static_cast<float>(o.n_ff))));
  }
  w.write(path);
}

}  // namespace docdsa::testing
