// Transcripts: SubRip (.srt), WebVTT (.vtt) and plain text with speaker labels and optional
// timestamps, decoded from UTF-8/16/32 (with or without BOM) or Windows-1252 (its five
// undefined bytes as Latin-1), any line endings. Each cue keeps its time range and speaker;
// markup and entities are resolved; rolling auto-caption repeats are removed and counted.
// Malformed cues are skipped with a warning; a file with no usable cue is an error that names
// the file. Size limits: read_file.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa::ingest {

struct Cue {
  int64_t start_ms = -1;  // -1: no time (plain text without timestamps)
  int64_t end_ms = -1;
  std::string speaker;    // empty when unknown
  std::string text;       // UTF-8, lines joined with '\n'
};

enum class TranscriptFormat { kSrt, kVtt, kText };
const char* format_name(TranscriptFormat f);

struct Transcript {
  TranscriptFormat format = TranscriptFormat::kText;
  std::string encoding;              // what the bytes were decoded from
  std::vector<Cue> cues;
  int rolling_repeats_removed = 0;   // auto-caption lines dropped as repeats of the previous cue
  std::vector<std::string> warnings; // skipped or repaired cues, with line numbers
};

// Bytes -> UTF-8 with '\n' line endings. `encoding` receives the detected encoding.
Result<std::string> decode_text(std::string_view bytes, std::string* encoding);

// Timestamps "HH:MM:SS,mmm", "MM:SS.mmm", "H:M:S.f" -> milliseconds; -1 when malformed.
int64_t parse_timestamp(std::string_view s);

Result<Transcript> parse_srt(std::string_view utf8, const std::string& name);
Result<Transcript> parse_vtt(std::string_view utf8, const std::string& name);
Result<Transcript> parse_text_transcript(std::string_view utf8, const std::string& name);
// Decodes file bytes already read and picks the parser by the extension of `path` (.srt,
// .vtt, else text); `path` also names the file in errors. Taking the bytes lets a caller hash
// exactly what was parsed. A line longer than kMaxLineBytes (read_file.h) is refused.
// `decoded`, when given, receives the decoded text on success.
Result<Transcript> parse_transcript(std::string_view bytes, const std::string& path, std::string* decoded = nullptr);
// Reads the file (at most kMaxTextFileBytes, see read_file.h) and parses it as above.
Result<Transcript> read_transcript(const std::string& path);

}  // namespace docdsa::ingest
