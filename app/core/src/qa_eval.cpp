#include "docdsa/app/qa_eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "docdsa/app/doc_prompt.h"

namespace docdsa::app {

Result<LetterTokens> letter_tokens(const Tokenizer& tok, int n_options) {
  LetterTokens out;
  for (int i = 0; i < n_options; ++i) {
    const std::string letter(1, static_cast<char>('A' + i));
    std::vector<TokenId> v;
    for (const std::string& s : {letter, " " + letter}) {
      const std::vector<TokenId> ids = tok.encode(s, false, false);
      if (ids.size() == 1 && std::find(v.begin(), v.end(), ids[0]) == v.end()) v.push_back(ids[0]);
    }
    if (v.empty())
      return make_error(ErrorCode::kUnsupported, "the model's vocabulary has no single token for the letter " + letter);
    out.variants.push_back(std::move(v));
  }
  return out;
}

LetterScore score_letters(const float* logits, int n_vocab, const LetterTokens& letters) {
  const float mx = *std::max_element(logits, logits + n_vocab);
  double z = 0;
  for (int j = 0; j < n_vocab; ++j) z += std::exp(static_cast<double>(logits[j] - mx));
  const double lz = mx + std::log(z);
  LetterScore s;
  for (const auto& v : letters.variants) {
    double p = 0;
    for (TokenId t : v)
      if (t >= 0 && t < n_vocab) p += std::exp(static_cast<double>(logits[t]) - lz);
    s.logp.push_back(p > 0 ? std::log(p) : -INFINITY);
    s.mass += p;
  }
  s.choice = static_cast<int>(std::max_element(s.logp.begin(), s.logp.end()) - s.logp.begin());
  return s;
}

std::string render_question(const QaQuestion& q, const std::vector<int>& order) {
  std::string s = q.question + "\n\n";
  for (size_t i = 0; i < q.options.size(); ++i) {
    const size_t o = order.empty() ? i : static_cast<size_t>(order[i]);
    s += std::string(1, static_cast<char>('A' + i)) + ". " + q.options[o] + "\n";
  }
  std::string letters;
  for (size_t i = 0; i < q.options.size(); ++i)
    letters += (i == 0 ? "" : i + 1 == q.options.size() ? " or " : ", ") + std::string(1, static_cast<char>('A' + i));
  return s + "\nAnswer with the letter of the correct option (" + letters + ").";
}

const char* qa_debias_name(QaDebias d) {
  return d == QaDebias::kCyclic ? "cyclic" : "none";
}

std::vector<int> cyclic_order(int n, int k) {
  std::vector<int> o(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) o[static_cast<size_t>(j)] = (j + k) % n;
  return o;
}

LetterScore average_over_orders(const std::vector<LetterScore>& scores, const std::vector<std::vector<int>>& orders) {
  LetterScore r;
  if (scores.empty()) return r;
  const size_t n = scores[0].logp.size();
  r.logp.assign(n, 0.0);
  std::vector<int> seen(n, 0);
  for (size_t k = 0; k < scores.size(); ++k) {
    for (size_t j = 0; j < n; ++j) {
      const size_t o = static_cast<size_t>(orders[k][j]);
      r.logp[o] += scores[k].logp[j];
      ++seen[o];
    }
    r.mass += scores[k].mass / static_cast<double>(scores.size());
  }
  for (size_t o = 0; o < n; ++o) r.logp[o] /= std::max(1, seen[o]);
  r.choice = static_cast<int>(std::max_element(r.logp.begin(), r.logp.end()) - r.logp.begin());
  return r;
}

Result<QaArticleResult> evaluate_qa_article(const Model& model, const QaArticle& article, const QaOptions& opts,
                                            std::unique_ptr<Indexer>& holder, const QaProgressFn& progress,
                                            const std::atomic<bool>* cancel) {
  const auto stopped = [&] { return cancel && cancel->load(); };
  TRY(PromptTemplate t, load_template("qa"));
  const SplitPrompt split = build_prompt(model, t, article.text, {{"question", ""}, {"title", article.title}});
  const std::vector<TokenId> prefix = encode_prompt(model.tokenizer(), split.prefix, split.prefix_markup, true);
  // Questions are data: special tokens only in the template's markup after them.
  // Per question, one token sequence per order of its options (the dataset's order first),
  // and how many leading tokens all its orders share (decoded once per question).
  struct Encoded {
    std::vector<std::vector<int>> orders;
    std::vector<std::vector<TokenId>> ids;
    size_t common = 0;
  };
  std::vector<Encoded> enc;
  size_t longest = 0;
  int max_options = 0;
  for (const QaQuestion& q : article.questions) {
    Encoded e;
    const int n = static_cast<int>(q.options.size());
    for (int k = 0; k < (opts.debias == QaDebias::kCyclic ? n : 1); ++k) {
      e.orders.push_back(cyclic_order(n, k));
      const std::string text = render_question(q, e.orders.back());
      Spans markup = split.suffix_markup;
      for (auto& [b, en] : markup) b += text.size(), en += text.size();
      e.ids.push_back(encode_prompt(model.tokenizer(), text + split.suffix, markup, false));
      longest = std::max(longest, e.ids.back().size());
    }
    // Keep at least one token per order to decode: its logits are the ones scored.
    e.common = e.ids[0].size() - 1;
    for (const auto& ids : e.ids) {
      const size_t lim = std::min(e.common, ids.size() - 1);
      size_t c = 0;
      while (c < lim && ids[c] == e.ids[0][c]) ++c;
      e.common = c;
    }
    enc.push_back(std::move(e));
    max_options = std::max(max_options, n);
  }
  TRY(LetterTokens letters, letter_tokens(model.tokenizer(), max_options));
  AttentionOptions ao = opts.attn;
  ao.mode = "dsa";  // dense is the same session with force_dense: one set of caches
  const int n_ctx = static_cast<int>(prefix.size() + longest) + 8;
  TRY(SessionParams sp, make_session_params(model, ao, opts.threads, n_ctx, holder));
  sp.cancel = cancel;

  QaArticleResult r;
  r.id = article.id;
  r.title = article.title;
  r.article_tokens = static_cast<int>(prefix.size());
  r.top_k = sp.dsa.top_k;
  r.sparse = static_cast<int>(prefix.size()) + 1 > sp.dsa.top_k;
  r.questions.resize(article.questions.size());
  for (size_t i = 0; i < article.questions.size(); ++i) {
    r.questions[i].answer = article.questions[i].answer;
    r.questions[i].question_tokens = static_cast<int>(enc[i].ids[0].size());
  }
  const int n_q = static_cast<int>(article.questions.size());
  const std::vector<bool> reads = opts.separate_reads ? std::vector<bool>{true, false} : std::vector<bool>{false};
  const int64_t read_total = static_cast<int64_t>(prefix.size() * reads.size());
  const int64_t q_total = static_cast<int64_t>(n_q) * 2;  // progress counts questions scored (both ways)
  int64_t read_done = 0, q_done = 0;
  for (const bool dense_read : reads) {
    TRY(std::unique_ptr<Session> s, Session::create(model, sp));
    s->force_dense(dense_read);
    const auto t0 = std::chrono::steady_clock::now();
    TRY_STATUS(s->decode(prefix, Logits::kLast, [&](int done, int) {
      return !stopped() && (!progress || progress("read", read_done + done, read_total));
    }));
    read_done += static_cast<int64_t>(prefix.size());
    if (opts.stored_kv) TRY_STATUS(reload_session_state(*s, *opts.stored_kv));
    const auto t1 = std::chrono::steady_clock::now();
    r.read_seconds += std::chrono::duration<double>(t1 - t0).count();
    // One read: each question both ways. Two reads: each question in its read's mode.
    const std::vector<bool> modes = opts.separate_reads ? std::vector<bool>{dense_read} : std::vector<bool>{true, false};
    for (int i = 0; i < n_q; ++i) {
      const int n_opt = static_cast<int>(article.questions[static_cast<size_t>(i)].options.size());
      LetterTokens lt;
      lt.variants.assign(letters.variants.begin(), letters.variants.begin() + n_opt);
      const Encoded& e = enc[static_cast<size_t>(i)];
      QaQuestionResult& qr = r.questions[static_cast<size_t>(i)];
      for (const bool dense : modes) {
        if (stopped()) return make_error(ErrorCode::kCancelled, "cancelled");
        s->truncate(static_cast<int>(prefix.size()));
        s->force_dense(dense);
        const std::vector<TokenId> stem(e.ids[0].begin(), e.ids[0].begin() + static_cast<std::ptrdiff_t>(e.common));
        if (!stem.empty()) TRY_STATUS(s->decode(stem, Logits::kLast));
        std::vector<LetterScore> scores;
        for (const auto& ids : e.ids) {
          if (stopped()) return make_error(ErrorCode::kCancelled, "cancelled");
          s->truncate(static_cast<int>(prefix.size() + e.common));
          const std::vector<TokenId> rest(ids.begin() + static_cast<std::ptrdiff_t>(e.common), ids.end());
          TRY_STATUS(s->decode(rest, Logits::kLast));
          scores.push_back(score_letters(s->logits(), model.config().n_vocab, lt));
        }
        (dense ? qr.dense_raw : qr.dsa_raw) = scores[0];
        (dense ? qr.dense : qr.dsa) = average_over_orders(scores, e.orders);
        if (progress && !progress("questions", ++q_done, q_total)) return make_error(ErrorCode::kCancelled, "cancelled");
      }
    }
    r.question_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  return r;
}

}  // namespace docdsa::app
