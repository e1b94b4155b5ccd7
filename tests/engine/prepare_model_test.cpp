// Weights packed once per model, when the model gets its CPU backend (CpuBackend::prepare,
// Model::prepare_weights): every packable matrix weight holds its GEMM form after the first
// Session::create, a second session shares the same forms, and the file pages of the rows that
// were packed are no longer resident in the process (peak RSS stays near one copy of the model).
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/kernels/gemm.h"

namespace docdsa {
namespace {

// Resident bytes of this process's mappings of `path` (/proc/self/smaps).
uint64_t mapped_rss(const std::string& path) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  uint64_t kb = 0;
  while (std::getline(f, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(' ') != std::string::npos && line.rfind("Rss:", 0) != 0) {
      in = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
      continue;
    }
    if (in && line.rfind("Rss:", 0) == 0) kb += std::stoull(line.substr(4));
  }
  return kb * 1024;
}

TEST(PackOnce, SessionCreatePacksEveryWeightOnceAndReleasesTheRows) {
  const char* p = std::getenv("DOCDSA_TEST_MODEL");
  ASSERT_NE(p, nullptr) << "DOCDSA_TEST_MODEL is not set (run through ctest, after scripts/fetch_model.sh)";
  auto m = Model::load(p);
  ASSERT_TRUE(m.ok()) << m.error().message;
  const Model& model = **m;
  const LayerWeights& l0 = model.layer(0);
  if (!kernels::gemm_should_pack(l0.wq.type)) GTEST_SKIP() << "this CPU keeps matmul_tile (no AVX-512 VNNI)";
  EXPECT_FALSE(l0.wq.prepared) << "packed before any backend asked";
  // Touch every weight row, as a lazy first product would, so the release is what lowers RSS.
  const uint64_t file = std::ifstream(p, std::ios::ate | std::ios::binary).tellg();
  volatile uint8_t sink = 0;
  for (int il = 0; il < model.config().n_layer; ++il)
    for (const Weight* w : {&model.layer(il).wq, &model.layer(il).ffn_up, &model.layer(il).ffn_down})
      for (uint64_t o = 0; o < static_cast<uint64_t>(w->n_out) * w->row_stride; o += 4096) sink = sink + w->data[o];
  const uint64_t before = mapped_rss(p);

  SessionParams sp;
  sp.n_ctx = 256;
  auto s1 = Session::create(model, sp);
  ASSERT_TRUE(s1.ok()) << s1.error().message;
  std::vector<const Weight*> packed;
  for (int il = 0; il < model.config().n_layer; ++il) {
    const LayerWeights& l = model.layer(il);
    for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
      if (kernels::gemm_should_pack(w->type)) {
        EXPECT_TRUE(w->prepared) << "layer " << il << " weight of type " << kernels::info(w->type).name << " not packed";
        packed.push_back(w);
      }
  }
  ASSERT_FALSE(packed.empty());
  const uint64_t after = mapped_rss(p);
  EXPECT_LT(after, before / 2) << "file pages of packed weights still resident: " << after << " of " << file << " bytes";

  const void* first = l0.wq.prepared.get();
  auto s2 = Session::create(model, sp);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(first, model.layer(0).wq.prepared.get()) << "a second session packed again";
  // The released rows still read (they fault back in from the file) and the sessions compute.
  const std::vector<TokenId> toks = model.tokenizer().encode("Packing once keeps the logits.", true);
  ASSERT_TRUE((*s1)->decode(toks).ok());
  ASSERT_TRUE((*s2)->decode(toks).ok());
  const int V = model.config().n_vocab;
  for (int i = 0; i < V; ++i) ASSERT_EQ((*s1)->logits()[i], (*s2)->logits()[i]) << i;
}

}  // namespace
}  // namespace docdsa
