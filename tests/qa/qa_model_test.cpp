// Letter scoring with the real model: the letters are single tokens that the model emits as
// its answer's first token, and the scoring follows the option the model prefers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "docdsa/app/doc_prompt.h"
#include "docdsa/app/qa_eval.h"
#include "docdsa/engine/generate.h"

namespace docdsa::app {
namespace {

class QaModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* path = std::getenv("DOCDSA_TEST_MODEL");
    if (!path) return;
    auto m = Model::load(path);
    if (m.ok()) model_ = std::move(*m);
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "DOCDSA_TEST_MODEL not set or not loadable";
  }
  static inline std::unique_ptr<Model> model_;
};

TEST_F(QaModel, LettersAreSingleTokensTheModelAnswersWith) {
  auto lt = letter_tokens(model_->tokenizer(), 4);
  ASSERT_TRUE(lt.ok()) << lt.error().message;
  for (int i = 0; i < 4; ++i) {
    ASSERT_FALSE(lt->variants[static_cast<size_t>(i)].empty());
    for (TokenId t : lt->variants[static_cast<size_t>(i)]) {
      const std::string piece = model_->tokenizer().token_to_piece(t, false);
      EXPECT_TRUE(piece == std::string(1, static_cast<char>('A' + i)) || piece == std::string(" ") + static_cast<char>('A' + i))
          << "'" << piece << "'";
    }
  }
  // The full prompt the eval scores, then greedy decoding: its first token is one of the letters.
  auto ds = load_qa_dataset(DOCDSA_FIXTURES "/qa/trivial.json");
  ASSERT_TRUE(ds.ok()) << ds.error().message;
  auto t = load_template("qa");
  ASSERT_TRUE(t.ok()) << t.error().message;
  const QaArticle& a = ds->articles[0];
  const SplitPrompt sp = build_prompt(*model_, *t, a.text, {{"question", ""}, {"title", a.title}});
  const std::string q = render_question(a.questions[1]);
  Spans markup = sp.suffix_markup;
  for (auto& [b, e] : markup) b += q.size(), e += q.size();
  std::vector<TokenId> ids = encode_prompt(model_->tokenizer(), sp.prefix, sp.prefix_markup, true);
  const auto tail = encode_prompt(model_->tokenizer(), q + sp.suffix, markup, false);
  ids.insert(ids.end(), tail.begin(), tail.end());
  SessionParams p;
  p.n_ctx = static_cast<int>(ids.size()) + 8;
  auto s = Session::create(*model_, p);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->decode(ids).ok());
  const LetterScore sc = score_letters((*s)->logits(), model_->config().n_vocab, *lt);
  EXPECT_GT(sc.mass, 0.5) << "the model should answer with a letter";
  const float* l = (*s)->logits();
  const TokenId top = static_cast<TokenId>(std::max_element(l, l + model_->config().n_vocab) - l);
  bool is_letter = false;
  for (const auto& v : lt->variants) is_letter |= std::find(v.begin(), v.end(), top) != v.end();
  EXPECT_TRUE(is_letter) << "greedy first token '" << model_->tokenizer().token_to_piece(top, false) << "'";
  // Scoring picks the letter the model itself would write first.
  for (size_t i = 0; i < lt->variants.size(); ++i)
    if (std::find(lt->variants[i].begin(), lt->variants[i].end(), top) != lt->variants[i].end()) {
      EXPECT_EQ(sc.choice, static_cast<int>(i));
    }
}

// The answer stated plainly in the article, at each of the four letters in turn: the scored
// choice follows the answer, not a favourite letter. This needs a model that reads: the 135M
// picks "A" whatever the options say (its letter scores do not move with the answer), so this
// runs with the better model named by DOCDSA_QA_MODEL (its own ctest entry sets it).
TEST(QaBetterModel, TrivialAnswerIsChosenAtEveryLetter) {
  const char* path = std::getenv("DOCDSA_QA_MODEL");
  if (!path) GTEST_SKIP() << "DOCDSA_QA_MODEL not set (ctest's qa.trivial_answer_better_model sets it)";
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto ds = load_qa_dataset(DOCDSA_FIXTURES "/qa/trivial.json");
  ASSERT_TRUE(ds.ok()) << ds.error().message;
  QaOptions o;
  std::unique_ptr<Indexer> holder;
  auto r = evaluate_qa_article(**model, ds->articles[0], o, holder, {}, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->questions.size(), 4u);
  EXPECT_FALSE(r->sparse);
  for (size_t i = 0; i < 4; ++i) {
    const QaQuestionResult& q = r->questions[i];
    ASSERT_EQ(q.dense.logp.size(), 4u);
    EXPECT_EQ(q.dense.choice, q.answer) << "question " << i;
    EXPECT_EQ(q.dsa.choice, q.dense.choice);  // the read fits in k: the same attention
  }
}

}  // namespace
}  // namespace docdsa::app
