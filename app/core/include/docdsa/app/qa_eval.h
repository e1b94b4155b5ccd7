// docdsa eval qa: multiple-choice reading questions answered by the likelihood of each option's
// letter at the answer position (the first token of the assistant's turn), not by parsing
// generated text. Each article is read once; every question then truncates back to the read
// article and is scored with DSA and with dense attention over the same caches, by default
// with its options in every cyclic order so that a favourite letter cancels (QaDebias).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "docdsa/app/attention_options.h"
#include "docdsa/app/qa_dataset.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/engine/session_state.h"

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
// `order[j]` is the option shown under letter j (empty: the dataset's order).
std::string render_question(const QaQuestion& q, const std::vector<int>& order = {});

// How the model's preference for a letter, whatever its option says, is taken out of the score.
// kNone: the options in the dataset's order, scored once. kCyclic: the options are shown in
// each of the n cyclic rotations (so each option appears once under each letter) and an
// option's score is the mean of its letter's log-probabilities over the rotations. A
// letter prior that multiplies the probabilities (log p = prior[letter] + content) adds the
// same sum to every option and cancels exactly; n times the question's scoring cost, not
// the article's, whose read is reused.
enum class QaDebias { kNone, kCyclic };
const char* qa_debias_name(QaDebias d);
// Rotation k: letter j shows option (j + k) % n.
std::vector<int> cyclic_order(int n, int k);
// The per-option mean over orders: scores[k].logp[j] is the letter j's score under orders[k],
// which showed option orders[k][j] there. mass is the mean of the masses.
LetterScore average_over_orders(const std::vector<LetterScore>& scores, const std::vector<std::vector<int>>& orders);

struct QaOptions {
  AttentionOptions attn;  // mode is ignored: both are measured
  // false: one read of the article (with DSA, as `docdsa ask` reads), each question scored both
  // ways over its caches. true: a dense read and a DSA read, each question scored under its
  // own read's attention (twice the reading time; dense is then dense throughout).
  bool separate_reads = false;
  QaDebias debias = QaDebias::kCyclic;
  // Set: each read's caches are saved in this form and loaded back before the questions, as a
  // stored context would reload them (f16 is exact; q8 measures 8-bit storage).
  std::optional<KvStorage> stored_kv;
  int threads = 0;
};

struct QaQuestionResult {
  int answer = 0;
  LetterScore dense, dsa;          // the scores the choice is made by (debiased when asked)
  LetterScore dense_raw, dsa_raw;  // the dataset's order alone (the same as above with kNone)
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
