// The library file's pragmas and migration ladder, and PDF opening's three outcomes on the
// shared corpus (opened, failed, needs a password).
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <fstream>

#include "docdsa/ingest/document.h"
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

namespace docdsa {
namespace {

storage::DocumentRow doc_row(const std::string& path, const std::string& hash) {
  storage::DocumentRow d;
  d.path = path;
  d.kind = "txt";
  d.title = "T " + path;
  d.content_hash = hash;
  return d;
}

TEST(Library, StoresDedupesReplacesSearchesAndRemoves) {
  const auto p = tmp("store.sqlite");
  fs::remove(p);
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok());
  std::vector<storage::SegmentRow> segs = {{0, 0, 1000, "ALICE", "The lighthouse keeper wrote logbooks."}};
  std::vector<storage::ChunkRow> chunks = {{0, 8, 0, 0, 0, 1000, 0, 40, "ALICE", "The lighthouse keeper wrote logbooks."}};
  auto a = (*lib)->store(doc_row("/x/a.txt", "aaaaaa01"), segs, chunks);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->second, storage::StoreOutcome::kAdded);
  auto again = (*lib)->store(doc_row("/x/a.txt", "aaaaaa01"), segs, chunks);
  EXPECT_EQ(again->second, storage::StoreOutcome::kUnchanged);
  EXPECT_EQ(again->first, a->first);
  // Same path, new content: replaced in place (same id), old chunks gone from search.
  std::vector<storage::ChunkRow> chunks2 = {{0, 6, 0, 0, -1, -1, 0, 30, "", "Seals breed on the rocks in October."}};
  auto r = (*lib)->store(doc_row("/x/a.txt", "bbbbbb02"), segs, chunks2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->second, storage::StoreOutcome::kReplaced);
  EXPECT_EQ(r->first, a->first);
  EXPECT_TRUE((*lib)->search("lighthouse")->empty());
  auto hits = (*lib)->search("seals");
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].doc_id, a->first);
  EXPECT_FALSE((*lib)->search("\"unbalanced").ok());  // a bad FTS query is an error, not a crash
  EXPECT_TRUE((*lib)->find("bbbbbb").ok());
  EXPECT_EQ((*lib)->find("/x/a.txt")->id, a->first);
  EXPECT_EQ((*lib)->find("999").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE((*lib)->remove(a->first).ok());
  EXPECT_TRUE((*lib)->list()->empty());
  EXPECT_TRUE((*lib)->search("seals")->empty());
  EXPECT_TRUE((*lib)->integrity_check().ok());
}

TEST(Chunker, CutsAtSegmentBoundariesAndKeepsProvenance) {
  ingest::Document d;
  for (int i = 0; i < 10; ++i) d.segments.push_back({"word word word word word", i + 1, -1, -1, ""});
  auto count = [](const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), ' ') + 1); };
  const auto chunks = ingest::chunk_document(d, 12, count);
  ASSERT_EQ(chunks.size(), 5u);  // two 5-word pages per 12-token chunk
  EXPECT_EQ(chunks[0].page_first, 1);
  EXPECT_EQ(chunks[0].page_last, 2);
  EXPECT_EQ(chunks[4].page_last, 10);
  for (const auto& c : chunks) EXPECT_LE(c.n_tokens, 12);
  EXPECT_EQ(ingest::full_text(d).substr(chunks[1].char_begin, 4), "word");
  // One oversized segment is split at sentence ends.
  ingest::Document big;
  big.segments.push_back({"One two three. Four five six. Seven eight nine. Ten eleven twelve.", 0, 0, 9000, "BOB"});
  const auto parts = ingest::chunk_document(big, 8, count);
  EXPECT_GE(parts.size(), 2u);
  for (const auto& c : parts) {
    EXPECT_LE(c.n_tokens, 8);
    EXPECT_EQ(c.speakers, "BOB");
  }
}

TEST(Document, HashAndUnsupportedAndMislabelledFiles) {
  EXPECT_EQ(ingest::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const auto bogus = tmp("fake.pdf");
  { std::ofstream(bogus) << "this is not a pdf"; }
  auto r = ingest::load_document(bogus);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a PDF"), std::string::npos);
  const auto doc = tmp("notes.docx");
  { std::ofstream(doc) << "x"; }
  EXPECT_EQ(ingest::load_document(doc).error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace docdsa
