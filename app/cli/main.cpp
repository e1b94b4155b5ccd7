// docdsa: the command line. Each subcommand lives in its own cmd_*.cpp.
#include <csignal>

#include "cli_common.h"

int main(int argc, char** argv) {
  using namespace docdsa::cli;
  CLI::App app{"DocDSA: read long documents with a local language model and sparse attention", "docdsa"};
  app.set_version_flag("--version", "docdsa 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();
  add_global_options(app);
  register_tokenize(app);
  register_generate(app);
  register_bench(app);
  register_library(app);
  register_calibrate(app);
  register_ask(app);
  register_eval(app);
  register_models(app);
  register_cache(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  setup_logging();
  return globals().command ? globals().command() : kUsage;
}
