// The library file: one SQLite database per library, WAL, foreign keys on, schema versioned
// by PRAGMA user_version with a migration ladder inside one BEGIN IMMEDIATE transaction, and
// identified by PRAGMA application_id. A database from a newer DocDSA is refused, not touched;
// so is another application's SQLite file (tables, not our application_id). Reads check that
// the last step ended the rows (SQLITE_DONE): an error midway is an error, not a short list.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "docdsa/base/result.h"

struct sqlite3;

namespace docdsa::storage {

struct DocumentRow {
  int64_t id = 0;
  std::string path, kind, title, author, content_hash, status = "ready", warnings, added_at;
  int64_t file_size = 0, n_pages = 0, n_segments = 0, n_chunks = 0, n_tokens = 0, duration_ms = -1;
  int64_t ocr_pages = 0;        // PDF pages whose text was read by OCR
  double ocr_confidence = -1;   // their mean word confidence (0..100), -1 when none
};
// A word that OCR read on a scanned page, with its box in page points (origin top left, as
// Poppler's text boxes), so the reader can mark it on the page image.
struct OcrWordRow {
  int page = 0;
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  float confidence = 0;  // 0..100
  std::string text;
};
struct SegmentRow {
  int page = 0;
  int64_t start_ms = -1, end_ms = -1;
  std::string speaker, text;
};
struct ChunkRow {
  int idx = 0, n_tokens = 0, page_first = 0, page_last = 0;
  int64_t start_ms = -1, end_ms = -1, char_begin = 0, char_end = 0;
  std::string speakers, text;
};
struct SearchHit {
  int64_t doc_id = 0;
  std::string title, path, snippet;
  ChunkRow chunk;
};

// A model run whose result is stored (ask or summarize): how it ran and what it cost.
struct RunRecord {
  std::string kind;         // "ask" or "summarize"
  std::string attention;    // "dsa" or "dense"
  std::string model;        // model file name
  std::string cost_report;  // JSON
  std::string attention_map = "[]";  // JSON [[segment, weight], ...]: where the selections fell
};
struct AnswerRecord {
  int64_t question_id = 0, answer_id = 0;
  std::string question, answer, sources, asked_at, attention, cost_report, attention_map, model;
};
struct SummaryRecord {
  int64_t id = 0;
  std::string content_hash, text, sources, created_at, attention, model, cost_report, attention_map;
};

// What Library::merge did: rows copied in, documents that were already there (or a newer
// version at their path), and older versions replaced by a newer one at the same path.
struct MergeStats {
  int inputs = 0;
  int64_t documents_added = 0, documents_present = 0, documents_replaced = 0, segments = 0, chunks = 0, runs = 0, summaries = 0, questions = 0,
          answers = 0, selections = 0;
};

enum class StoreOutcome { kAdded, kUnchanged, kReplaced };
const char* outcome_name(StoreOutcome o);

inline constexpr int kApplicationId = 0x44534131;  // "DSA1"
inline constexpr int kSchemaVersion = 3;

class Library {
 public:
  // Opens (creating if needed) and migrates the library at `path`. A new, empty (0-byte) or
  // DocDSA database is accepted; anything else is refused before a byte of it is written.
  static Result<std::unique_ptr<Library>> open(const std::string& path);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  int schema_version() const;

  // Stores a document with its segments and chunks in one transaction. The same content
  // (hash) already stored: kUnchanged, nothing written. The same path with new content: the
  // old rows are replaced in place, keeping the id. Otherwise kAdded.
  Result<std::pair<int64_t, StoreOutcome>> store(DocumentRow doc, const std::vector<SegmentRow>& segments,
                                                 const std::vector<ChunkRow>& chunks);
  // The same with the words OCR read on its scanned pages (stored in the same transaction).
  Result<std::pair<int64_t, StoreOutcome>> store(DocumentRow doc, const std::vector<SegmentRow>& segments,
                                                 const std::vector<ChunkRow>& chunks, const std::vector<OcrWordRow>& ocr_words);
  // Records that a stored document's file now lives at `new_path` (it was moved or renamed);
  // refused (kNotFound) when another document is stored under that path.
  Status move_path(int64_t doc_id, const std::string& new_path);
  // The id of the document with this content (SHA-256 hex), 0 when none.
  Result<int64_t> find_by_hash(const std::string& content_hash) const;
  // The OCR words of one page (page > 0) or of every page (page 0), in reading order.
  Result<std::vector<OcrWordRow>> ocr_words(int64_t doc_id, int page = 0) const;
  Result<std::vector<DocumentRow>> list() const;
  // By id, or by exact path, or by a unique content-hash prefix (>= 6 hex digits). Never
  // throws: an id too large for int64 is kNotFound with a message saying so.
  Result<DocumentRow> find(const std::string& key) const;
  Result<std::vector<SegmentRow>> segments(int64_t doc_id) const;
  Result<std::vector<ChunkRow>> chunks(int64_t doc_id) const;
  // Full-text search (FTS5 syntax) over chunk text, best matches first.
  Result<std::vector<SearchHit>> search(const std::string& query, int limit = 20) const;
  Status remove(int64_t doc_id);

  // A question and its answer with the run that produced it, in one transaction.
  Result<int64_t> save_answer(int64_t doc_id, const std::string& question, const std::string& answer,
                              const std::string& sources_json, const RunRecord& run);
  // Questions and answers about a document, oldest first.
  Result<std::vector<AnswerRecord>> history(int64_t doc_id) const;
  // The document's summary by `model` replaces any earlier one by that model, in one
  // transaction: a run killed before it commits leaves no row, never a partial one.
  Result<int64_t> save_summary(int64_t doc_id, const std::string& content_hash, const std::string& text,
                               const std::string& sources_json, const RunRecord& run);
  // The newest summary of this content by `model`, if any (id 0 when none).
  Result<SummaryRecord> find_summary(int64_t doc_id, const std::string& content_hash, const std::string& model) const;

  // The cost reports (JSON) of every stored run, oldest first: the library-wide totals.
  Result<std::vector<std::string>> run_costs() const;

  // Merges other libraries (the shards of a batch) into this one, in one transaction. Documents
  // are deduplicated by content hash: one already here keeps its own segments and chunks. Runs
  // (with their costs), summaries, questions, answers and attention selections are copied with
  // their timestamps, each once: a row equal to one already here (same document, same fields,
  // same times) is not copied again, so merging the same inputs again changes nothing, and the
  // run costs here afterwards are those already here plus each input's. A document keeps one
  // summary per model, the newest, as save_summary does. Inputs are opened
  // read-only and must be DocDSA libraries (application_id, a schema this DocDSA knows); any
  // problem with any input leaves this library as it was.
  Result<MergeStats> merge(const std::vector<std::string>& inputs);
  // The inputs' checks alone (read-only): `library merge` runs them before it creates OUT, so a
  // wrong input does not leave an empty new library behind.
  static Status check_merge_inputs(const std::vector<std::string>& inputs);

  Status integrity_check() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Library() = default;
  Status exec(const char* sql) const;
  // Runs `body` inside BEGIN IMMEDIATE … COMMIT; an error from it (or from COMMIT) rolls back.
  Result<int64_t> write_transaction(const std::function<Result<int64_t>()>& body);
  Status migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Default library path: $XDG_DATA_HOME/docdsa/library.sqlite (~/.local/share/docdsa/...).
std::string default_library_path();

}  // namespace docdsa::storage
