// Answers end where the model ends them: every end-of-generation token a real GGUF declares
// (tokenizer.ggml.eos_token_id, eot_token_id, eom_token_id) and every end-of-turn or
// end-of-text control token in its vocabulary stops generate(). Checked on the small model
// and, when installed, the better one (Qwen: <|im_end|> and <|endoftext|>).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "docdsa/engine/gguf.h"
#include "docdsa/engine/tokenizer.h"

namespace docdsa {
namespace {

void check_end_tokens(const std::string& path, const std::vector<std::string>& must_end) {
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto t = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(t.ok()) << t.error().message;
  const Tokenizer& tok = **t;
  int declared = 0;
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    auto id = (*f)->get_uint(key);
    if (!id.ok()) continue;
    ++declared;
    EXPECT_TRUE(tok.is_end_of_generation(static_cast<TokenId>(*id))) << path << ": " << key << " = " << *id;
  }
  EXPECT_GT(declared, 0) << path << " declares no end token";
  for (const std::string& text : must_end) {
    auto id = tok.find(text);
    ASSERT_TRUE(id.has_value()) << path << ": no " << text;
    EXPECT_TRUE(tok.is_end_of_generation(*id)) << path << ": " << text << " does not end generation";
  }
  // The start of a turn is not an end: a model that opens one is cut by its own end token.
  if (auto start = tok.find("<|im_start|>")) {
    EXPECT_FALSE(tok.is_end_of_generation(*start));
  }
}

TEST(EndOfGeneration, SmallModelStopsAtEveryEndToken) {
  const char* p = std::getenv("DOCDSA_TEST_MODEL");
  ASSERT_TRUE(p && std::filesystem::exists(p)) << "DOCDSA_TEST_MODEL is not set to a model file";
  check_end_tokens(p, {"<|im_end|>", "<|endoftext|>"});
}

TEST(EndOfGeneration, BetterModelStopsAtEveryEndToken) {
  const char* p = std::getenv("DOCDSA_TEST_BETTER_MODEL");
  if (!p || !std::filesystem::exists(p)) GTEST_SKIP() << "the better model is not installed (scripts/fetch_model.sh)";
  check_end_tokens(p, {"<|im_end|>", "<|endoftext|>"});
}

}  // namespace
}  // namespace docdsa
