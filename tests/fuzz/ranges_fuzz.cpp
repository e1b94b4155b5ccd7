// libFuzzer target: arbitrary text as a page range (--pages) and a time range (--time), as
// typed on the command line or in the desktop app, and the labels shown for them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "docdsa/app/doc_prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Command-line arguments and Qt strings carry no NUL: cut there as they would.
  std::string s(reinterpret_cast<const char*>(data), size);
  s = s.substr(0, s.find('\0'));
  if (auto r = docdsa::app::parse_pages(s); r.ok()) (void)r->label();
  if (auto r = docdsa::app::parse_times(s); r.ok()) (void)r->label();
  return 0;
}
