// A document ready for storage: its text split into segments that carry provenance (a PDF
// page, or a transcript cue's time range and speaker), and token-aware chunks cut at segment
// boundaries. The full text is the segments' text in order, so the engine can read it whole.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/ingest/pdf.h"

namespace docdsa::ingest {

enum class DocKind { kPdf, kSrt, kVtt, kText };
const char* kind_name(DocKind k);

struct Segment {
  std::string text;
  int page = 0;            // PDF: 1-based page; 0 otherwise
  int64_t start_ms = -1;   // transcripts
  int64_t end_ms = -1;
  std::string speaker;
};

struct Chunk {
  int index = 0;
  std::string text;
  int n_tokens = 0;
  int first_segment = 0, last_segment = 0;  // inclusive
  int page_first = 0, page_last = 0;        // PDF pages covered
  int64_t start_ms = -1, end_ms = -1;       // transcript time covered
  std::string speakers;                     // comma-separated, in order of appearance
  int64_t char_begin = 0, char_end = 0;     // offsets in the full text
};

struct Document {
  std::string path;
  DocKind kind = DocKind::kText;
  std::string title;
  std::string author;
  std::string content_hash;  // SHA-256 of the file bytes, hex
  int64_t file_size = 0;
  std::vector<Segment> segments;
  std::vector<int> pages_without_text;  // PDF pages with no text layer (scanned)
  std::vector<std::string> warnings;
  int rolling_repeats_removed = 0;
  // PDF pages read by OCR (ascending), with their word boxes and confidences; empty pages
  // that OCR found no words on are in pages_without_text instead.
  struct OcrPageWords {
    int page = 0;
    OcrPage result;
  };
  std::vector<OcrPageWords> ocr_pages;
  float ocr_confidence = -1;  // mean word confidence over the OCR pages (0..100), -1 when none
  // True when LoadOptions::known said this content is stored already: nothing was parsed.
  bool known = false;
};

struct LoadOptions {
  std::string password;
  PageProgress on_page;      // PDF text pass: (pages read, total)
  OcrOptions ocr;            // PDF pages without a text layer (enabled by default)
  PageProgress on_ocr_page;  // OCR pass: (pages read, pages to read by OCR)
  // Called with the content hash before anything is parsed; true returns at once with
  // Document::known set (the library has it: an unchanged file is not read, nor OCR'd, again).
  std::function<bool(const std::string& sha256)> known;
};

// Reads a PDF, SRT, VTT or text transcript (chosen by extension) into a Document.
// `on_page` (PDFs): (pages read, total) before the first page and after each; returning
// false stops the read within a page, with kCancelled.
Result<Document> load_document(const std::string& path, const std::string& password = {},
                               const PageProgress& on_page = {});
// The same with OCR and the other options (the overload above runs OCR with its defaults).
Result<Document> load_document(const std::string& path, const LoadOptions& options);

// Splits into chunks of at most `max_tokens` (by `count_tokens`), never cutting inside a
// segment unless a single segment is larger than that, in which case it is cut at paragraph,
// line or sentence ends.
std::vector<Chunk> chunk_document(const Document& doc, int max_tokens, const std::function<int(const std::string&)>& count_tokens);

// The whole text in order (segments joined by blank lines), as chunk offsets refer to it.
std::string full_text(const Document& doc);

// SHA-256 of bytes, lower-case hex.
std::string sha256_hex(const std::string& bytes);

}  // namespace docdsa::ingest
