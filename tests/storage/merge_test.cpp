// docdsa library merge: the shards' libraries into one, in one transaction. Every row once
// (documents by content hash), the run costs summed, idempotent, foreign files refused.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "docdsa/storage/library.h"

namespace docdsa::storage {
namespace {

namespace fs = std::filesystem;

std::string tmp(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("docdsa-merge-" + std::to_string(getpid()) + "-" + name);
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
