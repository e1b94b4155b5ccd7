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
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli_common.h"
#include "repetition_options.h"
#include "docdsa/app/doc_prompt.h"
#include "docdsa/app/doc_session.h"
#include "docdsa/app/library_common.h"
#include "docdsa/app/shard.h"
#include "docdsa/app/sidecar.h"
#include "docdsa/engine/generate.h"
#include "progress.h"

namespace docdsa::cli {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop.store(true); }

double since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

struct AskOpts {
  std::string target, db, password, pages, times, prices;
  std::vector<std::string> questions;
  int max_tokens = 256;
  int ctx = 131072;
  bool compare = false;
  AttentionOptions attn;
  SamplerParams sampling = answer_sampling();
  std::string cache_budget = cache_budget_text(kDefaultCacheBudget);  // read documents kept for later questions
  std::string cache_kv = kv_storage_name(kDefaultKvStorage);
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
          {"money", money_json(a.cost, prices)},
          {"cached_tokens", a.cached_tokens}, {"cached_reading", cost_json(a.cached_reading)}};
}

// What the stored context saved: its tokens and what reading them cost when first read.
std::string cached_line(const Answer& a) {
  if (a.cached_tokens == 0) return "";
  char b[256];
  std::snprintf(b, sizeof(b), "  from the stored context: %d document tokens not read again (reading them took %.2f s, %.3g attention GFLOP)\n",
                a.cached_tokens, a.cached_reading.prefill_seconds,
                (a.cached_reading.mode == AttentionMode::kDsa ? a.cached_reading.attn_flops_dsa : a.cached_reading.attn_flops_dense) / 1e9);
  return b;
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
  AttentionOptions attn = o.attn;  // with the prepared indexer
  if (const int c = prepare_indexer_or_report(*model, attn); c != kOk) return c;  // once per model, with a bar
  auto lib = open_library_at(o.db);
  if (!lib.ok()) return report(lib.error());
  auto row = resolve(**lib, *model, o.target, o.password);
  if (!row.ok()) return report(row.error());
  auto segs = (*lib)->segments(row->id);
  if (!segs.ok()) return report(segs.error());
  std::signal(SIGINT, on_sigint);
  const bool json = globals().json;
  DocSessionOptions dso;
  dso.attn = attn;
  dso.range = range;
  dso.max_answer = o.max_tokens;
  dso.ctx_limit = o.ctx;
  dso.threads = globals().threads;
  dso.sampling = o.sampling;
  auto budget = parse_cache_budget(o.cache_budget);
  if (!budget.ok()) return report(budget.error());
  dso.cache_budget = *budget;
  dso.cache_kv = *parse_kv_storage(o.cache_kv);  // CLI checked it
  const auto open_doc = [&](const DocSessionOptions& opts) {
    ProgressBar bar("reading " + fs::path(row->path).filename().string(), 1, !json);
    auto d = DocSession::open(*model, *row, *segs, opts, [&](int64_t done, int64_t total) {
      bar.set_total(total);
      bar.update(done);
      return true;
    }, &g_stop);
    bar.finish();
    if (!d.ok() && d.error().code == ErrorCode::kCancelled) return decltype(d)(make_error(ErrorCode::kCancelled, "cancelled"));
    return d;
  };
  auto ds = open_doc(dso);
  if (!ds.ok()) return report(ds.error());
  std::unique_ptr<DocSession> dense;
  if (o.compare) {
    DocSessionOptions da = dso;
    da.attn.mode = "dense";
    auto d = open_doc(da);
    if (!d.ok()) return report(d.error());
    dense = std::move(*d);
  }
  if (!json) {
    std::printf("%s — %s, %d tokens read (%s attention)\n", row->title.empty() ? row->path.c_str() : row->title.c_str(),
                range.label().c_str(), (*ds)->doc_tokens(), attention_mode_name((*ds)->mode()));
    if ((*ds)->from_cache()) std::printf("  (read before: loaded from the stored context in %.2f s)\n", (*ds)->load_seconds());
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
    if (dense) {
      auto b = dense->ask(q, {});
      if (!b.ok()) return report(b.error());
      compare_with_dense(*a, *b);
    }
    if (a->stop_reason != "cancelled")
      if (auto st = store_answer(**lib, *model, row->id, *a, (*ds)->mode()); !st.ok())
        spdlog::warn("the answer was not saved to the library: {}", st.error().message);
    nlohmann::json j = answer_json(*a, *prices);
    if (a->compared)
      j["compare"] = {{"dense_answer", a->dense_text}, {"answers_agree", a->agrees},
                      {"dense_prefill_seconds", a->cost.dense_prefill_seconds}, {"dense_decode_seconds", a->cost.dense_decode_seconds}};
    answers.push_back(j);
    if (!json) {
      std::printf("\n\nSources (where the model's sparse attention went while answering):\n%s",
                  a->sources.empty() ? "  (none: the answer attended only the question and the most recent text)\n"
                                     : sources_text(a->sources).c_str());
      if (a->compared)
        std::printf("Dense attention answered %s:\n  %s\n", a->agrees ? "the same" : "differently", a->dense_text.c_str());
      std::printf("%s%s", cost_table(a->cost, *prices).c_str(), cached_line(*a).c_str());
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
    out["from_cache"] = (*ds)->from_cache();
    out["context_load_seconds"] = (*ds)->load_seconds();
    if (done.size() > 1 && done[1].prefill_seconds > 0 && done[0].cached_tokens == 0)
      out["follow_up_speedup"] = done[0].prefill_seconds / done[1].prefill_seconds;
    print_json(out);
  }
  return kOk;
}

// ---- summarize -----------------------------------------------------------------------------

struct SumOpts {
  std::vector<std::string> paths;
  std::string db, out, password, prices, shard;
  int shards = 0;
  int max_tokens = 320;
  int ctx = 131072;
  bool force = false, dry_run = false;
  AttentionOptions attn;
  SamplerParams sampling = answer_sampling();
};

// Writes the sidecar at `md` (see docdsa/app/sidecar.h).
Status write_sidecar(const std::string& md, const storage::DocumentRow& row, const std::string& text, const nlohmann::json& sources) {
  return write_file_atomic(md, sidecar_markdown(row, text, sources));
}

int run_summarize(const SumOpts& o) {
  int rc = kOk;
  ShardSpec shard;
  if (!o.shard.empty()) {
    auto sp = parse_shard(o.shard, o.shards, [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
    if (!sp.ok()) return report(sp.error());
    shard = *sp;
  } else if (o.shards > 0) {
    return report(make_error(ErrorCode::kInvalidArgument, "--shards N goes with --shard auto (or give --shard K/N)"));
  }
  auto prices = load_prices(o.prices);
  if (!prices.ok()) return report(prices.error());
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  AttentionOptions attn = o.attn;  // with the prepared indexer
  if (const int c = o.dry_run ? int{kOk} : prepare_indexer_or_report(*model, attn); c != kOk) return c;  // once per model
  auto lib = open_library_at(o.db);
  if (!lib.ok()) return report(lib.error());
  std::vector<std::pair<std::string, std::string>> errors;
  // A shard takes its part of the files; the sidecar layout (root below) is the whole batch's.
  const auto files = expand_shard(o.paths, shard, &errors);
  if (!o.shard.empty() && !globals().json)
    std::printf("shard %d of %d (%s): %zu files\n", shard.index, shard.count, shard.source.c_str(), files.size());
  const bool json = globals().json;
  std::signal(SIGINT, on_sigint);
  const std::string model_file = model_name(*model);
  const std::string root = common_root(o.paths);  // sidecars mirror the layout under it
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
    const std::string md = o.out.empty() ? std::string() : sidecar_path(o.out, root, f);
    if (!md.empty() && !o.dry_run) remove_stale_temps(md);  // a killed run's temporary sidecar
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
    auto have = (*lib)->find_summary(in->id, row.content_hash, model_file);
    if (!have.ok()) {
      fail(have.error().message);
      continue;
    }
    if (have->id > 0 && !o.force) {
      ++n_skipped;
      nlohmann::json r = {{"path", f}, {"status", "skipped"}, {"reason", "already summarised and unchanged"}, {"id", in->id}};
      if (!o.out.empty() && !o.dry_run) {
        std::error_code ec;
        if (!fs::exists(md, ec)) {  // killed between the commit and the sidecar: write it now
          auto srcs = nlohmann::json::parse(have->sources, nullptr, false);
          if (auto st = write_sidecar(md, row, have->text, srcs.is_discarded() ? nlohmann::json::array() : srcs); st.ok())
            r["summary_file"] = md;
          else
            spdlog::warn("{}", st.error().message);
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
    SummaryOptions so;
    so.attn = attn;
    so.max_tokens = o.max_tokens;
    so.ctx = o.ctx;
    so.threads = globals().threads;
    so.sampling = o.sampling;
    std::unique_ptr<ProgressBar> bar;
    std::string bar_label;
    auto sum = summarize_document(*model, row, *segs, so, label, [&](const std::string& l, int64_t done, int64_t total) {
      if (!bar || l != bar_label) {
        if (bar) bar->finish();
        bar = std::make_unique<ProgressBar>(l, total, !json);
        bar_label = l;
      }
      bar->update(done);
      return true;
    }, &g_stop);
    if (bar) bar->finish();
    if (!sum.ok()) {
      if (sum.error().code == ErrorCode::kCancelled) break;
      fail(sum.error().message);
      continue;
    }
    auto saved = store_summary(**lib, *model, row, *sum, o.attn.mode);
    if (!saved.ok()) {
      fail("the summary could not be stored: " + saved.error().message);
      continue;
    }
    nlohmann::json r = {{"path", f}, {"status", "done"}, {"id", in->id}, {"summary", sum->text}, {"stop_reason", sum->stop_reason}, {"sections", sum->sections},
                        {"sources", sum->sources}, {"cost", cost_json(sum->cost)}, {"money", money_json(sum->cost, *prices)}};
    if (!o.out.empty()) {
      if (auto st = write_sidecar(md, row, sum->text, sum->sources); !st.ok()) {
        fail(st.error().message);
        continue;
      }
      r["summary_file"] = md;
    }
    ++n_done;
    if (!any_cost) total = sum->cost, any_cost = true;
    else total.add(sum->cost);
    results.push_back(r);
    if (!json) std::printf("%sdone     %s (%lld tokens%s)\n", clr, f.c_str(), static_cast<long long>(sum->cost.prompt_tokens),
                           sum->sections > 1 ? (", " + std::to_string(sum->sections) + " sections combined").c_str() : "");
    std::fflush(stdout);  // one line per finished file, also into a pipe (tee, a log, a script waiting for it)
  }
  const bool interrupted = g_stop.load();
  if (json) {
    nlohmann::json out = {{"done", n_done}, {"skipped", n_skipped}, {"failed", n_failed}, {"interrupted", interrupted},
                          {"dry_run", o.dry_run}, {"files", results}, {"library", (*lib)->path()}};
    if (!o.shard.empty()) out["shard"] = {{"index", shard.index}, {"count", shard.count}, {"source", shard.source}, {"files", files.size()}};
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
    add_db_option(sub, o.db);
    add_password_option(sub, o.password);
    sub->add_option("--pages", o.pages, "Read only these pages of a PDF: N or A-B");
    sub->add_option("--time", o.times, "Read only this part of a transcript: hh:mm:ss-hh:mm:ss");
    sub->add_option("-n,--max-tokens", o.max_tokens, "Longest answer in tokens")->check(CLI::PositiveNumber)->capture_default_str();
    sub->add_option("-c,--ctx", o.ctx, "Largest context to use, in tokens")->check(CLI::Range(1024, 1 << 20))->capture_default_str();
    add_prices_option(sub, o.prices);
    sub->add_flag("--compare", o.compare, "Also answer with dense attention: report whether the answers agree and the measured dense time");
    add_attention_options(sub, o.attn);
    add_repetition_options(sub, o.sampling);
    sub->add_option("--cache-budget", o.cache_budget,
                    "Disk space for documents kept read for later questions (LRU; 0: neither keep nor reuse them)")
        ->capture_default_str();
    sub->add_option("--cache-kv", o.cache_kv,
                    "How a new reading keeps its K and V on disk: f16 (exact) or q8 (8-bit per row, about half the "
                    "disk; measured to change some answers, see README)")
        ->capture_default_str()
        ->check(CLI::IsMember({"f16", "q8"}));
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
  add_db_option(sum, s.db);
  sum->add_option("-o,--out", s.out, "Also write <file>.summary.md files (with their sources) into this folder, laid out as the inputs are");
  sum->add_flag("--force", s.force, "Summarise again even when a summary of the unchanged document exists");
  sum->add_flag("--dry-run", s.dry_run, "Only list what would be summarised or skipped");
  add_password_option(sum, s.password);
  sum->add_option("-n,--max-tokens", s.max_tokens, "Longest summary in tokens")->check(CLI::PositiveNumber)->capture_default_str();
  sum->add_option("-c,--ctx", s.ctx, "Largest context: longer documents are summarised by sections")->check(CLI::Range(2048, 1 << 20))->capture_default_str();
  sum->add_option("--shard", s.shard,
                  "Only shard K of N of the files (K/N, K from 0), or auto: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX "
                  "(see docs/cluster.md)")
      // `--shard "$UNSET"` in a job script: refused, not every machine running the whole batch.
      ->check([](const std::string& v) {
        return v.empty() ? std::string("expected K/N or auto, not an empty value") : std::string();
      });
  sum->add_option("--shards", s.shards, "The number of shards for --shard auto (else from Slurm, or DOCDSA_SHARD_COUNT)")
      ->check(CLI::Range(1, 1000000));
  add_prices_option(sum, s.prices);
  add_attention_options(sum, s.attn);
  add_repetition_options(sum, s.sampling);
  sum->callback([] { globals().command = [] { return run_summarize(s); }; });
}

}  // namespace docdsa::cli
