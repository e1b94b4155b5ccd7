// The better model's chat format comes from its GGUF: Qwen2.5's tokenizer.chat_template is
// recognised as ChatML with its default system prompt, its markers are single special tokens,
// and its end-of-sequence token is <|im_end|>, so an answer stops at the end of its turn.
// Needs the real Qwen GGUF (label model): $DOCDSA_TEST_BETTER_MODEL, else the installed one;
// skipped (reported as skipped) when it is absent. Also: the registry of known models agrees
// with scripts/fetch_model.sh, which downloads and verifies them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "docdsa/engine/chat_template.h"
#include "docdsa/engine/gguf.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/model_locator.h"

namespace docdsa {
namespace {

std::string qwen_path() {
  if (const char* p = std::getenv("DOCDSA_TEST_BETTER_MODEL"); p && *p) return std::filesystem::exists(p) ? p : "";
  auto r = locate_model_in("qwen2.5-coder-1.5b", model_dirs());
  return r.ok() ? *r : "";
}

#define REQUIRE_QWEN(path)              \
  const std::string path = qwen_path(); \
  if (path.empty()) GTEST_SKIP() << "Qwen2.5 Coder 1.5B is not installed (scripts/fetch_model.sh better)"

TEST(QwenChatTemplate, ChatMLFromTheGguf) {
  REQUIRE_QWEN(path);
  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto text = (*f)->get_string("tokenizer.chat_template");
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto t = ChatTemplate::from_template_text(*text);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->kind(), ChatTemplate::Kind::kChatML);
  EXPECT_STREQ(t->name(), "chatml");
  // What Qwen's Jinja renders with add_generation_prompt (checked against the template text).
  EXPECT_EQ(t->apply({{"system", "Answer from the document."}, {"user", "Who argues first?"}}),
            "<|im_start|>system\nAnswer from the document.<|im_end|>\n"
            "<|im_start|>user\nWho argues first?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Without a system message the template supplies its own (written with the escape \n).
  EXPECT_EQ(t->default_system(), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(t->apply({{"user", "Hi"}}, false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(QwenChatTemplate, MarkersAreSpecialTokensAndImEndEndsTheAnswer) {
  REQUIRE_QWEN(path);
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  const Model& model = **m;
  EXPECT_EQ(model.chat_template().kind(), ChatTemplate::Kind::kChatML);
  EXPECT_EQ(model.config().n_ctx_train, 32768);
  const Tokenizer& tok = model.tokenizer();
  const std::string prompt = model.chat_template().apply({{"system", "S"}, {"user", "Q"}});
  const auto ids = tok.encode(prompt);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 151644);  // <|im_start|>: one token, not its characters
  EXPECT_EQ(tok.token_text(151644), "<|im_start|>");
  EXPECT_EQ(tok.token_text(151645), "<|im_end|>");
  int starts = 0, ends = 0;
  for (TokenId id : ids) starts += id == 151644, ends += id == 151645;
  EXPECT_EQ(starts, 3);
  EXPECT_EQ(ends, 2);
  EXPECT_EQ(tok.eos(), 151645);  // generation stops at the end of the assistant's turn
  EXPECT_EQ(tok.encode("<|im_end|>"), std::vector<TokenId>{151645});
}

TEST(KnownModels, AgreeWithFetchScript) {
  std::ifstream f(std::string(DOCDSA_SOURCE_DIR) + "/scripts/fetch_model.sh");
  ASSERT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string script = ss.str();
  for (const auto& k : known_models()) {
    EXPECT_NE(script.find(k.file), std::string::npos) << k.file;
    EXPECT_NE(script.find(k.sha256), std::string::npos) << k.name;
    EXPECT_NE(script.find(k.alias), std::string::npos) << k.name;
  }
  EXPECT_NE(script.find("BETTER_BYTES=" + std::to_string(find_known_model("better")->bytes)), std::string::npos);
}

}  // namespace
}  // namespace docdsa
