// docdsa bench: prefill and decode throughput of the engine, medians of repeated runs.
// The token sequence is deterministic (scripts/bench_llamacpp.py builds the same one) so the
// numbers compare directly with llama.cpp on the same model and thread count.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli_common.h"
#include "docdsa/engine/sampler.h"
#include "docdsa/engine/session.h"
#include "docdsa/ingest/document.h"
#include "docdsa/storage/library.h"
#include "docdsa/kernels/quant.h"

namespace docdsa::cli {
namespace {

// Deterministic ids in [100, n_vocab): the same formula as scripts/bench_llamacpp.py.
std::vector<TokenId> bench_tokens(int n, int n_vocab) {
  std::vector<TokenId> ids(static_cast<size_t>(n));
  uint64_t x = 12345;
  for (int i = 0; i < n; ++i) {
    x = (x * 6364136223846793005ull + 1442695040888963407ull);
    ids[static_cast<size_t>(i)] = static_cast<TokenId>(100 + (x >> 33) % static_cast<uint64_t>(n_vocab - 100));
  }
  return ids;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

void register_bench(CLI::App& app) {
  struct Opts {
    std::vector<int> prefill{512, 4096};
    std::vector<int> depths{0, 4096};
    int decode_tokens = 32;
    int reps = 3;
    std::string ingest_file;
  };
  static Opts o;
  CLI::App* sub = app.add_subcommand("bench", "Measure prefill and decode speed (medians of --reps runs)");
  sub->add_option("--prefill", o.prefill, "Prompt lengths to prefill")->delimiter(',');
  sub->add_option("--depth", o.depths, "Context depths at which to time decoding")->delimiter(',');
  sub->add_option("--decode-tokens", o.decode_tokens, "Tokens decoded per decode run")->check(CLI::PositiveNumber);
  sub->add_option("--reps", o.reps, "Repetitions per measurement")->check(CLI::PositiveNumber);
  sub->add_option("--ingest", o.ingest_file, "Instead: time ingesting FILE (pages/s extracted, chunks/s stored)")->check(CLI::ExistingFile);
  sub->callback([] {
    globals().command = [] {
      int rc = kOk;
      auto model = load_model_or_report(&rc);
      if (!model) return rc;
      using clock = std::chrono::steady_clock;
      const int n_vocab = model->config().n_vocab;
      if (!o.ingest_file.empty()) {
        // Extraction (Poppler + layout + normalisation) and storage (one transaction) timed apart.
        std::vector<double> pages_s, chunks_s;
        size_t n_pages = 0, n_chunks = 0;
        const Tokenizer& tok = model->tokenizer();
        auto count = [&](const std::string& t) { return static_cast<int>(tok.encode(t, false, false).size()); };
        for (int r = 0; r < o.reps; ++r) {
          const auto t0 = clock::now();
          auto doc = ingest::load_document(o.ingest_file);
          if (!doc.ok()) return report(doc.error());
          const double extract_s = std::chrono::duration<double>(clock::now() - t0).count();
          int max_page = 0;
          for (const auto& sg : doc->segments) max_page = std::max(max_page, sg.page);
          n_pages = static_cast<size_t>(max_page) + doc->pages_without_text.size();
          const auto chunks = ingest::chunk_document(*doc, 512, count);
          n_chunks = chunks.size();
          char tmpl[] = "/tmp/docdsa-bench-XXXXXX";
          const int fd = mkstemp(tmpl);
          if (fd >= 0) close(fd);
          std::remove(tmpl);
          auto lib = storage::Library::open(tmpl);
          if (!lib.ok()) return report(lib.error());
          storage::DocumentRow row;
          row.path = o.ingest_file;
          row.kind = ingest::kind_name(doc->kind);
          row.content_hash = doc->content_hash;
          std::vector<storage::SegmentRow> segs;
          for (const auto& sg : doc->segments) segs.push_back({sg.page, sg.start_ms, sg.end_ms, sg.speaker, sg.text});
          std::vector<storage::ChunkRow> rows;
          for (const auto& c : chunks) rows.push_back({c.index, c.n_tokens, c.page_first, c.page_last, c.start_ms, c.end_ms, c.char_begin, c.char_end, c.speakers, c.text});
          const auto t1 = clock::now();
          auto st = (*lib)->store(row, segs, rows);
          if (!st.ok()) return report(st.error());
          const double store_s = std::chrono::duration<double>(clock::now() - t1).count();
          lib->reset();
          for (const char* suffix : {"", "-wal", "-shm"}) std::remove((std::string(tmpl) + suffix).c_str());
          pages_s.push_back(n_pages / extract_s);
          chunks_s.push_back(n_chunks / store_s);
        }
        if (globals().json) {
          print_json({{"file", o.ingest_file}, {"pages", n_pages}, {"chunks", n_chunks}, {"pages_per_s", median(pages_s)},
                      {"chunks_per_s", median(chunks_s)}, {"runs", o.reps}});
        } else {
          std::printf("%s: %zu pages extracted at %.1f pages/s; %zu chunks stored at %.0f chunks/s (medians of %d)\n",
                      o.ingest_file.c_str(), n_pages, median(pages_s), n_chunks, median(chunks_s), o.reps);
        }
        return static_cast<int>(kOk);
      }
      nlohmann::json results = nlohmann::json::array();
      const bool json = globals().json;
      if (!json)
        std::cout << "model " << model->path() << ", isa " << kernels::isa_name(kernels::active_isa()) << "\n"
                  << "test                 tok/s (median)   runs\n";
      for (int n : o.prefill) {
        SessionParams sp;
        sp.n_threads = globals().threads;
        sp.n_ctx = n;
        sp.n_batch = 512;
        auto s = Session::create(*model, sp);
        if (!s.ok()) return report(s.error());
        const auto ids = bench_tokens(n, n_vocab);
        std::vector<double> tps;
        for (int r = 0; r < o.reps; ++r) {
          (*s)->truncate(0);
          const auto t0 = clock::now();
          if (auto st = (*s)->decode(ids); !st.ok()) return report(st.error());
          tps.push_back(n / std::chrono::duration<double>(clock::now() - t0).count());
        }
        const double med = median(tps);
        results.push_back({{"test", "prefill"}, {"tokens", n}, {"tokens_per_s", med}, {"runs", tps}, {"threads", (*s)->n_threads()}});
        if (!json) std::printf("prefill %-6d        %10.1f       %d\n", n, med, o.reps);
      }
      for (int depth : o.depths) {
        SessionParams sp;
        sp.n_threads = globals().threads;
        sp.n_ctx = depth + o.decode_tokens + 1;
        sp.n_batch = 512;
        auto s = Session::create(*model, sp);
        if (!s.ok()) return report(s.error());
        const auto ids = bench_tokens(depth + 1, n_vocab);
        std::vector<double> tps;
        for (int r = 0; r < o.reps; ++r) {
          (*s)->truncate(0);
          if (auto st = (*s)->decode(ids); !st.ok()) return report(st.error());
          const auto t0 = clock::now();
          for (int i = 0; i < o.decode_tokens; ++i) {
            const TokenId next[1] = {argmax((*s)->logits(), n_vocab)};
            if (auto st = (*s)->decode(next); !st.ok()) return report(st.error());
          }
          tps.push_back(o.decode_tokens / std::chrono::duration<double>(clock::now() - t0).count());
        }
        const double med = median(tps);
        results.push_back({{"test", "decode"}, {"depth", depth}, {"tokens", o.decode_tokens}, {"tokens_per_s", med}, {"runs", tps},
                           {"threads", (*s)->n_threads()}});
        if (!json) std::printf("decode @ depth %-6d%10.1f       %d\n", depth, med, o.reps);
      }
      if (json) print_json({{"model", model->path()}, {"isa", kernels::isa_name(kernels::active_isa())}, {"results", results}});
      return static_cast<int>(kOk);
    };
  });
}

}  // namespace docdsa::cli
