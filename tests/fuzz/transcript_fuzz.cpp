// libFuzzer targets for the transcript parsers; DOCDSA_FUZZ_PARSER picks which (0 SRT, 1 VTT,
// 2 plain text). Input bytes go through encoding detection first, as files do; parsed cues
// are then chunked as `docdsa add` does. Seeds include transcripts grown to about 1 MiB.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chunk_check.h"
#include "docdsa/ingest/transcript.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string enc;
  auto text = docdsa::ingest::decode_text(std::string_view(reinterpret_cast<const char*>(data), size), &enc);
  if (!text.ok()) return 0;
#if DOCDSA_FUZZ_PARSER == 0
  auto t = docdsa::ingest::parse_srt(*text, "fuzz.srt");
#elif DOCDSA_FUZZ_PARSER == 1
  auto t = docdsa::ingest::parse_vtt(*text, "fuzz.vtt");
#else
  auto t = docdsa::ingest::parse_text_transcript(*text, "fuzz.txt");
#endif
  if (!t.ok()) return 0;
  docdsa::ingest::Document doc;
  doc.kind = static_cast<docdsa::ingest::DocKind>(1 + DOCDSA_FUZZ_PARSER);  // kSrt, kVtt, kText
  for (const auto& c : t->cues) doc.segments.push_back({c.text, 0, c.start_ms, c.end_ms, c.speaker});
  docdsa::fuzz::check_chunks(doc);
  return 0;
}
