// The library commands: ingest PATH..., list, show DOC, search QUERY, remove DOC, library merge OUT IN...
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "cli_common.h"
#include "progress.h"
#include "docdsa/app/library_common.h"
#include "docdsa/engine/utf8.h"
#include "docdsa/ingest/document.h"
#include "docdsa/storage/library.h"

namespace docdsa::cli {
namespace {

namespace fs = std::filesystem;

std::string g_db;

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop.store(true); }

Result<std::unique_ptr<storage::Library>> open_library() { return open_library_at(g_db); }

nlohmann::json chunk_json(const storage::ChunkRow& c) {
  return {{"index", c.idx}, {"tokens", c.n_tokens}, {"page_first", c.page_first}, {"page_last", c.page_last},
          {"start_ms", c.start_ms}, {"end_ms", c.end_ms}, {"speakers", c.speakers}, {"char_begin", c.char_begin},
          {"char_end", c.char_end}, {"provenance", provenance(c)}};
}

nlohmann::json doc_json(const storage::DocumentRow& d) {
  return {{"id", d.id}, {"path", d.path}, {"kind", d.kind}, {"title", d.title}, {"author", d.author}, {"sha256", d.content_hash},
          {"pages", d.n_pages}, {"segments", d.n_segments}, {"chunks", d.n_chunks}, {"tokens", d.n_tokens},
          {"duration_ms", d.duration_ms}, {"status", d.status}, {"warnings", d.warnings}, {"added_at", d.added_at},
          {"ocr_pages", d.ocr_pages}, {"ocr_confidence", d.ocr_confidence}};
}

// "OCR, mean confidence 93%" for a document with scanned pages, else "".
std::string ocr_status(const storage::DocumentRow& d) {
  if (d.ocr_pages <= 0) return "";
  char buf[96];
  std::snprintf(buf, sizeof(buf), "OCR (%lld page%s), mean confidence %.0f%%", static_cast<long long>(d.ocr_pages),
                d.ocr_pages == 1 ? "" : "s", d.ocr_confidence);
  return buf;
}


int cmd_ingest(const std::vector<std::string>& inputs, const std::string& password, int max_tokens, const ingest::OcrOptions& ocr) {
  // A missing OCR language is named with its package before anything is read.
  if (ocr.enabled && !ocr.languages.empty())
    if (auto langs = ingest::check_ocr_languages(ocr.languages); !langs.ok()) return report(langs.error());
  int rc = kOk;
  auto model = load_model_or_report(&rc);  // the tokenizer makes chunks token-aware
  if (!model) return rc;
  auto lib = open_library();
  if (!lib.ok()) return report(lib.error());
  std::vector<std::pair<std::string, std::string>> errors;
  const auto files = expand(inputs, &errors);
  const bool json = globals().json;
  const bool bar = !json && isatty(STDERR_FILENO);
  std::signal(SIGINT, on_sigint);
  nlohmann::json results = nlohmann::json::array();
  int added = 0, unchanged = 0, replaced = 0, failed = static_cast<int>(errors.size());
  for (const auto& [path, why] : errors) {
    results.push_back({{"path", path}, {"status", "failed"}, {"error", why}});
    if (!json) std::cerr << "docdsa: " << path << ": " << why << "\n";
  }
  const Tokenizer& tok = model->tokenizer();
  for (size_t i = 0; i < files.size() && !g_stop.load(); ++i) {
    const std::string& f = files[i];
    if (bar) std::fprintf(stderr, "\r\033[K[%zu/%zu] %s", i + 1, files.size(), fs::path(f).filename().c_str());
    // Scanned pages: a per-page bar for the OCR pass (minutes for a long scan); Ctrl+C stops
    // within a page and nothing of this file is stored.
    ProgressBar ocr_bar(fs::path(f).filename().string() + " OCR", 0, bar);
    IngestOptions io;
    io.password = password;
    io.max_chunk_tokens = max_tokens;
    io.ocr = ocr;
    io.ocr.cancelled = [] { return g_stop.load(); };
    io.on_page = [](int, int) { return !g_stop.load(); };
    io.on_ocr_page = [&](int done, int total) {
      ocr_bar.set_total(total);
      ocr_bar.update(done);
      return !g_stop.load();
    };
    auto ing = ingest_one(**lib, tok, f, io);
    ocr_bar.finish();
    if (!ing.ok()) {
      ++failed;
      if (bar) std::fprintf(stderr, "\r\033[K");
      if (!json) std::cerr << "docdsa: " << ing.error().message << "\n";
      results.push_back({{"path", f}, {"status", "failed"}, {"error", ing.error().message}});
      continue;
    }
    const IngestResult& in = *ing;
    const storage::DocumentRow& row = in.row;
    const int64_t id = in.id;
    const storage::StoreOutcome outcome = in.outcome;
    (outcome == storage::StoreOutcome::kAdded ? added : outcome == storage::StoreOutcome::kReplaced ? replaced : unchanged)++;
    nlohmann::json r = {{"path", f}, {"status", storage::outcome_name(outcome)}, {"id", id}, {"kind", row.kind},
                        {"segments", in.n_segments}, {"chunks", in.n_chunks}, {"tokens", row.n_tokens}, {"warnings", in.warnings}};
    if (row.kind == "pdf") r["pages"] = row.n_pages, r["pages_without_text"] = in.pages_without_text;
    if (row.ocr_pages > 0) r["ocr_pages"] = row.ocr_pages, r["ocr_confidence"] = row.ocr_confidence;
    if (in.rolling_repeats_removed) r["rolling_repeats_removed"] = in.rolling_repeats_removed;
    results.push_back(r);
    if (!json) {
      if (bar) std::fprintf(stderr, "\r\033[K");
      std::cout << storage::outcome_name(outcome) << "  #" << id << "  " << f << "  (" << row.kind << ", " << in.n_chunks << " chunks, "
                << row.n_tokens << " tokens" << (row.ocr_pages > 0 ? "; " + ocr_status(row) : "")
                << (row.warnings.empty() ? "" : "; " + row.warnings) << ")\n";
    }
  }
  if (bar) std::fprintf(stderr, "\r\033[K");
  const bool interrupted = g_stop.load();
  if (json) {
    print_json({{"library", (*lib)->path()}, {"added", added}, {"replaced", replaced}, {"unchanged", unchanged}, {"failed", failed},
                {"interrupted", interrupted}, {"files", results}});
  } else {
    std::cout << added << " added, " << replaced << " replaced, " << unchanged << " unchanged, " << failed << " failed"
              << (interrupted ? " (interrupted)" : "") << " — library " << (*lib)->path() << "\n";
  }
  if (interrupted) return kInterrupted;
  return failed ? kFailed : kOk;
}

}  // namespace

void register_library(CLI::App& app) {
  struct Opts {
    std::vector<std::string> paths;
    std::string password, key, query;
    int max_tokens = 512;
    int limit = 20;
    bool text = false;
    std::string ocr_lang;
    bool no_ocr = false;
    int ocr_dpi = 300;
  };
  static Opts o;
  auto db_opt = [](CLI::App* sub) { add_db_option(sub, g_db); };
  CLI::App* ing = app.add_subcommand("ingest", "Add PDFs and transcripts (files or folders, recursively) to the library");
  ing->add_option("paths", o.paths, "Files and folders")->required();
  add_password_option(ing, o.password);
  ing->add_option("--max-chunk-tokens", o.max_tokens, "Largest chunk, in model tokens")->check(CLI::Range(32, 8192));
  ing->add_option("--ocr-lang", o.ocr_lang,
                  "Languages of scanned pages for OCR, Tesseract codes joined by '+' (e.g. eng+fra); default: English and every "
                  "installed language (tesseract-ocr-* packages)");
  ing->add_flag("--no-ocr", o.no_ocr, "Do not OCR pages without a text layer (a PDF with none is refused)");
  ing->add_option("--ocr-dpi", o.ocr_dpi, "Resolution scanned pages are rendered at for OCR")->check(CLI::Range(50, 1200));
  db_opt(ing);
  ing->callback([] {
    globals().command = [] {
      ingest::OcrOptions ocr;
      ocr.enabled = !o.no_ocr;
      ocr.languages = o.ocr_lang;
      ocr.dpi = o.ocr_dpi;
      ocr.threads = globals().threads;
      return cmd_ingest(o.paths, o.password, o.max_tokens, ocr);
    };
  });

  CLI::App* ls = app.add_subcommand("list", "List the documents in the library");
  db_opt(ls);
  ls->callback([] {
    globals().command = [] {
      auto lib = open_library();
      if (!lib.ok()) return report(lib.error());
      auto docs = (*lib)->list();
      if (!docs.ok()) return report(docs.error());
      if (globals().json) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& d : *docs) a.push_back(doc_json(d));
        print_json({{"library", (*lib)->path()}, {"documents", a}});
        return static_cast<int>(kOk);
      }
      if (docs->empty()) std::cout << "The library " << (*lib)->path() << " is empty. Add files with: docdsa ingest PATH\n";
      for (const auto& d : *docs) {
        const std::string extent = d.kind == "pdf" ? std::to_string(d.n_pages) + " pages" : d.duration_ms >= 0 ? format_ms(d.duration_ms) : std::to_string(d.n_segments) + " parts";
        std::printf("%4lld  %-4s %-12s %7lld tokens  %s\n", static_cast<long long>(d.id), d.kind.c_str(), extent.c_str(),
                    static_cast<long long>(d.n_tokens), d.title.c_str());
      }
      return static_cast<int>(kOk);
    };
  });

  CLI::App* show = app.add_subcommand("show", "Show one document: metadata, chunks with provenance (--text: the full text)");
  show->add_option("doc", o.key, "Document id, path or hash prefix")->required();
  show->add_flag("--text", o.text, "Print the document's full text");
  db_opt(show);
  show->callback([] {
    globals().command = [] {
      auto lib = open_library();
      if (!lib.ok()) return report(lib.error());
      auto d = (*lib)->find(o.key);
      if (!d.ok()) return report(d.error());
      auto chunks = (*lib)->chunks(d->id);
      if (!chunks.ok()) return report(chunks.error());
      if (globals().json) {
        nlohmann::json j = doc_json(*d), cj = nlohmann::json::array();
        for (const auto& c : *chunks) cj.push_back(chunk_json(c));
        j["chunk_list"] = cj;
        if (o.text) {
          std::string t;
          for (const auto& c : *chunks) t += (t.empty() ? "" : "\n\n") + c.text;
          j["text"] = t;
        }
        print_json(j);
        return static_cast<int>(kOk);
      }
      if (o.text) {
        for (const auto& c : *chunks) std::cout << c.text << "\n\n";
        return static_cast<int>(kOk);
      }
      std::cout << "#" << d->id << "  " << d->title << "\n  " << d->path << "\n  " << d->kind << ", " << d->n_segments << " segments, "
                << d->n_chunks << " chunks, " << d->n_tokens << " tokens, sha256 " << d->content_hash.substr(0, 12) << "\n";
      if (d->ocr_pages > 0) std::cout << "  status: " << d->status << ", " << ocr_status(*d) << "\n";
      if (!d->warnings.empty()) std::cout << "  warnings: " << d->warnings << "\n";
      for (const auto& c : *chunks) {
        std::string preview = utf8_prefix(c.text, 70);
        for (auto& ch : preview) if (ch == '\n') ch = ' ';
        std::printf("  [%3d] %-22s %4d tok  %s\n", c.idx, provenance(c).c_str(), c.n_tokens, preview.c_str());
      }
      return static_cast<int>(kOk);
    };
  });

  CLI::App* se = app.add_subcommand("search", "Full-text search over the library (FTS5 query syntax)");
  se->add_option("query", o.query, "Words or an FTS5 query")->required();
  se->add_option("-n,--limit", o.limit, "Most hits")->check(CLI::PositiveNumber);
  db_opt(se);
  se->callback([] {
    globals().command = [] {
      auto lib = open_library();
      if (!lib.ok()) return report(lib.error());
      auto hits = (*lib)->search(o.query, o.limit);
      if (!hits.ok()) return report(hits.error());
      if (globals().json) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& h : *hits) a.push_back({{"doc_id", h.doc_id}, {"title", h.title}, {"path", h.path}, {"snippet", h.snippet}, {"chunk", chunk_json(h.chunk)}});
        print_json({{"query", o.query}, {"hits", a}});
        return static_cast<int>(kOk);
      }
      if (hits->empty()) std::cout << "No matches.\n";
      for (const auto& h : *hits) {
        std::string snip = h.snippet;
        for (auto& ch : snip) if (ch == '\n') ch = ' ';
        std::cout << "#" << h.doc_id << " " << h.title << " (" << provenance(h.chunk) << ")\n    " << snip << "\n";
      }
      return hits->empty() ? static_cast<int>(kFailed) : static_cast<int>(kOk);
    };
  });

  // docdsa library merge OUT IN...: the shards of a batch (summarize --shard K/N) into one library.
  static std::string merge_out;
  static std::vector<std::string> merge_in;
  CLI::App* lib = app.add_subcommand("library", "Library files as a whole: merge the shards of a batch");
  lib->require_subcommand(1);
  CLI::App* merge = lib->add_subcommand("merge", "Merge libraries (the shards of a batch) into OUT, in one transaction; "
                                                 "rerunning it changes nothing");
  merge->add_option("out", merge_out, "The library to merge into (created if new)")->required();
  merge->add_option("inputs", merge_in, "The libraries to merge (read only)")->required();
  merge->callback([] {
    globals().command = [] {
      if (auto checked = storage::Library::check_merge_inputs(merge_in); !checked.ok()) return report(checked.error());
      auto out = open_library_at(merge_out);
      if (!out.ok()) return report(out.error());
      auto st = (*out)->merge(merge_in);
      if (!st.ok()) return report(st.error());
      if (globals().json) {
        print_json({{"library", (*out)->path()}, {"inputs", st->inputs}, {"documents_added", st->documents_added},
                    {"documents_present", st->documents_present}, {"documents_replaced", st->documents_replaced}, {"segments", st->segments}, {"chunks", st->chunks},
                    {"runs", st->runs}, {"summaries", st->summaries}, {"questions", st->questions}, {"answers", st->answers},
                    {"selections", st->selections}});
      } else {
        std::cout << "merged " << st->inputs << " libraries into " << (*out)->path() << ": " << st->documents_added
                  << " documents added (" << st->documents_present << " already there, " << st->documents_replaced
                  << " newer versions), " << st->runs << " runs, " << st->summaries
                  << " summaries, " << st->questions << " questions, " << st->answers << " answers\n";
      }
      return static_cast<int>(kOk);
    };
  });

  CLI::App* rm = app.add_subcommand("remove", "Remove a document (and its chunks, questions and summaries) from the library");
  rm->add_option("doc", o.key, "Document id, path or hash prefix")->required();
  db_opt(rm);
  rm->callback([] {
    globals().command = [] {
      auto lib = open_library();
      if (!lib.ok()) return report(lib.error());
      auto d = (*lib)->find(o.key);
      if (!d.ok()) return report(d.error());
      if (auto st = (*lib)->remove(d->id); !st.ok()) return report(st.error());
      if (globals().json) print_json({{"removed", d->id}, {"path", d->path}});
      else std::cout << "removed #" << d->id << " " << d->title << "\n";
      return static_cast<int>(kOk);
    };
  });
}

}  // namespace docdsa::cli
