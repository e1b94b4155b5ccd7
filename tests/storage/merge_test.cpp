// docdsa library merge: the shards' libraries into one, in one transaction. Every row once
// (documents by content hash), the run costs summed, idempotent, foreign files refused.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sqlite3.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "docdsa/storage/library.h"
#include "scratch_dir.h"

namespace docdsa::storage {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& name) {
  const auto p = docdsa::test::scratch_dir() / ("docdsa-merge-" + std::to_string(getpid()) + "-" + name);
  fs::remove(p);
  fs::remove(p.string() + "-wal");
  fs::remove(p.string() + "-shm");
  return p.string();
}

std::unique_ptr<Library> open(const std::string& p) {
  auto lib = Library::open(p);
  EXPECT_TRUE(lib.ok()) << lib.error().message;
  return lib.ok() ? std::move(*lib) : nullptr;
}

// A document (its text is its content), summarised, with a question answered when `ask`.
void add_doc(Library& lib, const std::string& name, const std::string& text, int cost, bool ask = false) {
  DocumentRow d;
  d.path = "/corpus/" + name;
  d.kind = "txt";
  d.title = name;
  d.content_hash = "hash-of-" + text;
  std::vector<SegmentRow> segs = {{0, -1, -1, "", text}, {0, -1, -1, "", text + " again"}};
  std::vector<ChunkRow> chunks = {{0, 5, 0, 0, -1, -1, 0, static_cast<int64_t>(text.size()), "", text}};
  auto st = lib.store(d, segs, chunks);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const std::string cost_json =
      "{\"tokens\":{\"prompt\":" + std::to_string(cost) + ",\"decoded\":" + std::to_string(cost / 10) + "}}";
  RunRecord run{"summarize", "dsa", "model.gguf", cost_json, "[[0,1.0]]"};
  ASSERT_TRUE(lib.save_summary(st->first, d.content_hash, "summary of " + text, "[]", run).ok());
  if (ask) {
    RunRecord q{"ask", "dsa", "model.gguf", "{\"tokens\":{\"prompt\":" + std::to_string(cost + 1) + "}}", "[]"};
    ASSERT_TRUE(lib.save_answer(st->first, "what is " + name + "?", "it is " + text, "[]", q).ok());
  }
}

int64_t count(Library& lib, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(lib.handle(), sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

// The whole content (ids left out: they are the merge's own), one line per row, sorted.
std::vector<std::string> dump(Library& lib) {
  std::vector<std::string> rows;
  const char* queries[] = {
      "SELECT 'doc|' || path || '|' || content_hash || '|' || title || '|' || n_segments || '|' || added_at FROM documents",
      "SELECT 'seg|' || d.content_hash || '|' || s.idx || '|' || s.text FROM segments s JOIN documents d ON d.id = s.doc_id",
      "SELECT 'chunk|' || d.content_hash || '|' || c.idx || '|' || c.text FROM chunks c JOIN documents d ON d.id = c.doc_id",
      "SELECT 'run|' || d.content_hash || '|' || r.kind || '|' || r.cost_report || '|' || r.started_at FROM runs r JOIN "
      "documents d ON d.id = r.doc_id",
      "SELECT 'sum|' || d.content_hash || '|' || s.text || '|' || r.cost_report FROM summaries s JOIN documents d ON d.id = "
      "s.doc_id "
      "JOIN runs r ON r.id = s.run_id",
      "SELECT 'qa|' || q.text || '|' || a.text || '|' || r.cost_report FROM answers a JOIN questions q ON q.id = a.question_id "
      "JOIN runs r ON r.id = a.run_id",
  };
  for (const char* q : queries) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(lib.handle(), q, -1, &st, nullptr), SQLITE_OK) << q;
    while (sqlite3_step(st) == SQLITE_ROW) rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

int64_t total_prompt_tokens(Library& lib) {
  return count(lib, "SELECT COALESCE(SUM(json_extract(cost_report, '$.tokens.prompt')), 0) FROM runs");
}

TEST(Merge, KeepsEveryRowOnceSumsTheCostsAndIsIdempotent) {
  const std::string p0 = tmp("s0.sqlite"), p1 = tmp("s1.sqlite"), p2 = tmp("s2.sqlite"), out = tmp("out.sqlite");
  {
    auto s0 = open(p0), s1 = open(p1), s2 = open(p2);
    add_doc(*s0, "a.txt", "alpha", 100, true);
    add_doc(*s0, "b.txt", "bravo", 200);
    add_doc(*s1, "c.txt", "charlie", 300, true);
    add_doc(*s2, "d.txt", "delta", 400);
    add_doc(*s2, "e.txt", "echo", 500);
    add_doc(*s2, "f.txt", "foxtrot", 600);
  }
  std::vector<std::string> expected;
  int64_t shard_tokens = 0, shard_runs = 0;
  for (const auto& p : {p0, p1, p2}) {
    auto s = open(p);
    const auto d = dump(*s);
    expected.insert(expected.end(), d.begin(), d.end());
    shard_tokens += total_prompt_tokens(*s);
    shard_runs += count(*s, "SELECT COUNT(*) FROM runs");
  }
  std::sort(expected.begin(), expected.end());
  auto lib = open(out);
  auto st = lib->merge({p0, p1, p2});
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->inputs, 3);
  EXPECT_EQ(st->documents_added, 6);
  EXPECT_EQ(st->runs, 8);
  EXPECT_EQ(st->summaries, 6);
  EXPECT_EQ(st->answers, 2);
  EXPECT_EQ(dump(*lib), expected);  // every row of every shard, once
  EXPECT_EQ(total_prompt_tokens(*lib), shard_tokens);
  EXPECT_EQ(total_prompt_tokens(*lib), 100 + 200 + 300 + 400 + 500 + 600 + 101 + 301);
  EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM runs"), shard_runs);
  auto costs = lib->run_costs();
  ASSERT_TRUE(costs.ok());
  EXPECT_EQ(costs->size(), 8u);
  auto hits = lib->search("charlie");  // the full-text index follows the copied chunks
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ(hits->front().path, "/corpus/c.txt");
  EXPECT_TRUE(lib->integrity_check().ok());
  EXPECT_EQ(count(*lib, "PRAGMA foreign_key_check"), -1);  // no rows: every reference resolves

  // Again, and with a shard twice, and in another order: nothing changes.
  for (const std::vector<std::string>& again : {std::vector<std::string>{p0, p1, p2}, {p2, p2, p1, p0}}) {
    auto st2 = lib->merge(again);
    ASSERT_TRUE(st2.ok()) << st2.error().message;
    EXPECT_EQ(st2->documents_added + st2->segments + st2->chunks + st2->runs + st2->summaries + st2->questions + st2->answers +
                  st2->selections,
              0);
    int64_t present = 0;
    for (const auto& p : again) present += p == p0 ? 2 : p == p1 ? 1 : 3;
    EXPECT_EQ(st2->documents_present, present);
    EXPECT_EQ(dump(*lib), expected);
    EXPECT_EQ(total_prompt_tokens(*lib), shard_tokens);
  }
}

TEST(Merge, TheSameDocumentInTwoShardsIsStoredOnceWithTheNewestSummary) {
  const std::string p0 = tmp("dup0.sqlite"), p1 = tmp("dup1.sqlite"), out = tmp("dup-out.sqlite");
  {
    auto s0 = open(p0), s1 = open(p1);
    add_doc(*s0, "copy1/report.txt", "same words", 10);
    add_doc(*s1, "copy2/report.txt", "same words", 20);
    sqlite3_exec(s0->handle(), "UPDATE summaries SET created_at = '2026-01-01T00:00:00.000Z', text = 'older'", nullptr, nullptr,
                 nullptr);
    sqlite3_exec(s1->handle(), "UPDATE summaries SET created_at = '2026-02-01T00:00:00.000Z', text = 'newer'", nullptr, nullptr,
                 nullptr);
  }
  for (const std::vector<std::string>& order : {std::vector<std::string>{p0, p1}, {p1, p0}}) {
    const std::string o = out + std::to_string(order[0] == p0);
    fs::remove(o);
    auto lib = open(o);
    auto st = lib->merge(order);
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM documents"), 1);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM segments"), 2);  // the first copy's rows, not both
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM chunks"), 1);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM runs"), 2);  // both runs cost something
    EXPECT_EQ(total_prompt_tokens(*lib), 30);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM summaries"), 1);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM summaries WHERE text = 'newer'"), 1);
    auto again = lib->merge(order);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM summaries"), 1);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM runs"), 2);
  }
}

// A shard redone after a file changed: the merged library holds the file once, in its newer
// version (as Library::store keeps it), whichever order the libraries are merged in, and
// merging the older again does not bring it back.
TEST(Merge, ANewerVersionAtTheSamePathReplacesTheOlder) {
  const std::string p_old = tmp("ver-old.sqlite"), p_new = tmp("ver-new.sqlite"), out = tmp("ver-out.sqlite");
  {
    auto s0 = open(p_old), s1 = open(p_new);
    add_doc(*s0, "report.txt", "version one", 10, true);
    add_doc(*s1, "report.txt", "version two", 20);
    for (auto [lib, day] : {std::pair{s0.get(), "01"}, std::pair{s1.get(), "02"}}) {
      const std::string ts = std::string("'2026-") + day + "-01T00:00:00.000Z'";
      ASSERT_EQ(sqlite3_exec(lib->handle(),
                             ("UPDATE documents SET updated_at = " + ts + "; UPDATE summaries SET created_at = " + ts).c_str(),
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
    }
  }
  for (const std::vector<std::string>& order : {std::vector<std::string>{p_old, p_new}, {p_new, p_old}}) {
    const std::string o = out + std::to_string(order[0] == p_old);
    fs::remove(o);
    auto lib = open(o);
    for (int pass = 0; pass < 2; ++pass) {  // the second: nothing changes
      auto st = lib->merge(order);
      ASSERT_TRUE(st.ok()) << st.error().message;
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM documents"), 1);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM documents WHERE content_hash = 'hash-of-version two'"), 1);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM segments"), 2);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM chunks"), 1);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM summaries"), 1);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM summaries WHERE text = 'summary of version two'"), 1);
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM questions"), 1);  // the question on the old version is kept
      EXPECT_EQ(total_prompt_tokens(*lib), 10 + 11 + 20);            // every run's cost
      auto old_hits = lib->search("one"), new_hits = lib->search("two");
      ASSERT_TRUE(old_hits.ok() && new_hits.ok());
      EXPECT_EQ(old_hits->size(), 0u);  // the index holds the newer text only
      EXPECT_EQ(new_hits->size(), 1u);
      auto doc = lib->find("/corpus/report.txt");
      ASSERT_TRUE(doc.ok());
      EXPECT_EQ(doc->content_hash, "hash-of-version two");
      EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    }
  }
}

// A library from before schema version 2 (no attention map) merges too.
TEST(Merge, ReadsASchemaVersion1Library) {
  const std::string v1 = tmp("v1.sqlite"), out = tmp("v1-out.sqlite");
  {
    auto s = open(v1);
    add_doc(*s, "old.txt", "ancient words", 7, true);
    ASSERT_EQ(sqlite3_exec(s->handle(), "ALTER TABLE runs DROP COLUMN attention_map; PRAGMA user_version = 1", nullptr, nullptr,
                           nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(s->handle());
  }
  auto lib = open(out);
  for (int pass = 0; pass < 2; ++pass) {
    auto st = lib->merge({v1});
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(st->runs, pass == 0 ? 2 : 0);
    EXPECT_EQ(count(*lib, "SELECT COUNT(*) FROM runs WHERE attention_map = '[]'"), 2);
    auto hits = lib->search("ancient");
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(hits->size(), 1u);
  }
}

// A shard's library in a folder this user cannot write (a read-only mount, another user's
// results): SQLite cannot create the WAL index (-shm) beside it, and the merge refused it as
// "not a SQLite database (or unreadable): attempt to write a readonly database".
TEST(Merge, ReadsALibraryInAFolderItCannotWrite) {
  const fs::path base = docdsa::test::scratch_dir() / ("docdsa-merge-" + std::to_string(getpid()) + "-ro");
  std::error_code ec;
  fs::permissions(base / "in", fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(base, ec);
  fs::create_directories(base / "in");
  const std::string in = (base / "in" / "shard #1?%.sqlite").string(), out = (base / "out.sqlite").string();
  {
    auto s = open(in);
    add_doc(*s, "ro.txt", "readonly words", 5);
  }
  ASSERT_FALSE(fs::exists(in + "-wal"));
  fs::remove(in + "-shm", ec);
  const auto rx = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                  fs::perms::others_read | fs::perms::others_exec;
  fs::permissions(in, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(base / "in", rx);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Root writes anywhere: without CAP_DAC_OVERRIDE it meets the folder's permissions too.
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2] = {};
    if (syscall(SYS_capget, &h, d) == 0) {
      d[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
      if (syscall(SYS_capset, &h, d) != 0) _exit(3);
    }
    if (FILE* probe = std::fopen((base / "in" / "probe").c_str(), "w")) {  // the folder must really be read-only
      std::fclose(probe);
      _exit(4);
    }
    auto lib = Library::open(out);
    if (!lib.ok()) _exit(5);
    auto st = (*lib)->merge({in});
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      _exit(6);
    }
    auto hits = (*lib)->search("readonly");
    _exit(st->documents_added == 1 && st->runs == 1 && hits.ok() && hits->size() == 1 ? 0 : 7);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  fs::permissions(base / "in", fs::perms::owner_all, fs::perm_options::add, ec);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(in + "-shm"));  // nothing was written beside the input
  fs::remove_all(base, ec);
}

TEST(Merge, RefusesWhatIsNotADocDSALibraryAndWritesNothing) {
  const std::string good = tmp("good.sqlite"), foreign = tmp("foreign.sqlite"), out = tmp("refuse-out.sqlite");
  {
    auto g = open(good);
    add_doc(*g, "a.txt", "alpha", 1);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE documents (id INTEGER); INSERT INTO documents VALUES (1)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  auto lib = open(out);
  const auto before = dump(*lib);
  for (const std::string& bad : {foreign, tmp("missing.sqlite"), out}) {
    auto st = lib->merge({good, bad});
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message.find(bad), std::string::npos) << st.error().message;  // names the file
    EXPECT_EQ(dump(*lib), before);  // the good input was not half-merged either
  }
  // A library with a row the output refuses (a kind no DocDSA writes): the merge fails naming
  // that input, and rolls back the inputs before it.
  const std::string hostile = tmp("hostile.sqlite");
  {
    auto h = open(hostile);
    add_doc(*h, "z.txt", "zulu", 1);
    ASSERT_EQ(sqlite3_exec(h->handle(), "PRAGMA ignore_check_constraints = ON; UPDATE documents SET kind = 'exe'", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
  }
  auto failed = lib->merge({good, hostile});
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find(hostile), std::string::npos) << failed.error().message;
  EXPECT_EQ(dump(*lib), before);
  // A text file is no database at all.
  const std::string text = tmp("notes.sqlite");
  FILE* f = std::fopen(text.c_str(), "w");
  std::fputs("hello, not SQLite at all, long enough to look like a header..........................................", f);
  std::fclose(f);
  EXPECT_FALSE(lib->merge({good, text}).ok());
  EXPECT_EQ(dump(*lib), before);
  // The foreign file is untouched (no application_id written to it).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(foreign.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

}  // namespace
}  // namespace docdsa::storage
