#include "repetition_options.h"

namespace docdsa::cli {

void add_repetition_options(CLI::App* sub, SamplerParams& p) {
  const std::string g = "Repetition (over the generated text only)";
  sub->add_option("--repeat-penalty", p.repeat_penalty, "Penalty for tokens among the last --repeat-last-n generated (1: off)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(g);
  sub->add_option("--repeat-last-n", p.repeat_last_n, "Generated tokens the repeat penalty looks at")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(g);
  sub->add_option("--dry-multiplier", p.dry_multiplier,
                  "DRY: penalty for extending a sequence already generated, multiplier x base^(length - allowed) (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->group(g);
  sub->add_option("--dry-base", p.dry_base, "DRY: growth of the penalty with each further repeated token")
      ->check(CLI::Range(1.0, 100.0))
      ->capture_default_str()
      ->group(g);
  sub->add_option("--dry-allowed-length", p.dry_allowed_length, "DRY: repeated tokens allowed before the penalty starts")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str()
      ->group(g);
  sub->add_option("--no-repeat-ngram", p.ngram_size,
                  "Never let an n-gram of this many tokens occur more than --ngram-max times (0: off)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str()
      ->group(g);
  sub->add_option("--ngram-max", p.ngram_max, "Occurrences an n-gram may have under --no-repeat-ngram")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str()
      ->group(g);
}

}  // namespace docdsa::cli
