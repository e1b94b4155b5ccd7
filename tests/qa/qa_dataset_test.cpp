// The QuALITY dataset parser on hostile input, and letter scoring on synthetic logits.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "docdsa/app/qa_dataset.h"
#include "docdsa/app/qa_eval.h"
#include "scratch_dir.h"

namespace docdsa::app {
namespace {

Result<QaDataset> parse(const std::string& json) {
  return parse_qa_dataset(json, "/data/qa.json", "/data");
}

void expect_error(const std::string& json, const std::string& fragment) {
  auto r = parse(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(r.error().message.find("/data/qa.json"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

const char* kGood = R"([{"id": "a1", "title": "T", "article": "Text.", "questions": [
  {"question": "Q1?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer": "C"},
  {"question": "Q2?", "options": ["w", "x", "y", "z"], "gold_label": 4}]}])";

TEST(QaDataset, ParsesLettersArraysAndGoldLabels) {
  auto r = parse(kGood);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->articles.size(), 1u);
  EXPECT_EQ(r->n_questions(), 2);
  const QaArticle& a = r->articles[0];
  EXPECT_EQ(a.id, "a1");
  EXPECT_EQ(a.text, "Text.");
  EXPECT_EQ(a.questions[0].options, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(a.questions[0].answer, 2);
  EXPECT_EQ(a.questions[1].answer, 3);
}

TEST(QaDataset, MalformedInputNamesFileAndPlace) {
  expect_error("", "not valid JSON");
  expect_error(R"([{"id": "x", "article": "t", "questions": [)", "not valid JSON");
  expect_error(R"({"id": "x"})", "array of articles");
  expect_error("[]", "no articles");
  expect_error("[3]", "article 1: not an object");
  expect_error(R"([{"id": "x", "questions": []}])", "article 1 (x): needs the text");
  expect_error(R"([{"id": "x", "article": "  \n", "questions": []}])", "article text is empty");
  expect_error(R"([{"id": "x", "article": "t", "questions": []}])", "'questions' must be a non-empty array");
  expect_error(R"([{"article": "t", "questions": [{"options": {"A": "a", "B": "b"}, "answer": "A"}]}])",
               "article 1, question 1: 'question' must be a non-empty string");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": {"A": "a", "C": "c"}, "answer": "A"}]}])",
               "without gaps (no B)");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": ["a"], "answer": "A"}]}])", "1 options");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": ["a", 2], "answer": "A"}]}])",
               "every option must be a string");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": ["a", "b", "c", "d"], "answer": "E"}]}])",
               "one of the option letters A-D");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": ["a", "b", "c", "d"], "gold_label": 0}]}])",
               "one of the option letters A-D");
  expect_error(R"([{"article": "t", "questions": [{"question": "q", "options": ["a", "b"]}]}])", "'answer'");
}

TEST(QaDataset, ArticleFilesAreReadBesideTheDataset) {
  const auto dir = docdsa::test::scratch_dir() / ("qa_ds_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "articles");
  std::ofstream(dir / "articles" / "one.txt") << "The article body.";
  std::ofstream(dir / "qa.json") << R"([{"id": "one", "article_file": "articles/one.txt", "questions": [
    {"question": "q", "options": ["a", "b", "c", "d"], "answer": "B"}]},
    {"id": "two", "article_file": "articles/missing.txt", "questions": [
    {"question": "q", "options": ["a", "b", "c", "d"], "answer": "B"}]}])";
  auto r = load_qa_dataset((dir / "qa.json").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.txt"), std::string::npos) << r.error().message;
  std::ofstream(dir / "articles" / "missing.txt") << "Now here.";
  r = load_qa_dataset((dir / "qa.json").string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->articles[0].text, "The article body.");
  EXPECT_EQ(r->articles[1].text, "Now here.");
  auto none = load_qa_dataset((dir / "absent.json").string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("absent.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(QaLetters, ScoresSumSpellingsAndPickTheLikeliest) {
  // Vocabulary of 10; option letters spelled by tokens {1, 5}, {2}, {3, 6}, {4}.
  LetterTokens lt{{{1, 5}, {2}, {3, 6}, {4}}};
  std::vector<float> logits(10, 0.0f);
  logits[2] = 2.0f;                    // B alone: e^2 = 7.39
  logits[3] = 1.5f, logits[6] = 1.5f;  // C as two spellings: 2 e^1.5 = 8.96 > B
  const LetterScore s = score_letters(logits.data(), 10, lt);
  ASSERT_EQ(s.logp.size(), 4u);
  EXPECT_EQ(s.choice, 2);
  double z = 0;
  for (float l : logits) z += std::exp(l);
  EXPECT_NEAR(s.logp[1], 2.0 - std::log(z), 1e-6);
  EXPECT_NEAR(s.logp[2], std::log(2 * std::exp(1.5) / z), 1e-6);
  EXPECT_NEAR(s.mass, (2 * std::exp(0.0) + std::exp(2.0) + 2 * std::exp(1.5) + std::exp(0.0)) / z, 1e-6);
  logits[2] = 3.0f;  // now B
  EXPECT_EQ(score_letters(logits.data(), 10, lt).choice, 1);
}

TEST(QaLetters, RendersEveryOptionWithItsLetter) {
  QaQuestion q{"Why?", {"one", "two", "three"}, 1};
  const std::string s = render_question(q);
  EXPECT_NE(s.find("Why?\n\nA. one\nB. two\nC. three\n"), std::string::npos) << s;
  EXPECT_NE(s.find("(A, B or C)"), std::string::npos) << s;
}

}  // namespace
}  // namespace docdsa::app
