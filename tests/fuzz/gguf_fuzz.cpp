// libFuzzer target: arbitrary bytes through the GGUF reader and the tokenizer loader; bytes
// that parse as GGUF then go through Model::load (every tensor's shape and type checked) and,
// when that accepts them, a short decode: two prompt tokens and one generated token. Any
// crash, hang, leak or sanitizer report is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "docdsa/engine/gguf.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/engine/tokenizer.h"
#include "fuzz_common.h"

namespace {

void short_decode(const docdsa::Model& model) {
  docdsa::SessionParams sp;
  sp.n_ctx = 8;
  sp.n_threads = 1;
  sp.n_batch = 4;
  sp.dsa.mode = docdsa::AttentionMode::kDense;
  auto s = docdsa::Session::create(model, sp);
  if (!s.ok()) return;
  std::vector<docdsa::TokenId> ids = model.tokenizer().encode("Hi there", true);
  if (ids.size() > 2) ids.resize(2);
  if (ids.empty()) ids.push_back(0);
  if (!(*s)->decode(ids).ok()) return;
  const float* logits = (*s)->logits();
  const int n_vocab = model.config().n_vocab;
  if (!logits || n_vocab <= 0) return;
  const auto next = static_cast<docdsa::TokenId>(std::max_element(logits, logits + n_vocab) - logits);
  (void)(*s)->decode(std::vector<docdsa::TokenId>{next});
  (void)model.tokenizer().token_to_piece(next, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto f = docdsa::gguf::File::from_bytes(std::move(bytes), "fuzz.gguf");
  if (!f.ok()) return 0;
  auto t = docdsa::Tokenizer::from_gguf(**f);
  if (t.ok()) {
    const auto ids = (*t)->encode("Hello <|im_start|> world 123 \xF0\x9F\x98\x80", true, true);
    (void)(*t)->decode(ids, true);
  }
  // Model::load reads a path (memory-mapped, as for real files).
  const std::string path = docdsa::fuzz::write_scratch(".gguf", data, size);
  if (path.empty()) return 0;
  auto m = docdsa::Model::load(path);
  if (m.ok()) short_decode(**m);
  return 0;
}
