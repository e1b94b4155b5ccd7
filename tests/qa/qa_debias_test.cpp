// Removing the letter prior from eval qa's scores (cyclic permutation of the options): the
// averaging on synthetic scores, and end to end on a tiny random model, where the debiased
// score of an option must not depend on where the dataset put it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "docdsa/app/qa_eval.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa::app {
namespace {

TEST(QaDebias, CyclicOrdersShowEachOptionUnderEveryLetterOnce) {
  for (int n : {2, 3, 4, 5}) {
    std::vector<std::vector<int>> count(static_cast<size_t>(n), std::vector<int>(static_cast<size_t>(n), 0));
    for (int k = 0; k < n; ++k) {
      const std::vector<int> o = cyclic_order(n, k);
      ASSERT_EQ(o.size(), static_cast<size_t>(n));
      for (int j = 0; j < n; ++j) ++count[static_cast<size_t>(o[static_cast<size_t>(j)])][static_cast<size_t>(j)];
    }
    for (const auto& row : count)
      for (int c : row) EXPECT_EQ(c, 1) << "n=" << n;
    EXPECT_EQ(cyclic_order(n, 0), [&] {
      std::vector<int> id(static_cast<size_t>(n));
      for (int j = 0; j < n; ++j) id[static_cast<size_t>(j)] = j;
      return id;
    }());
  }
}

// A model that likes "B" whatever it says, plus a weaker preference for the right content:
// in the dataset's order the letter wins; averaged over the rotations the content does.
TEST(QaDebias, AveragingOverRotationsCancelsALetterPrior) {
  const std::vector<double> prior = {-2.0, 0.0, -2.0, -1.0};  // per letter
  const std::vector<double> content = {0.0, 0.0, 0.8, 0.0};   // per option: option C is right
  std::vector<LetterScore> scores;
  std::vector<std::vector<int>> orders;
  for (int k = 0; k < 4; ++k) {
    orders.push_back(cyclic_order(4, k));
    LetterScore s;
    for (int j = 0; j < 4; ++j)
      s.logp.push_back(prior[static_cast<size_t>(j)] + content[static_cast<size_t>(orders.back()[static_cast<size_t>(j)])] - 0.1 * k);
    s.choice = static_cast<int>(std::max_element(s.logp.begin(), s.logp.end()) - s.logp.begin());
    s.mass = 0.5 + 0.1 * k;
    scores.push_back(s);
  }
  EXPECT_EQ(scores[0].choice, 1) << "the prior wins in the given order";
  const LetterScore avg = average_over_orders(scores, orders);
  EXPECT_EQ(avg.choice, 2);
  // Every option saw every letter: the scores differ only by content.
  for (int o = 0; o < 4; ++o)
    EXPECT_NEAR(avg.logp[static_cast<size_t>(o)] - avg.logp[0], content[static_cast<size_t>(o)], 1e-12);
  EXPECT_NEAR(avg.mass, 0.65, 1e-12);
  // One order: the scores as they were.
  const LetterScore one = average_over_orders({scores[0]}, {orders[0]});
  EXPECT_EQ(one.logp, scores[0].logp);
  EXPECT_EQ(one.choice, 1);
}

class QaDebiasTinyModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = (docdsa::test::scratch_dir() / ("docdsa-qa-debias-" + std::to_string(::getpid()) + ".gguf")).string();
    testing::TinyModelOptions o;
    o.arch = "qwen2";
    o.n_ctx_train = 1024;
    testing::write_tiny_model(path_, o);
    auto m = Model::load(path_);
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::move(*m);
  }
  static void TearDownTestSuite() {
    model_.reset();
    std::filesystem::remove(path_);
  }
  static QaArticle article(int rotate) {
    QaArticle a;
    a.id = "boat";
    a.title = "The boat";
    a.text = "Mara has a small green boat called Heron. She rows it to town for bread.";
    QaQuestion q;
    q.question = "What is the boat called?";
    const std::vector<std::string> opts = {"Heron", "Swift", "Otter", "Lark"};
    for (int j = 0; j < 4; ++j) q.options.push_back(opts[static_cast<size_t>((j + rotate) % 4)]);
    q.answer = (4 - rotate) % 4;
    a.questions.push_back(q);
    return a;
  }
  static QaQuestionResult run(int rotate, QaDebias d) {
    QaOptions o;
    o.debias = d;
    o.threads = 1;
    std::unique_ptr<Indexer> holder;
    auto r = evaluate_qa_article(*model_, article(rotate), o, holder, {}, nullptr);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->questions.at(0) : QaQuestionResult{};
  }
  static inline std::string path_;
  static inline std::unique_ptr<Model> model_;
};

// The same question with its options rotated by one letter: the debiased score of each option
// is the same (the set of rotations shown is the same), the given-order scores are not.
TEST_F(QaDebiasTinyModel, DebiasedScoresDoNotDependOnTheOptionsOrder) {
  const QaQuestionResult a = run(0, QaDebias::kCyclic), b = run(1, QaDebias::kCyclic);
  ASSERT_EQ(a.dense.logp.size(), 4u);
  ASSERT_EQ(b.dense.logp.size(), 4u);
  double raw_diff = 0;
  for (int o = 0; o < 4; ++o) {
    // Option o of the rotated question is option (o + 1) % 4 of the first.
    const size_t src = static_cast<size_t>((o + 1) % 4);
    EXPECT_NEAR(b.dense.logp[static_cast<size_t>(o)], a.dense.logp[src], 1e-3) << "option " << o;
    EXPECT_NEAR(b.dsa.logp[static_cast<size_t>(o)], a.dsa.logp[src], 1e-3) << "option " << o;
    raw_diff = std::max(raw_diff, std::fabs(b.dense_raw.logp[static_cast<size_t>(o)] - a.dense_raw.logp[src]));
  }
  EXPECT_EQ((b.dense.choice + 1) % 4, a.dense.choice);
  // Without the averaging a random model's scores follow the letters: the test would fail.
  EXPECT_GT(raw_diff, 1e-3);
}

// The rotations share the read and the question's first tokens: the given order scored that way
// matches scoring it alone (debiasing off), so reusing the caches changes nothing.
TEST_F(QaDebiasTinyModel, SharedQuestionStemScoresLikeAFullDecode) {
  const QaQuestionResult cyc = run(0, QaDebias::kCyclic), none = run(0, QaDebias::kNone);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_NEAR(cyc.dense_raw.logp[j], none.dense.logp[j], 1e-3);
    EXPECT_NEAR(cyc.dsa_raw.logp[j], none.dsa.logp[j], 1e-3);
  }
  EXPECT_EQ(none.dense.logp, none.dense_raw.logp);
}

}  // namespace
}  // namespace docdsa::app
