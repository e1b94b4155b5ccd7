// libFuzzer targets for the transcript parsers; DOCDSA_FUZZ_PARSER picks which (0 SRT, 1 VTT,
// 2 plain text). Input bytes go through encoding detection first, as files do.
#include <cstddef>
#include <cstdint>
#include <string>

#include "docdsa/ingest/transcript.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string enc;
  auto text = docdsa::ingest::decode_text(std::string_view(reinterpret_cast<const char*>(data), size), &enc);
  if (!text.ok()) return 0;
#if DOCDSA_FUZZ_PARSER == 0
  (void)docdsa::ingest::parse_srt(*text, "fuzz.srt");
#elif DOCDSA_FUZZ_PARSER == 1
  (void)docdsa::ingest::parse_vtt(*text, "fuzz.vtt");
#else
  (void)docdsa::ingest::parse_text_transcript(*text, "fuzz.txt");
#endif
  return 0;
}
