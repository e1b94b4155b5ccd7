// Chat prompt formats recognised from the GGUF's `tokenizer.chat_template`: ChatML
// (<|im_start|>role ... <|im_end|>) and Llama-3 (<|start_header_id|>role<|end_header_id|>).
// The Jinja text itself is not executed; its family is detected and the format rebuilt,
// including a default system prompt written literally in the template.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Kind { kChatML, kLlama3 };
  static Result<ChatTemplate> from_template_text(std::string_view jinja);
  ChatTemplate() = default;

  Kind kind() const { return kind_; }
  const char* name() const { return kind_ == Kind::kChatML ? "chatml" : "llama3"; }
  const std::string& default_system() const { return default_system_; }
  // The prompt text, ending with the assistant's header when `add_assistant`.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_assistant = true) const;

 private:
  Kind kind_ = Kind::kChatML;
  std::string default_system_;
  bool bos_in_template_ = false;
};

}  // namespace docdsa
