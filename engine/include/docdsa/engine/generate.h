// Prompt -> streamed completion. Prefill the prompt, then sample one token at a time until
// an end-of-generation token, the token budget, the context end, or a cancel.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/engine/sampler.h"
#include "docdsa/engine/session.h"

namespace docdsa {

struct GenerateParams {
  int max_tokens = 256;
  SamplerParams sampler;
  // Called with each new token and the text it completes, in whole UTF-8 characters (a token
  // that ends inside a character passes its bytes on with the next one; the text may be
  // empty); return false to stop (a cancel).
  std::function<bool(TokenId, std::string_view)> on_token;
  // Called during prefill with (done, total) tokens; return false to cancel.
  std::function<bool(int, int)> on_prefill;
  const std::atomic<bool>* cancel = nullptr;
};

struct GenerateResult {
  std::vector<TokenId> ids;   // generated tokens (the end token excluded)
  std::string text;
  int n_prompt = 0;
  double prefill_ms = 0.0;
  double decode_ms = 0.0;
  std::string stop_reason;    // "eos", "max_tokens", "context", "cancelled"
};

// Appends `prompt` to what `session` already holds (a follow-up question after truncating
// to the document reuses the document's caches), then generates.
Result<GenerateResult> generate(Session& session, const std::vector<TokenId>& prompt, const GenerateParams& params);

}  // namespace docdsa
