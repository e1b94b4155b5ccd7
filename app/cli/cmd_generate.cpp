// docdsa generate --prompt TEXT [--max-tokens N] [--greedy] [--raw] [--json]
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>

#include "cli_common.h"
#include "repetition_options.h"
#include "docdsa/app/doc_prompt.h"
#include "docdsa/engine/generate.h"

namespace docdsa::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true); }

}  // namespace

void register_generate(CLI::App& app) {
  struct Opts {
    std::string prompt;
    std::string system;
    std::string file;
    int max_tokens = 256;
    int n_ctx = 0;
    bool greedy = false;
    bool raw = false;
    SamplerParams sampler = answer_sampling();  // loop control on; --greedy chooses greedy
    AttentionOptions attn;
  };
  static Opts o;
  CLI::App* sub = app.add_subcommand("generate", "Complete a prompt with the model (streams the answer)");
  sub->add_option("-p,--prompt", o.prompt, "Prompt text ('-' reads standard input)")->required();
  sub->add_option("-f,--file", o.file, "Text file to read first: the prompt follows the whole document")->check(CLI::ExistingFile);
  sub->add_option("-n,--max-tokens", o.max_tokens, "Most tokens to generate")->check(CLI::PositiveNumber);
  sub->add_option("-c,--ctx", o.n_ctx, "Context size in tokens (default: prompt + max tokens)")->check(CLI::NonNegativeNumber);
  sub->add_flag("--greedy", o.greedy, "Always take the most likely token (deterministic)");
  sub->add_flag("--raw", o.raw, "Send the prompt as is, without the model's chat template");
  sub->add_option("--system", o.system, "System message for the chat template");
  sub->add_option("--temp", o.sampler.temperature, "Sampling temperature")->check(CLI::NonNegativeNumber);
  sub->add_option("--top-k", o.sampler.top_k, "Keep the k most likely tokens (0: all)")->check(CLI::NonNegativeNumber);
  sub->add_option("--top-p", o.sampler.top_p, "Nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--seed", o.sampler.seed, "Random seed");
  add_repetition_options(sub, o.sampler);
  add_attention_options(sub, o.attn);
  sub->callback([] {
    globals().command = [] {
      int rc = kOk;
      auto model = load_model_or_report(&rc);
      if (!model) return rc;
      std::string text = o.prompt;
      if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
      if (text.empty()) return report(make_error(ErrorCode::kInvalidArgument, "the prompt is empty"));
      // Special tokens ("<|im_start|>") count only in markup: the chat template's, or a --raw
      // prompt the person wrote. The document (--file) is always plain text.
      Spans markup = {{0, text.size()}};
      if (!o.file.empty()) {
        std::ifstream in(o.file, std::ios::binary);
        if (!in) return report(make_error(ErrorCode::kIo, o.file + ": cannot read"));
        std::string doc((std::istreambuf_iterator<char>(in)), {});
        const std::string head = "Document:\n";
        markup = {{0, head.size()}, {head.size() + doc.size(), head.size() + doc.size() + 2 + text.size()}};
        text = head + doc + "\n\n" + text;  // document first, question last
      }
      std::vector<TokenId> ids;
      if (o.raw) {
        ids = encode_prompt(model->tokenizer(), text, markup, true);
      } else {  // the user turn (document and prompt) is data inside the chat template
        const SplitPrompt sp = build_prompt(*model, PromptTemplate{o.system, "{document}"}, text, {});
        ids = encode_prompt(model->tokenizer(), sp.prefix, sp.prefix_markup, true);
        const auto tail = encode_prompt(model->tokenizer(), sp.suffix, sp.suffix_markup, false);
        ids.insert(ids.end(), tail.begin(), tail.end());
      }
      std::unique_ptr<Indexer> indexer;
      auto sp = session_params(*model, o.attn, o.n_ctx > 0 ? o.n_ctx : static_cast<int>(ids.size()) + o.max_tokens + 1, indexer);
      if (!sp.ok()) return report(sp.error());
      auto session = Session::create(*model, *sp);
      if (!session.ok()) return report(session.error());
      GenerateParams gp;
      gp.max_tokens = o.max_tokens;
      gp.sampler = o.sampler;
      gp.sampler.greedy = o.greedy;
      gp.cancel = &g_interrupted;
      std::signal(SIGINT, on_sigint);
      const bool json = globals().json;
      if (!json) {
        gp.on_token = [](TokenId, std::string_view piece) {
          std::cout << piece << std::flush;
          return true;
        };
      }
      auto r = generate(**session, ids, gp);
      if (!r.ok()) return report(r.error());
      const double prefill_tps = r->prefill_ms > 0 ? 1000.0 * r->n_prompt / r->prefill_ms : 0.0;
      const double decode_tps = r->decode_ms > 0 && !r->ids.empty() ? 1000.0 * r->ids.size() / r->decode_ms : 0.0;
      if (json) {
        print_json({{"text", r->text},
                    {"ids", r->ids},
                    {"n_prompt_tokens", r->n_prompt},
                    {"n_generated_tokens", r->ids.size()},
                    {"stop_reason", r->stop_reason},
                    {"timings", {{"prefill_ms", r->prefill_ms}, {"decode_ms", r->decode_ms},
                                 {"prefill_tokens_per_s", prefill_tps}, {"decode_tokens_per_s", decode_tps}}},
                    {"cost", cost_json((*session)->cost())},
                    {"model", model->path()},
                    {"threads", (*session)->n_threads()}});
      } else {
        std::cout << "\n";
        std::cerr << "[" << r->n_prompt << " prompt tokens at " << static_cast<int>(prefill_tps) << " tok/s, " << r->ids.size()
                  << " generated at " << static_cast<int>(decode_tps) << " tok/s, stop: " << r->stop_reason << "]\n";
      }
      return r->stop_reason == "cancelled" ? static_cast<int>(kInterrupted) : static_cast<int>(kOk);
    };
  });
}

}  // namespace docdsa::cli
