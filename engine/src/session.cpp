#include "docdsa/engine/session.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "docdsa/kernels/attention.h"

namespace docdsa {

Session::Session(const Model& model, SessionParams params)
    : model_(model), params_(params), pool_(params.n_threads) {}

Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::create(const Model& model, SessionParams params) {
  const ModelConfig& c = model.config();
  if (params.n_ctx < 1) return make_error(ErrorCode::kInvalidArgument, "context size must be at least 1");
  if (params.n_ctx > (1 << 20)) return make_error(ErrorCode::kInvalidArgument, "context size " + std::to_string(params.n_ctx) + " is over the 1M limit");
  params.n_batch = std::clamp(params.n_batch, 1, params.n_ctx);
  if (params.exact_attention && !kernels::attention_compat_supported())
    return make_error(ErrorCode::kUnsupported, "exact (llama.cpp-compatible) attention needs an AVX-512 CPU");
  std::unique_ptr<Session> s(new Session(model, params));
  const size_t kv_dim = static_cast<size_t>(c.n_head_kv) * c.head_dim;
  try {
    s->k_cache_.resize(static_cast<size_t>(c.n_layer));
    s->v_cache_.resize(static_cast<size_t>(c.n_layer));
    for (int il = 0; il < c.n_layer; ++il) {
      s->k_cache_[il].resize(static_cast<size_t>(c.n_head_kv) * static_cast<size_t>(s->k_head_stride()));
      s->v_cache_[il].resize(static_cast<size_t>(params.n_ctx) * kv_dim);
    }
    const size_t nb = static_cast<size_t>(params.n_batch);
    const size_t q_dim = static_cast<size_t>(c.n_head) * c.head_dim;
    s->x_.resize(nb * c.n_embd);
    s->xn_.resize(nb * c.n_embd);
    s->q_.resize(nb * q_dim);
    s->k_.resize(nb * kv_dim);
    s->v_.resize(nb * kv_dim);
    s->attn_.resize(nb * q_dim);
    s->gate_.resize(nb * c.n_ff);
    s->up_.resize(nb * c.n_ff);
    // Widest activation row in any vec-dot type: F32 of the widest input.
    const size_t widest = static_cast<size_t>(std::max<int64_t>({c.n_embd, c.n_ff, static_cast<int64_t>(q_dim)}));
    s->act_.resize(nb * widest * 4 + 64);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "not enough memory for a " + std::to_string(params.n_ctx) + "-token context");
  }
  // RoPE: theta_i = pos * base^(-2i/n_rot), scaled by the method in the file.
  s->rope_.n_rot = c.n_rot;
  s->rope_.theta_scale = std::pow(c.rope_base, -2.0f / static_cast<float>(c.n_rot));
  s->rope_.freq_scale = c.rope_scaling == RopeScaling::kLinear ? 1.0f / c.rope_factor : 1.0f;
  s->rope_.neox = c.rope_neox;
  return s;
}

int64_t Session::k_head_stride() const {
  const int64_t blocks = (params_.n_ctx + kernels::kKeyBlock - 1) / kernels::kKeyBlock;
  return blocks * kernels::kKeyBlock * model_.config().head_dim;
}

const float* Session::logits_at(int i) const {
  if (i < 0 || i >= n_logit_rows_) return nullptr;
  return logits_.data() + static_cast<size_t>(i) * model_.config().n_vocab;
}

void Session::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

uint64_t Session::kv_bytes() const {
  const ModelConfig& c = model_.config();
  return 2ull * c.n_layer * params_.n_ctx * c.n_head_kv * c.head_dim * sizeof(uint16_t);
}

Status Session::decode(std::span<const TokenId> tokens, Logits which, const std::function<bool(int, int)>& progress) {
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "nothing to decode");
  if (static_cast<int64_t>(n_past_) + static_cast<int64_t>(tokens.size()) > params_.n_ctx)
    return make_error(ErrorCode::kOutOfRange, std::to_string(n_past_ + tokens.size()) + " tokens do not fit in the " +
                                                  std::to_string(params_.n_ctx) + "-token context");
  const int n_vocab = model_.config().n_vocab;
  for (TokenId t : tokens)
    if (t < 0 || t >= n_vocab) return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(t) + " is outside the vocabulary");
  const bool all = which == Logits::kAll;
  logits_.resize(static_cast<size_t>(all ? tokens.size() : 1) * n_vocab);
  n_logit_rows_ = all ? static_cast<int>(tokens.size()) : 1;
  const int total = static_cast<int>(tokens.size());
  for (int done = 0; done < total;) {
    const int n = std::min(params_.n_batch, total - done);
    const bool last_batch = done + n == total;
    TRY_STATUS(forward(tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(n)), all || last_batch, all ? done : -1));
    done += n;
    if (progress && !progress(done, total)) return make_error(ErrorCode::kCancelled, "cancelled");
  }
  last_logits_ = logits_.data() + static_cast<size_t>(n_logit_rows_ - 1) * n_vocab;
  return {};
}

}  // namespace docdsa
