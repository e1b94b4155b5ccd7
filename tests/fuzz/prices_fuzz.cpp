// libFuzzer target: arbitrary bytes as a price table (--prices FILE, prices.json), then the
// money figures and the cost table printed with it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "docdsa/app/doc_prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  auto p = docdsa::app::parse_prices(json, "fuzz-prices.json");
  if (!p.ok()) return 0;
  docdsa::CostReport c;
  c.top_k = 2048;
  c.prompt_tokens = 100000;
  c.decoded_tokens = 200;
  c.attn_flops_dense = 4e12;
  c.attn_flops_dsa = 1e11;
  c.prefill_seconds = 10;
  c.decode_seconds = 2;
  (void)docdsa::app::money_json(c, *p).dump();
  (void)docdsa::app::cost_table(c, *p);
  return 0;
}
