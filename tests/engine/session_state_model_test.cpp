// Saved session state with the real default model: a sparse (DSA) session that read 1,500
// tokens of real text, saved and loaded into a new session (another context size), gives
// bit-identical logits for what follows, batched and token by token. Dense too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/engine/session_state.h"

namespace docdsa {
namespace {

const Model* small_model() {
  static std::unique_ptr<Model> m = [] {
    const char* p = std::getenv("DOCDSA_TEST_MODEL");
    auto r = Model::load(p ? p : "");
    return r.ok() ? std::move(*r) : nullptr;
  }();
  return m.get();
}

std::vector<TokenId> essay(const Model& m, int n) {
  std::ifstream f(std::string(DOCDSA_CORPUS) + "/haystack/PaulGrahamEssays/gh.txt");
  std::stringstream ss;
  ss << f.rdbuf();
  auto t = m.tokenizer().encode(ss.str(), true);
  EXPECT_GE(static_cast<int>(t.size()), n);
  t.resize(static_cast<size_t>(n));
  return t;
}

std::vector<float> continuation(Session& s, std::span<const TokenId> next) {
  const int V = s.model().config().n_vocab;
  EXPECT_TRUE(s.decode(next.first(8), Logits::kAll).ok());
  std::vector<float> out(s.logits_at(0), s.logits_at(0) + static_cast<size_t>(V) * 8);
  for (TokenId t : next.subspan(8)) {
    const TokenId one[1] = {t};
    EXPECT_TRUE(s.decode(one).ok());
    out.insert(out.end(), s.logits(), s.logits() + V);
  }
  return out;
}

void round_trip(const Model& m, SessionParams a, int load_ctx) {
  const auto toks = essay(m, 1516);
  const std::span<const TokenId> doc(toks.data(), 1500), next(toks.data() + 1500, 16);
  auto s = Session::create(m, a);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE((*s)->decode(doc).ok());
  std::vector<uint8_t> state;
  ASSERT_TRUE(save_session_state(**s, [&](const void* p, size_t n) {
                const auto* b = static_cast<const uint8_t*>(p);
                state.insert(state.end(), b, b + n);
                return Status{};
              }).ok());
  const auto want = continuation(**s, next);
  SessionParams b = a;
  b.n_ctx = load_ctx;
  auto t = Session::create(m, b);
  ASSERT_TRUE(t.ok()) << t.error().message;
  const Status st = load_session_state(**t, state);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const auto got = continuation(**t, next);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float))) << "logits differ after reload";
}

TEST(SessionState, SmallModelSparseReloadIsBitExact) {
  const Model* m = small_model();
  ASSERT_TRUE(m) << "DOCDSA_TEST_MODEL";
  auto ix = Indexer::calibrate(*m, essay(*m, 1024), Indexer::kDefaultRank, 0);
  ASSERT_TRUE(ix.ok());
  SessionParams a;
  a.n_ctx = 1600;
  a.dsa.top_k = 512;
  a.dsa.sinks = 32;
  a.dsa.window = 128;
  a.indexer = ix->get();
  round_trip(*m, a, 2048);
}

TEST(SessionState, SmallModelDenseReloadIsBitExact) {
  const Model* m = small_model();
  ASSERT_TRUE(m) << "DOCDSA_TEST_MODEL";
  SessionParams a;
  a.n_ctx = 1600;
  a.dsa.mode = AttentionMode::kDense;
  round_trip(*m, a, 4096);
}

}  // namespace
}  // namespace docdsa
