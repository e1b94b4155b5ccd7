// End to end on the CUDA backend (label gpu; skipped without a GPU or driver): the small model
// under DSA on a short prompt gives the same greedy tokens on the GPU as on the CPU, and the
// same DSA selections up to ties (near-equal indexer scores may swap a few keys at the
// selection's edge, so each selection must share nearly all of its keys with the CPU's).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "docdsa/engine/backend_cuda.h"
#include "docdsa/engine/dsa.h"
#include "docdsa/engine/generate.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"

namespace docdsa {
namespace {

struct Outcome {
  std::vector<TokenId> ids;
  std::map<std::pair<int, int>, std::vector<int32_t>> selections;  // (layer, pos) -> keys
  std::string device;
};

Outcome run(const Model& model, const Indexer& ix, const std::vector<TokenId>& prompt, BackendFactory backend) {
  Outcome out;
  SessionParams sp;
  sp.n_ctx = 512;
  sp.n_batch = 64;
  sp.dsa.top_k = 96;  // far below the prompt's length: most rows are sparse
  sp.dsa.sinks = 4;
  sp.dsa.window = 16;
  sp.indexer = &ix;
  sp.backend = std::move(backend);
  sp.selection_tap = [&out](int layer, int pos, std::span<const int32_t> sel) {
    out.selections[{layer, pos}].assign(sel.begin(), sel.end());
  };
  auto s = Session::create(model, sp);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  if (!s.ok()) return out;
  GenerateParams gp;
  gp.max_tokens = 16;
  gp.sampler.greedy = true;
  auto g = generate(**s, prompt, gp);
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().message);
  if (g.ok()) out.ids = g->ids;
  out.device = (*s)->cost().device;
  return out;
}

TEST(DeviceEndToEnd, CudaGivesTheCpuGreedyTokensAndSelections) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << why;
  const char* path = std::getenv("DOCDSA_TEST_MODEL");
  // A GPU machine may lack the model files (scripts/gpu_check.sh): say so rather than pass.
  if (!path || !std::filesystem::exists(path)) GTEST_SKIP() << "DOCDSA_TEST_MODEL is not set to a model file";
  auto model = Model::load(path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  std::ifstream f(std::string(DOCDSA_SOURCE_DIR) + "/resources/calibration/calibration.txt");
  std::stringstream text;
  text << f.rdbuf();
  auto toks = (*model)->tokenizer().encode(text.str(), true);
  ASSERT_GE(toks.size(), 1400u);
  auto ix = Indexer::calibrate(**model, std::span(toks).first(1024), Indexer::kDefaultRank, 0);
  ASSERT_TRUE(ix.ok()) << ix.error().message;
  // A prompt the indexer was not fitted on.
  const std::vector<TokenId> prompt(toks.begin() + 1024, toks.begin() + 1024 + 300);

  const Outcome cpu = run(**model, **ix, prompt, {});
  const Outcome gpu = run(**model, **ix, prompt, make_cuda_backend);
  EXPECT_EQ(cpu.device, "cpu");
  EXPECT_EQ(gpu.device, "cuda");
  ASSERT_FALSE(cpu.ids.empty());
  EXPECT_EQ(gpu.ids, cpu.ids);

  ASSERT_FALSE(cpu.selections.empty());
  EXPECT_EQ(gpu.selections.size(), cpu.selections.size());
  size_t shared = 0, total = 0;
  for (const auto& [key, c] : cpu.selections) {
    const auto it = gpu.selections.find(key);
    if (it == gpu.selections.end()) {
      ADD_FAILURE() << "no GPU selection for layer " << key.first << " position " << key.second;
      continue;
    }
    const std::set<int32_t> a(c.begin(), c.end()), b(it->second.begin(), it->second.end());
    EXPECT_EQ(a.size(), b.size()) << "layer " << key.first << " position " << key.second;
    size_t same = 0;
    for (int32_t k : a) same += b.count(k);
    // Ties: a few keys at the edge of one selection, never a different selection.
    EXPECT_GE(same, a.size() * 9 / 10) << "layer " << key.first << " position " << key.second;
    shared += same;
    total += a.size();
  }
  EXPECT_GE(static_cast<double>(shared), 0.99 * static_cast<double>(total));
}

}  // namespace
}  // namespace docdsa
