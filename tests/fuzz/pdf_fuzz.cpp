// libFuzzer target: arbitrary bytes (seeded with the corpus's PDFs, mutated) as a .pdf file
// through ingest::load_document (Poppler's text extraction, our layout and segmenting), then
// chunking, as `docdsa add` does. Poppler itself is not instrumented: what this finds is in
// our code or in how we call Poppler.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chunk_check.h"
#include "docdsa/ingest/document.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = docdsa::fuzz::write_scratch(".pdf", data, size);
  if (path.empty()) return 0;
  // Without OCR: Tesseract is not ours to fuzz, and a page of it per input would slow the run
  // a thousandfold (the OCR path has its own tests with damaged and huge pages).
  docdsa::ingest::LoadOptions o;
  o.ocr.enabled = false;
  auto doc = docdsa::ingest::load_document(path, o);
  if (doc.ok()) docdsa::fuzz::check_chunks(*doc);
  return 0;
}
