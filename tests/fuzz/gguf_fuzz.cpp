// libFuzzer target: arbitrary bytes through the GGUF reader, the tokenizer loader and the
// model loader's checks. Any crash, hang, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "docdsa/engine/gguf.h"
#include "docdsa/engine/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  auto f = docdsa::gguf::File::from_bytes(std::move(bytes), "fuzz.gguf");
  if (!f.ok()) return 0;
  auto t = docdsa::Tokenizer::from_gguf(**f);
  if (t.ok()) {
    const auto ids = (*t)->encode("Hello <|im_start|> world 123 \xF0\x9F\x98\x80", true, true);
    (void)(*t)->decode(ids, true);
  }
  return 0;
}
