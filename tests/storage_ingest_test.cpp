// The library file's pragmas and migration ladder, and PDF opening's three outcomes on the
// shared corpus (opened, failed, needs a password).
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "docdsa/ingest/document.h"
#include "docdsa/ingest/pdf.h"
#include "docdsa/storage/library.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& name) {
  return (docdsa::test::scratch_dir() / ("docdsa-" + std::to_string(getpid()) + "-" + name)).string();
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

// A library written by the previous schema (v1: runs had no attention map) is migrated in
// place: its answers survive, read back with an empty map, and new runs store theirs.
TEST(Library, MigratesVersion1KeepingAnswers) {
  const auto p = tmp("v1.sqlite");
  fs::remove(p);
  int64_t doc = 0;
  {
    auto lib = storage::Library::open(p);
    ASSERT_TRUE(lib.ok());
    std::vector<storage::SegmentRow> segs = {{0, 0, 1000, "ALICE", "The keeper wrote logbooks."}};
    std::vector<storage::ChunkRow> chunks = {{0, 6, 0, 0, 0, 1000, 0, 26, "ALICE", "The keeper wrote logbooks."}};
    doc = (*lib)->store(doc_row("/x/v1.txt", "cccccc03"), segs, chunks)->first;
    ASSERT_TRUE((*lib)->save_answer(doc, "Who wrote?", "The keeper.", "[]", {"ask", "dsa", "m.gguf", "{}", "[[0, 1.0]]"}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
  // What a v1 file looks like: without v2's attention map and v3's OCR table and columns.
  ASSERT_EQ(sqlite3_exec(db,
                         "ALTER TABLE runs DROP COLUMN attention_map; DROP TABLE ocr_words; ALTER TABLE documents DROP COLUMN "
                         "ocr_pages; ALTER TABLE documents DROP COLUMN ocr_confidence; PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  EXPECT_EQ((*lib)->schema_version(), storage::kSchemaVersion);
  auto h = (*lib)->history(doc);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ(h->front().answer, "The keeper.");
  EXPECT_EQ(h->front().attention_map, "[]");
  ASSERT_TRUE((*lib)->save_answer(doc, "Again?", "Yes.", "[]", {"ask", "dsa", "m.gguf", "{}", "[[0, 0.5]]"}).ok());
  EXPECT_EQ((*lib)->history(doc)->back().attention_map, "[[0, 0.5]]");
  EXPECT_EQ((*lib)->run_costs()->size(), 2u);  // both runs, for the library-wide cost totals
  EXPECT_TRUE((*lib)->integrity_check().ok());
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

namespace docdsa {
namespace {

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> w;
  std::string cur;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) w.push_back(std::move(cur)), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) w.push_back(cur);
  return w;
}

size_t lcs(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The measure: word-sequence similarity 2*LCS/(|ours|+|pdftotext|) per page, summed over the
// document (pages weighted by their words). pdftotext's output gets the same ligature and
// hyphenation treatment; our removal of running headers and page numbers costs a little.
TEST_F(Pdf, ExtractionAgreesWithPdftotext) {
  if (std::system("pdftotext -v > /dev/null 2>&1") != 0) GTEST_SKIP() << "pdftotext (poppler-utils) not installed";
  for (const char* name : {"tracemonkey-pldi09.pdf", "camlidl-1.04.doc.pdf", "maint-guide.en.pdf"}) {
    const std::string path = kCorpus + "/pdf/text/" + name;
    auto doc = ingest::read_pdf(path);
    ASSERT_TRUE(doc.ok());
    ingest::normalize_pages(&doc->pages);
    FILE* p = popen(("pdftotext -enc UTF-8 '" + path + "' - 2>/dev/null").c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string ref;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) ref.append(buf, n);
    pclose(p);
    std::vector<ingest::PdfPage> ref_pages;
    size_t start = 0;
    for (int page = 1; start < ref.size(); ++page) {
      size_t ff = ref.find('\f', start);
      if (ff == std::string::npos) ff = ref.size();
      ingest::PdfPage pg;
      pg.number = page;
      pg.text = ref.substr(start, ff - start);
      pg.has_text = true;
      ref_pages.push_back(std::move(pg));
      start = ff + 1;
    }
    ingest::normalize_pages(&ref_pages);  // same ligature/hyphenation/furniture rules on both sides
    size_t common = 0, total = 0;
    for (size_t i = 0; i < doc->pages.size() && i < ref_pages.size(); ++i) {
      const auto a = words_of(doc->pages[i].text), b = words_of(ref_pages[i].text);
      common += 2 * lcs(a, b);
      total += a.size() + b.size();
    }
    const double similarity = total ? static_cast<double>(common) / static_cast<double>(total) : 0.0;
    std::printf("%s: word-sequence similarity to pdftotext %.4f\n", name, similarity);
    EXPECT_GE(similarity, 0.93) << name;  // two-column tracemonkey is the hardest: 0.94 today
  }
}

}  // namespace
}  // namespace docdsa

namespace docdsa {
namespace {

// Every PDF in the corpus: pages with text (manifest page counts) or the clear error.
TEST_F(Pdf, EveryCorpusPdfHasTheRightOutcome) {
  const struct { const char* file; int pages; const char* error; } cases[] = {
      {"text/R-intro.pdf", 113, ""}, {"text/auto-multiple-choice.ja.pdf", 78, ""}, {"text/bash-manpage-groff.pdf", 87, ""},
      {"text/bashref.pdf", 196, ""}, {"text/camlidl-1.04.doc.pdf", 26, ""}, {"text/debian-faq.en.pdf", 73, ""},
      {"text/debian-policy.pdf", 193, ""}, {"text/developers-reference.pdf", 114, ""}, {"text/gnu-coding-standards.pdf", 90, ""},
      {"text/maint-guide.en.pdf", 63, ""}, {"text/tracemonkey-pldi09.pdf", 14, ""},
      {"scanned/ocrmypdf__cardinal.pdf", -1, "no text layer"}, {"scanned/ocrmypdf__jbig2.pdf", -1, "no text layer"},
      {"scanned/ocrmypdf__linn.pdf", -1, "no text layer"}, {"scanned/ocrmypdf__skew.pdf", -1, "no text layer"},
      {"scanned/pypdf__Seige_of_Vicksburg_Sample_OCR.pdf", 6, ""},
      {"encrypted/pdfjs__empty_protected.pdf", -1, "no text layer"},
      {"encrypted/pypdf__crazyones-encrypted-256.pdf", -1, "needs a password"},
      {"encrypted/pypdf__r2-user-password.pdf", -1, "needs a password"},
      {"encrypted/pypdf__r4-aes-user-password.pdf", -1, "needs a password"},
      {"encrypted/pypdf__r4-owner-password.pdf", 1, ""}, {"encrypted/pypdf__r5-empty-password.pdf", 1, ""},
      {"encrypted/pypdf__r6-both-passwords.pdf", -1, "needs a password"}, {"encrypted/pypdf__r6-user-password.pdf", 1, ""},
      {"encrypted/pypdf__unencrypted.pdf", 1, ""},
      {"malformed/DERIVED__maint-guide.en.truncated-50pct.pdf", -1, "not a readable PDF"},
      {"malformed/ocrmypdf__invalid.pdf", -1, "not a readable PDF"}, {"malformed/ocrmypdf__kcs.pdf", -1, "no text layer"},
      {"malformed/pdfjs__bad-PageLabels.pdf", 1, ""}, {"malformed/pdfjs__helloworld-bad.pdf", 1, ""},
      {"malformed/pdfjs__pdfjsbad1586.pdf", 1, ""}, {"malformed/pdfjs__scan-bad.pdf", 1, ""},
      {"malformed/pdfjs__xref_command_missing.pdf", 1, ""},
  };
  for (const auto& c : cases) {
    const std::string path = kCorpus + "/pdf/" + c.file;
    // Without OCR (--no-ocr): the text layers as they are; OCR of the scans is in ocr_tests.
    ingest::LoadOptions no_ocr;
    no_ocr.ocr.enabled = false;
    auto d = ingest::load_document(path, no_ocr);
    if (c.pages < 0) {
      ASSERT_FALSE(d.ok()) << c.file;
      EXPECT_NE(d.error().message.find(c.error), std::string::npos) << d.error().message;
      EXPECT_NE(d.error().message.find(path), std::string::npos);
      continue;
    }
    ASSERT_TRUE(d.ok()) << d.error().message;
    int last = 0;
    for (const auto& s : d->segments) last = std::max(last, s.page);
    EXPECT_EQ(static_cast<int>(last > 0 ? std::max<size_t>(last, d->segments.size() + d->pages_without_text.size()) : 0), c.pages) << c.file;
  }
  // With the password, the encrypted ones open.
  EXPECT_TRUE(ingest::load_document(kCorpus + "/pdf/encrypted/pypdf__r6-both-passwords.pdf", "foo").ok());
  EXPECT_TRUE(ingest::load_document(kCorpus + "/pdf/encrypted/pypdf__crazyones-encrypted-256.pdf", "password").ok());
}

}  // namespace
}  // namespace docdsa

namespace docdsa {
namespace {

TEST(Library, LockedDatabaseIsAClearErrorAndNothingIsHalfWritten) {
  const auto p = tmp("locked.sqlite");
  fs::remove(p);
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(p.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  storage::DocumentRow d;
  d.path = "/x/locked.txt";
  d.kind = "txt";
  d.content_hash = "cccccc03";
  auto r = (*lib)->store(d, {}, {});  // waits out the busy timeout, then fails
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(p), std::string::npos);
  EXPECT_NE(r.error().message.find("locked"), std::string::npos) << r.error().message;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE((*lib)->list()->empty());
  EXPECT_TRUE((*lib)->store(d, {}, {}).ok());
}

}  // namespace
}  // namespace docdsa

namespace docdsa {
namespace {

std::string file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Another program's SQLite file (tables, no application_id) given as the library: refused
// with a message naming it, and not a byte of it changed (no schema, no WAL header switch).
TEST(Library, RefusesAForeignSqliteFileAndLeavesItUntouched) {
  const auto p = tmp("someone-elses.sqlite");
  fs::remove(p);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE contacts(name TEXT, phone TEXT); INSERT INTO contacts VALUES ('Ann', '555');", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const std::string before = file_bytes(p);
  ASSERT_FALSE(before.empty());
  auto r = storage::Library::open(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(r.error().message.find(p), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("not a DocDSA library"), std::string::npos) << r.error().message;
  EXPECT_TRUE(file_bytes(p) == before) << "the foreign database was modified";
  EXPECT_FALSE(fs::exists(p + "-wal"));
  // An empty (0-byte) file is a new library.
  const auto empty = tmp("empty.sqlite");
  { std::ofstream(empty, std::ios::trunc); }
  ASSERT_EQ(fs::file_size(empty), 0u);
  auto e = storage::Library::open(empty);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ((*e)->schema_version(), storage::kSchemaVersion);
}

// A step that fails midway through the rows (here a corrupt b-tree page) is an error, not
// the end of the list: segments() returned the rows before the bad page as if complete.
TEST(Library, AFailingStepIsAnErrorNotATruncatedList) {
  const auto p = tmp("corrupt.sqlite");
  fs::remove(p);
  fs::remove(p + "-wal");
  fs::remove(p + "-shm");
  int64_t id = 0;
  const std::string filler(300, 'x');
  {
    auto lib = storage::Library::open(p);
    ASSERT_TRUE(lib.ok()) << lib.error().message;
    std::vector<storage::SegmentRow> segs;
    for (int i = 0; i < 300; ++i) {
      char mark[32];
      std::snprintf(mark, sizeof mark, "MARK-%04d-", i);
      segs.push_back({0, i * 1000, i * 1000 + 999, "", mark + filler});
    }
    auto s = (*lib)->store(doc_row("/x/corrupt.txt", "dddddd04"), segs, {});
    ASSERT_TRUE(s.ok()) << s.error().message;
    id = s->first;
    ASSERT_EQ((*lib)->segments(id)->size(), 300u);
  }
  ASSERT_FALSE(fs::exists(p + "-wal")) << "closing the last connection checkpoints the WAL";
  // Zero the page(s) holding segment 250: the rows before it still read.
  std::string bytes = file_bytes(p);
  const size_t page = (static_cast<unsigned char>(bytes[16]) << 8 | static_cast<unsigned char>(bytes[17])) == 1
                          ? 65536
                          : static_cast<size_t>(static_cast<unsigned char>(bytes[16]) << 8 | static_cast<unsigned char>(bytes[17]));
  int zeroed = 0;
  for (size_t at = bytes.find("MARK-0250-"); at != std::string::npos; at = bytes.find("MARK-0250-", at + 1)) {
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(at / page * page), bytes.begin() + static_cast<std::ptrdiff_t>((at / page + 1) * page), '\0');
    ++zeroed;
  }
  ASSERT_GE(zeroed, 1);
  { std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes; }
  {
    // What a loop that stops at the first non-row sees: some rows, then SQLITE_CORRUPT.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(p.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT text FROM segments WHERE doc_id = ? ORDER BY idx", -1, &st, nullptr), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    int rows = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ++rows;
    EXPECT_GT(rows, 0);
    EXPECT_LT(rows, 300);
    EXPECT_EQ(rc, SQLITE_CORRUPT);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  auto segs = (*lib)->segments(id);
  ASSERT_FALSE(segs.ok()) << "got " << segs->size() << " of 300 segments as if that were all";
  EXPECT_NE(segs.error().message.find(p), std::string::npos) << segs.error().message;
  EXPECT_NE(segs.error().message.find("malformed"), std::string::npos) << segs.error().message;
}

// `docdsa show 99999999999999999999`: an id past int64 made std::stoll throw (and abort).
TEST(Library, AnIdTooLargeIsAClearNotFoundNotAThrow) {
  const auto p = tmp("bigid.sqlite");
  fs::remove(p);
  auto lib = storage::Library::open(p);
  ASSERT_TRUE(lib.ok());
  auto a = (*lib)->store(doc_row("/x/big.txt", "eeeeee05"), {}, {});
  ASSERT_TRUE(a.ok());
  for (const char* key : {"99999999999999999999", "9223372036854775808", "000000000000000000000000000000000001"}) {
    Result<storage::DocumentRow> r = make_error(ErrorCode::kInternal, "not run");
    EXPECT_NO_THROW(r = (*lib)->find(key)) << key;
    if (std::string(key).back() == '1') {  // leading zeros still parse as id 1
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->id, a->first);
      continue;
    }
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("too large"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ((*lib)->find("9223372036854775807").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace docdsa
