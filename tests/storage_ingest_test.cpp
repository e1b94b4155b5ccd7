// The library file's pragmas and migration ladder, and PDF opening's three outcomes on the
// shared corpus (opened, failed, needs a password).
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "docdsa/ingest/pdf.h"
#include "docdsa/storage/library.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& name) {
  return (fs::temp_directory_path() / ("docdsa-" + std::to_string(getpid()) + "-" + name)).string();
}

TEST(Library, CreatesMigratesAndReopens) {
  const auto p = tmp("lib.sqlite");
  fs::remove(p);
  {
    auto lib = storage::Library::open(p);
    ASSERT_TRUE(lib.ok()) << lib.error().message;
    EXPECT_EQ((*lib)->schema_version(), storage::kSchemaVersion);
    EXPECT_TRUE((*lib)->integrity_check().ok());
  }
  auto again = storage::Library::open(p);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->schema_version(), storage::kSchemaVersion);
}

TEST(Library, RefusesNewerOrForeignDatabases) {
  const auto p = tmp("newer.sqlite");
  fs::remove(p);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA application_id = 1146306865; PRAGMA user_version = 99; CREATE TABLE t(x);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto r = storage::Library::open(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("newer"), std::string::npos);

  const auto q = tmp("foreign.sqlite");
  fs::remove(q);
  sqlite3_open(q.c_str(), &db);
  sqlite3_exec(db, "PRAGMA application_id = 7; CREATE TABLE t(x);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto f = storage::Library::open(q);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("not a DocDSA library"), std::string::npos);
}

const std::string kCorpus = DOCDSA_CORPUS;

class Pdf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(kCorpus)) GTEST_SKIP() << "corpus not found at " << kCorpus << " (set -DDOCDSA_CORPUS=...)";
  }
};

TEST_F(Pdf, ReadsATextPdfPerPage) {
  auto d = ingest::read_pdf(kCorpus + "/pdf/text/tracemonkey-pldi09.pdf");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->pages.size(), 14u);
  EXPECT_TRUE(d->pages[0].has_text);
  EXPECT_NE(d->pages[0].text.find("Trace-based"), std::string::npos);
}

TEST_F(Pdf, EncryptedNeedsPasswordAndOpensWithIt) {
  const auto f = kCorpus + "/pdf/encrypted/pypdf__r2-user-password.pdf";
  auto locked = ingest::read_pdf(f);
  ASSERT_FALSE(locked.ok());
  EXPECT_NE(locked.error().message.find("needs a password"), std::string::npos);
  auto open = ingest::read_pdf(f, "asdfzxcv");
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_GE(open->pages.size(), 1u);
}

TEST_F(Pdf, DamagedAndScannedFilesAreReported) {
  auto bad = ingest::read_pdf(kCorpus + "/pdf/malformed/ocrmypdf__invalid.pdf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("ocrmypdf__invalid.pdf"), std::string::npos);
  auto scan = ingest::read_pdf(kCorpus + "/pdf/scanned/ocrmypdf__jbig2.pdf");
  ASSERT_TRUE(scan.ok());
  EXPECT_FALSE(scan->pages[0].has_text);
}

}  // namespace
}  // namespace docdsa
