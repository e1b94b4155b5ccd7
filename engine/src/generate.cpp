#include "docdsa/engine/generate.h"

#include <algorithm>
#include <chrono>

#include "docdsa/engine/utf8.h"

namespace docdsa {

Result<GenerateResult> generate(Session& s, const std::vector<TokenId>& prompt, const GenerateParams& p) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.n_prompt = static_cast<int>(prompt.size());
  if (prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "empty prompt");
  if (s.n_past() + static_cast<int>(prompt.size()) >= s.n_ctx())
    return make_error(ErrorCode::kOutOfRange, "the prompt has " + std::to_string(s.n_past() + prompt.size()) +
                                                  " tokens; the context holds " + std::to_string(s.n_ctx()) +
                                                  " (raise --ctx or shorten the input)");
  const Tokenizer& tok = s.model().tokenizer();
  const int n_vocab = s.model().config().n_vocab;
  auto cancelled = [&] { return p.cancel != nullptr && p.cancel->load(); };

  const auto t0 = clock::now();
  auto progress = [&](int done, int total) { return !cancelled() && (!p.on_prefill || p.on_prefill(done, total)); };
  if (auto st = s.decode(prompt, Logits::kLast, progress); !st.ok()) {
    if (st.error().code == ErrorCode::kCancelled) {
      r.stop_reason = "cancelled";
      r.prefill_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
      return r;
    }
    return st.error();
  }
  const auto t1 = clock::now();
  r.prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();

  // Repetition control sees only the generated tokens (see SamplerParams).
  const bool repetition = p.sampler.dry_multiplier > 0.0f || p.sampler.ngram_size > 0;
  Sampler sampler(p.sampler, repetition ? token_classes(tok, p.sampler.dry_breakers) : std::vector<uint8_t>{},
                  p.sampler.ngram_size > 0 ? token_forms(tok) : std::vector<TokenId>{});
  r.stop_reason = "max_tokens";
  size_t streamed = 0;  // r.text[0, streamed) went to on_token: whole characters only
  for (int i = 0; i < p.max_tokens; ++i) {
    const TokenId next = sampler.sample(s.logits(), n_vocab, r.ids);
    if (tok.is_end_of_generation(next)) { r.stop_reason = "eos"; break; }
    r.ids.push_back(next);
    r.text += tok.token_to_piece(next, false);
    const size_t whole = std::max(streamed, utf8_complete_length(r.text));
    const std::string_view piece = std::string_view(r.text).substr(streamed, whole - streamed);
    streamed = whole;
    if (p.on_token && !p.on_token(next, piece)) { r.stop_reason = "cancelled"; break; }
    if (cancelled()) { r.stop_reason = "cancelled"; break; }
    if (i + 1 == p.max_tokens) break;
    if (s.n_past() >= s.n_ctx()) { r.stop_reason = "context"; break; }
    const TokenId one[1] = {next};
    TRY_STATUS(s.decode(one));
  }
  r.decode_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
  r.text.resize(std::max(streamed, utf8_complete_length(r.text)));  // no character cut by the token limit
  return r;
}

}  // namespace docdsa
