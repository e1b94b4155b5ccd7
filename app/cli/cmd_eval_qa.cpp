// docdsa eval qa: multiple-choice reading comprehension (QuALITY format). Each article is read
// once; each option is scored by the likelihood of its letter as the answer, with dense
// attention and with DSA over the same caches; accuracy of both and how often they agree. By
// default each option is scored under every letter (cyclic rotations) and its mean kept.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>

#include "cli_common.h"
#include "docdsa/app/doc_session.h"
#include "docdsa/app/qa_eval.h"
#include "progress.h"

namespace docdsa::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_sigint(int) {
  g_stop.store(true);
}

struct QaCliOpts {
  std::string dataset;
  std::vector<std::string> articles;  // ids to run (empty: all)
  int max_questions = 0;              // per article (0: all)
  bool separate_reads = false;
  std::string debias = "cyclic";
  std::string stored_kv;  // empty: the caches as read
  AttentionOptions attn;
};

struct Tally {
  int n = 0, dense = 0, dsa = 0, same = 0;
  std::vector<int> hist_dense, hist_dsa;  // choices per letter
  void add(const QaQuestionResult& q) { add(q.answer, q.dense, q.dsa); }
  void add(int answer, const LetterScore& d, const LetterScore& s) {
    ++n;
    dense += d.choice == answer;
    dsa += s.choice == answer;
    same += d.choice == s.choice;
    for (auto* h : {&hist_dense, &hist_dsa}) h->resize(std::max(h->size(), d.logp.size()));
    ++hist_dense[static_cast<size_t>(d.choice)];
    ++hist_dsa[static_cast<size_t>(s.choice)];
  }
  static double ratio(int a, int b) { return b ? static_cast<double>(a) / b : 0.0; }
  nlohmann::json json() const {
    const auto hist = [](const std::vector<int>& h) {
      nlohmann::json j = nlohmann::json::object();
      for (size_t i = 0; i < h.size(); ++i) j[std::string(1, static_cast<char>('A' + i))] = h[i];
      return j;
    };
    return {{"questions", n},
            {"correct_dense", dense},
            {"correct_dsa", dsa},
            {"accuracy_dense", ratio(dense, n)},
            {"accuracy_dsa", ratio(dsa, n)},
            {"same_choice", same},
            {"agreement", ratio(same, n)},
            {"choices_dense", hist(hist_dense)},
            {"choices_dsa", hist(hist_dsa)}};
  }
};

std::string letter(int i) {
  return std::string(1, static_cast<char>('A' + i));
}

int run_qa(const QaCliOpts& o) {
  // The dataset first: a malformed file is reported without loading a model.
  auto ds = load_qa_dataset(o.dataset);
  if (!ds.ok()) return report(ds.error());
  std::vector<QaArticle> chosen;
  for (const std::string& id : o.articles) {
    const auto it = std::find_if(ds->articles.begin(), ds->articles.end(), [&](const QaArticle& a) { return a.id == id; });
    if (it == ds->articles.end()) return report(make_error(ErrorCode::kInvalidArgument, o.dataset + ": no article '" + id + "'"));
  }
  for (QaArticle& a : ds->articles) {
    if (!o.articles.empty() && std::find(o.articles.begin(), o.articles.end(), a.id) == o.articles.end()) continue;
    if (o.max_questions > 0 && static_cast<int>(a.questions.size()) > o.max_questions)
      a.questions.resize(static_cast<size_t>(o.max_questions));
    chosen.push_back(std::move(a));
  }
  int rc = kOk;
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  std::signal(SIGINT, on_sigint);
  QaOptions qo;
  qo.attn = o.attn;
  qo.separate_reads = o.separate_reads;
  qo.debias = o.debias == "none" ? QaDebias::kNone : QaDebias::kCyclic;
  if (!o.stored_kv.empty()) qo.stored_kv = o.stored_kv == "q8" ? KvStorage::kQ8 : KvStorage::kF16;
  qo.threads = globals().threads;
  std::unique_ptr<Indexer> indexer;
  Tally all, all_raw;  // all_raw: the options in the dataset's order only (before debiasing)
  nlohmann::json arts = nlohmann::json::array();
  int total_q = 0;
  for (const auto& a : chosen) total_q += static_cast<int>(a.questions.size());
  if (!globals().json)
    std::printf("%-20s %7s %6s %9s %9s %9s %8s\n", "article", "tokens", "quest.", "dense", "dsa", "agree", "read_s");
  int q_before = 0;
  for (size_t ai = 0; ai < chosen.size(); ++ai) {
    const QaArticle& a = chosen[ai];
    const std::string tag = "[" + std::to_string(ai + 1) + "/" + std::to_string(chosen.size()) + "] " + a.id;
    ProgressBar bar(tag + " reading", 1, !globals().json);
    auto r = evaluate_qa_article(
        *model, a, qo, indexer,
        [&](const std::string& stage, int64_t done, int64_t total) {
          if (stage == "read") {
            bar.set_total(total);
            bar.update(done);
          } else {
            // Scoring counts over the whole run, so the ETA covers all questions left.
            bar.set_label(tag + " questions");
            bar.set_total(static_cast<int64_t>(total_q) * 2);
            bar.update(static_cast<int64_t>(q_before) * 2 + done);
          }
          return !g_stop.load();
        },
        &g_stop);
    bar.finish();
    if (!r.ok()) return r.error().code == ErrorCode::kCancelled ? static_cast<int>(kInterrupted) : report(r.error());
    q_before += static_cast<int>(a.questions.size());
    Tally t, t_raw;
    nlohmann::json qs = nlohmann::json::array();
    for (const QaQuestionResult& q : r->questions) {
      t.add(q);
      all.add(q);
      t_raw.add(q.answer, q.dense_raw, q.dsa_raw);
      all_raw.add(q.answer, q.dense_raw, q.dsa_raw);
      qs.push_back({{"answer", letter(q.answer)},
                    {"choice_dense", letter(q.dense.choice)},
                    {"choice_dsa", letter(q.dsa.choice)},
                    {"choice_dense_given_order", letter(q.dense_raw.choice)},
                    {"choice_dsa_given_order", letter(q.dsa_raw.choice)},
                    {"logp_dense", q.dense.logp},
                    {"logp_dsa", q.dsa.logp},
                    {"letter_mass_dense", q.dense.mass},
                    {"letter_mass_dsa", q.dsa.mass},
                    {"question_tokens", q.question_tokens}});
    }
    nlohmann::json j = t.json();
    j.update({{"id", r->id},
              {"title", r->title},
              {"article_tokens", r->article_tokens},
              {"sparse", r->sparse},
              {"read_seconds", r->read_seconds},
              {"question_seconds", r->question_seconds},
              {"given_order", t_raw.json()},
              {"results", qs}});
    arts.push_back(j);
    if (!globals().json) {
      std::printf("%-20s %7d %6d %9.3f %9.3f %9.3f %8.1f%s\n", r->id.c_str(), r->article_tokens, t.n, Tally::ratio(t.dense, t.n),
                  Tally::ratio(t.dsa, t.n), Tally::ratio(t.same, t.n), r->read_seconds,
                  r->sparse ? "" : "  (fits in top-k: DSA == dense)");
      if (qo.debias != QaDebias::kNone)
        std::printf("%-20s %7s %6s %9.3f %9.3f %9.3f\n", "  given order only", "", "", Tally::ratio(t_raw.dense, t_raw.n),
                    Tally::ratio(t_raw.dsa, t_raw.n), Tally::ratio(t_raw.same, t_raw.n));
    }
  }
  nlohmann::json overall = all.json();
  overall["given_order"] = all_raw.json();
  const std::string read = o.separate_reads ? "separate" : "same";
  if (globals().json) {
    print_json({{"qa",
                 {{"dataset", o.dataset},
                  {"model", model_name(*model)},
                  {"top_k", o.attn.dsa.top_k},
                  {"reads", read},
                  {"debias", qa_debias_name(qo.debias)},
                  {"stored_kv", o.stored_kv.empty() ? "none" : o.stored_kv},
                  {"overall", overall},
                  {"articles", arts}}}});
  } else {
    std::printf("%-20s %7s %6d %9.3f %9.3f %9.3f\n", "overall", "", all.n, Tally::ratio(all.dense, all.n),
                Tally::ratio(all.dsa, all.n), Tally::ratio(all.same, all.n));
    std::printf("choices dense: %s\nchoices dsa:   %s\n", overall["choices_dense"].dump().c_str(),
                overall["choices_dsa"].dump().c_str());
    if (qo.debias != QaDebias::kNone)
      std::printf("given order only: dense %.3f, dsa %.3f, agreement %.3f; choices dense %s\n",
                  Tally::ratio(all_raw.dense, all_raw.n), Tally::ratio(all_raw.dsa, all_raw.n),
                  Tally::ratio(all_raw.same, all_raw.n), overall["given_order"]["choices_dense"].dump().c_str());
    std::printf("letter bias: %s\n", qo.debias == QaDebias::kCyclic
                                          ? "removed (each option scored under every letter, cyclic rotations, mean log-probability)"
                                          : "not removed (options in the dataset's order)");
    std::printf("top-k %d; %s\n", o.attn.dsa.top_k,
                o.separate_reads ? "dense and DSA each read the article"
                                 : "one DSA read per article; each question scored with DSA and with dense attention over it");
  }
  return kOk;
}

}  // namespace

void register_eval_qa(CLI::App* ev) {
  static QaCliOpts q;
  CLI::App* sub = ev->add_subcommand("qa", "Multiple-choice reading accuracy (QuALITY format), dense and DSA side by side");
  sub->add_option("--dataset", q.dataset,
                  "QuALITY-format JSON: articles (inline or article_file), questions, options, answer letter")
      ->required();
  sub->add_option("--article", q.articles, "Only these article ids (repeatable)");
  sub->add_option("--max-questions", q.max_questions, "At most N questions per article (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--separate-reads", q.separate_reads,
                "Read each article twice, densely and with DSA (default: one DSA read, each question scored both ways over it)");
  sub->add_option("--debias", q.debias,
                  "Remove the model's preference for a letter: 'cyclic' shows the options in each cyclic rotation, so each "
                  "option appears once under every letter, and scores it by the mean log-probability of its letters "
                  "(n times the question scoring, the article is read once); 'none' scores the dataset's order only")
      ->capture_default_str()
      ->check(CLI::IsMember({"cyclic", "none"}));
  sub->add_option("--stored-kv", q.stored_kv,
                  "Score over the article's caches as a stored context reloads them: f16 (exact) or q8 (8-bit; "
                  "measures what 8-bit storage changes)")
      ->check(CLI::IsMember({"f16", "q8"}));
  add_attention_options(sub, q.attn);
  sub->callback([] { globals().command = [] { return run_qa(q); }; });
}

}  // namespace docdsa::cli
