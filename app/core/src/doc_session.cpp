#include "docdsa/app/doc_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>

#include "docdsa/app/json_text.h"
#include "docdsa/app/library_common.h"
#include "docdsa/engine/generate.h"

namespace docdsa::app {

namespace fs = std::filesystem;

int observe_k(size_t doc_tokens) {
  return std::clamp(static_cast<int>(doc_tokens / 8), 16, 256);
}

namespace {
bool cancelled(const std::atomic<bool>* c) {
  return c && c->load();
}

// Answers and summaries decode the same way: by default greedy, with loop control (answer_sampling()).
GenerateParams answer_params(int max_tokens, const SamplerParams& sampling, const std::atomic<bool>* cancel) {
  GenerateParams gp;
  gp.max_tokens = max_tokens;
  gp.sampler = sampling;
  gp.cancel = cancel;
  return gp;
}
}  // namespace

std::string model_name(const Model& model) {
  return fs::path(model.path()).filename().string();
}

void compare_with_dense(Answer& a, const Answer& dense) {
  a.compared = true;
  a.agrees = dense.text == a.text;
  a.dense_text = dense.text;
  a.cost.dense_measured = true;
  a.cost.dense_prefill_seconds = dense.cost.prefill_seconds - (a.reading_seconds > 0 ? 0.0 : dense.reading_seconds);
  a.cost.dense_decode_seconds = dense.cost.decode_seconds;
}

Result<int64_t> store_answer(storage::Library& lib, const Model& model, int64_t doc_id, const Answer& a, AttentionMode mode) {
  const storage::RunRecord run{"ask", attention_mode_name(mode), model_name(model), dump_json(cost_json(a.cost)),
                               heat_to_json(a.heat)};
  return lib.save_answer(doc_id, a.question, a.text, dump_json(a.sources), run);
}

Result<int64_t> store_summary(storage::Library& lib, const Model& model, const storage::DocumentRow& row, const Summary& s,
                              const std::string& attention) {
  const storage::RunRecord run{"summarize", attention, model_name(model), dump_json(cost_json(s.cost)), heat_to_json(s.heat)};
  return lib.save_summary(row.id, row.content_hash, s.text, dump_json(s.sources), run);
}

Result<std::unique_ptr<DocSession>> DocSession::open(const Model& model, const storage::DocumentRow& row,
                                                     std::vector<storage::SegmentRow> segs, const DocSessionOptions& opts,
                                                     const ProgressFn& progress, const std::atomic<bool>* cancel) {
  std::unique_ptr<DocSession> d(new DocSession(model));
  d->opts_ = opts;
  d->cancel_ = cancel;
  d->row_ = row;
  d->segs_ = std::move(segs);
  d->doc_ = render_document(row, d->segs_, opts.range);
  if (d->doc_.text.empty()) return make_error(ErrorCode::kInvalidArgument, row.path + ": no text in " + opts.range.label());
  TRY(PromptTemplate t, load_template("ask"));
  d->split_ = build_prompt(model, t, d->doc_.text, {{"question", ""}, {"title", row.title}});
  d->prefix_ids_ = encode_prompt(model.tokenizer(), d->split_.prefix, d->split_.prefix_markup, true);
  d->tok_seg_ = token_segments(model.tokenizer(), d->prefix_ids_, d->split_.prefix, d->split_.doc_offset, d->doc_, &d->tok_char_);
  const int n_ctx = static_cast<int>(d->prefix_ids_.size()) + kQuestionBudget + opts.max_answer + 8;
  if (n_ctx > opts.ctx_limit)
    return make_error(
        ErrorCode::kOutOfRange,
        row.path + ": " + opts.range.label() + " is " + std::to_string(d->prefix_ids_.size()) +
            " tokens; with the answer that exceeds the " + std::to_string(opts.ctx_limit) +
            "-token context. Ask about a part (pages of a PDF, a time range of a transcript), or raise the context length");
  // Dense, or the document fits in k: the indexer's picks still point at the sources.
  TRY(SessionParams sp,
      make_session_params(model, opts.attn, opts.threads, n_ctx, d->indexer_, observe_k(d->prefix_ids_.size())));
  d->counter_.attach(sp, d->prefix_ids_.size());
  d->mode_ = sp.dsa.mode;
  sp.cancel = cancel;
  TRY(d->session_, Session::create(model, sp));
  const int64_t total = static_cast<int64_t>(d->prefix_ids_.size());
  // Read before (in this process or another): load the stored caches instead of reading.
  std::optional<ContextCache> cache;
  std::string key;
  if (opts.cache_budget > 0) {
    cache.emplace(opts.cache_dir.empty() ? ContextCache::default_dir() : opts.cache_dir, opts.cache_budget, opts.cache_kv);
    key = context_key(model, *d->session_, row.content_hash, d->prefix_ids_);
    const auto t0 = std::chrono::steady_clock::now();
    if (auto meta = cache->load(key, *d->session_)) {
      d->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      d->from_cache_ = true;
      d->cached_cost_ = cost_from_json(meta->value("reading_cost", nlohmann::json::object()));
      if (progress) progress(total, total);
      return d;
    }
  }
  TRY_STATUS(d->session_->decode(d->prefix_ids_, Logits::kLast,
                                 [&](int done, int) { return !cancelled(cancel) && (!progress || progress(done, total)); }));
  d->doc_cost_ = d->session_->cost();
  if (cache) {
    const nlohmann::json meta = {
        {"model", model_name(model)},
        {"model_fingerprint", model_fingerprint_hex(model)},
        {"document", {{"path", row.path}, {"title", row.title}, {"content_hash", row.content_hash}}},
        {"range", opts.range.label()},
        {"attention", attention_mode_name(d->mode_)},
        {"tokens", total},
        {"reading_cost", cost_json(d->doc_cost_)}};
    if (Status st = cache->store(key, *d->session_, meta); !st.ok())
      spdlog::warn("the read document was not kept for later questions: {}", st.error().message);
  }
  return d;
}

Result<Answer> DocSession::ask(const std::string& question, const TextFn& on_text) {
  Answer a;
  a.question = question;
  // The question is data: special tokens only in the template's markup after it.
  Spans markup = split_.suffix_markup;
  for (auto& [b, e] : markup) b += question.size(), e += question.size();
  const std::vector<TokenId> q_ids = encode_prompt(model_.tokenizer(), question + split_.suffix, markup, false);
  if (static_cast<int>(q_ids.size()) > kQuestionBudget)
    return make_error(ErrorCode::kInvalidArgument, "the question is too long (" + std::to_string(q_ids.size()) +
                                                       " tokens; at most " + std::to_string(kQuestionBudget) + ")");
  session_->truncate(static_cast<int>(prefix_ids_.size()));
  session_->reset_cost();
  std::fill(counter_.count.begin(), counter_.count.end(), 0.0);
  // Count the selections of the last prompt token (it predicts the first answer token) on.
  counter_.first_counted_pos = static_cast<int64_t>(prefix_ids_.size() + q_ids.size()) - 1;
  GenerateParams gp = answer_params(opts_.max_answer, opts_.sampling, cancel_);
  // generate() passes pieces as whole characters (an empty one while a character is split).
  if (on_text) gp.on_token = [&](TokenId, std::string_view piece) { return piece.empty() || on_text(piece); };
  TRY(GenerateResult r, generate(*session_, q_ids, gp));
  a.text = r.text;
  a.stop_reason = r.stop_reason;
  a.cost = session_->cost();
  a.prompt_tokens = static_cast<int>(prefix_ids_.size() + q_ids.size());
  a.prefilled_tokens = static_cast<int>(q_ids.size());
  a.reused_tokens = static_cast<int>(prefix_ids_.size());
  a.prefill_seconds = r.prefill_ms / 1000.0;
  a.decode_seconds = r.decode_ms / 1000.0;
  if (first_ && from_cache_) {  // read in an earlier run: loaded, not read
    a.cached_tokens = static_cast<int>(prefix_ids_.size());
    a.cached_reading = cached_cost_;
  } else if (first_) {  // the first answer pays for reading the document
    a.cost.add(doc_cost_);
    a.cost.context_tokens = std::max(a.cost.context_tokens, doc_cost_.context_tokens);
    a.prefilled_tokens += static_cast<int>(prefix_ids_.size());
    a.reused_tokens = 0;
    a.prefill_seconds += doc_cost_.prefill_seconds;
    a.reading_seconds = doc_cost_.prefill_seconds;
  }
  first_ = false;
  a.sources = top_sources(counter_, tok_seg_, doc_, row_, segs_, 5, &tok_char_);
  a.heat = segment_heat(counter_, tok_seg_, doc_, segs_.size());
  return a;
}

// ---- summaries ------------------------------------------------------------------------------

namespace {

// Summarises `segs` as one document (or `override_text` in its place, for combining).
Result<Summary> summarize_part(const Model& model, const storage::DocumentRow& row, const std::vector<storage::SegmentRow>& segs,
                               const SummaryOptions& o, const std::string& label, const std::string& template_name,
                               const SummaryProgressFn& progress, const std::atomic<bool>* cancel,
                               const std::string& override_text = "") {
  // Combining reads the section summaries: no document segments, so no sources to map.
  const DocText doc = override_text.empty() ? render_document(row, segs, Range{}) : DocText{override_text, {}, {}, {}};
  TRY(PromptTemplate t, load_template(template_name));
  const SplitPrompt sp =
      build_prompt(model, t, doc.text, {{"title", row.title.empty() ? fs::path(row.path).filename().string() : row.title}});
  // The prefix (system + document) is tokenised once: for the prompt and for the source map.
  std::vector<TokenId> ids = encode_prompt(model.tokenizer(), sp.prefix, sp.prefix_markup, true);
  std::vector<int64_t> tok_char;
  std::vector<int> tok_seg;
  if (override_text.empty()) tok_seg = token_segments(model.tokenizer(), ids, sp.prefix, sp.doc_offset, doc, &tok_char);
  const auto tail = encode_prompt(model.tokenizer(), sp.suffix, sp.suffix_markup, false);
  ids.insert(ids.end(), tail.begin(), tail.end());
  std::unique_ptr<Indexer> indexer;
  TRY(SessionParams p, make_session_params(model, o.attn, o.threads, static_cast<int>(ids.size()) + o.max_tokens + 8, indexer,
                                           observe_k(ids.size())));
  SourceCounter counter;
  counter.attach(p, tok_seg.size());
  counter.first_counted_pos = static_cast<int64_t>(ids.size()) - 1;
  p.cancel = cancel;
  TRY(std::unique_ptr<Session> s, Session::create(model, p));
  GenerateParams gp = answer_params(o.max_tokens, o.sampling, cancel);
  const int64_t total = static_cast<int64_t>(ids.size());
  gp.on_prefill = [&](int d, int) { return progress ? progress(label, d, total) : true; };
  TRY(GenerateResult r, generate(*s, ids, gp));
  if (r.stop_reason == "cancelled") return make_error(ErrorCode::kCancelled, "cancelled");
  Summary out;
  out.text = r.text;
  out.stop_reason = r.stop_reason;
  out.cost = s->cost();
  if (override_text.empty()) {
    out.sources = top_sources(counter, tok_seg, doc, row, segs, 5, &tok_char);
    out.heat = segment_heat(counter, tok_seg, doc, segs.size());
  }
  return out;
}

}  // namespace

Result<Summary> summarize_document(const Model& model, const storage::DocumentRow& row,
                                   const std::vector<storage::SegmentRow>& segs, const SummaryOptions& o,
                                   const std::string& label, const SummaryProgressFn& progress, const std::atomic<bool>* cancel) {
  const int budget = o.ctx - o.max_tokens - kQuestionBudget;
  const Tokenizer& tok = model.tokenizer();
  std::vector<int> seg_tokens;
  int64_t total = 0;
  for (const auto& s : segs) {
    seg_tokens.push_back(static_cast<int>(tok.encode(s.text, false, false).size()) + 8);
    total += seg_tokens.back();
  }
  if (total <= budget) return summarize_part(model, row, segs, o, label, "summarize", progress, cancel);
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
    TRY(Summary part,
        summarize_part(model, row, sec, o, label + " §" + std::to_string(i + 1) + "/" + std::to_string(sections.size()),
                       "summarize", progress, cancel));
    std::string where = row.kind == "pdf" ? "pages " + std::to_string(sec.front().page) + "-" + std::to_string(sec.back().page)
                                          : format_ms(sec.front().start_ms) + "-" + format_ms(sec.back().end_ms);
    combined += "[section " + std::to_string(i + 1) + ", " + where + "]\n" + part.text + "\n\n";
    if (first)
      cost = part.cost, first = false;
    else
      cost.add(part.cost);
    for (auto& s : part.sources) all.sources.push_back(s);
    // Sections partition the segments in order; each section's heat counts equally.
    for (float h : part.heat) all.heat.push_back(h / static_cast<float>(sections.size()));
  }
  TRY(Summary fin, summarize_part(model, row, segs, o, label + " combining", "combine", progress, cancel, combined));
  cost.add(fin.cost);
  all.text = "(Combined from " + std::to_string(sections.size()) + " section summaries: the document is longer than the " +
             std::to_string(o.ctx) + "-token context.)\n\n" + fin.text;
  all.stop_reason = fin.stop_reason;
  all.cost = cost;
  all.sections = static_cast<int>(sections.size());
  return all;
}

}  // namespace docdsa::app
