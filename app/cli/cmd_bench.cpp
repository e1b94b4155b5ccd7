// docdsa bench: prefill and decode throughput of the engine, medians of repeated runs.
// The token sequence is deterministic (scripts/bench_llamacpp.py builds the same one) so the
// numbers compare directly with llama.cpp on the same model and thread count.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>

#include "cli_common.h"
#include "progress.h"
#include "docdsa/engine/sampler.h"
#include "docdsa/engine/session.h"
#include "docdsa/ingest/document.h"
#include "docdsa/storage/library.h"
#include "docdsa/kernels/quant.h"

namespace docdsa::cli {

int bench_roofline(int gemm_tokens, int reps, int threads, bool json);  // bench_roofline.cpp

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

// Peak resident memory of this process (VmHWM), in bytes.
uint64_t peak_rss() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof(line), f))
    if (std::sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024;
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
    bool long_ctx = false;
    bool long_128k = false;
    bool dense_prefill = true;
    int long_decode = 8;
    AttentionOptions attn;
    bool roofline = false;
    int gemm_tokens = 512;
  };
  static Opts o;
  CLI::App* sub = app.add_subcommand("bench", "Measure prefill and decode speed (medians of --reps runs)");
  sub->add_option("--prefill", o.prefill, "Prompt lengths to prefill")->delimiter(',');
  sub->add_option("--depth", o.depths, "Context depths at which to time decoding")->delimiter(',');
  sub->add_option("--decode-tokens", o.decode_tokens, "Tokens decoded per decode run")->check(CLI::PositiveNumber);
  sub->add_option("--reps", o.reps, "Repetitions per measurement")->check(CLI::PositiveNumber);
  sub->add_flag("--long", o.long_ctx, "Long context, dense vs DSA in one run: DSA prefill of 32K (and dense, unless --no-dense-prefill), decode steps at 8K and 32K depth");
  sub->add_flag("--long-128k", o.long_128k, "With --long: continue the DSA prefill to 128K tokens (minutes) and time decoding at 128K");
  sub->add_flag("!--no-dense-prefill", o.dense_prefill, "With --long: skip the (slow) dense 32K prefill");
  sub->add_option("--long-decode", o.long_decode, "With --long: decode steps timed at each depth")->check(CLI::PositiveNumber);
  add_attention_options(sub, o.attn);
  sub->add_flag("--roofline", o.roofline, "Instead: measure int8/fp32 peaks and memory bandwidth, then the quantised GEMM (prefill) and GEMV (decode) kernels on the models' layer shapes as shares of them, against the previous kernel (no model needed)");
  sub->add_option("--gemm-tokens", o.gemm_tokens, "With --roofline: tokens per prefill GEMM")->check(CLI::PositiveNumber);
  sub->add_option("--ingest", o.ingest_file,
                  "Instead: time ingesting FILE (pages/s extracted, chunks/s stored; for a scan, OCR pages/s and CPU s a page)")
      ->check(CLI::ExistingFile);
  // Long-context benchmark: one DSA session prefills a real-size context; at each depth the
  // same cache is decoded with DSA and then with dense attention (force_dense), so both read
  // identical contents. Times are medians over --long-decode steps.
  static auto bench_long = [](const Model& model) -> int {
    using clock = std::chrono::steady_clock;
    const bool json = globals().json;
    std::vector<int> depths{8192, 32768};
    if (o.long_128k) depths.push_back(131072);
    const int n_ctx = depths.back() + 2 * o.long_decode + 8;
    std::unique_ptr<Indexer> indexer;
    AttentionOptions ao = o.attn;
    ao.mode = "dsa";
    auto sp = session_params(model, ao, n_ctx, indexer);
    if (!sp.ok()) return report(sp.error());
    sp->n_batch = 512;
    const auto ids = bench_tokens(n_ctx, model.config().n_vocab);
    nlohmann::json out = nlohmann::json::array();
    if (!json) std::printf("model %s, %d threads, k=%d\n", model.path().c_str(), sp->n_threads, sp->dsa.top_k);
    double dense_prefill_32k = 0;
    if (o.dense_prefill) {
      SessionParams dp = *sp;
      dp.dsa.mode = AttentionMode::kDense;
      dp.indexer = nullptr;
      dp.n_ctx = 32768;
      auto ds = Session::create(model, dp);
      if (!ds.ok()) return report(ds.error());
      ProgressBar bar("dense prefill 32K", 32768, !json);
      const auto t0 = clock::now();
      if (auto st = (*ds)->decode(std::span(ids).first(32768), Logits::kLast, [&](int d, int) { bar.update(d); return true; }); !st.ok())
        return report(st.error());
      bar.finish();
      dense_prefill_32k = std::chrono::duration<double>(clock::now() - t0).count();
    }
    auto s = Session::create(model, *sp);
    if (!s.ok()) return report(s.error());
    Session& ses = **s;
    double prefill_s = 0;
    int at = 0;
    for (int depth : depths) {
      ProgressBar bar("dsa prefill to " + std::to_string(depth), depth - at, !json);
      const auto t0 = clock::now();
      if (auto st = ses.decode(std::span(ids).subspan(static_cast<size_t>(at), static_cast<size_t>(depth - at)), Logits::kLast,
                              [&](int d, int) { bar.update(d); return true; });
          !st.ok())
        return report(st.error());
      bar.finish();
      prefill_s += std::chrono::duration<double>(clock::now() - t0).count();
      at = depth;
      if (depth == 32768 || depth == 131072) {
        nlohmann::json r = {{"test", "prefill"}, {"tokens", depth}, {"dsa_seconds", prefill_s}};
        if (depth == 32768 && o.dense_prefill) {
          r["dense_seconds"] = dense_prefill_32k;
          r["ratio"] = dense_prefill_32k / prefill_s;
        }
        out.push_back(r);
        if (!json) {
          std::printf("prefill %6d tokens: dsa %.1f s", depth, prefill_s);
          if (r.contains("ratio")) std::printf(", dense %.1f s, ratio %.2fx", dense_prefill_32k, r["ratio"].get<double>());
          std::printf("\n");
          std::fflush(stdout);
        }
      }
      double med[2] = {0, 0};
      for (int mode = 0; mode < 2; ++mode) {  // 0: DSA, 1: dense, on the same cache
        ses.force_dense(mode == 1);
        std::vector<double> ms;
        for (int i = 0; i < o.long_decode; ++i) {
          const TokenId next[1] = {ids[static_cast<size_t>(at)]};
          const auto t0 = clock::now();
          if (auto st = ses.decode(next); !st.ok()) return report(st.error());
          ms.push_back(1000.0 * std::chrono::duration<double>(clock::now() - t0).count());
          ses.truncate(at);  // every step decodes at the same depth
        }
        med[mode] = median(ms);
      }
      ses.force_dense(false);
      out.push_back({{"test", "decode"}, {"depth", depth}, {"dsa_ms", med[0]}, {"dense_ms", med[1]}, {"ratio", med[1] / med[0]},
                     {"steps", o.long_decode}});
      if (!json)
        std::printf("decode @ %6d: dsa %.2f ms/token, dense %.2f ms/token, ratio %.2fx\n", depth, med[0], med[1], med[1] / med[0]);
      std::fflush(stdout);
    }
    const double gib = 1024.0 * 1024.0 * 1024.0;
    const nlohmann::json mem = {{"peak_rss_bytes", peak_rss()}, {"kv_cache_bytes", ses.kv_bytes()},
                                {"indexer_cache_bytes", ses.indexer_bytes()}, {"context", n_ctx}};
    if (json)
      print_json({{"model", model.path()}, {"threads", ses.n_threads()}, {"top_k", sp->dsa.top_k}, {"results", out}, {"memory", mem},
                  {"cost", cost_json(ses.cost())}});
    else
      std::printf("memory at %d tokens: peak RSS %.2f GiB (KV cache %.2f GiB, indexer cache %.3f GiB)\n", n_ctx, peak_rss() / gib,
                  ses.kv_bytes() / gib, ses.indexer_bytes() / gib);
    return static_cast<int>(kOk);
  };
  sub->callback([] {
    globals().command = [] {
      if (o.roofline) return bench_roofline(o.gemm_tokens, o.reps, globals().threads, globals().json);
      int rc = kOk;
      auto model = load_model_or_report(&rc);
      if (!model) return rc;
      using clock = std::chrono::steady_clock;
      const int n_vocab = model->config().n_vocab;
      if (!o.ingest_file.empty()) {
        // Extraction (Poppler + layout + normalisation) and storage (one transaction) timed apart.
        std::vector<double> pages_s, chunks_s, ocr_pages_s, ocr_cpu_s;
        size_t n_pages = 0, n_chunks = 0, n_ocr_pages = 0;
        const Tokenizer& tok = model->tokenizer();
        auto count = [&](const std::string& t) { return static_cast<int>(tok.encode(t, false, false).size()); };
        // The process's CPU time: with the wall time, it tells the OCR engine's own cost per page
        // (what a core's speed sets) from how well the cores share it.
        const auto cpu_now = [] {
          timespec ts{};
          clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
          return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
        };
        for (int r = 0; r < o.reps; ++r) {
          const auto t0 = clock::now();
          const double c0 = cpu_now();
          // Scanned pages are read by OCR (300 dpi) on --threads workers (0: all cores).
          ingest::LoadOptions lo;
          lo.ocr.threads = globals().threads;
          auto doc = ingest::load_document(o.ingest_file, lo);
          if (!doc.ok()) return report(doc.error());
          n_ocr_pages = doc->ocr_pages.size();
          const double extract_s = std::chrono::duration<double>(clock::now() - t0).count();
          const double extract_cpu_s = cpu_now() - c0;
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
          if (n_ocr_pages) {
            ocr_pages_s.push_back(static_cast<double>(n_ocr_pages) / extract_s);
            ocr_cpu_s.push_back(extract_cpu_s / static_cast<double>(n_ocr_pages));
          }
          chunks_s.push_back(n_chunks / store_s);
        }
        if (globals().json) {
          print_json({{"file", o.ingest_file}, {"pages", n_pages}, {"chunks", n_chunks}, {"pages_per_s", median(pages_s)},
                      {"chunks_per_s", median(chunks_s)}, {"runs", o.reps}, {"ocr_pages", n_ocr_pages},
                      {"ocr_pages_per_s", ocr_pages_s.empty() ? 0.0 : median(ocr_pages_s)},
                      {"ocr_cpu_s_per_page", ocr_cpu_s.empty() ? 0.0 : median(ocr_cpu_s)}, {"ocr_threads", globals().threads}});
        } else {
          if (n_ocr_pages)
            std::printf("%s: %zu pages read by OCR at %.2f pages/s (300 dpi, %s), %.2f s of CPU a page\n", o.ingest_file.c_str(),
                        n_ocr_pages, median(ocr_pages_s),
                        globals().threads > 0 ? (std::to_string(globals().threads) + " threads").c_str() : "all cores",
                        median(ocr_cpu_s));
          std::printf("%s: %zu pages extracted at %.1f pages/s; %zu chunks stored at %.0f chunks/s (medians of %d)\n",
                      o.ingest_file.c_str(), n_pages, median(pages_s), n_chunks, median(chunks_s), o.reps);
        }
        return static_cast<int>(kOk);
      }
      if (o.long_ctx) return bench_long(*model);
      std::unique_ptr<Indexer> indexer;
      nlohmann::json results = nlohmann::json::array();
      const bool json = globals().json;
      if (!json)
        std::cout << "model " << model->path() << ", isa " << kernels::isa_name(kernels::active_isa()) << ", attention "
                  << o.attn.mode << " (k=" << o.attn.dsa.top_k << ")\n"
                  << "test                 tok/s (median)   runs\n";
      for (int n : o.prefill) {
        auto sp = session_params(*model, o.attn, n, indexer);
        if (!sp.ok()) return report(sp.error());
        sp->n_batch = 512;
        auto s = Session::create(*model, *sp);
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
        results.push_back({{"test", "prefill"}, {"tokens", n}, {"tokens_per_s", med}, {"runs", tps}, {"threads", (*s)->n_threads()},
                           {"device", (*s)->cost().device}});
        if (!json) std::printf("prefill %-6d        %10.1f       %d\n", n, med, o.reps);
      }
      for (int depth : o.depths) {
        auto sp = session_params(*model, o.attn, depth + o.decode_tokens + 1, indexer);
        if (!sp.ok()) return report(sp.error());
        sp->n_batch = 512;
        auto s = Session::create(*model, *sp);
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
                           {"threads", (*s)->n_threads()}, {"device", (*s)->cost().device}});
        if (!json) std::printf("decode @ depth %-6d%10.1f       %d\n", depth, med, o.reps);
      }
      if (json)
        print_json({{"model", model->path()}, {"isa", kernels::isa_name(kernels::active_isa())}, {"attention", o.attn.mode},
                    {"top_k", o.attn.dsa.top_k}, {"results", results}});
      return static_cast<int>(kOk);
    };
  });
}

}  // namespace docdsa::cli
