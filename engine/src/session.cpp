#include "docdsa/engine/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <new>

#include "docdsa/engine/memory_budget.h"
#include "docdsa/kernels/attention.h"

namespace docdsa {

Session::Session(const Model& model, SessionParams params) : model_(model), params_(params) {}

Session::~Session() = default;

namespace {

// The model's own RoPE scaling recipe applies (ModelConfig::default_yarn_factor): the file
// names none and the context exceeds the trained one.
bool default_yarn(const ModelConfig& c, int n_ctx) {
  return c.default_yarn_factor > 0.0f && c.rope_scaling == RopeScaling::kNone && c.n_ctx_train > 0 && n_ctx > c.n_ctx_train;
}

}  // namespace

Result<std::unique_ptr<Session>> Session::create(const Model& model, SessionParams params) {
  const ModelConfig& c = model.config();
  if (params.n_ctx < 1) return make_error(ErrorCode::kInvalidArgument, "context size must be at least 1");
  if (params.n_ctx > (1 << 20)) return make_error(ErrorCode::kInvalidArgument, "context size " + std::to_string(params.n_ctx) + " is over the 1M limit");
  params.n_batch = std::clamp(params.n_batch, 1, params.n_ctx);
  if (params.exact_attention && !kernels::attention_compat_supported())
    return make_error(ErrorCode::kUnsupported, "exact (llama.cpp-compatible) attention needs an AVX-512 CPU");
  TRY_STATUS(validate(params.dsa));
  const bool sparse = params.dsa.mode == AttentionMode::kDsa && params.n_ctx > params.dsa.top_k;
  if (sparse && params.indexer == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "sparse attention over a " + std::to_string(params.n_ctx) +
                                                       "-token context needs an indexer (run docdsa calibrate)");
  const bool indexed = sparse || (params.observe_k > 0 && params.indexer != nullptr);
  if (indexed) {
    const Indexer& ix = *params.indexer;
    if (ix.n_layer() != c.n_layer || ix.n_head_kv() != c.n_head_kv || ix.head_dim() != c.head_dim)
      return make_error(ErrorCode::kInvalidArgument, "the indexer was made for a different model shape");
    if (params.exact_attention && sparse)
      return make_error(ErrorCode::kInvalidArgument, "exact (llama.cpp-compatible) attention is dense only; use --attention dense");
  }
  {
    // Refuse contexts that cannot fit before touching the memory (the kernel would rather
    // kill the process than fail an allocation).
    const double kv = 4.0 * c.n_layer * static_cast<double>(params.n_ctx) * c.n_head_kv * c.head_dim;
    // Indexer keys and scales, and the CPU's row-major K copy for sparse gathers.
    const double idx =
        indexed ? static_cast<double>(c.n_layer) * params.n_ctx * (params.indexer->key_dim() + 4.0 + 2.0 * c.n_head_kv * c.head_dim)
                : 0.0;
    const double ext = sparse ? 8.0 * params.n_ctx * (c.n_rot / 2) : 0.0;
    const double need = kv + idx + ext;
    const MemorySources sources = params.memory ? *params.memory : MemorySources::from_system();
    TRY(const MemoryBudget budget, memory_budget(sources));
    if (budget.bytes && need > 0.9 * static_cast<double>(*budget.bytes)) {
      char amounts[160];
      std::snprintf(amounts, sizeof(amounts), "a %d-token context needs %.2f GiB of cache memory, but only %.2f GiB is available",
                    params.n_ctx, need / (1 << 30), static_cast<double>(*budget.bytes) / (1 << 30));
      return make_error(ErrorCode::kOutOfRange, std::string(amounts) + " (" + budget.source + "); use a shorter context, or set " +
                                                    kMemoryLimitEnv + " (bytes, such as 8G, or 'unlimited') to override");
    }
  }
  std::unique_ptr<Session> s(new Session(model, params));
  s->dsa_ = sparse;
  s->indexed_ = indexed;
  s->recall_sum_.assign(static_cast<size_t>(c.n_layer), 0.0);
  s->recall_n_.assign(static_cast<size_t>(c.n_layer), 0);
  s->cost_.mode = params.dsa.mode;
  s->cost_.top_k = params.dsa.top_k;
  if (indexed) s->idx_heads_ = params.dsa.heads == IndexerHeads::kQuery ? c.n_head : c.n_head_kv;
  // RoPE: theta_i = pos * base^(-2i/n_rot), scaled by the file's method or the option's.
  RopeScaling scaling = c.rope_scaling;
  float factor = c.rope_factor;
  int orig_ctx = c.rope_orig_ctx > 0 ? c.rope_orig_ctx : c.n_ctx_train;
  if (params.rope_scaling) {
    scaling = *params.rope_scaling;
    if (scaling != c.rope_scaling || params.rope_factor > 0.0f) factor = params.rope_factor;
    if (c.rope_scaling == RopeScaling::kNone) orig_ctx = c.n_ctx_train;
  } else if (default_yarn(c, params.n_ctx)) {
    scaling = RopeScaling::kYarn;
    factor = params.rope_factor > 0.0f ? params.rope_factor
                                       : std::max(c.default_yarn_factor, static_cast<float>(params.n_ctx) / static_cast<float>(c.n_ctx_train));
    orig_ctx = c.n_ctx_train;
  }
  if (scaling != RopeScaling::kNone && !(factor > 0.0f))
    factor = std::max(1.0f, static_cast<float>(params.n_ctx) / static_cast<float>(std::max(1, orig_ctx)));
  if (!(factor >= 1.0f) && scaling != RopeScaling::kNone)
    return make_error(ErrorCode::kInvalidArgument, "RoPE scaling factor must be at least 1");
  float base = c.rope_base;
  s->rope_.n_rot = c.n_rot;
  s->rope_.neox = c.rope_neox;
  switch (scaling) {
    case RopeScaling::kNone: break;
    case RopeScaling::kLinear: s->rope_.freq_scale = 1.0f / factor; break;
    case RopeScaling::kNtk:  // NTK-aware: stretch the base so the lowest frequency is interpolated by `factor`
      base = c.rope_base * std::pow(factor, static_cast<float>(c.n_rot) / static_cast<float>(c.n_rot - 2));
      break;
    case RopeScaling::kYarn:
      s->rope_.freq_scale = 1.0f / factor;
      s->rope_.ext_factor = 1.0f;
      kernels::rope_yarn_corr_dims(c.n_rot, std::max(1, orig_ctx), c.rope_base, 32.0f, 1.0f, &s->rope_.corr_low, &s->rope_.corr_high);
      break;
  }
  s->rope_.theta_scale = std::pow(base, -2.0f / static_cast<float>(c.n_rot));
  s->rope_scaling_ = scaling;
  s->rope_factor_ = scaling == RopeScaling::kNone ? 1.0f : factor;
  if (sparse && params.extend_group != 0 && c.n_ctx_train > 0) {
    const int w = params.extend_window > 0 ? params.extend_window : c.n_ctx_train / 2;
    int g = params.extend_group;
    if (g < 0) {
      // Auto: only past the trained length, with G so the farthest key reads as inside it, and
      // not on top of a RoPE scaling (the file's, the caller's or Qwen's default below).
      const int room = c.n_ctx_train - w - 64;
      g = params.n_ctx > c.n_ctx_train && room > 0 && scaling == RopeScaling::kNone ? (params.n_ctx - w + room - 1) / room : 0;
    }
    if (g >= 2 && w < params.n_ctx) {
      s->ext_group_ = g;
      s->ext_window_ = w;
    }
  }
  BackendConfig bc;
  bc.n_ctx = params.n_ctx;
  bc.n_batch = params.n_batch;
  bc.n_threads = params.n_threads;
  bc.exact_attention = params.exact_attention;
  bc.rope = s->rope_;
  bc.indexer = indexed ? params.indexer : nullptr;
  bc.dsa = params.dsa;
  bc.idx_heads = s->idx_heads_;
  bc.ext_group = s->ext_group_;
  bc.ext_window = s->ext_window_;
  bc.weight_bytes = model.weight_bytes();
  TRY(s->backend_, params.backend ? params.backend(c, bc) : make_cpu_backend(c, bc));
  TRY_STATUS(s->backend_->prepare(model));
  s->cost_.device = s->backend_->name();
  Backend& b = *s->backend_;
  const int nb = params.n_batch;
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  try {
    s->act_ = {.x = b.alloc(nb, c.n_embd),
               .xn = b.alloc(nb, c.n_embd),
               .q = b.alloc(nb, q_dim),
               .k = b.alloc(nb, kv_dim),
               .v = b.alloc(nb, kv_dim),
               .attn = b.alloc(nb, q_dim),
               .gate = b.alloc(nb, c.n_ff),
               .up = b.alloc(nb, c.n_ff)};
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kOutOfRange, "not enough memory for a batch of " + std::to_string(nb) + " tokens");
  }
  return s;
}

int Session::n_threads() const { return backend_->n_threads(); }

const float* Session::logits_at(int i) const {
  if (i < 0 || i >= n_logit_rows_) return nullptr;
  return logits_.data() + static_cast<size_t>(i) * model_.config().n_vocab;
}

void Session::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

uint64_t Session::kv_bytes() const { return backend_->kv_bytes(); }

uint64_t Session::indexer_bytes() const { return backend_->indexer_bytes(); }

void Session::reset_cost() {
  const CostReport fresh{.device = backend_->name(), .mode = params_.dsa.mode, .top_k = params_.dsa.top_k};
  cost_ = fresh;
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
  const auto t_start = std::chrono::steady_clock::now();
  const auto account = [&](int n_done) {
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (total == 1) {
      cost_.decoded_tokens += n_done;
      cost_.decode_seconds += sec;
    } else {
      cost_.prompt_tokens += n_done;
      cost_.prefill_seconds += sec;
    }
    cost_.context_tokens = std::max<int64_t>(cost_.context_tokens, n_past_);
  };
  for (int done = 0; done < total;) {
    const int n = std::min(params_.n_batch, total - done);
    const bool last_batch = done + n == total;
    count_cost(n, n_past_, total == 1);
    Status st = forward(tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(n)), all || last_batch, all ? done : -1);
    if (!st.ok()) {
      account(done);
      return st;
    }
    done += n;
    if (progress && !progress(done, total)) {
      account(done);
      return make_error(ErrorCode::kCancelled, "cancelled");
    }
  }
  account(total);
  last_logits_ = logits_.data() + static_cast<size_t>(n_logit_rows_ - 1) * n_vocab;
  return {};
}

}  // namespace docdsa
