// Code point classes for the pre-tokenizers, UTF-8 decoding, and GPT-2's byte <-> unicode map.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace docdsa::unicode {

constexpr uint32_t kOutOfRange = 0xFFFFFFFFu;

struct Flags {
  bool letter = false;
  bool number = false;
  bool whitespace = false;
  bool assigned = false;  // false for unassigned code points and past the end
};
Flags flags(uint32_t cp);

// Decodes UTF-8 into code points; each invalid byte becomes U+FFFD and counts one byte.
// `offsets` (optional) receives the byte offset of each code point.
std::vector<uint32_t> decode_utf8(std::string_view s, std::vector<size_t>* offsets = nullptr);
void append_utf8(uint32_t cp, std::string* out);
size_t utf8_len(unsigned char first_byte);

// GPT-2 byte-level mapping: each byte to a printable code point, as UTF-8 text.
const std::string& byte_to_text(uint8_t b);
// Inverse; returns -1 when `cp` is not in the map.
int text_to_byte(uint32_t cp);

}  // namespace docdsa::unicode
