#include "docdsa/storage/library.h"

#include <sqlite3.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "stmt.h"

namespace docdsa::storage {
namespace {

Error sql_error(sqlite3* db, const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kIo, path + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// Version 1: documents with their provenance-carrying segments and chunks (FTS5-indexed),
// and the tables the ask/summarize commands fill (runs with cost reports, questions,
// answers, summaries, attention selections).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE documents (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL,
  content_hash TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('pdf','srt','vtt','txt')),
  title TEXT, author TEXT,
  file_size INTEGER NOT NULL DEFAULT 0,
  n_pages INTEGER NOT NULL DEFAULT 0,
  n_segments INTEGER NOT NULL DEFAULT 0,
  n_tokens INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT -1,
  status TEXT NOT NULL DEFAULT 'ready',
  warnings TEXT NOT NULL DEFAULT '',
  added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX documents_path ON documents(path);
CREATE TABLE segments (
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL, page INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  speaker TEXT NOT NULL, text TEXT NOT NULL,
  PRIMARY KEY (doc_id, idx)
) WITHOUT ROWID;
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL, text TEXT NOT NULL, n_tokens INTEGER NOT NULL,
  page_first INTEGER NOT NULL, page_last INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  speakers TEXT NOT NULL, char_begin INTEGER NOT NULL, char_end INTEGER NOT NULL,
  UNIQUE (doc_id, idx)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  doc_id INTEGER REFERENCES documents(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('ask','summarize')),
  status TEXT NOT NULL DEFAULT 'running',
  attention TEXT NOT NULL, model TEXT NOT NULL,
  cost_report TEXT,
  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  finished_at TEXT
);
CREATE TABLE questions (
  id INTEGER PRIMARY KEY,
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  text TEXT NOT NULL,
  asked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE answers (
  id INTEGER PRIMARY KEY,
  question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  text TEXT NOT NULL, sources TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE summaries (
  id INTEGER PRIMARY KEY,
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  content_hash TEXT NOT NULL, text TEXT NOT NULL, sources TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE selections (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
  weight REAL NOT NULL,
  PRIMARY KEY (run_id, chunk_id)
) WITHOUT ROWID;
PRAGMA application_id = 1146306865;
PRAGMA user_version = 1;
)sql";

// v2: a run's attention map — the share of the answer's sparse selections that fell in each
// stored segment (JSON array of [segment, weight] pairs), for the GUI's heat strip and history.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE runs ADD COLUMN attention_map TEXT NOT NULL DEFAULT '[]';
PRAGMA user_version = 2;
)sql";

// v3: OCR. The words read on scanned pages with their boxes (page points) and confidences, for
// the reader's marks; per document the number of OCR pages and their mean confidence. Existing
// rows keep their data (new columns have defaults, the new table starts empty).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE documents ADD COLUMN ocr_pages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE documents ADD COLUMN ocr_confidence REAL NOT NULL DEFAULT -1;
CREATE TABLE ocr_words (
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  page INTEGER NOT NULL, idx INTEGER NOT NULL,
  x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
  confidence REAL NOT NULL, text TEXT NOT NULL,
  PRIMARY KEY (doc_id, page, idx)
) WITHOUT ROWID;
PRAGMA user_version = 3;
)sql";

using detail::pragma_int;
using detail::Stmt;

constexpr const char* kDocColumns =
    "id, path, kind, title, author, content_hash, status, warnings, added_at, file_size, n_pages, n_segments, "
    "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = documents.id), n_tokens, duration_ms, ocr_pages, ocr_confidence";

DocumentRow read_doc(const Stmt& s) {
  DocumentRow d;
  d.id = s.i64(0);
  d.path = s.text(1);
  d.kind = s.text(2);
  d.title = s.text(3);
  d.author = s.text(4);
  d.content_hash = s.text(5);
  d.status = s.text(6);
  d.warnings = s.text(7);
  d.added_at = s.text(8);
  d.file_size = s.i64(9);
  d.n_pages = s.i64(10);
  d.n_segments = s.i64(11);
  d.n_chunks = s.i64(12);
  d.n_tokens = s.i64(13);
  d.duration_ms = s.i64(14);
  d.ocr_pages = s.i64(15);
  d.ocr_confidence = s.real(16);
  return d;
}

ChunkRow read_chunk(const Stmt& s, int c0) {
  ChunkRow c;
  c.idx = static_cast<int>(s.i64(c0));
  c.text = s.text(c0 + 1);
  c.n_tokens = static_cast<int>(s.i64(c0 + 2));
  c.page_first = static_cast<int>(s.i64(c0 + 3));
  c.page_last = static_cast<int>(s.i64(c0 + 4));
  c.start_ms = s.i64(c0 + 5);
  c.end_ms = s.i64(c0 + 6);
  c.speakers = s.text(c0 + 7);
  c.char_begin = s.i64(c0 + 8);
  c.char_end = s.i64(c0 + 9);
  return c;
}

}  // namespace

Library::~Library() {
  if (db_) sqlite3_close_v2(db_);
}

Status Library::exec(const char* sql) const {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return make_error(ErrorCode::kIo, path_ + ": " + m);
  }
  return {};
}

Result<std::unique_ptr<Library>> Library::open(const std::string& path) {
  std::unique_ptr<Library> lib(new Library());
  lib->path_ = path;
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (sqlite3_open_v2(path.c_str(), &lib->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK)
    return sql_error(lib->db_, path, "cannot open the library");
  sqlite3_busy_timeout(lib->db_, 5000);
  const int app = pragma_int(lib->db_, "PRAGMA application_id");
  const int ver = pragma_int(lib->db_, "PRAGMA user_version");
  if (app < 0) return sql_error(lib->db_, path, "not a SQLite database (or unreadable)");
  // Only a new or empty database (no schema objects) gets our schema; a database with tables
  // and without our application_id belongs to something else and is left exactly as it is
  // (nothing below runs, not even the journal-mode change, which rewrites the file header).
  const int objects = pragma_int(lib->db_, "SELECT count(*) FROM sqlite_master");
  if (objects < 0) return sql_error(lib->db_, path, "reading the schema");
  if (app != kApplicationId && (app != 0 || objects > 0))
    return make_error(ErrorCode::kUnsupported,
                      path + ": not a DocDSA library (another application's SQLite database: " + std::to_string(objects) +
                          " schema object(s), " + (app == 0 ? std::string("no application_id") : "application_id " + std::to_string(app)) +
                          "); refusing to write to it, choose another library file");
  if (ver > kSchemaVersion)
    return make_error(ErrorCode::kUnsupported, path + ": library schema version " + std::to_string(ver) +
                                                   " is newer than this DocDSA understands (" + std::to_string(kSchemaVersion) + "); upgrade DocDSA");
  TRY_STATUS(lib->exec("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"));
  TRY_STATUS(lib->migrate());
  return lib;
}

Status Library::migrate() {
  TRY_STATUS(exec("BEGIN IMMEDIATE"));
  const int v = pragma_int(db_, "PRAGMA user_version");
  Status st;
  if (v < 1) st = exec(kSchemaV1);
  if (st.ok() && v < 2) st = exec(kSchemaV2);
  if (st.ok() && v < 3) st = exec(kSchemaV3);
  if (!st.ok()) {
    (void)exec("ROLLBACK");
    return st.error().context("migrating the library schema");
  }
  return exec("COMMIT");
}

int Library::schema_version() const { return pragma_int(db_, "PRAGMA user_version"); }

Status Library::integrity_check() const {
  sqlite3_stmt* st = nullptr;
  std::string result;
  if (sqlite3_prepare_v2(db_, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    if (const auto* t = sqlite3_column_text(st, 0)) result = reinterpret_cast<const char*>(t);
  sqlite3_finalize(st);
  if (result == "ok") return {};
  if (result.empty()) result = sqlite3_errmsg(db_);
  return make_error(ErrorCode::kCorrupt, path_ + ": integrity check failed: " + result);
}

const char* outcome_name(StoreOutcome o) {
  switch (o) {
    case StoreOutcome::kAdded: return "added";
    case StoreOutcome::kUnchanged: return "unchanged";
    case StoreOutcome::kReplaced: return "replaced";
  }
  return "?";
}

Result<std::pair<int64_t, StoreOutcome>> Library::store(DocumentRow doc, const std::vector<SegmentRow>& segments,
                                                        const std::vector<ChunkRow>& chunks) {
  return store(std::move(doc), segments, chunks, {});
}

Result<int64_t> Library::find_by_hash(const std::string& content_hash) const {
  Stmt s(db_, "SELECT id FROM documents WHERE content_hash = ?");
  if (!s.ok()) return sql_error(db_, path_, "looking up the content hash");
  s.bind(1, content_hash);
  const int rc = s.step();
  if (rc == SQLITE_ROW) return s.i64(0);
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "looking up the content hash");
  return int64_t{0};
}

Result<std::vector<OcrWordRow>> Library::ocr_words(int64_t doc_id, int page) const {
  Stmt s(db_, "SELECT page, x0, y0, x1, y1, confidence, text FROM ocr_words WHERE doc_id = ? AND (? = 0 OR page = ?) ORDER BY page, idx");
  if (!s.ok()) return sql_error(db_, path_, "reading OCR words");
  s.bind(1, doc_id).bind(2, int64_t{page}).bind(3, int64_t{page});
  std::vector<OcrWordRow> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(OcrWordRow{static_cast<int>(s.i64(0)), static_cast<float>(s.real(1)), static_cast<float>(s.real(2)),
                             static_cast<float>(s.real(3)), static_cast<float>(s.real(4)), static_cast<float>(s.real(5)), s.text(6)});
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "reading the OCR words of document " + std::to_string(doc_id));
  return out;
}

Result<std::pair<int64_t, StoreOutcome>> Library::store(DocumentRow doc, const std::vector<SegmentRow>& segments,
                                                        const std::vector<ChunkRow>& chunks, const std::vector<OcrWordRow>& ocr_words) {
  TRY_STATUS(exec("BEGIN IMMEDIATE"));
  auto fail = [&](const std::string& what) -> Error {
    Error e = sql_error(db_, path_, what);
    (void)exec("ROLLBACK");
    return e;
  };
  {
    auto same = find_by_hash(doc.content_hash);
    if (!same.ok()) {
      (void)exec("ROLLBACK");
      return same.error();
    }
    if (*same) {
      TRY_STATUS(exec("COMMIT"));
      return std::make_pair(*same, StoreOutcome::kUnchanged);
    }
  }
  int64_t id = 0;
  StoreOutcome outcome = StoreOutcome::kAdded;
  {
    Stmt by_path(db_, "SELECT id FROM documents WHERE path = ?");
    by_path.bind(1, doc.path);
    const int rc = by_path.step();
    if (rc == SQLITE_ROW) {
      id = by_path.i64(0);
      outcome = StoreOutcome::kReplaced;
    } else if (rc != SQLITE_DONE) {
      return fail("looking up the path");
    }
  }
  if (outcome == StoreOutcome::kReplaced) {
    Stmt del_c(db_, "DELETE FROM chunks WHERE doc_id = ?");
    Stmt del_s(db_, "DELETE FROM segments WHERE doc_id = ?");
    Stmt del_w(db_, "DELETE FROM ocr_words WHERE doc_id = ?");
    del_c.bind(1, id);
    del_s.bind(1, id);
    del_w.bind(1, id);
    if (del_c.step() != SQLITE_DONE || del_s.step() != SQLITE_DONE || del_w.step() != SQLITE_DONE) return fail("replacing document rows");
    Stmt up(db_, "UPDATE documents SET kind=?, title=?, author=?, content_hash=?, file_size=?, n_pages=?, n_segments=?, n_tokens=?, "
                 "duration_ms=?, status=?, warnings=?, ocr_pages=?, ocr_confidence=?, updated_at=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id=?");
    up.bind(1, doc.kind).bind(2, doc.title).bind(3, doc.author).bind(4, doc.content_hash).bind(5, doc.file_size).bind(6, doc.n_pages)
        .bind(7, static_cast<int64_t>(segments.size())).bind(8, doc.n_tokens).bind(9, doc.duration_ms).bind(10, doc.status)
        .bind(11, doc.warnings).bind(12, doc.ocr_pages).bind_real(13, doc.ocr_confidence).bind(14, id);
    if (up.step() != SQLITE_DONE) return fail("updating the document");
  } else {
    Stmt ins(db_, "INSERT INTO documents (path, kind, title, author, content_hash, file_size, n_pages, n_segments, n_tokens, duration_ms, "
                  "status, warnings, ocr_pages, ocr_confidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, doc.path).bind(2, doc.kind).bind(3, doc.title).bind(4, doc.author).bind(5, doc.content_hash).bind(6, doc.file_size)
        .bind(7, doc.n_pages).bind(8, static_cast<int64_t>(segments.size())).bind(9, doc.n_tokens).bind(10, doc.duration_ms)
        .bind(11, doc.status).bind(12, doc.warnings).bind(13, doc.ocr_pages).bind_real(14, doc.ocr_confidence);
    if (ins.step() != SQLITE_DONE) return fail("inserting the document");
    id = sqlite3_last_insert_rowid(db_);
  }
  Stmt seg(db_, "INSERT INTO segments (doc_id, idx, page, start_ms, end_ms, speaker, text) VALUES (?,?,?,?,?,?,?)");
  for (size_t i = 0; i < segments.size(); ++i) {
    const SegmentRow& s = segments[i];
    seg.reset();
    seg.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, s.page).bind(4, s.start_ms).bind(5, s.end_ms).bind(6, s.speaker).bind(7, s.text);
    if (seg.step() != SQLITE_DONE) return fail("inserting segments");
  }
  Stmt ch(db_, "INSERT INTO chunks (doc_id, idx, text, n_tokens, page_first, page_last, start_ms, end_ms, speakers, char_begin, char_end) "
               "VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  for (const ChunkRow& c : chunks) {
    ch.reset();
    ch.bind(1, id).bind(2, c.idx).bind(3, c.text).bind(4, c.n_tokens).bind(5, c.page_first).bind(6, c.page_last).bind(7, c.start_ms)
        .bind(8, c.end_ms).bind(9, c.speakers).bind(10, c.char_begin).bind(11, c.char_end);
    if (ch.step() != SQLITE_DONE) return fail("inserting chunks");
  }
  Stmt ow(db_, "INSERT INTO ocr_words (doc_id, page, idx, x0, y0, x1, y1, confidence, text) VALUES (?,?,?,?,?,?,?,?,?)");
  int64_t idx = 0, last_page = -1;
  for (const OcrWordRow& w : ocr_words) {
    idx = w.page == last_page ? idx + 1 : 0;
    last_page = w.page;
    ow.reset();
    ow.bind(1, id).bind(2, int64_t{w.page}).bind(3, idx).bind_real(4, w.x0).bind_real(5, w.y0).bind_real(6, w.x1).bind_real(7, w.y1)
        .bind_real(8, w.confidence).bind(9, w.text);
    if (ow.step() != SQLITE_DONE) return fail("inserting OCR words");
  }
  if (auto st = exec("COMMIT"); !st.ok()) {
    (void)exec("ROLLBACK");
    return st.error();
  }
  return std::make_pair(id, outcome);
}

Result<std::vector<DocumentRow>> Library::list() const {
  Stmt s(db_, (std::string("SELECT ") + kDocColumns + " FROM documents ORDER BY id").c_str());
  if (!s.ok()) return sql_error(db_, path_, "listing documents");
  std::vector<DocumentRow> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_doc(s));
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "listing documents");
  return out;
}

Result<DocumentRow> Library::find(const std::string& key) const {
  // One row or none from `s`; a failing step is an error, not "no such document".
  auto one = [&](Stmt& s, std::optional<DocumentRow>* row) -> Status {
    if (!s.ok()) return sql_error(db_, path_, "looking up document '" + key + "'");
    const int rc = s.step();
    if (rc == SQLITE_ROW) *row = read_doc(s);
    else if (rc != SQLITE_DONE) return sql_error(db_, path_, "looking up document '" + key + "'");
    return {};
  };
  std::optional<DocumentRow> row;
  const bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
  int64_t id = 0;
  // An id too large for int64 is no id (std::stoll threw here); it may still be a hash prefix.
  const bool id_fits = numeric && std::from_chars(key.data(), key.data() + key.size(), id).ec == std::errc();
  if (id_fits) {
    Stmt s(db_, (std::string("SELECT ") + kDocColumns + " FROM documents WHERE id = ?").c_str());
    s.bind(1, id);
    TRY_STATUS(one(s, &row));
    if (row) return *row;
  }
  {
    Stmt s(db_, (std::string("SELECT ") + kDocColumns + " FROM documents WHERE path = ?").c_str());
    s.bind(1, key);
    TRY_STATUS(one(s, &row));
    if (row) return *row;
  }
  if (key.size() >= 6 && key.find_first_not_of("0123456789abcdef") == std::string::npos) {
    Stmt s(db_, (std::string("SELECT ") + kDocColumns + " FROM documents WHERE content_hash LIKE ? || '%' LIMIT 2").c_str());
    if (!s.ok()) return sql_error(db_, path_, "looking up document '" + key + "'");
    s.bind(1, key);
    std::vector<DocumentRow> hits;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) hits.push_back(read_doc(s));
    if (rc != SQLITE_DONE) return sql_error(db_, path_, "looking up document '" + key + "'");
    if (hits.size() == 1) return hits[0];
    if (hits.size() > 1) return make_error(ErrorCode::kInvalidArgument, "'" + key + "' matches several documents; give more of the hash");
  }
  if (numeric && !id_fits)
    return make_error(ErrorCode::kNotFound, "no document '" + key + "' in " + path_ + " (not a valid id: too large; see docdsa list)");
  return make_error(ErrorCode::kNotFound, "no document '" + key + "' in " + path_ + " (see docdsa list)");
}

Result<std::vector<SegmentRow>> Library::segments(int64_t doc_id) const {
  Stmt s(db_, "SELECT page, start_ms, end_ms, speaker, text FROM segments WHERE doc_id = ? ORDER BY idx");
  if (!s.ok()) return sql_error(db_, path_, "reading segments");
  s.bind(1, doc_id);
  std::vector<SegmentRow> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back(SegmentRow{static_cast<int>(s.i64(0)), s.i64(1), s.i64(2), s.text(3), s.text(4)});
  // A step that fails midway (corrupt page, I/O error) must not pass for the end of the rows.
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "reading the segments of document " + std::to_string(doc_id));
  return out;
}

Result<std::vector<ChunkRow>> Library::chunks(int64_t doc_id) const {
  Stmt s(db_, "SELECT idx, text, n_tokens, page_first, page_last, start_ms, end_ms, speakers, char_begin, char_end "
              "FROM chunks WHERE doc_id = ? ORDER BY idx");
  if (!s.ok()) return sql_error(db_, path_, "reading chunks");
  s.bind(1, doc_id);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_chunk(s, 0));
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "reading the chunks of document " + std::to_string(doc_id));
  return out;
}

Result<std::vector<SearchHit>> Library::search(const std::string& query, int limit) const {
  Stmt s(db_, "SELECT c.doc_id, d.title, d.path, snippet(chunks_fts, 0, '[', ']', '...', 12), "
              "c.idx, c.text, c.n_tokens, c.page_first, c.page_last, c.start_ms, c.end_ms, c.speakers, c.char_begin, c.char_end "
              "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.doc_id "
              "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?");
  if (!s.ok()) return sql_error(db_, path_, "preparing the search");
  s.bind(1, query).bind(2, limit);
  std::vector<SearchHit> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    SearchHit h;
    h.doc_id = s.i64(0);
    h.title = s.text(1);
    h.path = s.text(2);
    h.snippet = s.text(3);
    h.chunk = read_chunk(s, 4);
    out.push_back(std::move(h));
  }
  if (rc != SQLITE_DONE) return make_error(ErrorCode::kInvalidArgument, "search query '" + query + "': " + sqlite3_errmsg(db_));
  return out;
}

Status Library::remove(int64_t doc_id) {
  Stmt s(db_, "DELETE FROM documents WHERE id = ?");
  if (!s.ok()) return sql_error(db_, path_, "removing the document");
  s.bind(1, doc_id);
  if (s.step() != SQLITE_DONE) return sql_error(db_, path_, "removing the document");
  if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kNotFound, "no document " + std::to_string(doc_id));
  return {};
}

Status Library::move_path(int64_t doc_id, const std::string& new_path) {
  // Only onto a path no other document has: a file moved over another one's place leaves that
  // document's row to the next ingest of its path (the same path with new content replaces it).
  Stmt s(db_, "UPDATE documents SET path = ?1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?2 "
              "AND NOT EXISTS (SELECT 1 FROM documents WHERE path = ?1 AND id <> ?2)");
  if (!s.ok()) return sql_error(db_, path_, "updating the document's path");
  s.bind(1, new_path).bind(2, doc_id);
  if (s.step() != SQLITE_DONE) return sql_error(db_, path_, "updating the document's path");
  if (sqlite3_changes(db_) == 0)
    return make_error(ErrorCode::kNotFound, "no document " + std::to_string(doc_id) + ", or another document is stored under " + new_path);
  return {};
}

namespace {
Result<int64_t> insert_run(sqlite3* db, const std::string& path, int64_t doc_id, const RunRecord& run) {
  Stmt r(db, "INSERT INTO runs (doc_id, kind, status, attention, model, cost_report, attention_map, finished_at) "
             "VALUES (?,?,'done',?,?,?,?,strftime('%Y-%m-%dT%H:%M:%fZ','now'))");
  r.bind(1, doc_id).bind(2, run.kind).bind(3, run.attention).bind(4, run.model).bind(5, run.cost_report)
      .bind(6, run.attention_map.empty() ? std::string("[]") : run.attention_map);
  if (r.step() != SQLITE_DONE) return sql_error(db, path, "recording the run");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
}
}  // namespace

Result<int64_t> Library::write_transaction(const std::function<Result<int64_t>()>& body) {
  TRY_STATUS(exec("BEGIN IMMEDIATE"));
  Result<int64_t> r = body();
  if (r.ok())
    if (auto st = exec("COMMIT"); !st.ok()) r = st.error();
  if (!r.ok()) (void)exec("ROLLBACK");
  return r;
}

Result<int64_t> Library::save_answer(int64_t doc_id, const std::string& question, const std::string& answer,
                                     const std::string& sources_json, const RunRecord& run) {
  return write_transaction([&]() -> Result<int64_t> {
    TRY(int64_t run_id, insert_run(db_, path_, doc_id, run));
    Stmt q(db_, "INSERT INTO questions (doc_id, text) VALUES (?,?)");
    q.bind(1, doc_id).bind(2, question);
    if (q.step() != SQLITE_DONE) return sql_error(db_, path_, "storing the question");
    const int64_t qid = sqlite3_last_insert_rowid(db_);
    Stmt a(db_, "INSERT INTO answers (question_id, run_id, text, sources) VALUES (?,?,?,?)");
    a.bind(1, qid).bind(2, run_id).bind(3, answer).bind(4, sources_json);
    if (a.step() != SQLITE_DONE) return sql_error(db_, path_, "storing the answer");
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  });
}

Result<std::vector<AnswerRecord>> Library::history(int64_t doc_id) const {
  Stmt s(db_, "SELECT q.id, a.id, q.text, a.text, a.sources, q.asked_at, COALESCE(r.attention,''), COALESCE(r.cost_report,''), "
              "COALESCE(r.attention_map,'[]'), COALESCE(r.model,'') FROM questions q JOIN answers a ON a.question_id = q.id LEFT JOIN runs r ON r.id = a.run_id "
              "WHERE q.doc_id = ? ORDER BY q.id, a.id");
  s.bind(1, doc_id);
  std::vector<AnswerRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW)
    out.push_back({s.i64(0), s.i64(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.text(7), s.text(8), s.text(9)});
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "reading the history");
  return out;
}

Result<int64_t> Library::save_summary(int64_t doc_id, const std::string& content_hash, const std::string& text,
                                      const std::string& sources_json, const RunRecord& run) {
  return write_transaction([&]() -> Result<int64_t> {
    Stmt del(db_, "DELETE FROM summaries WHERE doc_id = ? AND run_id IN (SELECT id FROM runs WHERE model = ?)");
    del.bind(1, doc_id).bind(2, run.model);
    if (del.step() != SQLITE_DONE) return sql_error(db_, path_, "replacing the summary");
    TRY(int64_t run_id, insert_run(db_, path_, doc_id, run));
    Stmt ins(db_, "INSERT INTO summaries (doc_id, run_id, content_hash, text, sources) VALUES (?,?,?,?,?)");
    ins.bind(1, doc_id).bind(2, run_id).bind(3, content_hash).bind(4, text).bind(5, sources_json);
    if (ins.step() != SQLITE_DONE) return sql_error(db_, path_, "storing the summary");
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  });
}

Result<SummaryRecord> Library::find_summary(int64_t doc_id, const std::string& content_hash, const std::string& model) const {
  Stmt s(db_, "SELECT s.id, s.content_hash, s.text, s.sources, s.created_at, r.attention, r.model, COALESCE(r.cost_report,''), r.attention_map "
              "FROM summaries s JOIN runs r ON r.id = s.run_id WHERE s.doc_id = ? AND s.content_hash = ? AND r.model = ? "
              "ORDER BY s.id DESC LIMIT 1");
  s.bind(1, doc_id).bind(2, content_hash).bind(3, model);
  const int rc = s.step();
  if (rc == SQLITE_ROW) return SummaryRecord{s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6), s.text(7), s.text(8)};
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "looking up the summary");
  return SummaryRecord{};
}

Result<std::vector<std::string>> Library::run_costs() const {
  Stmt s(db_, "SELECT cost_report FROM runs WHERE cost_report IS NOT NULL ORDER BY id");
  std::vector<std::string> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(s.text(0));
  if (rc != SQLITE_DONE) return sql_error(db_, path_, "reading the run costs");
  return out;
}

std::string default_library_path() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/docdsa/library.sqlite";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/share/docdsa/library.sqlite";
}

}  // namespace docdsa::storage
