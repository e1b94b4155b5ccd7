#include "docdsa/engine/chat_template.h"

#include <algorithm>

namespace docdsa {

Result<ChatTemplate> ChatTemplate::from_template_text(std::string_view jinja) {
  ChatTemplate t;
  if (jinja.empty() || jinja.find("<|im_start|>") != std::string_view::npos) {
    t.kind_ = Kind::kChatML;
    // A default system prompt written as a literal: '<|im_start|>system\n...<|im_end|>', the
    // newline raw (SmolLM2) or as the escape \n (Qwen2.5, whose first such literals belong to
    // the tool-use branch and to a user-given system message: the first constant one wins).
    for (const std::string_view open : {std::string_view("<|im_start|>system\n"), std::string_view("<|im_start|>system\\n")}) {
      // end: the <|im_end|> closing the current literal; bad: literals starting before it hold a
      // quote, backslash or {{ (not constant). Both are reused while they lie ahead: linear time.
      size_t end = 0, bad = 0;
      for (size_t at = jinja.find(open); at != std::string_view::npos && t.default_system_.empty(); at = jinja.find(open, at + 1)) {
        const size_t from = at + open.size();
        if (end < from) {
          end = jinja.find("<|im_end|>", from);
          if (end == std::string_view::npos) break;
          const std::string_view lit = jinja.substr(from, end - from);
          const size_t q = lit.find_last_of("'\\"), b = lit.rfind("{{");
          bad = from + std::max(q == std::string_view::npos ? 0 : q + 1, b == std::string_view::npos ? 0 : b + 2);
        }
        if (from >= bad && end > from) t.default_system_ = std::string(jinja.substr(from, end - from));
      }
      if (!t.default_system_.empty()) break;
    }
    return t;
  }
  if (jinja.find("<|start_header_id|>") != std::string_view::npos) {
    t.kind_ = Kind::kLlama3;
    t.bos_in_template_ = jinja.find("bos_token") != std::string_view::npos;
    return t;
  }
  return make_error(ErrorCode::kUnsupported, "chat template is neither ChatML nor Llama-3 (use --raw to prompt without one)");
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_assistant) const {
  std::string out;
  if (kind_ == Kind::kChatML) {
    if (!default_system_.empty() && (messages.empty() || messages.front().role != "system"))
      out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
    for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add_assistant) out += "<|im_start|>assistant\n";
    return out;
  }
  if (bos_in_template_) out += "<|begin_of_text|>";
  for (const auto& m : messages)
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
  if (add_assistant) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace docdsa
