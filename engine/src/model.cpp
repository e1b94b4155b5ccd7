#include "docdsa/engine/model.h"

#include <cstring>

namespace docdsa {
namespace {

struct ArchInfo {
  const char* name;
  bool rope_neox;
  bool qkv_bias;            // biases expected (qwen2); optional for llama
  float long_yarn_factor;   // ModelConfig::default_yarn_factor (0: none)
};
// Qwen2.5's published recipe past its trained 32K is static YaRN, factor 4 over the trained
// context. Measured (eval passkey, multi-key, 64K, DSA, Qwen2.5-Coder-1.5B): YaRN x4 8/10
// against 5/10 for the DSA context extension. Llama files keep the extension.
constexpr ArchInfo kArchs[] = {
    {"llama", false, false, 0.0f},
    {"qwen2", true, true, 4.0f},
};

Result<Weight> weight(const gguf::File& f, const std::string& name, int64_t n_in, int64_t n_out, bool optional = false) {
  const gguf::TensorInfo* t = f.tensor(name);
  if (t == nullptr) {
    if (optional) return Weight{};
    return make_error(ErrorCode::kCorrupt, "missing tensor " + name);
  }
  const int64_t rows = t->ne.size() > 1 ? t->ne[1] : 1;
  for (size_t d = 2; d < t->ne.size(); ++d)
    if (t->ne[d] != 1) return make_error(ErrorCode::kCorrupt, "tensor " + name + ": expected 2 dimensions");
  if (t->ne[0] != n_in || rows != n_out)
    return make_error(ErrorCode::kCorrupt, "tensor " + name + ": shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(rows) +
                                               "], expected [" + std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
  if (n_out == 1 && t->type != kernels::DType::F32)
    return make_error(ErrorCode::kUnsupported, "tensor " + name + ": norm and bias vectors must be F32, got " + kernels::info(t->type).name);
  Weight w;
  w.type = t->type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.data = t->data;
  w.row_stride = kernels::row_bytes(t->type, n_in);
  return w;
}

}  // namespace

const char* rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::kNone: return "none";
    case RopeScaling::kLinear: return "linear";
    case RopeScaling::kNtk: return "ntk";
    case RopeScaling::kYarn: return "yarn";
  }
  return "?";
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  TRY(m->file_, gguf::File::open(path));
  const gguf::File& f = *m->file_;
  auto fail = [&](const Error& e) { return e.context(path); };

  auto arch_r = f.get_string("general.architecture");
  if (!arch_r.ok()) return fail(arch_r.error());
  const std::string arch(*arch_r);
  const ArchInfo* ai = nullptr;
  for (const auto& a : kArchs)
    if (arch == a.name) ai = &a;
  if (ai == nullptr) return fail(make_error(ErrorCode::kUnsupported, "architecture '" + arch + "' is not supported (llama and qwen2 are)"));

  ModelConfig& c = m->cfg_;
  c.arch = arch;
  c.name = std::string(f.get_string_or("general.name", "").ok() ? *f.get_string_or("general.name", "") : "");
  auto u = [&](const std::string& k, int* out, uint64_t lo, uint64_t hi) -> Status {
    TRY(uint64_t v, f.get_uint(arch + "." + k));
    if (v < lo || v > hi) return make_error(ErrorCode::kCorrupt, "key " + arch + "." + k + ": " + std::to_string(v) + " is out of range");
    *out = static_cast<int>(v);
    return {};
  };
  if (auto s = u("block_count", &c.n_layer, 1, 1024); !s.ok()) return fail(s.error());
  if (auto s = u("embedding_length", &c.n_embd, 1, 1 << 16); !s.ok()) return fail(s.error());
  if (auto s = u("attention.head_count", &c.n_head, 1, 1024); !s.ok()) return fail(s.error());
  if (auto s = u("feed_forward_length", &c.n_ff, 1, 1 << 20); !s.ok()) return fail(s.error());
  if (auto s = u("context_length", &c.n_ctx_train, 1, 1 << 24); !s.ok()) return fail(s.error());
  c.n_head_kv = c.n_head;
  if (f.find(arch + ".attention.head_count_kv"))
    if (auto s = u("attention.head_count_kv", &c.n_head_kv, 1, 1024); !s.ok()) return fail(s.error());
  if (c.n_head % c.n_head_kv != 0)
    return fail(make_error(ErrorCode::kCorrupt, "head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv)));
  if (c.n_embd % c.n_head != 0) return fail(make_error(ErrorCode::kCorrupt, "embedding_length is not a multiple of head_count"));
  c.head_dim = c.n_embd / c.n_head;
  if (f.find(arch + ".attention.key_length"))
    if (auto s = u("attention.key_length", &c.head_dim, 1, 1024); !s.ok()) return fail(s.error());
  if (c.head_dim % 16 != 0 || c.head_dim > 256)
    return fail(make_error(ErrorCode::kUnsupported, "head dimension " + std::to_string(c.head_dim) + " is not supported (multiples of 16 up to 256)"));
  c.n_rot = c.head_dim;
  if (f.find(arch + ".rope.dimension_count"))
    if (auto s = u("rope.dimension_count", &c.n_rot, 2, static_cast<uint64_t>(c.head_dim)); !s.ok()) return fail(s.error());
  c.rope_neox = ai->rope_neox;
  c.default_yarn_factor = ai->long_yarn_factor;
  auto fl = [&](const std::string& k, float def) -> Result<float> {
    TRY(double v, f.get_float_or(arch + "." + k, def));
    return static_cast<float>(v);
  };
  auto base = fl("rope.freq_base", 10000.0f);
  auto eps = fl("attention.layer_norm_rms_epsilon", 1e-5f);
  if (!base.ok()) return fail(base.error());
  if (!eps.ok()) return fail(eps.error());
  c.rope_base = *base;
  c.rms_eps = *eps;
  if (!(c.rope_base > 0.0f)) return fail(make_error(ErrorCode::kCorrupt, "key " + arch + ".rope.freq_base must be positive"));
  auto st = f.get_string_or(arch + ".rope.scaling.type", "none");
  if (!st.ok()) return fail(st.error());
  if (*st == "linear") c.rope_scaling = RopeScaling::kLinear;
  else if (*st == "yarn") c.rope_scaling = RopeScaling::kYarn;
  else if (*st != "none") return fail(make_error(ErrorCode::kUnsupported, "rope scaling type '" + std::string(*st) + "' is not supported"));
  if (c.rope_scaling != RopeScaling::kNone) {
    auto fac = fl("rope.scaling.factor", 1.0f);
    if (!fac.ok()) return fail(fac.error());
    c.rope_factor = *fac;
    auto oc = f.get_uint_or(arch + ".rope.scaling.original_context_length", static_cast<uint64_t>(c.n_ctx_train));
    if (!oc.ok()) return fail(oc.error());
    c.rope_orig_ctx = static_cast<int>(*oc);
  }

  auto tok = Tokenizer::from_gguf(f);
  if (!tok.ok()) return fail(tok.error());
  m->tokenizer_ = std::move(*tok);
  c.n_vocab = m->tokenizer_->n_vocab();
  auto tmpl = f.get_string_or("tokenizer.chat_template", "");
  if (!tmpl.ok()) return fail(tmpl.error());
  if (auto ct = ChatTemplate::from_template_text(*tmpl); ct.ok()) m->chat_ = *ct;

  const int64_t n_embd = c.n_embd, q_dim = static_cast<int64_t>(c.n_head) * c.head_dim,
                kv_dim = static_cast<int64_t>(c.n_head_kv) * c.head_dim, n_ff = c.n_ff, n_vocab = c.n_vocab;
  auto load = [&](Weight* w, const std::string& name, int64_t n_in, int64_t n_out, bool optional = false) -> Status {
    TRY(*w, weight(f, name, n_in, n_out, optional));
    return {};
  };
  if (auto s = load(&m->tok_embd_, "token_embd.weight", n_embd, n_vocab); !s.ok()) return fail(s.error());
  if (auto s = load(&m->output_norm_, "output_norm.weight", n_embd, 1); !s.ok()) return fail(s.error());
  if (auto s = load(&m->output_, "output.weight", n_embd, n_vocab, true); !s.ok()) return fail(s.error());
  if (!m->output_.present()) m->output_ = m->tok_embd_;  // tied embeddings
  m->layers_.resize(static_cast<size_t>(c.n_layer));
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = m->layers_[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    const bool bias_required = ai->qkv_bias;
    Status s;
    if (!(s = load(&L.attn_norm, p + "attn_norm.weight", n_embd, 1)).ok() ||
        !(s = load(&L.wq, p + "attn_q.weight", n_embd, q_dim)).ok() ||
        !(s = load(&L.wk, p + "attn_k.weight", n_embd, kv_dim)).ok() ||
        !(s = load(&L.wv, p + "attn_v.weight", n_embd, kv_dim)).ok() ||
        !(s = load(&L.wo, p + "attn_output.weight", q_dim, n_embd)).ok() ||
        !(s = load(&L.bq, p + "attn_q.bias", q_dim, 1, !bias_required)).ok() ||
        !(s = load(&L.bk, p + "attn_k.bias", kv_dim, 1, !bias_required)).ok() ||
        !(s = load(&L.bv, p + "attn_v.bias", kv_dim, 1, !bias_required)).ok() ||
        !(s = load(&L.ffn_norm, p + "ffn_norm.weight", n_embd, 1)).ok() ||
        !(s = load(&L.ffn_gate, p + "ffn_gate.weight", n_embd, n_ff)).ok() ||
        !(s = load(&L.ffn_up, p + "ffn_up.weight", n_embd, n_ff)).ok() ||
        !(s = load(&L.ffn_down, p + "ffn_down.weight", n_ff, n_embd)).ok())
      return fail(s.error());
  }
  return m;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& t : file_->tensors()) n += t.nbytes;
  return n;
}

void Model::prepare_weights(const std::function<std::shared_ptr<const void>(const Weight&)>& make) const {
  std::call_once(prepared_once_, [&] {
    std::vector<const Weight*> ws;
    for (const LayerWeights& l : layers_)
      for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) ws.push_back(w);
    ws.push_back(&output_);
    for (const Weight* w : ws) {
      if (!w->present() || w->prepared) continue;
      w->prepared = make(*w);
      // The embedding table shares the output's rows when tied: embed() faults its few rows back.
      if (w->prepared) file_->release(w->data, static_cast<uint64_t>(w->n_out) * w->row_stride);
    }
  });
}

uint64_t Model::linear_macs_per_token() const {
  const auto& c = cfg_;
  const uint64_t q_dim = static_cast<uint64_t>(c.n_head) * c.head_dim, kv_dim = static_cast<uint64_t>(c.n_head_kv) * c.head_dim;
  const uint64_t per_layer = c.n_embd * (q_dim + 2 * kv_dim) + q_dim * c.n_embd + 3ull * c.n_embd * c.n_ff;
  return per_layer * c.n_layer + static_cast<uint64_t>(c.n_embd) * c.n_vocab;
}

}  // namespace docdsa
