// Reading input files whole, within limits. A document is held in memory a few times over
// while it is decoded, parsed and chunked, so a multi-gigabyte file (or a text file that is
// one enormous line) would exhaust memory and take the whole batch down; instead it is
// refused up front with a message that names the file and the limit, and the batch goes on.
//
// The limits, chosen well above any real transcript or text PDF (the longest line in the
// shared corpus is under 9 KiB, the largest transcript under 1 MiB):
//   kMaxTextFileBytes  256 MiB  SRT, VTT and text files (checked before reading)
//   kMaxLineBytes        1 MiB  one line of a transcript or text file, after decoding
//   kMaxPdfBytes         1 GiB  PDF files (checked before reading; Poppler loads it all too)
#pragma once

#include <cstdint>
#include <string>

#include "docdsa/engine/result.h"

namespace docdsa::ingest {

inline constexpr int64_t kMaxTextFileBytes = int64_t{256} << 20;
inline constexpr int64_t kMaxLineBytes = int64_t{1} << 20;
inline constexpr int64_t kMaxPdfBytes = int64_t{1} << 30;

// "256 MiB", "1 GiB", "1000 bytes": a limit as a person reads it.
std::string format_size(int64_t bytes);

// The whole file, read once. A regular file larger than `max_bytes` is refused from its size
// before anything is read; a stream that turns out larger while reading is refused too.
// Errors: kNotFound (cannot open), kIo (read error, directory), kOutOfRange (too large).
// Callers hash and parse these same bytes (PDFs too: Poppler loads them from memory).
Result<std::string> read_file_limited(const std::string& path, int64_t max_bytes);

}  // namespace docdsa::ingest
