// docdsa eval qa: multiple-choice reading questions answered by the likelihood of each option's
// letter at the answer position (the first token of the assistant's turn), not by parsing
// generated text. Each article is read once; every question then truncates back to the read
// article and is scored with DSA and with dense attention over the same caches.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "docdsa/app/attention_options.h"
#include "docdsa/app/qa_dataset.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"

namespace docdsa::app {

// The tokens that spell each option's letter as the answer's first token: "B" and " B"
// (BPE vocabularies hold both; which one a model emits after the assistant header varies).
struct LetterTokens {
  std::vector<std::vector<TokenId>> variants;  // [option][variant]
};
// Error when a letter is not a single token in either spelling (a letter score would then
// be the likelihood of a prefix, not of the answer).
Result<LetterTokens> letter_tokens(const Tokenizer& tok, int n_options);

struct LetterScore {
  std::vector<double> logp;  // per option: log-probability of its letter (its variants summed)
  int choice = 0;            // the most likely letter (the first on a tie)
  double mass = 0;           // probability the model puts on any of the letters
};
LetterScore score_letters(const float* logits, int n_vocab, const LetterTokens& letters);

// The question with its options as the user sees it: "…\n\nA. …\nB. …\n\nAnswer with …".
std::string render_question(const QaQuestion& q);

struct QaOptions {
  AttentionOptions attn;  // mode is ignored: both are measured
  // false: one read of the article (with DSA, as `docdsa ask` reads), each question scored both
  // ways over its caches. true: a dense read and a DSA read, each question scored under its
  // own read's attention (twice the reading time; dense is then dense throughout).
  bool separate_reads = false;
  int threads = 0;
};

struct QaQuestionResult {
  int answer = 0;
  LetterScore dense, dsa;
  int question_tokens = 0;
};

struct QaArticleResult {
  std::string id, title;
  int article_tokens = 0;  // the prompt up to the question: template, system text and article
  int top_k = 0;
  bool sparse = false;  // the read is longer than top-k (else DSA attends to everything: DSA == dense)
  double read_seconds = 0, question_seconds = 0;
  std::vector<QaQuestionResult> questions;
};

// (stage, done, total): stage "read" (tokens) or "questions" (questions scored); false cancels.
using QaProgressFn = std::function<bool(const std::string& stage, int64_t done, int64_t total)>;

// Reads one article and scores all its questions. `holder` keeps the indexer between articles.
// Error kCancelled when cancelled.
Result<QaArticleResult> evaluate_qa_article(const Model& model, const QaArticle& article, const QaOptions& opts,
                                            std::unique_ptr<Indexer>& holder, const QaProgressFn& progress,
                                            const std::atomic<bool>* cancel);

}  // namespace docdsa::app
