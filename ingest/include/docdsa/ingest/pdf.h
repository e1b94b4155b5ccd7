// PDF text extraction through poppler-qt6: text per page with page numbers, metadata, and the
// three outcomes of opening a file — opened, failed (with the reason), needs a password.
// Layout-aware extraction, normalisation and chunking arrive with the ingest issue.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/ingest/ocr.h"

namespace docdsa::ingest {

struct PdfPage {
  int number = 0;         // 1-based
  std::string text;       // UTF-8
  bool has_text = false;  // false: no text layer (scanned / image-only), and OCR found no words or did not run
  bool ocr = false;       // the text was read by OCR (the page had no text layer)
  OcrPage ocr_result;     // when ocr: the words with their boxes and confidences
};

struct PdfDocument {
  std::string title, author;
  std::vector<PdfPage> pages;
  std::vector<std::string> warnings;  // from OCR: pages turned, low confidence, clamped resolution
};

// Called before the first page and after each page with (pages read, total pages); returning
// false stops the read within a page (a long PDF can take minutes).
using PageProgress = std::function<bool(int done, int total)>;

// Errors: kNotFound (missing), kCorrupt (damaged beyond recovery), kInvalidArgument with a
// message containing "needs a password" (encrypted, no or wrong password), kCancelled when
// `on_page` returned false.
Result<PdfDocument> read_pdf(const std::string& path, const std::string& password = {}, const PageProgress& on_page = {});
// The same from bytes already in memory (`name` is for messages): ingest hashes and parses
// one read of the file, so a file rewritten meanwhile cannot pair a hash with other text.
// `bytes` must outlive the call; they are not copied.
Result<PdfDocument> read_pdf_bytes(const std::string& bytes, const std::string& name, const std::string& password = {},
                                   const PageProgress& on_page = {});

// The same, and the pages without a text layer read by OCR (ocr.h) when `ocr.enabled`; only
// those pages, so a mixed PDF keeps its text layer where it has one. `on_ocr_page(done, total)`
// follows the OCR pages (total: the pages being read by OCR); returning false cancels with
// kCancelled. A missing OCR language is kNotFound naming the package to install.
struct PdfReadOptions {
  std::string password;
  PageProgress on_page;
  OcrOptions ocr;
  PageProgress on_ocr_page;
};
Result<PdfDocument> read_pdf_bytes(const std::string& bytes, const std::string& name, const PdfReadOptions& options);

}  // namespace docdsa::ingest

namespace docdsa::ingest {

// Cleans extracted page text in place: ligatures (U+FB00..FB06) to letters, words hyphenated
// across line ends joined, and running headers, footers and page numbers removed (lines that
// repeat at the top or bottom of at least half the pages, digits ignored). Returns how many
// lines were removed as headers/footers.
int normalize_pages(std::vector<PdfPage>* pages);

}  // namespace docdsa::ingest
