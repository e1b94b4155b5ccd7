// UTF-8 encoding of one code point, shared by the tokenizer and the transcript parsers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace docdsa {

inline void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Where a cut at `max_bytes` may fall without splitting a character: `max_bytes` moved back
// to the start of the sequence it would cut (continuation bytes are 10xxxxxx).
inline size_t utf8_cut_point(std::string_view s, size_t max_bytes) {
  if (max_bytes >= s.size()) return s.size();
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}
// At most `max_bytes` of `s`, cut at a character boundary (titles, snippets, previews).
inline std::string utf8_prefix(std::string_view s, size_t max_bytes) {
  return std::string(s.substr(0, utf8_cut_point(s, max_bytes)));
}
// The length of `s` without a multi-byte sequence left incomplete at its end (text cut at a
// token limit can stop inside a character); invalid bytes elsewhere are left alone.
inline size_t utf8_complete_length(std::string_view s) {
  size_t lead = s.size(), k = 0;  // the last non-continuation byte, and the bytes after it
  while (lead > 0 && k < 4 && (static_cast<unsigned char>(s[lead - 1]) & 0xC0) == 0x80) --lead, ++k;
  if (lead == 0) return s.size();
  const unsigned char c = static_cast<unsigned char>(s[lead - 1]);
  const size_t need = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 && c < 0xF0 ? 2 : c >= 0xC0 && c < 0xE0 ? 1 : 0;
  return need > k ? lead - 1 : s.size();
}

}  // namespace docdsa
