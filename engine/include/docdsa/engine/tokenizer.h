// Tokenizer defined by the GGUF file: byte-level BPE ("gpt2" model) with the pre-tokenizer
// the file names (smollm, gpt-2, llama-bpe, qwen2, ...), or SentencePiece-style ("llama").
// Produces the same ids as llama.cpp for the same file and text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "docdsa/engine/gguf.h"
#include "docdsa/engine/result.h"

namespace docdsa {

using TokenId = int32_t;

enum class TokenType : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

class Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);
  ~Tokenizer();

  // parse_special: text like "<|im_start|>" becomes the control token (as llama.cpp's
  // parse_special); user-defined tokens are always matched. Without it no control token ever
  // comes out of the text (document content is data, never a turn marker). add_special:
  // BOS/EOS as the file asks.
  std::vector<TokenId> encode(std::string_view text, bool add_special = false, bool parse_special = true) const;
  // Bytes of one token as it appears in text (control tokens render as their text when
  // `render_special`, else as nothing).
  std::string token_to_piece(TokenId id, bool render_special = true) const;
  std::string decode(const std::vector<TokenId>& ids, bool render_special = false) const;

  int n_vocab() const { return static_cast<int>(tokens_.size()); }
  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  bool is_end_of_generation(TokenId id) const;
  const std::string& token_text(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
  TokenType token_type(TokenId id) const { return types_[static_cast<size_t>(id)]; }
  std::optional<TokenId> find(std::string_view text) const;
  const std::string& model() const { return model_; }
  const std::string& pre() const { return pre_; }

 private:
  Tokenizer() = default;
  enum class Pre { kGpt2, kSmollm, kLlama3, kQwen2 };
  void encode_fragment(std::string_view text, std::vector<TokenId>* out) const;
  void bpe_word(std::string_view word, std::vector<TokenId>* out) const;
  void spm_fragment(std::string_view text, std::vector<TokenId>* out) const;
  // The id of a piece of text in the vocabulary, or -1; control tokens are never text.
  TokenId text_token(const std::string& piece) const;

  std::string model_;  // "gpt2" or "llama"
  std::string pre_;
  Pre pre_kind_ = Pre::kGpt2;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string, TokenId> lookup_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank
  std::vector<TokenId> special_;                     // matched in text, longest first
  std::vector<TokenId> eog_;
  TokenId bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = true;
  TokenId byte_tokens_[256] = {};  // SentencePiece <0xXX> tokens
  std::vector<uint8_t> byte_value_;  // SentencePiece: the byte of each BYTE-type token (checked at load)
};

}  // namespace docdsa
