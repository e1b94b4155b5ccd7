// libFuzzer target: arbitrary bytes as an indexer sidecar (.dsaidx, in the user's cache
// directory) for the tiny test model, through Indexer::load; an accepted sidecar then drives a
// short sparse-attention prefill and decode. Random bytes rarely pass the payload checksum,
// so each input is also tried with its checksum recomputed, to reach what lies past it.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/session.h"
#include "fuzz_common.h"

namespace {

// The sidecar header as engine/src/dsa.cpp writes it.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t n_layer, n_kv, head_dim, rank, n_calib;
  uint64_t fingerprint;
};
static_assert(sizeof(Header) == 40);

void load_and_run(const std::vector<uint8_t>& bytes) {
  const std::string path = docdsa::fuzz::write_scratch(".dsaidx", bytes.data(), bytes.size());
  if (path.empty()) return;
  const docdsa::Model& model = docdsa::fuzz::tiny_model();
  auto ix = docdsa::Indexer::load(path, model);
  if (!ix.ok()) return;
  docdsa::SessionParams sp;
  sp.n_ctx = 32;
  sp.n_threads = 1;
  sp.n_batch = 8;
  sp.dsa.top_k = 8;
  sp.dsa.sinks = 1;
  sp.dsa.window = 2;
  sp.indexer = ix->get();
  auto s = docdsa::Session::create(model, sp);
  if (!s.ok()) return;
  std::vector<docdsa::TokenId> ids = model.tokenizer().encode("hello world, hello world, hello world, hello", true);
  if (ids.size() > 24) ids.resize(24);
  if (!(*s)->decode(ids).ok()) return;
  (void)(*s)->decode(std::vector<docdsa::TokenId>{ids.back()});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)docdsa::fuzz::tiny_model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  load_and_run(bytes);
  // The same with the checksum after the payload the header declares made to match.
  if (size < sizeof(Header)) return 0;
  Header h;
  std::memcpy(&h, data, sizeof(h));
  const uint64_t payload = static_cast<uint64_t>(h.n_layer) * h.n_kv * h.rank * h.head_dim * sizeof(float);
  if (h.n_layer > 64 || h.n_kv > 64 || h.rank > 1024 || h.head_dim > 1024) return 0;
  if (payload > size - sizeof(Header) || size - sizeof(Header) - payload < sizeof(uint64_t)) return 0;
  const uint64_t sum = XXH3_64bits(data + sizeof(Header), payload);
  if (std::memcmp(&sum, data + sizeof(Header) + payload, sizeof(sum)) == 0) return 0;
  std::memcpy(bytes.data() + sizeof(Header) + payload, &sum, sizeof(sum));
  load_and_run(bytes);
  return 0;
}
