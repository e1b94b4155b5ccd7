#include "docdsa/storage/library.h"

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

namespace docdsa::storage {
namespace {

Error sql_error(sqlite3* db, const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kIo, path + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

int pragma_int(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  int v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
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
  if (app != 0 && app != kApplicationId)
    return make_error(ErrorCode::kUnsupported, path + ": not a DocDSA library (application_id " + std::to_string(app) + ")");
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
  if (v < 1) {
    st = exec(
        "CREATE TABLE documents ("
        "  id INTEGER PRIMARY KEY,"
        "  path TEXT NOT NULL,"
        "  content_hash TEXT NOT NULL UNIQUE,"
        "  kind TEXT NOT NULL CHECK (kind IN ('pdf','srt','vtt','txt')),"
        "  title TEXT,"
        "  added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
        ");"
        "PRAGMA application_id = 1146306865;"  // kApplicationId
        "PRAGMA user_version = 1;");
  }
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
    result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (result == "ok") return {};
  return make_error(ErrorCode::kCorrupt, path_ + ": integrity check failed: " + result);
}

std::string default_library_path() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/docdsa/library.sqlite";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/share/docdsa/library.sqlite";
}

}  // namespace docdsa::storage
