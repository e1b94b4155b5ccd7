// docdsa tokenize [--json] [--no-special] TEXT
#include <iostream>

#include "cli_common.h"
#include "docdsa/engine/tokenizer.h"

namespace docdsa::cli {

void register_tokenize(CLI::App& app) {
  struct Opts {
    std::string text;
    bool no_special = false;
    bool add_special = false;
  };
  static Opts o;
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of TEXT for the model's tokenizer");
  sub->add_option("text", o.text, "Text to tokenize ('-' reads standard input)")->required();
  sub->add_flag("--no-special", o.no_special, "Treat special-token text like <|im_start|> as plain text");
  sub->add_flag("--add-special", o.add_special, "Add BOS/EOS where the model asks for them");
  sub->callback([] {
    globals().command = [] {
      int rc = kOk;
      auto model = load_model_or_report(&rc);
      if (!model) return rc;
      std::string text = o.text;
      if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
      const Tokenizer& tok = model->tokenizer();
      const auto ids = tok.encode(text, o.add_special, !o.no_special);
      if (globals().json) {
        nlohmann::json pieces = nlohmann::json::array();
        for (TokenId id : ids) pieces.push_back(tok.token_text(id));
        print_json({{"ids", ids}, {"n_tokens", ids.size()}, {"pieces", pieces}});
      } else {
        for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
        std::cout << "\n";
      }
      return static_cast<int>(kOk);
    };
  });
}

}  // namespace docdsa::cli
