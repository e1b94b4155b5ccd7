// docdsa ask FILE|DOC -q QUESTION...   questions over the whole document, with sources and costs
// docdsa chat FILE|DOC                 the same, interactively; follow-ups reuse the caches
// docdsa summarize PATH...             batch summaries of files and folders, resumable
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_common.h"
#include "doc_prompt.h"
#include "docdsa/engine/generate.h"
#include "library_common.h"
#include "progress.h"

namespace docdsa::cli {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop.store(true); }

double since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

constexpr int kQuestionBudget = 512;  // tokens reserved for a question and the template around it
// Indexer picks per layer that stand in for the selection when attention is dense (a
// document shorter than k, or --attention dense): an eighth of the document, 16 to 256.
int observe_k(size_t doc_tokens) { return std::clamp(static_cast<int>(doc_tokens / 8), 16, 256); }

struct Answer {
  std::string question, text, stop_reason;
  nlohmann::json sources;
  CostReport cost;
  int prompt_tokens = 0;      // whole prompt: document + question
  int prefilled_tokens = 0;   // what this question had to prefill
  int reused_tokens = 0;      // document tokens whose caches were reused
  double prefill_seconds = 0, decode_seconds = 0;
};

// One document opened for questions: the prompt up to the question is prefilled once; each
// question truncates back to it, so follow-ups only prefill the question.
class DocSession {
 public:
  static Result<std::unique_ptr<DocSession>> open(const Model& model, const storage::DocumentRow& row,
                                                  std::vector<storage::SegmentRow> segs, const AttentionOptions& attn,
                                                  const Range& range, int max_answer, int ctx_limit, bool show_progress) {
    std::unique_ptr<DocSession> d(new DocSession(model));
    d->row_ = row;
    d->segs_ = std::move(segs);
    d->max_answer_ = max_answer;
    d->doc_ = render_document(row, d->segs_, range);
    if (d->doc_.text.empty())
      return make_error(ErrorCode::kInvalidArgument, row.path + ": no text in " + range.label());
    TRY(PromptTemplate t, load_template("ask"));
    d->split_ = build_prompt(model, t, d->doc_.text, {{"question", ""}, {"title", row.title}});
    d->prefix_ids_ = model.tokenizer().encode(d->split_.prefix, true, true);
    d->tok_seg_ = token_segments(model.tokenizer(), d->prefix_ids_, d->split_.prefix, d->split_.doc_offset, d->doc_);
    const int n_ctx = static_cast<int>(d->prefix_ids_.size()) + kQuestionBudget + max_answer + 8;
    if (n_ctx > ctx_limit)
      return make_error(ErrorCode::kOutOfRange,
                        row.path + ": " + range.label() + " is " + std::to_string(d->prefix_ids_.size()) +
                            " tokens; with the answer that exceeds the " + std::to_string(ctx_limit) +
                            "-token context. Ask about a part: --pages A-B (PDF) or --time hh:mm:ss-hh:mm:ss (transcripts), or raise --ctx");
    // Dense, or the document fits in k: the indexer's picks still point at the sources.
    TRY(SessionParams sp, session_params(model, attn, n_ctx, d->indexer_, observe_k(d->prefix_ids_.size())));
    d->counter_.sinks = sp.observe_k > 0 ? 0 : sp.dsa.sinks;
    d->counter_.window = sp.observe_k > 0 ? 0 : sp.dsa.window;
    d->counter_.doc_tokens = static_cast<int64_t>(d->prefix_ids_.size());
    d->counter_.count.assign(d->prefix_ids_.size(), 0.0);
    DocSession* self = d.get();
    sp.selection_tap = [self](int, int pos, std::span<const int32_t> sel) { self->counter_.add(pos, sel.data(), sel.size()); };
    d->mode_ = sp.dsa.mode;
    TRY(d->session_, Session::create(model, sp));
    ProgressBar bar("reading " + fs::path(row.path).filename().string(), static_cast<int64_t>(d->prefix_ids_.size()), show_progress);
    d->counter_.first_counted_pos = INT64_MAX;
    TRY_STATUS(d->session_->decode(d->prefix_ids_, Logits::kLast, [&](int done, int) {
      bar.update(done);
      return !g_stop.load();
    }));
    bar.finish();
    d->doc_cost_ = d->session_->cost();
    return d;
  }

  Result<Answer> ask(const std::string& question, const std::function<bool(std::string_view)>& on_text) {
    Answer a;
    a.question = question;
    const std::vector<TokenId> q_ids = model_.tokenizer().encode(question + split_.suffix, false, true);
    if (static_cast<int>(q_ids.size()) > kQuestionBudget)
      return make_error(ErrorCode::kInvalidArgument, "the question is too long (" + std::to_string(q_ids.size()) + " tokens; at most " +
                                                         std::to_string(kQuestionBudget) + ")");
    session_->truncate(static_cast<int>(prefix_ids_.size()));
    session_->reset_cost();
    std::fill(counter_.count.begin(), counter_.count.end(), 0.0);
    // Count the selections of the last prompt token (it predicts the first answer token) on.
    counter_.first_counted_pos = static_cast<int64_t>(prefix_ids_.size() + q_ids.size()) - 1;
    GenerateParams gp;
    gp.max_tokens = max_answer_;
    gp.sampler.greedy = true;
    gp.sampler.repeat_penalty = 1.1f;
    gp.cancel = &g_stop;
    if (on_text) gp.on_token = [&](TokenId, std::string_view piece) { return on_text(piece); };
    TRY(GenerateResult r, generate(*session_, q_ids, gp));
    a.text = r.text;
    a.stop_reason = r.stop_reason;
    a.cost = session_->cost();
    a.prompt_tokens = static_cast<int>(prefix_ids_.size() + q_ids.size());
    a.prefilled_tokens = static_cast<int>(q_ids.size());
    a.reused_tokens = static_cast<int>(prefix_ids_.size());
    a.prefill_seconds = r.prefill_ms / 1000.0;
    a.decode_seconds = r.decode_ms / 1000.0;
    if (first_) {  // the first answer pays for reading the document
      a.cost.add(doc_cost_);
      a.cost.context_tokens = std::max(a.cost.context_tokens, doc_cost_.context_tokens);
      a.prefilled_tokens += static_cast<int>(prefix_ids_.size());
      a.reused_tokens = 0;
      a.prefill_seconds += doc_cost_.prefill_seconds;
      first_ = false;
    }
    a.sources = top_sources(counter_, tok_seg_, doc_, row_, segs_, 5);
    return a;
  }

  const storage::DocumentRow& row() const { return row_; }
  AttentionMode mode() const { return mode_; }
  int doc_tokens() const { return static_cast<int>(prefix_ids_.size()); }
  double doc_prefill_seconds() const { return doc_cost_.prefill_seconds; }

 private:
  explicit DocSession(const Model& m) : model_(m) {}
  const Model& model_;
  storage::DocumentRow row_;
  std::vector<storage::SegmentRow> segs_;
  DocText doc_;
  SplitPrompt split_;
  std::vector<TokenId> prefix_ids_;
  std::vector<int> tok_seg_;
  std::unique_ptr<Indexer> indexer_;
  std::unique_ptr<Session> session_;
  SourceCounter counter_;
  CostReport doc_cost_;
  AttentionMode mode_ = AttentionMode::kDsa;
  int max_answer_ = 256;
  bool first_ = true;
};

struct AskOpts {
  std::string target, db, password, pages, times, prices;
  std::vector<std::string> questions;
  int max_tokens = 256;
  int ctx = 131072;
  bool compare = false;
  AttentionOptions attn;
};

// The document named by a path (ingested first when new or changed) or a library key.
Result<storage::DocumentRow> resolve(storage::Library& lib, const Model& model, const std::string& target, const std::string& password) {
  std::error_code ec;
  if (fs::is_regular_file(target, ec)) {
    TRY(IngestResult in, ingest_one(lib, model.tokenizer(), target, password));
    return lib.find(std::to_string(in.id));
  }
  auto d = lib.find(target);
  if (!d.ok() && d.error().code == ErrorCode::kNotFound)
    return make_error(ErrorCode::kNotFound, target + ": no such file, and no document with that id, path or hash in " + lib.path());
  return d;
}

nlohmann::json answer_json(const Answer& a, const Prices& prices) {
  return {{"question", a.question}, {"answer", a.text}, {"stop_reason", a.stop_reason}, {"sources", a.sources},
          {"prompt_tokens", a.prompt_tokens}, {"prefilled_tokens", a.prefilled_tokens}, {"reused_tokens", a.reused_tokens},
          {"prefill_seconds", a.prefill_seconds}, {"decode_seconds", a.decode_seconds}, {"cost", cost_json(a.cost)},
          {"money", money_json(a.cost, prices)}};
}

int run_questions(const AskOpts& o, bool interactive) {
  int rc = kOk;
  for (const auto& q : o.questions)
    if (q.find_first_not_of(" \t\r\n") == std::string::npos) return report(make_error(ErrorCode::kInvalidArgument, "a question is empty"));
  if (!interactive && o.questions.empty())
    return report(make_error(ErrorCode::kInvalidArgument, "no question: give one after the document or with -q"));
  Range range;
  if (!o.pages.empty() && !o.times.empty()) return report(make_error(ErrorCode::kInvalidArgument, "use --pages or --time, not both"));
  if (!o.pages.empty()) {
    auto r = parse_pages(o.pages);
    if (!r.ok()) return report(r.error());
    range = *r;
  } else if (!o.times.empty()) {
    auto r = parse_times(o.times);
    if (!r.ok()) return report(r.error());
    range = *r;
  }
  auto prices = load_prices(o.prices);
  if (!prices.ok()) return report(prices.error());
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  auto lib = open_library_at(o.db);
  if (!lib.ok()) return report(lib.error());
  auto row = resolve(**lib, *model, o.target, o.password);
  if (!row.ok()) return report(row.error());
  auto segs = (*lib)->segments(row->id);
  if (!segs.ok()) return report(segs.error());
  std::signal(SIGINT, on_sigint);
  const bool json = globals().json;
  auto ds = DocSession::open(*model, *row, *segs, o.attn, range, o.max_tokens, o.ctx, !json);
  if (!ds.ok()) return report(ds.error());
  std::unique_ptr<DocSession> dense;
  if (o.compare) {
    AttentionOptions da = o.attn;
    da.mode = "dense";
    auto d = DocSession::open(*model, *row, *segs, da, range, o.max_tokens, o.ctx, !json);
    if (!d.ok()) return report(d.error());
    dense = std::move(*d);
  }
  if (!json) {
    std::printf("%s — %s, %d tokens read (%s attention)\n", row->title.empty() ? row->path.c_str() : row->title.c_str(),
                range.label().c_str(), (*ds)->doc_tokens(), attention_mode_name((*ds)->mode()));
  }
  nlohmann::json answers = nlohmann::json::array();
  std::vector<Answer> done;
  const auto one = [&](const std::string& q) -> int {
    if (!json) std::printf("\nQ: %s\nA: ", q.c_str());
    auto a = (*ds)->ask(q, [&](std::string_view piece) {
      if (!json) std::fwrite(piece.data(), 1, piece.size(), stdout), std::fflush(stdout);
      return !g_stop.load();
    });
    if (!a.ok()) return report(a.error());
    nlohmann::json cmp;
    if (dense) {
      auto b = dense->ask(q, {});
      if (!b.ok()) return report(b.error());
      a->cost.dense_measured = true;
      a->cost.dense_prefill_seconds = b->cost.prefill_seconds;
      a->cost.dense_decode_seconds = b->cost.decode_seconds;
      cmp = {{"dense_answer", b->text}, {"answers_agree", b->text == a->text},
             {"dense_prefill_seconds", b->cost.prefill_seconds}, {"dense_decode_seconds", b->cost.decode_seconds}};
    }
    if (a->stop_reason != "cancelled") {
      storage::RunRecord run{"ask", attention_mode_name((*ds)->mode()), fs::path(model->path()).filename().string(),
                             cost_json(a->cost).dump()};
      if (auto st = (*lib)->save_answer(row->id, q, a->text, a->sources.dump(), run); !st.ok())
        spdlog::warn("the answer was not saved to the library: {}", st.error().message);
    }
    nlohmann::json j = answer_json(*a, *prices);
    if (!cmp.is_null()) j["compare"] = cmp;
    answers.push_back(j);
    if (!json) {
      std::printf("\n\nSources (where the model's sparse attention went while answering):\n%s",
                  a->sources.empty() ? "  (none: the answer attended only the question and the most recent text)\n"
                                     : sources_text(a->sources).c_str());
      if (!cmp.is_null())
        std::printf("Dense attention answered %s:\n  %s\n", cmp["answers_agree"].get<bool>() ? "the same" : "differently",
                    cmp["dense_answer"].get<std::string>().c_str());
      std::printf("%s", cost_table(a->cost, *prices).c_str());
      if (!done.empty())
        std::printf("  follow-up: %d document tokens reused from the cache; prefilled %d tokens in %.2f s (the first question took %.2f s)\n",
                    a->reused_tokens, a->prefilled_tokens, a->prefill_seconds, done.front().prefill_seconds);
    }
    done.push_back(*a);
    return g_stop.load() ? static_cast<int>(kInterrupted) : static_cast<int>(kOk);
  };
  for (const auto& q : o.questions)
    if (int r = one(q); r != kOk) return r;
  if (interactive) {
    if (!json) std::printf("\nAsk about the document (an empty line or Ctrl-D ends).\n");
    for (std::string line;;) {
      if (!json) std::printf("\n> "), std::fflush(stdout);
      if (!std::getline(std::cin, line) || line.find_first_not_of(" \t\r") == std::string::npos || line == "quit" || line == "exit") break;
      if (int r = one(line); r != kOk) return r;
    }
  }
  if (json) {
    nlohmann::json out = {{"document", {{"id", row->id}, {"path", row->path}, {"title", row->title}, {"kind", row->kind}}},
                          {"range", range.label()}, {"document_tokens", (*ds)->doc_tokens()}, {"answers", answers}};
    if (done.size() > 1 && done[1].prefill_seconds > 0)
      out["follow_up_speedup"] = done[0].prefill_seconds / done[1].prefill_seconds;
    print_json(out);
  }
  return kOk;
}

// ---- summarize -----------------------------------------------------------------------------

struct SumOpts {
  std::vector<std::string> paths;
  std::string db, out, password, prices;
  int max_tokens = 320;
  int ctx = 131072;
  bool force = false, dry_run = false;
  AttentionOptions attn;
};

struct Summary {
  std::string text;
  nlohmann::json sources = nlohmann::json::array();
  CostReport cost;
  int sections = 1;
};

// Summarises segments [first, last) as one document.
Result<Summary> summarize_part(const Model& model, const storage::DocumentRow& row, const std::vector<storage::SegmentRow>& segs,
                               const SumOpts& o, const std::string& label, const std::string& template_name,
                               const std::string& override_text = "") {
  DocText doc = render_document(row, segs, Range{});
  if (!override_text.empty()) doc = DocText{override_text, {}, {}, {}};
  TRY(PromptTemplate t, load_template(template_name));
  const SplitPrompt sp = build_prompt(model, t, doc.text, {{"title", row.title.empty() ? fs::path(row.path).filename().string() : row.title}});
  // The prefix (system + document) is tokenised once: for the prompt and for the source map.
  std::vector<TokenId> ids = model.tokenizer().encode(sp.prefix, true, true);
  const auto tok_seg = token_segments(model.tokenizer(), ids, sp.prefix, sp.doc_offset, doc);
  const auto tail = model.tokenizer().encode(sp.suffix, false, true);
  ids.insert(ids.end(), tail.begin(), tail.end());
  std::unique_ptr<Indexer> indexer;
  TRY(SessionParams p, session_params(model, o.attn, static_cast<int>(ids.size()) + o.max_tokens + 8, indexer, observe_k(ids.size())));
  SourceCounter counter;
  counter.sinks = p.observe_k > 0 ? 0 : p.dsa.sinks;
  counter.window = p.observe_k > 0 ? 0 : p.dsa.window;
  counter.doc_tokens = static_cast<int64_t>(tok_seg.size());
  counter.count.assign(tok_seg.size(), 0.0);
  counter.first_counted_pos = static_cast<int64_t>(ids.size()) - 1;
  p.selection_tap = [&](int, int pos, std::span<const int32_t> sel) { counter.add(pos, sel.data(), sel.size()); };
  TRY(std::unique_ptr<Session> s, Session::create(model, p));
  ProgressBar bar(label, static_cast<int64_t>(ids.size()), !globals().json);
  GenerateParams gp;
  gp.max_tokens = o.max_tokens;
  gp.sampler.greedy = true;
  gp.sampler.repeat_penalty = 1.1f;
  gp.cancel = &g_stop;
  gp.on_prefill = [&](int d, int) { bar.update(d); return true; };
  TRY(GenerateResult r, generate(*s, ids, gp));
  bar.finish();
  if (r.stop_reason == "cancelled") return make_error(ErrorCode::kCancelled, "cancelled");
  Summary out;
  out.text = r.text;
  out.cost = s->cost();
  if (override_text.empty()) out.sources = top_sources(counter, tok_seg, doc, row, segs, 5);
  return out;
}

// The whole document when it fits; otherwise the largest runs of segments that fit, each
// summarised whole, and the section summaries combined (and labelled as such).
Result<Summary> summarize_doc(const Model& model, const storage::DocumentRow& row, const std::vector<storage::SegmentRow>& segs,
                              const SumOpts& o, const std::string& label) {
  const int budget = o.ctx - o.max_tokens - kQuestionBudget;
  const Tokenizer& tok = model.tokenizer();
  std::vector<int> seg_tokens;
  int64_t total = 0;
  for (const auto& s : segs) {
    seg_tokens.push_back(static_cast<int>(tok.encode(s.text, false, false).size()) + 8);
    total += seg_tokens.back();
  }
  if (total <= budget) return summarize_part(model, row, segs, o, label, "summarize");
  std::vector<std::vector<storage::SegmentRow>> sections(1);
  int64_t used = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (used + seg_tokens[i] > budget && !sections.back().empty()) {
      sections.emplace_back();
      used = 0;
    }
    sections.back().push_back(segs[i]);
    used += seg_tokens[i];
  }
  Summary all;
  std::string combined;
  CostReport cost;
  bool first = true;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& sec = sections[i];
    TRY(Summary part, summarize_part(model, row, sec, o, label + " §" + std::to_string(i + 1) + "/" + std::to_string(sections.size()), "summarize"));
    std::string where = row.kind == "pdf" ? "pages " + std::to_string(sec.front().page) + "-" + std::to_string(sec.back().page)
                                          : format_ms(sec.front().start_ms) + "-" + format_ms(sec.back().end_ms);
    combined += "[section " + std::to_string(i + 1) + ", " + where + "]\n" + part.text + "\n\n";
    if (first) cost = part.cost, first = false;
    else cost.add(part.cost);
    for (auto& s : part.sources) all.sources.push_back(s);
  }
  TRY(Summary fin, summarize_part(model, row, segs, o, label + " combining", "combine", combined));
  cost.add(fin.cost);
  all.text = "(Combined from " + std::to_string(sections.size()) + " section summaries: the document is longer than the " +
             std::to_string(o.ctx) + "-token context.)\n\n" + fin.text;
  all.cost = cost;
  all.sections = static_cast<int>(sections.size());
  return all;
}

// Writes DIR/<name>.summary.md beside a copy of the sources, atomically (temp file + rename).
Status write_sidecar(const std::string& dir, const storage::DocumentRow& row, const std::string& text, const nlohmann::json& sources) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + dir + ": " + ec.message());
  const std::string name = fs::path(row.path).filename().string();
  const fs::path out = fs::path(dir) / (name + ".summary.md");
  const fs::path tmp = fs::path(dir) / ("." + name + ".summary.md.tmp");
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "# Summary of " << (row.title.empty() ? name : row.title) << "\n\nSource: " << row.path << "\n\n" << text << "\n\n## Sources\n\n";
    for (const auto& s : sources)
      f << "- " << s["label"].get<std::string>() << " (" << static_cast<int>(100 * s["weight"].get<double>()) << "%): \""
        << s["snippet"].get<std::string>() << "\"\n";
    f.flush();
    if (!f) {
      fs::remove(tmp, ec);
      return make_error(ErrorCode::kIo, "cannot write " + out.string() + " (disk full?)");
    }
  }
  fs::rename(tmp, out, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot write " + out.string() + ": " + ec.message());
  return {};
}

int run_summarize(const SumOpts& o) {
  int rc = kOk;
  auto prices = load_prices(o.prices);
  if (!prices.ok()) return report(prices.error());
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  auto lib = open_library_at(o.db);
  if (!lib.ok()) return report(lib.error());
  std::vector<std::pair<std::string, std::string>> errors;
  const auto files = expand(o.paths, &errors);
  const bool json = globals().json;
  std::signal(SIGINT, on_sigint);
  const std::string model_name = fs::path(model->path()).filename().string();
  nlohmann::json results = nlohmann::json::array();
  int n_done = 0, n_skipped = 0, n_failed = 0;
  CostReport total;
  bool any_cost = false;
  for (const auto& [path, why] : errors) {
    ++n_failed;
    results.push_back({{"path", path}, {"status", "failed"}, {"error", why}});
    if (!json) std::fprintf(stderr, "docdsa: %s: %s\n", path.c_str(), why.c_str());
  }
  const auto t0 = clock_type::now();
  const char* clr = isatty(STDOUT_FILENO) ? "\r\033[K" : "";  // clears a progress line on a terminal
  for (size_t i = 0; i < files.size() && !g_stop.load(); ++i) {
    const std::string& f = files[i];
    const std::string name = fs::path(f).filename().string();
    std::string eta;
    if (i > 0) eta = ", ETA " + ProgressBar::clock(since(t0) / static_cast<double>(i) * static_cast<double>(files.size() - i));
    const std::string label = "[" + std::to_string(i + 1) + "/" + std::to_string(files.size()) + eta + "] " + name;
    auto fail = [&](const std::string& reason) {
      const std::string why = reason.find(f) == std::string::npos ? f + ": " + reason : reason;  // always names the file
      ++n_failed;
      results.push_back({{"path", f}, {"status", "failed"}, {"error", why}});
      if (!json) std::fprintf(stderr, "%sfailed   %s\n", clr, why.c_str());
    };
    auto in = ingest_one(**lib, model->tokenizer(), f, o.password);
    if (!in.ok()) {
      fail(in.error().message);
      continue;
    }
    const storage::DocumentRow& row = in->row;
    auto have = (*lib)->find_summary(in->id, row.content_hash, model_name);
    if (!have.ok()) {
      fail(have.error().message);
      continue;
    }
    if (have->id > 0 && !o.force) {
      ++n_skipped;
      nlohmann::json r = {{"path", f}, {"status", "skipped"}, {"reason", "already summarised and unchanged"}, {"id", in->id}};
      if (!o.out.empty() && !o.dry_run) {
        const fs::path md = fs::path(o.out) / (name + ".summary.md");
        std::error_code ec;
        fs::remove(fs::path(o.out) / ("." + name + ".summary.md.tmp"), ec);  // left by a killed run
        if (!fs::exists(md, ec)) {  // killed between the commit and the sidecar: write it now
          auto srcs = nlohmann::json::parse(have->sources, nullptr, false);
          if (auto st = write_sidecar(o.out, row, have->text, srcs.is_discarded() ? nlohmann::json::array() : srcs); st.ok())
            r["summary_file"] = md.string();
        }
      }
      results.push_back(r);
      if (!json) std::printf("skipped  %s (already summarised, unchanged)\n", f.c_str());
      continue;
    }
    if (o.dry_run) {
      results.push_back({{"path", f}, {"status", "would_summarize"}, {"tokens", row.n_tokens}, {"id", in->id}});
      if (!json) std::printf("would summarize  %s (%lld tokens)\n", f.c_str(), static_cast<long long>(row.n_tokens));
      continue;
    }
    auto segs = (*lib)->segments(in->id);
    if (!segs.ok()) {
      fail(segs.error().message);
      continue;
    }
    auto sum = summarize_doc(*model, row, *segs, o, label);
    if (!sum.ok()) {
      if (sum.error().code == ErrorCode::kCancelled) break;
      fail(sum.error().message);
      continue;
    }
    storage::RunRecord run{"summarize", o.attn.mode, model_name, cost_json(sum->cost).dump()};
    auto saved = (*lib)->save_summary(in->id, row.content_hash, sum->text, sum->sources.dump(), run);
    if (!saved.ok()) {
      fail("the summary could not be stored: " + saved.error().message);
      continue;
    }
    nlohmann::json r = {{"path", f}, {"status", "done"}, {"id", in->id}, {"summary", sum->text}, {"sections", sum->sections},
                        {"sources", sum->sources}, {"cost", cost_json(sum->cost)}, {"money", money_json(sum->cost, *prices)}};
    if (!o.out.empty()) {
      if (auto st = write_sidecar(o.out, row, sum->text, sum->sources); !st.ok()) {
        fail(st.error().message);
        continue;
      }
      r["summary_file"] = (fs::path(o.out) / (name + ".summary.md")).string();
    }
    ++n_done;
    if (!any_cost) total = sum->cost, any_cost = true;
    else total.add(sum->cost);
    results.push_back(r);
    if (!json) std::printf("%sdone     %s (%lld tokens%s)\n", clr, f.c_str(), static_cast<long long>(sum->cost.prompt_tokens),
                           sum->sections > 1 ? (", " + std::to_string(sum->sections) + " sections combined").c_str() : "");
  }
  const bool interrupted = g_stop.load();
  if (json) {
    nlohmann::json out = {{"done", n_done}, {"skipped", n_skipped}, {"failed", n_failed}, {"interrupted", interrupted},
                          {"dry_run", o.dry_run}, {"files", results}, {"library", (*lib)->path()}};
    if (any_cost) out["cost"] = cost_json(total), out["money"] = money_json(total, *prices);
    print_json(out);
  } else {
    std::printf("\n%d summarised, %d skipped, %d failed%s\n", n_done, n_skipped, n_failed, interrupted ? " (interrupted)" : "");
    for (const auto& r : results)
      if (r["status"] == "failed") std::printf("  failed: %s\n", r["error"].get<std::string>().c_str());
    if (any_cost) std::printf("%s", cost_table(total, *prices).c_str());
  }
  if (interrupted) return kInterrupted;
  return n_failed ? kFailed : kOk;
}

}  // namespace

void register_ask(CLI::App& app) {
  static AskOpts a;
  const auto common = [](CLI::App* sub, AskOpts& o) {
    sub->add_option("--db", o.db, "Library file (default: $XDG_DATA_HOME/docdsa/library.sqlite)");
    sub->add_option("--password", o.password, "Password for an encrypted PDF");
    sub->add_option("--pages", o.pages, "Read only these pages of a PDF: N or A-B");
    sub->add_option("--time", o.times, "Read only this part of a transcript: hh:mm:ss-hh:mm:ss");
    sub->add_option("-n,--max-tokens", o.max_tokens, "Longest answer in tokens")->check(CLI::PositiveNumber)->capture_default_str();
    sub->add_option("-c,--ctx", o.ctx, "Largest context to use, in tokens")->check(CLI::Range(1024, 1 << 20))->capture_default_str();
    sub->add_option("--prices", o.prices, "Price table JSON (default: $XDG_CONFIG_HOME/docdsa/prices.json, else the bundled one)");
    sub->add_flag("--compare", o.compare, "Also answer with dense attention: report whether the answers agree and the measured dense time");
    add_attention_options(sub, o.attn);
  };
  CLI::App* ask = app.add_subcommand("ask", "Ask questions about a whole document; prints the answer, its sources and the cost saved");
  ask->add_option("document", a.target, "A file (ingested first if new) or a library document: id, path or hash")->required();
  ask->add_option("question", a.questions, "The question (or use -q, repeatable)");
  ask->add_option("-q,--question", a.questions, "A question; repeat for follow-ups that reuse the document's caches");
  common(ask, a);
  ask->callback([] { globals().command = [] { return run_questions(a, false); }; });

  static AskOpts c;
  CLI::App* chat = app.add_subcommand("chat", "Ask questions about a document interactively (follow-ups reuse its caches)");
  chat->add_option("document", c.target, "A file (ingested first if new) or a library document: id, path or hash")->required();
  common(chat, c);
  chat->callback([] { globals().command = [] { return run_questions(c, true); }; });

  static SumOpts s;
  CLI::App* sum = app.add_subcommand("summarize", "Summarise files and folders (recursively); unchanged documents are skipped");
  sum->add_option("paths", s.paths, "Files and folders")->required();
  sum->add_option("--db", s.db, "Library file (default: $XDG_DATA_HOME/docdsa/library.sqlite)");
  sum->add_option("-o,--out", s.out, "Also write <name>.summary.md files (with their sources) into this folder");
  sum->add_flag("--force", s.force, "Summarise again even when a summary of the unchanged document exists");
  sum->add_flag("--dry-run", s.dry_run, "Only list what would be summarised or skipped");
  sum->add_option("--password", s.password, "Password for encrypted PDFs");
  sum->add_option("-n,--max-tokens", s.max_tokens, "Longest summary in tokens")->check(CLI::PositiveNumber)->capture_default_str();
  sum->add_option("-c,--ctx", s.ctx, "Largest context: longer documents are summarised by sections")->check(CLI::Range(2048, 1 << 20))->capture_default_str();
  sum->add_option("--prices", s.prices, "Price table JSON");
  add_attention_options(sum, s.attn);
  sum->callback([] { globals().command = [] { return run_summarize(s); }; });
}

}  // namespace docdsa::cli
