#include "unicode.h"

#include "docdsa/engine/utf8.h"

#include <algorithm>
#include <array>

namespace docdsa::unicode {
namespace {

struct CodepointRange {
  uint32_t first, last;
};
#include "unicode_tables.inc"

template <size_t N>
bool in(const CodepointRange (&ranges)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](uint32_t v, const CodepointRange& r) { return v < r.first; });
  if (it == std::begin(ranges)) return false;
  --it;
  return cp >= it->first && cp <= it->last;
}

struct ByteMap {
  std::array<std::string, 256> to_text;
  std::array<int, 512> from_cp{};
  ByteMap() {
    from_cp.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(cp, &to_text[static_cast<size_t>(b)]);
      from_cp[cp] = b;
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

Flags flags(uint32_t cp) {
  Flags f;
  if (cp > 0x10FFFF) return f;
  // ASCII fast path.
  if (cp < 0x80) {
    f.assigned = true;
    f.letter = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    f.number = cp >= '0' && cp <= '9';
    f.whitespace = cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return f;
  }
  f.assigned = !in(kUnassignedRanges, cp);
  f.letter = in(kLetterRanges, cp);
  f.number = !f.letter && in(kNumberRanges, cp);
  f.whitespace = in(kWhitespaceRanges, cp);
  return f;
}

size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

std::vector<uint32_t> decode_utf8(std::string_view s, std::vector<size_t>* offsets) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = utf8_len(c);
    uint32_t cp = 0xFFFD;
    bool ok = len > 1 && i + len <= s.size();
    if (len == 1 && c < 0x80) {
      cp = c;
      ok = true;
    } else if (ok) {
      cp = c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len && ok; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) ok = false;
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    if (!ok) {
      cp = 0xFFFD;
      len = 1;
    }
    if (offsets) offsets->push_back(i);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_utf8(uint32_t cp, std::string* out) { docdsa::append_utf8(cp, out); }

const std::string& byte_to_text(uint8_t b) { return byte_map().to_text[b]; }
int text_to_byte(uint32_t cp) { return cp < 512 ? byte_map().from_cp[cp] : -1; }

}  // namespace docdsa::unicode
