// Library helpers shared by the commands: opening the library, expanding files and folders,
// ingesting one file, and provenance labels.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/engine/tokenizer.h"
#include "docdsa/ingest/ocr.h"
#include "docdsa/storage/library.h"

namespace docdsa::app {

// The library at `db`, or the default one when empty.
Result<std::unique_ptr<storage::Library>> open_library_at(const std::string& db);
std::string format_ms(int64_t ms);                   // hh:mm:ss, "" when negative
std::string provenance(const storage::ChunkRow& c);  // "p. 3", "pp. 3-4", "00:01:02-00:01:30 Alice"
bool supported(const std::string& path);             // .pdf .srt .vtt .txt .md
// Files and folders (recursively) -> the supported files in a stable order; problems with
// inputs (missing, unreadable folders, a folder removed during the walk) go to `errors` as
// (path, reason) and the walk goes on. `on_folder` (may be empty) is called with each folder
// before it is read (a progress hook, and where tests change the tree mid-walk).
std::vector<std::string> expand(const std::vector<std::string>& inputs, std::vector<std::pair<std::string, std::string>>* errors,
                                const std::function<void(const std::string& folder)>& on_folder = {});

struct IngestResult {
  int64_t id = 0;
  storage::StoreOutcome outcome = storage::StoreOutcome::kAdded;
  storage::DocumentRow row;
  size_t n_segments = 0, n_chunks = 0;
  std::vector<std::string> warnings;
  std::vector<int> pages_without_text;
  int rolling_repeats_removed = 0;
  size_t n_ocr_pages = 0;  // pages read by OCR (0 for an unchanged file: it was not read again)
};
// Extracts, chunks and stores one file (one transaction); the error names the file.
// `on_page`: see ingest::load_document (returning false stops it, with kCancelled).
Result<IngestResult> ingest_one(storage::Library& lib, const Tokenizer& tok, const std::string& path,
                                const std::string& password = "", int max_chunk_tokens = 512,
                                const std::function<bool(int done, int total)>& on_page = {});
// The same with OCR options (scanned PDF pages) and OCR progress. A file whose content is
// stored already is not read again (no OCR): kUnchanged at once.
struct IngestOptions {
  std::string password;
  int max_chunk_tokens = 512;
  std::function<bool(int done, int total)> on_page;      // PDF text pass
  ingest::OcrOptions ocr;
  std::function<bool(int done, int total)> on_ocr_page;  // OCR pass: pages read by OCR so far, of how many
};
Result<IngestResult> ingest_one(storage::Library& lib, const Tokenizer& tok, const std::string& path, const IngestOptions& options);

}  // namespace docdsa::app
