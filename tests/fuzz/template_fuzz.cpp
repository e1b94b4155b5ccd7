// libFuzzer target: arbitrary bytes as a prompt template (resources/prompts/*.txt, which
// users edit), then the prompt built from it with the tiny test model's chat template and
// tokenised. Input: the template, then optionally "\0" and a title (document metadata, also
// hostile), then "\0" and the document text.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "docdsa/app/doc_prompt.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)docdsa::fuzz::tiny_model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t a = in.find('\0');
  const size_t b = a == std::string::npos ? a : in.find('\0', a + 1);
  const std::string text = in.substr(0, a);
  const std::string title = a == std::string::npos ? "Title" : in.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  const std::string document = b == std::string::npos ? "The document." : in.substr(b + 1);
  auto t = docdsa::app::parse_template(text, "fuzz-template.txt");
  if (!t.ok()) return 0;
  const docdsa::Model& model = docdsa::fuzz::tiny_model();
  // As the ask flow (question slot) and the summary flow (no question) call it.
  for (const bool ask : {true, false}) {
    std::map<std::string, std::string> vars{{"title", title}};
    if (ask) vars["question"] = "";
    const docdsa::app::SplitPrompt sp = docdsa::app::build_prompt(model, *t, document, vars);
    if (sp.doc_offset > sp.prefix.size() || sp.prefix.compare(sp.doc_offset, document.size(), document) != 0) {
      std::fprintf(stderr, "fuzz: the document is not at doc_offset %zu of the prefix\n", sp.doc_offset);
      std::abort();
    }
    (void)model.tokenizer().encode(sp.prefix, true);
  }
  return 0;
}
