// Shared by the document fuzz targets: chunks a document as `docdsa add` does (with a cheap
// token count) and aborts when a chunk's offsets fall outside the full text.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "docdsa/ingest/document.h"

namespace docdsa::fuzz {

inline void check_chunks(const docdsa::ingest::Document& doc) {
  const std::string text = docdsa::ingest::full_text(doc);
  const auto chunks =
      docdsa::ingest::chunk_document(doc, 64, [](const std::string& s) { return static_cast<int>(s.size() / 4); });
  for (const auto& c : chunks)
    if (c.char_begin < 0 || c.char_end < c.char_begin || c.char_end > static_cast<int64_t>(text.size())) {
      std::fprintf(stderr, "fuzz: chunk %d has char range %lld-%lld outside the text (%zu)\n", c.index,
                   static_cast<long long>(c.char_begin), static_cast<long long>(c.char_end), text.size());
      std::abort();
    }
}

}  // namespace docdsa::fuzz
