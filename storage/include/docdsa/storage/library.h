// The library file: one SQLite database per library, WAL, foreign keys on, schema versioned
// by PRAGMA user_version with a migration ladder inside one BEGIN IMMEDIATE transaction, and
// identified by PRAGMA application_id. A database from a newer DocDSA is refused, not touched.
// The tables for documents, chunks, runs and answers arrive with the ingest issue.
#pragma once

#include <memory>
#include <string>

#include "docdsa/engine/result.h"

struct sqlite3;

namespace docdsa::storage {

inline constexpr int kApplicationId = 0x44534131;  // "DSA1"
inline constexpr int kSchemaVersion = 1;

class Library {
 public:
  // Opens (creating if needed) and migrates the library at `path`.
  static Result<std::unique_ptr<Library>> open(const std::string& path);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  int schema_version() const;
  Status integrity_check() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Library() = default;
  Status exec(const char* sql) const;
  Status migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Default library path: $XDG_DATA_HOME/docdsa/library.sqlite (~/.local/share/docdsa/...).
std::string default_library_path();

}  // namespace docdsa::storage
