// docdsa calibrate: fits and saves the training-free DSA indexer for a model file.
// docdsa eval fidelity: DSA vs dense on real text (top-1 agreement, KL, attention-mass recall).
// docdsa eval passkey: retrieval accuracy by context length and depth, dense and DSA side by
// side, in llama.cpp's passkey format and RULER's niah_single and niah_multikey formats.
// docdsa eval qa: see cmd_eval_qa.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "cli_common.h"
#include "docdsa/app/context_cache.h"
#include "docdsa/engine/generate.h"
#include "docdsa/engine/model_locator.h"
#include "docdsa/engine/session_state.h"
#include "progress.h"

namespace docdsa::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop.store(true); }

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot read");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// ---- fidelity ------------------------------------------------------------------------------

struct FidelityOpts {
  std::vector<std::string> texts;
  int context = 8192;
  int eval_tokens = 256;
  int recall_every = 64;
  std::string stored_kv;  // empty: the caches as read
  AttentionOptions attn;
};

struct RunOut {
  std::vector<float> logp;  // [eval_tokens][vocab] log-softmax
  double seconds = 0;
  std::vector<double> recall;  // per layer
  CostReport cost;
  uint64_t state_bytes = 0;     // --stored-kv: the saved state's size
  double reload_seconds = 0;    // and saving plus loading it (in memory)
};

Result<RunOut> run_logits(const Model& model, const std::vector<TokenId>& toks, int eval_tokens, SessionParams sp,
                          const std::string& label, const std::string& stored_kv) {
  TRY(std::unique_ptr<Session> s, Session::create(model, sp));
  const auto t0 = std::chrono::steady_clock::now();
  const int n = static_cast<int>(toks.size());
  const int head = n - eval_tokens;
  ProgressBar bar(label, n, !globals().json);
  const auto progress = [&](int done, int) {
    bar.update(done);
    return !g_stop.load();
  };
  TRY_STATUS(s->decode(std::span(toks).first(static_cast<size_t>(head)), Logits::kLast, progress));
  // As a stored context would reload the text read so far (f16 exact, q8 8-bit).
  uint64_t state_bytes = 0;
  double reload_seconds = 0;
  if (!stored_kv.empty()) {
    const KvStorage kv = stored_kv == "q8" ? KvStorage::kQ8 : KvStorage::kF16;
    state_bytes = session_state_bytes(*s, kv);
    const auto r0 = std::chrono::steady_clock::now();
    TRY_STATUS(reload_session_state(*s, kv));
    reload_seconds = seconds_since(r0);
  }
  TRY_STATUS(s->decode(std::span(toks).subspan(static_cast<size_t>(head)), Logits::kAll,
                       [&](int done, int) { bar.update(head + done); return !g_stop.load(); }));
  bar.finish();
  RunOut out;
  out.seconds = seconds_since(t0);
  out.state_bytes = state_bytes;
  out.reload_seconds = reload_seconds;
  const int V = model.config().n_vocab;
  out.logp.resize(static_cast<size_t>(eval_tokens) * V);
  for (int i = 0; i < eval_tokens; ++i) {
    const float* l = s->logits_at(i);
    float* o = out.logp.data() + static_cast<size_t>(i) * V;
    const float mx = *std::max_element(l, l + V);
    double z = 0;
    for (int j = 0; j < V; ++j) z += std::exp(static_cast<double>(l[j] - mx));
    const float lz = mx + static_cast<float>(std::log(z));
    for (int j = 0; j < V; ++j) o[j] = l[j] - lz;
  }
  for (size_t il = 0; il < s->recall_sum().size(); ++il)
    out.recall.push_back(s->recall_count()[il] ? s->recall_sum()[il] / static_cast<double>(s->recall_count()[il]) : NAN);
  out.cost = s->cost();
  return out;
}

int run_fidelity(const FidelityOpts& o) {
  int rc = kOk;
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  std::signal(SIGINT, on_sigint);
  if (o.eval_tokens < 1 || o.eval_tokens >= o.context)
    return report(make_error(ErrorCode::kInvalidArgument, "--eval-tokens must be between 1 and --context - 1"));
  nlohmann::json results = nlohmann::json::array();
  std::unique_ptr<Indexer> indexer;
  for (const std::string& path : o.texts) {
    auto text = read_text(path);
    if (!text.ok()) return report(text.error());
    std::vector<TokenId> toks = model->tokenizer().encode(*text, true, false);  // file text is data
    if (static_cast<int>(toks.size()) < o.context)
      return report(make_error(ErrorCode::kInvalidArgument, path + " has " + std::to_string(toks.size()) +
                                                                " tokens, fewer than --context " + std::to_string(o.context)));
    toks.resize(static_cast<size_t>(o.context));
    AttentionOptions dense_o = o.attn;
    dense_o.mode = "dense";
    AttentionOptions dsa_o = o.attn;
    dsa_o.mode = "dsa";
    auto dsp = session_params(*model, dense_o, o.context, indexer);
    if (!dsp.ok()) return report(dsp.error());
    auto ssp = session_params(*model, dsa_o, o.context, indexer);
    if (!ssp.ok()) return report(ssp.error());
    ssp->recall_every = o.recall_every;
    const std::string name = std::filesystem::path(path).filename().string();
    auto dense = run_logits(*model, toks, o.eval_tokens, *dsp, name + " dense", o.stored_kv);
    if (!dense.ok()) return report(dense.error());
    auto dsa = run_logits(*model, toks, o.eval_tokens, *ssp, name + " dsa", o.stored_kv);
    if (!dsa.ok()) return report(dsa.error());
    const int V = model->config().n_vocab;
    int agree = 0;
    double kl_sum = 0, kl_max = 0, nll_dense = 0, nll_dsa = 0;
    for (int i = 0; i < o.eval_tokens; ++i) {
      const float* a = dense->logp.data() + static_cast<size_t>(i) * V;
      const float* b = dsa->logp.data() + static_cast<size_t>(i) * V;
      agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
      double kl = 0;
      for (int j = 0; j < V; ++j) kl += std::exp(static_cast<double>(a[j])) * (a[j] - b[j]);
      kl_sum += kl;
      kl_max = std::max(kl_max, kl);
      if (i + 1 < o.eval_tokens) {  // the next token of the text is known
        const TokenId next = toks[static_cast<size_t>(o.context - o.eval_tokens + i + 1)];
        nll_dense -= a[next];
        nll_dsa -= b[next];
      }
    }
    double rsum = 0;
    int rn = 0;
    double rmin = 1.0;
    for (double r : dsa->recall)
      if (!std::isnan(r)) {
        rsum += r;
        ++rn;
        rmin = std::min(rmin, r);
      }
    const int np = o.eval_tokens - 1;
    nlohmann::json j = {{"text", path},
                        {"context", o.context},
                        {"eval_tokens", o.eval_tokens},
                        {"top_k", ssp->dsa.top_k},
                        {"stored_kv", o.stored_kv.empty() ? "none" : o.stored_kv},
                        {"stored_bytes_dsa", dsa->state_bytes},
                        {"reload_seconds_dsa", dsa->reload_seconds},
                        {"top1_agreement", static_cast<double>(agree) / o.eval_tokens},
                        {"mean_kl", kl_sum / o.eval_tokens},
                        {"max_kl", kl_max},
                        {"perplexity_dense", std::exp(nll_dense / np)},
                        {"perplexity_dsa", std::exp(nll_dsa / np)},
                        {"recall_mean", rn ? rsum / rn : NAN},
                        {"recall_min_layer", rn ? rmin : NAN},
                        {"recall_by_layer", dsa->recall},
                        {"seconds_dense", dense->seconds},
                        {"seconds_dsa", dsa->seconds},
                        {"cost_dsa", cost_json(dsa->cost)}};
    results.push_back(j);
    if (!globals().json) {
      std::printf("%s  context %d, last %d tokens, k=%d\n", name.c_str(), o.context, o.eval_tokens, ssp->dsa.top_k);
      std::printf("  top-1 agreement %.4f   mean KL %.5f nats (max %.4f)   perplexity dense %.3f dsa %.3f\n",
                  static_cast<double>(agree) / o.eval_tokens, kl_sum / o.eval_tokens, kl_max, std::exp(nll_dense / np),
                  std::exp(nll_dsa / np));
      std::printf("  attention-mass recall: mean %.4f, lowest layer %.4f\n  by layer:", rn ? rsum / rn : NAN, rmin);
      for (double r : dsa->recall) std::printf(" %.3f", r);
      std::printf("\n  time dense %.1f s, dsa %.1f s\n", dense->seconds, dsa->seconds);
      if (!o.stored_kv.empty())
        std::printf("  caches reloaded as %s: %s (DSA read), saved and loaded in %.3f s\n", o.stored_kv.c_str(),
                    format_bytes(dsa->state_bytes).c_str(), dsa->reload_seconds);
    }
  }
  if (globals().json) print_json({{"fidelity", results}});
  return g_stop.load() ? static_cast<int>(kInterrupted) : static_cast<int>(kOk);
}

// ---- passkey -------------------------------------------------------------------------------

struct PasskeyOpts {
  std::vector<int> lengths{1024, 2048, 4096, 8192};
  std::vector<int> depths{0, 25, 50, 75, 100};
  int trials = 1;
  std::vector<std::string> formats{"llama", "ruler"};
  std::vector<std::string> modes{"dense", "dsa"};
  unsigned seed = 1234;
  AttentionOptions attn;
};

struct Needle {
  std::string needle, question, answer;
};

struct Haystack {
  std::string prefix, junk;
};

// llama.cpp's examples/passkey; RULER's niah_single_1 (noise haystack, 7-digit number) and
// niah_multikey_1 (several such needles, each under its own word, one asked at a time).
Haystack haystack_for(const std::string& format) {
  const std::string junk = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  if (format == "llama")
    return {"There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.",
            junk};
  return {"Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n",
          junk};
}

constexpr const char* kWords[] = {"apple", "harbor", "violet", "granite", "meadow", "lantern", "copper", "orchid", "falcon", "ember"};
constexpr int kMaxMultikeyDepths = static_cast<int>(std::size(kWords));

Needle make_needle(const std::string& format, std::mt19937& rng, const std::string& word) {
  if (format == "llama") {
    const std::string key = std::to_string(std::uniform_int_distribution<int>(1, 50000)(rng));
    return {" The pass key is " + key + ". Remember it. " + key + " is the pass key.", " What is the pass key? The pass key is", key};
  }
  const std::string value = std::to_string(std::uniform_int_distribution<int>(1000000, 9999999)(rng));
  return {" One of the special magic numbers for " + word + " is: " + value + ".",
          "\nWhat are all the special magic numbers for " + word + " mentioned in the provided text? The special magic numbers for " +
              word + " mentioned in the provided text are",
          value};
}

// A prompt of about `length` tokens: the haystack with each needle at its depth (percent of
// the haystack), then `question`.
std::vector<TokenId> build_prompt(const Tokenizer& tok, const Haystack& h, const std::vector<std::pair<int, const Needle*>>& needles,
                                  const std::string& question, int length) {
  const auto count = [&](const std::string& s) { return static_cast<int>(tok.encode(s, false).size()); };
  int fixed = count(h.prefix) + count(question) + 1;
  for (const auto& [depth, n] : needles) fixed += count(n->needle);
  const int per = count(h.junk);
  const int reps = std::max(0, (length - fixed) / per);
  std::string text = h.prefix;
  for (int i = 0; i <= reps; ++i) {
    for (const auto& [depth, n] : needles)
      if (i == std::min(reps, reps * depth / 100)) text += n->needle;
    if (i < reps) text += h.junk;
  }
  text += question;
  return tok.encode(text, true);
}

struct PasskeyCase {
  int depth = 0;
  Needle needle;
  std::vector<TokenId> prompt;
};

// One trial's cases, deepest first. Each prompt reuses the prefix it shares with the one before:
// for the single-needle formats the haystack before the shallower needle, for the multi-key
// format all of the haystack (only the question differs).
std::vector<PasskeyCase> make_cases(const Tokenizer& tok, const std::string& format, std::vector<int> depths, int length,
                                    std::mt19937& rng) {
  std::sort(depths.rbegin(), depths.rend());
  const Haystack h = haystack_for(format);
  std::vector<std::string> words(std::begin(kWords), std::end(kWords));
  std::shuffle(words.begin(), words.end(), rng);
  std::vector<PasskeyCase> cases;
  for (size_t i = 0; i < depths.size(); ++i)
    cases.push_back({depths[i], make_needle(format, rng, words[i % words.size()]), {}});
  if (format == "multikey") {
    std::vector<std::pair<int, const Needle*>> all;
    for (const PasskeyCase& c : cases) all.emplace_back(c.depth, &c.needle);
    for (PasskeyCase& c : cases) c.prompt = build_prompt(tok, h, all, c.needle.question, length);
  } else {
    for (PasskeyCase& c : cases) c.prompt = build_prompt(tok, h, {{c.depth, &c.needle}}, c.needle.question, length);
  }
  return cases;
}

int run_passkey(const PasskeyOpts& o) {
  int rc = kOk;
  if (std::find(o.formats.begin(), o.formats.end(), "multikey") != o.formats.end() &&
      static_cast<int>(o.depths.size()) > kMaxMultikeyDepths)
    return report(make_error(ErrorCode::kInvalidArgument, "--formats multikey takes at most " + std::to_string(kMaxMultikeyDepths) +
                                                              " depths (one needle per depth, each under its own word)"));
  auto model = load_model_or_report(&rc);
  if (!model) return rc;
  std::signal(SIGINT, on_sigint);
  std::unique_ptr<Indexer> indexer;
  nlohmann::json rows = nlohmann::json::array();
  const int n_cases = static_cast<int>(o.lengths.size() * o.formats.size() * o.depths.size()) * o.trials;
  ProgressBar bar("passkey", n_cases * static_cast<int>(o.modes.size()), !globals().json);
  int done = 0;
  if (!globals().json)
    std::printf("%-8s %-8s %-6s %9s %9s %10s %10s\n", "length", "format", "mode", "accuracy", "correct", "prefill_s", "prefilled");
  for (int length : o.lengths)
    for (const std::string& format : o.formats) {
      std::mt19937 rng(o.seed + static_cast<unsigned>(length));
      std::vector<PasskeyCase> cases;
      for (int trial = 0; trial < o.trials; ++trial)
        for (PasskeyCase& c : make_cases(model->tokenizer(), format, o.depths, length, rng)) cases.push_back(std::move(c));
      size_t longest = 0;
      for (const PasskeyCase& c : cases) longest = std::max(longest, c.prompt.size());
      const int max_tokens = format == "llama" ? 8 : 12;
      for (const std::string& mode : o.modes) {
        AttentionOptions ao = o.attn;
        ao.mode = mode;
        // One session per length, format and mode: each prompt prefills only what follows the
        // prefix it shares with the previous one (the rest of the caches are kept).
        auto sp = session_params(*model, ao, static_cast<int>(longest) + 16, indexer);
        if (!sp.ok()) return report(sp.error());
        auto s = Session::create(*model, *sp);
        if (!s.ok()) return report(s.error());
        std::vector<TokenId> held;
        int correct = 0, total = 0;
        int64_t prefilled = 0;
        double prefill = 0;
        nlohmann::json results = nlohmann::json::array();
        for (const PasskeyCase& c : cases) {
          if (g_stop.load()) return kInterrupted;
          const size_t common = std::min(c.prompt.size() - 1,
                                         static_cast<size_t>(std::mismatch(held.begin(), held.end(), c.prompt.begin(), c.prompt.end()).first -
                                                             held.begin()));
          (*s)->truncate(static_cast<int>(common));
          GenerateParams gp;
          gp.max_tokens = max_tokens;
          gp.sampler.greedy = true;
          gp.cancel = &g_stop;
          auto r = generate(**s, std::vector<TokenId>(c.prompt.begin() + static_cast<std::ptrdiff_t>(common), c.prompt.end()), gp);
          if (!r.ok()) return report(r.error());
          if (r->stop_reason == "cancelled") return kInterrupted;
          held = c.prompt;
          const bool ok = r->text.find(c.needle.answer) != std::string::npos;
          correct += ok;
          ++total;
          prefill += r->prefill_ms / 1000.0;
          prefilled += static_cast<int64_t>(c.prompt.size() - common);
          results.push_back({{"depth", c.depth}, {"answer", c.needle.answer}, {"output", r->text}, {"correct", ok},
                             {"prompt_tokens", c.prompt.size()}, {"prefilled_tokens", c.prompt.size() - common},
                             {"prefill_seconds", r->prefill_ms / 1000.0}});
          bar.update(++done);
        }
        const double acc = total ? static_cast<double>(correct) / total : 0.0;
        const nlohmann::json position = {{"rope_scaling", rope_scaling_name((*s)->rope_scaling())},
                                         {"rope_factor", (*s)->rope_factor()},
                                         {"extend_group", (*s)->extend_group()},
                                         {"extend_window", (*s)->extend_window()}};
        rows.push_back({{"length", length}, {"format", format}, {"mode", mode}, {"accuracy", acc}, {"correct", correct},
                        {"total", total}, {"prefill_seconds", prefill}, {"prefilled_tokens", prefilled},
                        {"cost", cost_json((*s)->cost())}, {"position", position}, {"cases", results}});
        if (!globals().json) {
          bar.clear();
          std::printf("%-8d %-8s %-6s %9.2f %6d/%-3d %10.1f %10lld\n", length, format.c_str(), mode.c_str(), acc, correct, total, prefill,
                      static_cast<long long>(prefilled));
          std::fflush(stdout);
        }
      }
    }
  bar.finish();
  if (globals().json) print_json({{"passkey", rows}, {"top_k", o.attn.dsa.top_k}});
  return kOk;
}

}  // namespace

void register_calibrate(CLI::App& app) {
  struct Opts {
    int rank = Indexer::kDefaultRank;
    std::string text;
    std::string out;
    int tokens = 4096;
    bool force = false;
  };
  static Opts o;
  CLI::App* sub = app.add_subcommand("calibrate", "Fit the DSA indexer for a model file (done automatically on first use)");
  sub->add_option("--indexer-rank", o.rank, "Indexer key dimensions per KV head")->capture_default_str();
  sub->add_option("--text", o.text, "Calibration text (default: the bundled resources/calibration/calibration.txt)")->check(CLI::ExistingFile);
  sub->add_option("--tokens", o.tokens, "Calibration tokens to use")->capture_default_str()->check(CLI::Range(64, 1 << 20));
  sub->add_option("-o,--out", o.out, "Sidecar path (default: the per-user cache, where DocDSA looks for it)");
  sub->add_flag("--force", o.force, "Recalibrate even when a matching sidecar exists");
  sub->callback([] {
    globals().command = [] {
      int rc = kOk;
      auto model = load_model_or_report(&rc);
      if (!model) return rc;
      const std::string out = o.out.empty() ? Indexer::default_path(*model, o.rank) : o.out;
      if (!o.force && std::filesystem::exists(out)) {
        auto ix = Indexer::load(out, *model);
        if (ix.ok() && (*ix)->rank() == o.rank) {
          if (globals().json) print_json({{"sidecar", out}, {"rank", o.rank}, {"status", "present"}});
          else std::printf("%s is up to date (use --force to recalibrate)\n", out.c_str());
          return static_cast<int>(kOk);
        }
      }
      std::string text = o.text;
      if (text.empty()) {  // the shipped calibration text
        auto r = locate_resource("calibration/calibration.txt");
        if (!r.ok()) return report(r.error());
        text = *r;
      }
      auto toks = Indexer::calibration_tokens(*model, text, o.tokens);
      if (!toks.ok()) return report(toks.error());
      std::signal(SIGINT, on_sigint);
      ProgressBar bar("calibrating", static_cast<int>(toks->size()), !globals().json);
      const auto t0 = std::chrono::steady_clock::now();
      auto ix = Indexer::calibrate(*model, *toks, o.rank, globals().threads, [&](int d, int) {
        bar.update(d);
        return !g_stop.load();
      });
      bar.finish();
      if (!ix.ok()) return report(ix.error());
      if (auto st = (*ix)->save(out); !st.ok()) return report(st.error());
      const double sec = seconds_since(t0);
      if (globals().json) {
        print_json({{"sidecar", out}, {"rank", o.rank}, {"calibration_tokens", toks->size()}, {"seconds", sec}, {"status", "written"}});
      } else {
        std::printf("wrote %s (rank %d, %zu calibration tokens, %.1f s)\n", out.c_str(), o.rank, toks->size(), sec);
      }
      return static_cast<int>(kOk);
    };
  });
}

void register_eval(CLI::App& app) {
  CLI::App* ev = app.add_subcommand("eval", "Measure DSA against dense attention");
  ev->require_subcommand(1);
  static FidelityOpts f;
  CLI::App* fid = ev->add_subcommand("fidelity", "DSA vs dense on real text: top-1 agreement, KL, attention-mass recall");
  fid->add_option("--text", f.texts, "Text file(s) to read")->required()->check(CLI::ExistingFile);
  fid->add_option("-c,--context", f.context, "Tokens of each text to read")->capture_default_str()->check(CLI::PositiveNumber);
  fid->add_option("--eval-tokens", f.eval_tokens, "Compare the next-token distributions at the last N positions")
      ->capture_default_str()->check(CLI::PositiveNumber);
  fid->add_option("--recall-every", f.recall_every, "Measure attention-mass recall at every N-th position (0: off)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  fid->add_option("--stored-kv", f.stored_kv,
                  "Reload the read text's caches as a stored context would (f16 exact, q8 8-bit) before the compared "
                  "positions: run once with each to measure what 8-bit storage changes")
      ->check(CLI::IsMember({"f16", "q8"}));
  add_attention_options(fid, f.attn);
  fid->callback([] { globals().command = [] { return run_fidelity(f); }; });

  static PasskeyOpts p;
  CLI::App* pk = ev->add_subcommand("passkey", "Passkey / needle retrieval accuracy by context length, dense and DSA");
  pk->add_option("--lengths", p.lengths, "Prompt lengths in tokens")->delimiter(',')->capture_default_str();
  pk->add_option("--depths", p.depths, "Needle depths in percent")->delimiter(',')->capture_default_str()->check(CLI::Range(0, 100));
  pk->add_option("--trials", p.trials, "Needles per length and depth")->capture_default_str()->check(CLI::PositiveNumber);
  pk->add_option("--formats", p.formats,
                 "llama (llama.cpp passkey), ruler (RULER niah_single), multikey (RULER niah_multikey: one needle per depth, "
                 "all in one haystack, each asked in turn; the haystack is read once)")
      ->delimiter(',')->capture_default_str()->check(CLI::IsMember({"llama", "ruler", "multikey"}));
  pk->add_option("--modes", p.modes, "Attention modes to compare")->delimiter(',')->capture_default_str()->check(CLI::IsMember({"dense", "dsa"}));
  pk->add_option("--seed", p.seed, "Seed for the needles")->capture_default_str();
  add_attention_options(pk, p.attn);
  pk->callback([] { globals().command = [] { return run_passkey(p); }; });

  register_eval_qa(ev);
}

}  // namespace docdsa::cli
