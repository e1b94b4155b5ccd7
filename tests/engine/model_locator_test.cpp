// Model choice without downloads: short names and aliases, the default as the best installed
// model, clear errors for names not installed or unknown. Model folders are temporary
// directories holding tiny synthetic GGUFs under the known file names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "docdsa/engine/model_locator.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSmall = "SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr const char* kBetter = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

class ModelLocator : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = docdsa::test::scratch_dir() / ("docdsa-locator-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    a_ = (root_ / "a").string();
    b_ = (root_ / "b").string();
    fs::create_directories(a_);
    fs::create_directories(b_);
  }
  void TearDown() override { fs::remove_all(root_); }
  static std::string put(const std::string& dir, const std::string& file) {
    testing::TinyModelOptions o;
    const std::string p = (fs::path(dir) / file).string();
    testing::write_tiny_model(p, o);
    return p;
  }
  std::vector<std::string> dirs() const { return {a_, b_}; }
  fs::path root_;
  std::string a_, b_;
};

TEST_F(ModelLocator, RegistryNamesAndAliases) {
  ASSERT_GE(known_models().size(), 2u);
  const KnownModel* small = find_known_model("smollm2-135m");
  const KnownModel* better = find_known_model("qwen2.5-coder-1.5b");
  ASSERT_NE(small, nullptr);
  ASSERT_NE(better, nullptr);
  EXPECT_EQ(find_known_model("small"), small);
  EXPECT_EQ(find_known_model("Better"), better);
  EXPECT_EQ(find_known_model(kBetter), better);
  EXPECT_EQ(find_known_model("QWEN2.5-CODER-1.5B"), better);
  EXPECT_EQ(find_known_model("qwen"), nullptr);
  EXPECT_STREQ(small->file, kDefaultModelFile);  // the tests' small model
  EXPECT_GT(better->quality, small->quality);
  EXPECT_EQ(better->context, 32768);
  EXPECT_EQ(small->context, 8192);
  EXPECT_STREQ(small->speed, "fast");
  EXPECT_EQ(better->bytes, 1117320768);
  EXPECT_EQ(&known_models().front(), better);  // best first
}

TEST_F(ModelLocator, ShortNameFindsTheFileInAnyFolder) {
  const std::string small = put(a_, kSmall);
  const std::string better = put(b_, kBetter);
  EXPECT_EQ(*locate_model_in("smollm2-135m", dirs()), small);
  EXPECT_EQ(*locate_model_in("small", dirs()), small);
  EXPECT_EQ(*locate_model_in("qwen2.5-coder-1.5b", dirs()), better);
  EXPECT_EQ(*locate_model_in("better", dirs()), better);
  EXPECT_EQ(*locate_model_in(kBetter, dirs()), better);
}

TEST_F(ModelLocator, DefaultIsTheBestInstalled) {
  auto none = locate_model_in("", dirs());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_NE(none.error().message.find(a_), std::string::npos) << none.error().message;
  EXPECT_NE(none.error().message.find("scripts/fetch_model.sh"), std::string::npos);

  const std::string small = put(b_, kSmall);
  EXPECT_EQ(*default_model_path(dirs()), small);
  const std::string other = put(a_, "my-own-model.gguf");  // unknown files are never the default
  EXPECT_EQ(*default_model_path(dirs()), small);
  const std::string better = put(b_, kBetter);
  EXPECT_EQ(*default_model_path(dirs()), better);
  EXPECT_EQ(*locate_model_in("", dirs()), better);

  const auto all = installed_models(dirs());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].path, better);
  EXPECT_EQ(all[1].path, small);
  EXPECT_EQ(all[2].path, other);
  EXPECT_EQ(all[2].known, nullptr);
  EXPECT_EQ(all[0].bytes, static_cast<int64_t>(fs::file_size(better)));
}

TEST_F(ModelLocator, FirstFolderWins) {
  const std::string first = put(a_, kSmall);
  put(b_, kSmall);
  EXPECT_EQ(*default_model_path(dirs()), first);
  EXPECT_EQ(installed_models(dirs()).size(), 1u);
}

TEST_F(ModelLocator, NameNotInstalledSaysHowToFetchIt) {
  put(a_, kSmall);
  auto r = locate_model_in("qwen2.5-coder-1.5b", dirs());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("scripts/fetch_model.sh better"), std::string::npos) << r.error().message;
}

TEST_F(ModelLocator, UnknownNameAndPaths) {
  auto r = locate_model_in("qwen", dirs());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("unknown model 'qwen'"), std::string::npos);
  EXPECT_NE(r.error().message.find("smollm2-135m"), std::string::npos);
  // Paths go through untouched (Model::load names a missing one), and a file beats a name.
  EXPECT_EQ(*locate_model_in("/nonexistent/x.gguf", dirs()), "/nonexistent/x.gguf");
  EXPECT_EQ(*locate_model_in("y.gguf", dirs()), "y.gguf");
  const std::string named_small = put(a_, "small");
  EXPECT_EQ(*locate_model_in(named_small, dirs()), named_small);
}

TEST_F(ModelLocator, ModelDirEnvironmentIsTheOnlyFolder) {
  const char* old = std::getenv("DOCDSA_MODEL_DIR");
  const std::string saved = old ? old : "";
  ::setenv("DOCDSA_MODEL_DIR", a_.c_str(), 1);
  const auto d = model_dirs();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], a_);
  const std::string better = put(a_, kBetter);
  EXPECT_EQ(*locate_model("better"), better);
  const char* env_model = std::getenv("DOCDSA_MODEL");
  if (!env_model || !*env_model) {
    EXPECT_EQ(*locate_model(""), better);
  }
  if (old)
    ::setenv("DOCDSA_MODEL_DIR", saved.c_str(), 1);
  else
    ::unsetenv("DOCDSA_MODEL_DIR");
  if (!old) {
    EXPECT_GE(model_dirs().size(), 2u);
  }
}

}  // namespace
}  // namespace docdsa
