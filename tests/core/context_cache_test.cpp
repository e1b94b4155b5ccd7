// Documents read once for good (app/core/context_cache.h) on a tiny synthetic model: a stored
// context loads into a new session that continues bit for bit as the reader did; a damaged or
// partial file is ignored with a warning, removed and rebuilt by the next read; the disk
// budget evicts the least recently used entries; the key changes with the document, the
// model, top-k, RoPE and the prompt prefix; and a document session reuses what an earlier
// one read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "docdsa/app/context_cache.h"
#include "docdsa/app/doc_session.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa::app {
namespace {

namespace fs = std::filesystem;

class ContextCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = docdsa::test::scratch_dir() / ("docdsa-ctxcache-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = tiny(1, "m1.gguf");
    log_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(warnings_);
    spdlog::default_logger()->sinks().push_back(log_);
  }
  void TearDown() override {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), log_), sinks.end());
    fs::remove_all(dir_);
  }
  std::unique_ptr<Model> tiny(uint32_t seed, const std::string& name) {
    testing::TinyModelOptions o;
    o.seed = seed;
    const std::string p = (dir_ / name).string();
    testing::write_tiny_model(p, o);
    auto m = Model::load(p);
    EXPECT_TRUE(m.ok());
    return m.ok() ? std::move(*m) : nullptr;
  }
  std::vector<TokenId> tokens(int n, int salt) const {
    std::vector<TokenId> ids;
    for (int i = 0; i < n; ++i) ids.push_back((i * 37 + 11 + salt * (i / 7)) % (model_->config().n_vocab - 20));
    return ids;
  }
  std::unique_ptr<Session> session(int n_ctx, const Model* m = nullptr) {
    SessionParams sp;
    sp.n_ctx = n_ctx;
    sp.n_threads = 2;
    sp.dsa.mode = AttentionMode::kDense;
    auto s = Session::create(m ? *m : *model_, sp);
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(*s) : nullptr;
  }
  // A session that has read `n` tokens; its key for document `hash`.
  std::unique_ptr<Session> read(int n, int salt, std::string* key, const std::string& hash = "doc") {
    auto s = session(256);
    const auto ids = tokens(n, salt);
    EXPECT_TRUE(s->decode(ids).ok());
    *key = context_key(*model_, *s, hash, ids);
    return s;
  }
  std::string cdir() const { return (dir_ / "contexts").string(); }

  fs::path dir_;
  std::unique_ptr<Model> model_;
  std::ostringstream warnings_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> log_;
};

std::vector<float> next_logits(Session& s, int salt) {
  std::vector<TokenId> next;
  for (int i = 0; i < 12; ++i) next.push_back((i * 13 + salt) % 200 + 3);
  EXPECT_TRUE(s.decode(next, Logits::kAll).ok());
  const int V = s.model().config().n_vocab;
  return std::vector<float>(s.logits_at(0), s.logits_at(0) + static_cast<size_t>(V) * s.n_logit_rows());
}

TEST_F(ContextCacheTest, StoredContextContinuesBitExactInANewSession) {
  const ContextCache cache(cdir());
  std::string key;
  auto a = read(90, 1, &key);
  ASSERT_TRUE(cache.store(key, *a, {{"tokens", 90}, {"note", "x"}}).ok());
  EXPECT_TRUE(cache.contains(key));
  auto b = session(300);  // another context size: only the 90 tokens are stored
  auto meta = cache.load(key, *b);
  ASSERT_TRUE(meta.has_value()) << warnings_.str();
  EXPECT_EQ((*meta)["note"], "x");
  EXPECT_EQ(b->n_past(), 90);
  const auto want = next_logits(*a, 4), got = next_logits(*b, 4);
  ASSERT_EQ(want.size(), got.size());
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  EXPECT_FALSE(cache.load(std::string(32, '0'), *b).has_value());  // absent: no warning
  EXPECT_EQ(warnings_.str(), "");
}

TEST_F(ContextCacheTest, DamagedOrPartialFileIsIgnoredWithAWarningAndRemoved) {
  const ContextCache cache(cdir());
  std::string key;
  auto a = read(80, 2, &key);
  ASSERT_TRUE(cache.store(key, *a, {}).ok());
  const auto entries = cache.list();
  ASSERT_EQ(entries.size(), 1u);
  const std::string path = entries[0].path;
  const auto size = fs::file_size(path);
  // One flipped byte in the middle of the caches: the checksum catches it.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    char c;
    f.seekg(static_cast<std::streamoff>(size / 2));
    f.get(c);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put(static_cast<char>(c ^ 0x40));
  }
  auto b = session(256);
  EXPECT_FALSE(cache.load(key, *b).has_value());
  EXPECT_EQ(b->n_past(), 0);
  EXPECT_NE(warnings_.str().find(path), std::string::npos) << warnings_.str();
  EXPECT_NE(warnings_.str().find("checksum"), std::string::npos) << warnings_.str();
  EXPECT_FALSE(fs::exists(path));
  // Cut short (a writer killed mid-file that somehow got its name): the sizes disagree.
  ASSERT_TRUE(cache.store(key, *a, {}).ok());
  fs::resize_file(path, size - 1000);
  warnings_.str("");
  EXPECT_FALSE(cache.load(key, *b).has_value());
  EXPECT_NE(warnings_.str().find("partial"), std::string::npos) << warnings_.str();
  EXPECT_FALSE(fs::exists(path));
  // Garbage where the header belongs.
  std::ofstream(path) << "not a context";
  EXPECT_FALSE(cache.load(key, *b).has_value());
  EXPECT_FALSE(fs::exists(path));
  // Stored again, it loads.
  ASSERT_TRUE(cache.store(key, *a, {}).ok());
  EXPECT_TRUE(cache.load(key, *b).has_value());
  EXPECT_EQ(b->n_past(), 80);
}

TEST_F(ContextCacheTest, BudgetEvictsTheLeastRecentlyUsed) {
  std::string ka, kb, kc, kd;
  auto a = read(60, 1, &ka, "a");
  auto b = read(60, 2, &kb, "b");
  auto c = read(60, 3, &kc, "c");
  auto d = read(60, 4, &kd, "d");
  const ContextCache unlimited(cdir(), 1ull << 40);
  ASSERT_TRUE(unlimited.store(ka, *a, {}).ok());
  const uint64_t one = unlimited.list()[0].bytes;
  ASSERT_TRUE(unlimited.store(kb, *b, {}).ok());
  ASSERT_TRUE(unlimited.store(kc, *c, {}).ok());
  // Stored at distinct times: a oldest, then b, then c.
  const auto set_age = [&](const std::string& key, int seconds_ago) {
    const timespec t[2] = {{::time(nullptr) - seconds_ago, 0}, {::time(nullptr) - seconds_ago, 0}};
    ASSERT_EQ(0, ::utimensat(AT_FDCWD, (fs::path(cdir()) / (key + ".ctx")).c_str(), t, 0));
  };
  set_age(ka, 300);
  set_age(kb, 200);
  set_age(kc, 100);
  // Using a makes it the most recent: b is now the least recently used.
  const ContextCache cache(cdir(), 3 * one + one / 2);
  auto s = session(256);
  ASSERT_TRUE(cache.load(ka, *s).has_value());
  EXPECT_EQ(cache.list()[0].key, ka);
  ASSERT_TRUE(cache.store(kd, *d, {}).ok());
  EXPECT_TRUE(cache.contains(ka));
  EXPECT_FALSE(cache.contains(kb));
  EXPECT_TRUE(cache.contains(kc));
  EXPECT_TRUE(cache.contains(kd));
  // An entry larger than the whole budget is not stored, and evicts nothing.
  const ContextCache tiny_budget(cdir(), one / 2);
  ASSERT_TRUE(tiny_budget.store(kb, *b, {}).ok());
  EXPECT_FALSE(tiny_budget.contains(kb));
  EXPECT_EQ(cache.list().size(), 3u);
  size_t removed = 0;
  EXPECT_GT(cache.clear(&removed), 3 * one - 1);
  EXPECT_EQ(removed, 3u);
  EXPECT_TRUE(cache.list().empty());
}

// Listing for eviction reads only names, sizes and dates: no entry's metadata is opened.
TEST_F(ContextCacheTest, ListingWithoutMetadataOpensNoEntry) {
  const ContextCache cache(cdir());
  std::string key;
  auto a = read(40, 1, &key);
  ASSERT_TRUE(cache.store(key, *a, {{"document", {{"content_hash", "doc"}}}}).ok());
  const auto full = cache.list(), bare = cache.list(false);
  ASSERT_EQ(full.size(), 1u);
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_FALSE(full[0].meta.empty());
  EXPECT_TRUE(bare[0].meta.empty());
  EXPECT_EQ(bare[0].bytes, full[0].bytes);
  EXPECT_EQ(bare[0].key, key);
}

// 8-bit K and V: a smaller file, loaded into a session that continues with nearly the same
// logits; the entry records how it was stored, and an f16 cache loads it too.
TEST_F(ContextCacheTest, EightBitStorageIsSmallerAndLoads) {
  const ContextCache f16(cdir() + "-f16"), q8(cdir(), kDefaultCacheBudget, KvStorage::kQ8);
  EXPECT_EQ(q8.kv_storage(), KvStorage::kQ8);
  std::string key;
  auto a = read(90, 1, &key);
  ASSERT_TRUE(f16.store(key, *a, {}).ok());
  ASSERT_TRUE(q8.store(key, *a, {}).ok());
  const auto ef = f16.list(), eq = q8.list();
  ASSERT_EQ(ef.size(), 1u);
  ASSERT_EQ(eq.size(), 1u);
  EXPECT_LT(eq[0].bytes, ef[0].bytes * 3 / 4);
  EXPECT_EQ(eq[0].meta["kv"], "q8");
  EXPECT_EQ(ef[0].meta["kv"], "f16");
  auto b = session(300);
  const ContextCache reader(cdir());  // stores f16, loads either
  ASSERT_TRUE(reader.load(key, *b).has_value()) << warnings_.str();
  EXPECT_EQ(b->n_past(), 90);
  const auto want = next_logits(*a, 4), got = next_logits(*b, 4);
  ASSERT_EQ(want.size(), got.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - want[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(want[i])));
  }
  EXPECT_LT(max_diff, 0.02 * max_abs);
  EXPECT_EQ(warnings_.str(), "");
}

TEST_F(ContextCacheTest, KeyChangesWithDocumentModelTopkRopeAndPrompt) {
  const auto ids = tokens(100, 1);
  auto base = session(256);
  const std::string k0 = context_key(*model_, *base, "doc", ids);
  EXPECT_EQ(k0.size(), 32u);
  // Same reading in a context of another size: the same key (the caches are the same).
  EXPECT_EQ(context_key(*model_, *session(400), "doc", ids), k0);
  EXPECT_NE(context_key(*model_, *base, "doc2", ids), k0);  // another document
  auto ids2 = ids;
  ids2[3] += 1;  // another prompt template renders other tokens
  EXPECT_NE(context_key(*model_, *base, "doc", ids2), k0);
  auto other = tiny(2, "m2.gguf");  // another model file
  EXPECT_NE(context_key(*other, *session(256, other.get()), "doc", ids), k0);
  EXPECT_NE(model_fingerprint(*other), model_fingerprint(*model_));
  // RoPE scaling.
  SessionParams rp;
  rp.n_ctx = 256;
  rp.dsa.mode = AttentionMode::kDense;
  rp.rope_scaling = RopeScaling::kLinear;
  rp.rope_factor = 2.0f;
  auto rs = Session::create(*model_, rp);
  ASSERT_TRUE(rs.ok());
  EXPECT_NE(context_key(*model_, **rs, "doc", ids), k0);
  // Top-k (sparse reading with an indexer).
  auto ix = Indexer::calibrate(*model_, tokens(300, 3), 8, 2);
  ASSERT_TRUE(ix.ok());
  std::string sparse_keys[2];
  for (int i = 0; i < 2; ++i) {
    SessionParams sp;
    sp.n_ctx = 256;
    sp.dsa.top_k = i == 0 ? 128 : 96;
    sp.dsa.sinks = 16;
    sp.dsa.window = 32;
    sp.indexer = ix->get();
    auto s = Session::create(*model_, sp);
    ASSERT_TRUE(s.ok());
    sparse_keys[i] = context_key(*model_, **s, "doc", ids);
  }
  EXPECT_NE(sparse_keys[0], sparse_keys[1]);
  EXPECT_NE(sparse_keys[0], k0);
}

TEST(CacheBudget, ParsesSizes) {
  EXPECT_EQ(*parse_cache_budget("20G"), 20'000'000'000ull);
  EXPECT_EQ(*parse_cache_budget("1.5G"), 1'500'000'000ull);
  EXPECT_EQ(*parse_cache_budget("500MB"), 500'000'000ull);
  EXPECT_EQ(*parse_cache_budget("0"), 0ull);
  EXPECT_EQ(*parse_cache_budget("4096"), 4096ull);
  for (const char* bad : {"", "G", "-1G", "12Q", "nan", "1e30"}) EXPECT_FALSE(parse_cache_budget(bad).ok()) << bad;
}

// The CLI's default text comes from kDefaultCacheBudget and reads back as it.
TEST(CacheBudget, TextReadsBackAsTheBudget) {
  EXPECT_EQ(cache_budget_text(kDefaultCacheBudget), "20G");
  for (uint64_t b :
       std::initializer_list<uint64_t>{kDefaultCacheBudget, 0, 1500ull * 1000 * 1000, 4096, 3ull * 1000 * 1000 * 1000 * 1000})
    EXPECT_EQ(*parse_cache_budget(cache_budget_text(b)), b) << cache_budget_text(b);
  EXPECT_EQ(*parse_kv_storage("q8"), KvStorage::kQ8);
  EXPECT_EQ(*parse_kv_storage("f16"), KvStorage::kF16);
  EXPECT_FALSE(parse_kv_storage("int4").ok());
}

// The flow the command line and the GUI share: the first session reads the document and keeps
// it; the next (as in a new process) loads it and prefills only the question; a damaged file
// makes the next one read again and keep it again.
TEST_F(ContextCacheTest, DocSessionReusesWhatAnEarlierOneRead) {
  ::setenv("XDG_CACHE_HOME", (dir_ / "xdg").c_str(), 1);  // the indexer sidecar, if any
  storage::DocumentRow row;
  row.id = 1;
  row.path = "notes.txt";
  row.kind = "text";
  row.title = "Notes";
  row.content_hash = "abc123";
  std::vector<storage::SegmentRow> segs;
  for (int i = 0; i < 6; ++i)
    segs.push_back({0, -1, -1, "", "The lighthouse keeper wrote entry " + std::to_string(i) + " about the storm."});
  DocSessionOptions o;
  o.attn.mode = "dense";
  o.max_answer = 4;
  o.threads = 2;
  o.cache_dir = cdir();
  const auto open = [&] {
    auto d = DocSession::open(*model_, row, segs, o, {}, nullptr);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
    return d.ok() ? std::move(*d) : nullptr;
  };
  auto first = open();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->from_cache());
  auto a1 = first->ask("Who wrote?", {});
  ASSERT_TRUE(a1.ok());
  EXPECT_EQ(a1->cached_tokens, 0);
  EXPECT_EQ(a1->reused_tokens, 0);
  auto second = open();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->from_cache());
  auto a2 = second->ask("Who wrote?", {});
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->cached_tokens, first->doc_tokens());
  EXPECT_EQ(a2->reused_tokens, first->doc_tokens());
  EXPECT_EQ(a2->prefilled_tokens, a2->prompt_tokens - first->doc_tokens());  // the question only
  EXPECT_EQ(a1->prefilled_tokens, a1->prompt_tokens);
  EXPECT_GT(a2->cached_reading.prompt_tokens, 0);  // what the first reading cost, as stored
  EXPECT_EQ(a2->text, a1->text);                   // greedy: the same answer from the loaded caches
  // Damage the stored file: the next session reads again (with a warning) and keeps it anew.
  const auto entries = ContextCache(cdir()).list();
  ASSERT_EQ(entries.size(), 1u);
  fs::resize_file(entries[0].path, entries[0].bytes - 7);
  auto third = open();
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->from_cache());
  EXPECT_NE(warnings_.str().find("ignored"), std::string::npos);
  auto fourth = open();
  ASSERT_TRUE(fourth);
  EXPECT_TRUE(fourth->from_cache());
  // Budget 0: neither loaded nor stored.
  o.cache_budget = 0;
  auto off = open();
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->from_cache());
}

}  // namespace
}  // namespace docdsa::app
