// Library::merge: the shards of a batch (docdsa summarize --shard K/N) into one library.
#include <sqlite3.h>

#include <cctype>
#include <filesystem>
#include <functional>
#include <memory>
#include <unordered_map>

#include "docdsa/storage/library.h"
#include "stmt.h"

namespace docdsa::storage {
namespace {

namespace fs = std::filesystem;
using detail::pragma_int;
using detail::Stmt;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// `path` as an SQLite URI that opens it immutable (every byte but the unreserved ones escaped).
std::string immutable_uri(const std::string& path) {
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  std::string uri = "file://";
  for (const unsigned char c : (ec ? fs::path(path) : abs).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789ABCDEF";
      uri += '%';
      uri += hex[c >> 4];
      uri += hex[c & 15];
    }
  }
  return uri + "?immutable=1";
}

// An input, opened read-only, after checking that it is a DocDSA library this version reads.
Result<DbPtr> open_input(const std::string& path, int* version) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return make_error(ErrorCode::kNotFound, path + ": no such library file");
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK)
    return make_error(ErrorCode::kIo, path + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
  sqlite3_busy_timeout(raw, 5000);
  int app = pragma_int(raw, "PRAGMA application_id");
  // A library in WAL mode in a folder this user cannot write (shards on a read-only mount, or
  // another user's results): the reader cannot create the -shm file beside it. Without a -wal
  // file (the shard was closed: all of it is in the main file) it is read as immutable.
  const int err = sqlite3_errcode(raw) & 0xff;
  if (app < 0 && (err == SQLITE_READONLY || err == SQLITE_CANTOPEN) && !fs::exists(path + "-wal", ec)) {
    raw = nullptr;
    const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX;
    const int rc2 = sqlite3_open_v2(immutable_uri(path).c_str(), &raw, flags, nullptr);
    db.reset(raw);
    if (rc2 != SQLITE_OK)
      return make_error(ErrorCode::kIo, path + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
    app = pragma_int(raw, "PRAGMA application_id");
  }
  if (app < 0)
    return make_error(ErrorCode::kUnsupported, path + ": not a SQLite database (or unreadable): " + sqlite3_errmsg(raw));
  if (app != kApplicationId)
    return make_error(ErrorCode::kUnsupported,
                      path + ": not a DocDSA library (application_id " + std::to_string(app) + "); not merged");
  *version = pragma_int(raw, "PRAGMA user_version");
  if (*version < 1 || *version > kSchemaVersion)
    return make_error(ErrorCode::kUnsupported, path + ": library schema version " + std::to_string(*version) +
                                                   " is not one this DocDSA reads (1.." + std::to_string(kSchemaVersion) + ")");
  return db;
}

// Binds columns [c0, c0+n) of `from` to parameters [p0, p0+n) of `to`, values as they are.
void copy_cols(const Stmt& from, int c0, Stmt& to, int p0, int n) {
  for (int i = 0; i < n; ++i) sqlite3_bind_value(to.get(), p0 + i, sqlite3_column_value(from.get(), c0 + i));
}

// A source id mapped to its id here; NULL (or an id the source no longer has) stays NULL.
void bind_mapped(Stmt& to, int p, const Stmt& from, int c, const std::unordered_map<int64_t, int64_t>& map) {
  const auto it = from.null(c) ? map.end() : map.find(from.i64(c));
  if (it == map.end())
    sqlite3_bind_null(to.get(), p);
  else
    sqlite3_bind_int64(to.get(), p, it->second);
}

// Copies one input into `out` (inside the caller's transaction).
Status merge_one(sqlite3* out, const std::string& out_path, sqlite3* in, const std::string& in_path, int version,
                 MergeStats* st) {
  const auto fail = [&](sqlite3* db, const std::string& what) -> Status {
    // A row the output refuses is named by the input it came from too.
    return make_error(ErrorCode::kIo, db == out ? out_path + ": " + what + " from " + in_path + ": " + sqlite3_errmsg(db)
                                                : in_path + ": " + what + ": " + sqlite3_errmsg(db));
  };
  // Loops over `sel` on the input; `row` handles each row. A failed step is an error, not the end.
  const auto each = [&](Stmt& sel, const char* what, const std::function<Status()>& row) -> Status {
    if (!sel.ok()) return fail(in, std::string("reading ") + what);
    int rc;
    while ((rc = sel.step()) == SQLITE_ROW) TRY_STATUS(row());
    if (rc != SQLITE_DONE) return fail(in, std::string("reading ") + what);
    return {};
  };
  // Runs `find` (the row's twin here): its id, or 0 when none.
  const auto lookup = [&](Stmt& find, int64_t* id) -> Status {
    const int rc = find.step();
    *id = rc == SQLITE_ROW ? find.i64(0) : 0;
    find.reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(out, "looking up a row");
    return {};
  };
  const auto insert = [&](Stmt& ins, const char* what, int64_t* id) -> Status {
    const int rc = ins.step();
    ins.reset();
    if (rc != SQLITE_DONE) return fail(out, std::string("copying ") + what);
    if (id) *id = sqlite3_last_insert_rowid(out);
    return {};
  };
  // The twin's id when `find` has one, else the id of the row `ins` copies in (counted).
  const auto find_or_insert = [&](Stmt& find, Stmt& ins, const char* what, int64_t* id, int64_t* added) -> Status {
    TRY_STATUS(lookup(find, id));
    if (*id != 0) {
      ins.reset();
      return {};
    }
    TRY_STATUS(insert(ins, what, id));
    ++*added;
    return {};
  };
  // A snapshot of the input: it may be a shard still being written (WAL readers see one state).
  if (sqlite3_exec(in, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return fail(in, "starting to read");
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{in};

  std::unordered_map<int64_t, int64_t> docs, chunks, runs, questions;
  {
    // Schema v3 added OCR (the words of scanned pages, their count and confidence).
    Stmt sel(in, version >= 3 ? "SELECT id, path, content_hash, kind, title, author, file_size, n_pages, n_segments, n_tokens, duration_ms, "
                                "status, warnings, added_at, updated_at, ocr_pages, ocr_confidence FROM documents ORDER BY id"
                              : "SELECT id, path, content_hash, kind, title, author, file_size, n_pages, n_segments, n_tokens, duration_ms, "
                                "status, warnings, added_at, updated_at, 0, -1 FROM documents ORDER BY id");
    Stmt find(out, "SELECT id FROM documents WHERE content_hash = ?");
    Stmt ins(
        out,
        "INSERT INTO documents (path, content_hash, kind, title, author, file_size, n_pages, n_segments, n_tokens, duration_ms, "
        "status, warnings, added_at, updated_at, ocr_pages, ocr_confidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    Stmt ow_sel(in, version >= 3 ? "SELECT page, idx, x0, y0, x1, y1, confidence, text FROM ocr_words WHERE doc_id = ?"
                                 : "SELECT 0, 0, 0, 0, 0, 0, 0, '' WHERE 0 AND ? IS NULL");
    Stmt ow_ins(out, "INSERT INTO ocr_words (doc_id, page, idx, x0, y0, x1, y1, confidence, text) VALUES (?,?,?,?,?,?,?,?,?)");
    Stmt del_w(out, "DELETE FROM ocr_words WHERE doc_id = ?");
    Stmt seg_sel(in, "SELECT idx, page, start_ms, end_ms, speaker, text FROM segments WHERE doc_id = ? ORDER BY idx");
    Stmt seg_ins(out, "INSERT INTO segments (doc_id, idx, page, start_ms, end_ms, speaker, text) VALUES (?,?,?,?,?,?,?)");
    Stmt ch_sel(in,
                "SELECT id, idx, text, n_tokens, page_first, page_last, start_ms, end_ms, speakers, char_begin, char_end "
                "FROM chunks WHERE doc_id = ? ORDER BY idx");
    Stmt ch_ins(out,
                "INSERT INTO chunks (doc_id, idx, text, n_tokens, page_first, page_last, start_ms, end_ms, speakers, char_begin, "
                "char_end) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    Stmt ch_find(out, "SELECT id FROM chunks WHERE doc_id = ? AND idx = ?");
    // Another version of the file at the same path (a shard redone after the file changed):
    // like Library::store, the newer version replaces the older in place, keeping its id (and
    // so its questions and runs); an older version is not stored beside the newer.
    Stmt by_path(out, "SELECT id, updated_at >= ? FROM documents WHERE path = ? ORDER BY id LIMIT 1");
    Stmt del_c(out, "DELETE FROM chunks WHERE doc_id = ?");
    Stmt del_s(out, "DELETE FROM segments WHERE doc_id = ?");
    Stmt upd(out,
             "UPDATE documents SET content_hash=?, kind=?, title=?, author=?, file_size=?, n_pages=?, n_segments=?, n_tokens=?, "
             "duration_ms=?, status=?, warnings=?, updated_at=?, ocr_pages=?, ocr_confidence=? WHERE id=?");
    if (!find.ok() || !ins.ok() || !seg_ins.ok() || !ch_ins.ok() || !ch_find.ok() || !by_path.ok() || !del_c.ok() ||
        !del_s.ok() || !upd.ok() || !ow_ins.ok() || !del_w.ok())
      return fail(out, "preparing the merge");
    TRY_STATUS(each(sel, "documents", [&]() -> Status {
      const int64_t src_id = sel.i64(0);
      find.bind(1, sel.text(2));
      int64_t id = 0;
      TRY_STATUS(lookup(find, &id));
      bool present = id != 0, stale = false;
      if (!present) {
        by_path.bind(1, sel.text(14)).bind(2, sel.text(1));
        const int rc = by_path.step();
        if (rc == SQLITE_ROW) id = by_path.i64(0), stale = by_path.i64(1) != 0;
        by_path.reset();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(out, "looking up a document's path");
      }
      if (stale) {  // the newer version is here: this one's rows are not copied (its runs are)
        ++st->documents_present;
        docs[src_id] = id;
        return {};
      }
      if (!present && id != 0) {
        for (Stmt* d : {&del_c, &del_s, &del_w}) {
          d->bind(1, id);
          const int rc = d->step();
          d->reset();
          if (rc != SQLITE_DONE) return fail(out, "replacing an older version of a document");
        }
        copy_cols(sel, 2, upd, 1, 11);  // content_hash .. warnings, then updated_at (added_at stays)
        sqlite3_bind_value(upd.get(), 12, sqlite3_column_value(sel.get(), 14));
        copy_cols(sel, 15, upd, 13, 2);
        upd.bind(15, id);
        TRY_STATUS(insert(upd, "a newer version of a document", nullptr));
        ++st->documents_replaced;
      } else if (!present) {
        copy_cols(sel, 1, ins, 1, 16);
        TRY_STATUS(insert(ins, "a document", &id));
        ++st->documents_added;
      } else {
        ++st->documents_present;
      }
      docs[src_id] = id;
      if (!present) {
        seg_sel.reset();
        seg_sel.bind(1, src_id);
        TRY_STATUS(each(seg_sel, "segments", [&]() -> Status {
          seg_ins.bind(1, id);
          copy_cols(seg_sel, 0, seg_ins, 2, 6);
          ++st->segments;
          return insert(seg_ins, "segments", nullptr);
        }));
        ow_sel.reset();
        ow_sel.bind(1, src_id);
        TRY_STATUS(each(ow_sel, "OCR words", [&]() -> Status {
          ow_ins.bind(1, id);
          copy_cols(ow_sel, 0, ow_ins, 2, 8);
          return insert(ow_ins, "OCR words", nullptr);
        }));
      }
      ch_sel.reset();
      ch_sel.bind(1, src_id);
      return each(ch_sel, "chunks", [&]() -> Status {
        int64_t cid = 0;
        if (present) {  // its chunks are those already here: map them, for the selections
          ch_find.bind(1, id).bind(2, ch_sel.i64(1));
          TRY_STATUS(lookup(ch_find, &cid));
          if (cid == 0) return {};
        } else {
          ch_ins.bind(1, id);
          copy_cols(ch_sel, 1, ch_ins, 2, 10);
          TRY_STATUS(insert(ch_ins, "chunks", &cid));
          ++st->chunks;
        }
        chunks[ch_sel.i64(0)] = cid;
        return {};
      });
    }));
  }
  {
    // Schema v1 had no attention map: the v2 default.
    Stmt sel(in, version >= 2
                     ? "SELECT id, doc_id, kind, status, attention, model, cost_report, started_at, finished_at, attention_map "
                       "FROM runs ORDER BY id"
                     : "SELECT id, doc_id, kind, status, attention, model, cost_report, started_at, finished_at, '[]' "
                       "FROM runs ORDER BY id");
    Stmt find(out,
              "SELECT id FROM runs WHERE doc_id IS ? AND kind = ? AND status = ? AND attention = ? AND model = ? AND "
              "cost_report IS ? AND started_at = ? AND finished_at IS ? AND attention_map = ? ORDER BY id LIMIT 1");
    Stmt ins(out,
             "INSERT INTO runs (doc_id, kind, status, attention, model, cost_report, started_at, finished_at, attention_map) "
             "VALUES (?,?,?,?,?,?,?,?,?)");
    if (!find.ok() || !ins.ok()) return fail(out, "preparing the merge of runs");
    TRY_STATUS(each(sel, "runs", [&]() -> Status {
      for (Stmt* s : {&find, &ins}) {
        bind_mapped(*s, 1, sel, 1, docs);
        copy_cols(sel, 2, *s, 2, 8);
      }
      int64_t id = 0;
      TRY_STATUS(find_or_insert(find, ins, "a run", &id, &st->runs));
      runs[sel.i64(0)] = id;
      return {};
    }));
  }
  {
    // One summary per document and model, as Library::save_summary keeps it: the newest wins
    // (an older one from another input is left out; its run, with its cost, is still copied).
    Stmt sel(in,
             "SELECT s.doc_id, s.run_id, s.content_hash, s.text, s.sources, s.created_at, r.model "
             "FROM summaries s LEFT JOIN runs r ON r.id = s.run_id ORDER BY s.id");
    Stmt find(out,
              "SELECT id FROM summaries WHERE doc_id = ? AND run_id IS ? AND content_hash = ? AND text = ? AND sources = ? AND "
              "created_at = ? LIMIT 1");
    Stmt newer(
        out,
        "SELECT s.id, s.created_at >= ? FROM summaries s JOIN runs r ON r.id = s.run_id WHERE s.doc_id = ? AND r.model = ? "
        "ORDER BY s.created_at DESC LIMIT 1");
    Stmt del(out, "DELETE FROM summaries WHERE doc_id = ? AND run_id IN (SELECT id FROM runs WHERE model = ?)");
    Stmt ins(out, "INSERT INTO summaries (doc_id, run_id, content_hash, text, sources, created_at) VALUES (?,?,?,?,?,?)");
    if (!find.ok() || !newer.ok() || !del.ok() || !ins.ok()) return fail(out, "preparing the merge of summaries");
    TRY_STATUS(each(sel, "summaries", [&]() -> Status {
      if (!docs.count(sel.i64(0))) return {};
      const int64_t doc = docs[sel.i64(0)];
      for (Stmt* s : {&find, &ins}) {
        bind_mapped(*s, 1, sel, 0, docs);
        bind_mapped(*s, 2, sel, 1, runs);
        copy_cols(sel, 2, *s, 3, 4);
      }
      int64_t id = 0;
      TRY_STATUS(lookup(find, &id));
      if (id != 0) return ins.reset(), Status{};
      if (!sel.null(6)) {
        newer.bind(1, sel.text(5)).bind(2, doc).bind(3, sel.text(6));
        const int rc = newer.step();
        const bool keep_existing = rc == SQLITE_ROW && newer.i64(1) != 0;
        newer.reset();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(out, "looking up a summary");
        if (keep_existing) return ins.reset(), Status{};
        del.bind(1, doc).bind(2, sel.text(6));
        const int drc = del.step();
        del.reset();
        if (drc != SQLITE_DONE) return fail(out, "replacing an older summary");
      }
      ++st->summaries;
      return insert(ins, "a summary", nullptr);
    }));
  }
  {
    Stmt sel(in, "SELECT id, doc_id, text, asked_at FROM questions ORDER BY id");
    Stmt find(out, "SELECT id FROM questions WHERE doc_id = ? AND text = ? AND asked_at = ? ORDER BY id LIMIT 1");
    Stmt ins(out, "INSERT INTO questions (doc_id, text, asked_at) VALUES (?,?,?)");
    if (!find.ok() || !ins.ok()) return fail(out, "preparing the merge of questions");
    TRY_STATUS(each(sel, "questions", [&]() -> Status {
      if (!docs.count(sel.i64(1))) return {};
      for (Stmt* s : {&find, &ins}) {
        bind_mapped(*s, 1, sel, 1, docs);
        copy_cols(sel, 2, *s, 2, 2);
      }
      int64_t id = 0;
      TRY_STATUS(find_or_insert(find, ins, "a question", &id, &st->questions));
      questions[sel.i64(0)] = id;
      return {};
    }));
  }
  {
    Stmt sel(in, "SELECT question_id, run_id, text, sources FROM answers ORDER BY id");
    Stmt find(out, "SELECT id FROM answers WHERE question_id = ? AND run_id IS ? AND text = ? AND sources = ? LIMIT 1");
    Stmt ins(out, "INSERT INTO answers (question_id, run_id, text, sources) VALUES (?,?,?,?)");
    if (!find.ok() || !ins.ok()) return fail(out, "preparing the merge of answers");
    TRY_STATUS(each(sel, "answers", [&]() -> Status {
      if (!questions.count(sel.i64(0))) return {};
      for (Stmt* s : {&find, &ins}) {
        bind_mapped(*s, 1, sel, 0, questions);
        bind_mapped(*s, 2, sel, 1, runs);
        copy_cols(sel, 2, *s, 3, 2);
      }
      int64_t id = 0;
      return find_or_insert(find, ins, "an answer", &id, &st->answers);
    }));
  }
  {
    Stmt sel(in, "SELECT run_id, chunk_id, weight FROM selections");
    Stmt ins(out, "INSERT OR IGNORE INTO selections (run_id, chunk_id, weight) VALUES (?,?,?)");
    if (!ins.ok()) return fail(out, "preparing the merge of selections");
    TRY_STATUS(each(sel, "selections", [&]() -> Status {
      if (!runs.count(sel.i64(0)) || !chunks.count(sel.i64(1))) return {};
      bind_mapped(ins, 1, sel, 0, runs);
      bind_mapped(ins, 2, sel, 1, chunks);
      copy_cols(sel, 2, ins, 3, 1);
      TRY_STATUS(insert(ins, "selections", nullptr));
      st->selections += sqlite3_changes(out);
      return {};
    }));
  }
  return {};
}

}  // namespace

Status Library::check_merge_inputs(const std::vector<std::string>& inputs) {
  for (const auto& in : inputs) {
    int version = 0;
    TRY(DbPtr db, open_input(in, &version));
  }
  return {};
}

Result<MergeStats> Library::merge(const std::vector<std::string>& inputs) {
  MergeStats st;
  std::error_code ec;
  for (const auto& in : inputs)
    if (fs::equivalent(in, path_, ec))
      return make_error(ErrorCode::kInvalidArgument, in + ": is the output library itself; give it once, as OUT");
  // Each input is opened and checked once, inside the transaction: a bad one rolls it back.
  // (`library merge` runs check_merge_inputs first only so that it never creates an empty OUT.)
  const Result<int64_t> done = write_transaction([&]() -> Result<int64_t> {
    for (const auto& in : inputs) {  // one open at a time: thousands of shards, few file handles
      int version = 0;
      TRY(DbPtr db, open_input(in, &version));
      TRY_STATUS(merge_one(db_, path_, db.get(), in, version, &st));
      ++st.inputs;
    }
    return 0;
  });
  if (!done.ok()) return done.error();
  return st;
}

}  // namespace docdsa::storage
