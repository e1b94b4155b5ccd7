// Writes the generated seed inputs for the fuzz targets into DIR/<target>/: tiny GGUF models
// from the test writer (several architectures and weight types) and indexer sidecars
// calibrated on the tiny model the sidecar target loads. Usage: fuzz_make_seeds DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "docdsa/engine/dsa.h"
#include "fuzz_common.h"

namespace fs = std::filesystem;
using docdsa::kernels::DType;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  std::error_code ec;
  fs::create_directories(dir / "gguf", ec);
  fs::create_directories(dir / "sidecar", ec);
  struct Variant {
    const char* name;
    docdsa::testing::TinyModelOptions opt;
  };
  std::vector<Variant> variants(4);
  variants[0] = {"tiny-llama-q4_1.gguf", {}};
  variants[1].name = "tiny-qwen2-q8_0.gguf";
  variants[1].opt.arch = "qwen2";
  variants[1].opt.weight_type = DType::Q8_0;
  variants[1].opt.n_layer = 1;
  variants[1].opt.n_embd = 32;
  variants[1].opt.n_ff = 64;
  variants[2].name = "tiny-llama-f16-untied.gguf";
  variants[2].opt.weight_type = DType::F16;
  variants[2].opt.n_layer = 1;
  variants[2].opt.n_embd = 32;
  variants[2].opt.n_ff = 64;
  variants[2].opt.tied_output = false;
  variants[3].name = "tiny-llama-q4_0-mha.gguf";
  variants[3].opt.weight_type = DType::Q4_0;
  variants[3].opt.n_layer = 1;
  variants[3].opt.n_embd = 32;
  variants[3].opt.n_head_kv = 4;
  for (const auto& v : variants) docdsa::testing::write_tiny_model((dir / "gguf" / v.name).string(), v.opt);

  // The template target's input with its optional parts: template, NUL, title, NUL, document.
  fs::create_directories(dir / "template", ec);
  const std::string tmpl =
      "[system]\nAnswer from the document.\n[user]\nDocument \"{title}\":\n{document}\n\nQuestion: {question}\n";
  for (const auto& [name, title] : {std::pair<std::string, std::string>{"ask-title-doc", "A {title} with {document} in it"},
                                    {"ask-marker-title", std::string("\x01Q\x01 and \x01"
                                                                     "D\x01")}}) {
    const std::string seed = tmpl + '\0' + title + '\0' + "[page 1]\nSome text.\n";
    std::ofstream((dir / "template" / name).string(), std::ios::binary) << seed;
  }

  const docdsa::Model& model = docdsa::fuzz::tiny_model();
  const auto tokens = model.tokenizer().encode(
      "hello world. The quick brown fox jumps over the lazy dog; hello again, world, and goodbye.", true);
  for (const int rank : {4, 8}) {
    auto ix = docdsa::Indexer::calibrate(model, tokens, rank, 1);
    if (!ix.ok()) {
      std::fprintf(stderr, "fuzz seeds: calibrate: %s\n", ix.error().message.c_str());
      return 1;
    }
    if (auto st = (*ix)->save((dir / "sidecar" / ("tiny-r" + std::to_string(rank) + ".dsaidx")).string()); !st.ok()) {
      std::fprintf(stderr, "fuzz seeds: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  std::printf("fuzz seeds: written to %s\n", dir.c_str());
  return 0;
}
