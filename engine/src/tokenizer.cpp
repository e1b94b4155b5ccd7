// Byte-level BPE and SentencePiece tokenization as defined by the GGUF vocabulary.
//
// Pre-tokenization follows the regular expressions each `tokenizer.ggml.pre` type names;
// they are implemented as hand-written scanners over code points (as llama.cpp does for the
// common ones) because std::regex has no Unicode classes.
#include "docdsa/engine/tokenizer.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <queue>

#include "unicode.h"

namespace docdsa {
namespace {

using unicode::Flags;
using unicode::kOutOfRange;

// A view of code points [begin, end) with out-of-range reads returning kOutOfRange.
struct Span {
  const std::vector<uint32_t>& cps;
  size_t begin, end;
  uint32_t get(size_t pos) const { return pos < end ? cps[pos] : kOutOfRange; }
  Flags flags(size_t pos) const { return pos < end ? unicode::flags(cps[pos]) : Flags{}; }
};

bool any_class(const Flags& f) { return f.whitespace || f.letter || f.number; }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
void split_gpt2(const Span& s, std::vector<size_t>* cuts) {
  size_t pos = s.begin;
  auto cut = [&](size_t p) { cuts->push_back(p); pos = p; };
  while (pos < s.end) {
    const uint32_t cpt = s.get(pos);
    const Flags f = s.flags(pos);
    if (cpt == '\'' && pos + 1 < s.end) {
      const uint32_t n1 = s.get(pos + 1);
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') { cut(pos + 2); continue; }
      if (pos + 2 < s.end) {
        const uint32_t n2 = s.get(pos + 2);
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) { cut(pos + 3); continue; }
      }
    }
    Flags f2 = cpt == ' ' ? s.flags(pos + 1) : f;
    if (f2.letter) {
      size_t p = pos + (cpt == ' ' ? 1 : 0);
      while (s.flags(p).letter) ++p;
      cut(p);
      continue;
    }
    if (f2.number) {
      size_t p = pos + (cpt == ' ' ? 1 : 0);
      while (s.flags(p).number) ++p;
      cut(p);
      continue;
    }
    if (!any_class(f2) && f2.assigned) {
      size_t p = pos + (cpt == ' ' ? 1 : 0);
      while (true) {
        const Flags g = s.flags(p);
        if (any_class(g) || !g.assigned) break;
        ++p;
      }
      cut(p);
      continue;
    }
    size_t n_ws = 0;
    while (s.flags(pos + n_ws).whitespace) ++n_ws;
    if (n_ws > 1 && s.get(pos + n_ws) != kOutOfRange) { cut(pos + n_ws - 1); continue; }
    if (n_ws > 0) { cut(pos + n_ws); continue; }
    cut(pos + 1);
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
void split_llama3(const Span& s, size_t max_digits, std::vector<size_t>* cuts) {
  size_t pos = s.begin;
  auto cut = [&](size_t p) { cuts->push_back(p); pos = p; };
  auto lower = [](uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  while (pos < s.end) {
    const uint32_t cpt = s.get(pos);
    const Flags f = s.flags(pos);
    if (cpt == '\'' && pos + 1 < s.end) {
      const uint32_t n1 = lower(s.get(pos + 1));
      if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') { cut(pos + 2); continue; }
      if (pos + 2 < s.end) {
        const uint32_t n2 = lower(s.get(pos + 2));
        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) { cut(pos + 3); continue; }
      }
    }
    if (!(cpt == '\r' || cpt == '\n' || f.number)) {
      if (f.letter || s.flags(pos + 1).letter) {
        size_t p = pos + 1;
        while (s.flags(p).letter) ++p;
        cut(p);
        continue;
      }
    }
    if (f.number) {
      size_t p = pos;
      while (s.flags(p).number && p - pos < max_digits) ++p;
      cut(p);
      continue;
    }
    Flags f2 = cpt == ' ' ? s.flags(pos + 1) : f;
    if (!any_class(f2) && f.assigned) {
      size_t p = pos + (cpt == ' ' ? 1 : 0);
      while (true) {
        const Flags g = s.flags(p);
        if (any_class(g) || !g.assigned) break;
        ++p;
      }
      while (s.get(p) == '\r' || s.get(p) == '\n') ++p;
      cut(p);
      continue;
    }
    size_t n_ws = 0, last_rn = 0;
    while (s.flags(pos + n_ws).whitespace) {
      const uint32_t c = s.get(pos + n_ws);
      if (c == '\r' || c == '\n') last_rn = pos + n_ws + 1;
      ++n_ws;
    }
    if (last_rn > 0) { cut(last_rn); continue; }
    if (n_ws > 1 && s.get(pos + n_ws) != kOutOfRange) { cut(pos + n_ws - 1); continue; }
    if (n_ws > 0) { cut(pos + n_ws); continue; }
    cut(pos + 1);
  }
}

// \p{N}: every number code point on its own; the text between them as one span each.
void split_digits(const Span& s, std::vector<size_t>* cuts) {
  size_t pos = s.begin;
  while (pos < s.end) {
    if (s.flags(pos).number) {
      cuts->push_back(++pos);
      continue;
    }
    while (pos < s.end && !s.flags(pos).number) ++pos;
    cuts->push_back(pos);
  }
}

// A vocabulary string for an error message: printable ASCII as is, other bytes as \xNN, cut
// short (the file is hostile; its strings may be long or full of control bytes).
std::string quoted(std::string_view s) {
  std::string r = "'";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      r += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      r += buf;
    }
  }
  if (s.size() > 40) r += "...";
  return r + "'";
}

// "<0xNN>" -> NN, else -1.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  int v = -1;
  const auto [end, ec] = std::from_chars(s.data() + 3, s.data() + 5, v, 16);
  return ec == std::errc{} && end == s.data() + 5 ? v : -1;
}

}  // namespace

Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  TRY(std::string_view model, f.get_string("tokenizer.ggml.model"));
  t->model_ = std::string(model);
  if (t->model_ != "gpt2" && t->model_ != "llama")
    return make_error(ErrorCode::kUnsupported, "tokenizer model '" + t->model_ + "' is not supported (gpt2 and llama are)");
  TRY(const gguf::Value* toks, f.get_array("tokenizer.ggml.tokens", gguf::ValueType::kString));
  const size_t n = toks->strings.size();
  if (n == 0 || n > (1u << 24)) return make_error(ErrorCode::kCorrupt, "key tokenizer.ggml.tokens: vocabulary size " + std::to_string(n));
  t->tokens_.reserve(n);
  for (auto s : toks->strings) t->tokens_.emplace_back(s);
  t->types_.assign(n, TokenType::kNormal);
  if (f.find("tokenizer.ggml.token_type")) {
    TRY(const gguf::Value* tt, f.get_array("tokenizer.ggml.token_type", gguf::ValueType::kInt32));
    if (tt->count != n) return make_error(ErrorCode::kCorrupt, "key tokenizer.ggml.token_type: " + std::to_string(tt->count) + " entries for " + std::to_string(n) + " tokens");
    for (size_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, tt->data + 4 * i, 4);
      t->types_[i] = static_cast<TokenType>(v);
    }
  }
  if (f.find("tokenizer.ggml.scores")) {
    TRY(const gguf::Value* sc, f.get_array("tokenizer.ggml.scores", gguf::ValueType::kFloat32));
    if (sc->count != n) return make_error(ErrorCode::kCorrupt, "key tokenizer.ggml.scores: " + std::to_string(sc->count) + " entries for " + std::to_string(n) + " tokens");
    t->scores_.resize(n);
    std::memcpy(t->scores_.data(), sc->data, 4 * n);
  }
  for (size_t i = 0; i < n; ++i) t->lookup_.emplace(t->tokens_[i], static_cast<TokenId>(i));

  if (t->model_ == "gpt2") {
    TRY(const gguf::Value* merges, f.get_array("tokenizer.ggml.merges", gguf::ValueType::kString));
    for (size_t i = 0; i < merges->strings.size(); ++i) {
      std::string_view m = merges->strings[i];
      if (m.find(' ', 1) == std::string_view::npos)
        return make_error(ErrorCode::kCorrupt, "key tokenizer.ggml.merges: entry " + std::to_string(i) + " has no separator");
      t->merge_rank_.emplace(std::string(m), static_cast<int>(i));
    }
    TRY(std::string_view pre, f.get_string_or("tokenizer.ggml.pre", "default"));
    t->pre_ = std::string(pre);
    if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell")
      t->pre_kind_ = Pre::kSmollm;
    else if (pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe")
      t->pre_kind_ = Pre::kLlama3;
    else if (pre == "qwen2" || pre == "stablelm2" || pre == "deepseek-r1-qwen")
      t->pre_kind_ = Pre::kQwen2;
    else if (pre == "gpt-2" || pre == "default" || pre == "mpt" || pre == "olmo" || pre == "jais")
      t->pre_kind_ = Pre::kGpt2;
    else
      return make_error(ErrorCode::kUnsupported, "pre-tokenizer '" + t->pre_ + "' is not supported (smollm, gpt-2, llama-bpe, qwen2 and their aliases are)");
  } else {
    t->pre_ = "spm";
    // BYTE tokens render as their byte: check their form once here, so decoding never parses.
    t->byte_value_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      if (t->types_[i] != TokenType::kByte) continue;
      const int b = parse_byte_token(t->tokens_[i]);
      if (b < 0)
        return make_error(ErrorCode::kCorrupt, "key tokenizer.ggml.tokens: byte token " + std::to_string(i) + " " +
                                                   quoted(t->tokens_[i]) + " is not of the form <0xNN>");
      t->byte_value_[i] = static_cast<uint8_t>(b);
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      t->byte_tokens_[b] = t->text_token(name);  // a control token is never a text byte
    }
  }

  auto id_or = [&](const char* key, int64_t def) -> Result<TokenId> {
    if (!f.find(key)) {
      // SentencePiece files may leave the ids to their defaults (0, 1, 2); a tiny vocabulary
      // would then point past its end.
      if (def >= static_cast<int64_t>(n))
        return make_error(ErrorCode::kCorrupt, std::string("key ") + key + " is missing and its default id " + std::to_string(def) +
                                                   " is outside the " + std::to_string(n) + "-token vocabulary");
      return static_cast<TokenId>(def);
    }
    TRY(uint64_t v, f.get_uint(key));
    if (v >= n) return make_error(ErrorCode::kCorrupt, std::string("key ") + key + ": token id " + std::to_string(v) + " is outside the vocabulary");
    return static_cast<TokenId>(v);
  };
  const bool spm = t->model_ == "llama";
  TRY(t->bos_, id_or("tokenizer.ggml.bos_token_id", spm ? 1 : -1));
  TRY(t->eos_, id_or("tokenizer.ggml.eos_token_id", spm ? 2 : -1));
  TRY(t->unk_, id_or("tokenizer.ggml.unknown_token_id", spm ? 0 : -1));
  TRY(TokenId eot, id_or("tokenizer.ggml.eot_token_id", -1));
  TRY(t->add_bos_, f.get_bool_or("tokenizer.ggml.add_bos_token", spm));
  TRY(t->add_eos_, f.get_bool_or("tokenizer.ggml.add_eos_token", false));
  TRY(t->add_space_prefix_, f.get_bool_or("tokenizer.ggml.add_space_prefix", spm));

  for (size_t i = 0; i < n; ++i) {
    const TokenType ty = t->types_[i];
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown)
      if (!t->tokens_[i].empty()) t->special_.push_back(static_cast<TokenId>(i));
  }
  std::stable_sort(t->special_.begin(), t->special_.end(), [&](TokenId a, TokenId b) {
    return t->tokens_[static_cast<size_t>(a)].size() > t->tokens_[static_cast<size_t>(b)].size();
  });
  if (t->eos_ >= 0) t->eog_.push_back(t->eos_);
  if (eot >= 0) t->eog_.push_back(eot);
  for (const char* s : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<end_of_turn>", "<|end_of_text|>", "<|eom_id|>"}) {
    auto it = t->lookup_.find(s);
    if (it != t->lookup_.end() && t->types_[static_cast<size_t>(it->second)] == TokenType::kControl) t->eog_.push_back(it->second);
  }
  return t;
}

std::optional<TokenId> Tokenizer::find(std::string_view text) const {
  auto it = lookup_.find(std::string(text));
  if (it == lookup_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

TokenId Tokenizer::text_token(const std::string& piece) const {
  auto it = lookup_.find(piece);
  if (it == lookup_.end() || types_[static_cast<size_t>(it->second)] == TokenType::kControl) return -1;
  return it->second;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<TokenId> out;
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  // Partition the text around special tokens (longest match first at each position).
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    TokenId hit = -1;
    for (TokenId id : special_) {
      const TokenType ty = types_[static_cast<size_t>(id)];
      if (!parse_special && ty != TokenType::kUserDefined) continue;
      const std::string& s = tokens_[static_cast<size_t>(id)];
      if (text.compare(pos, s.size(), s) == 0) { hit = id; break; }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    if (pos > start) encode_fragment(text.substr(start, pos - start), &out);
    out.push_back(hit);
    pos += tokens_[static_cast<size_t>(hit)].size();
    start = pos;
  }
  if (start < text.size()) encode_fragment(text.substr(start), &out);
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

void Tokenizer::encode_fragment(std::string_view text, std::vector<TokenId>* out) const {
  if (model_ == "llama") {
    spm_fragment(text, out);
    return;
  }
  std::vector<uint32_t> cps = unicode::decode_utf8(text);
  // Stage 1 (smollm only): split out each number code point.
  std::vector<size_t> spans{0};
  if (pre_kind_ == Pre::kSmollm) split_digits(Span{cps, 0, cps.size()}, &spans);
  else spans.push_back(cps.size());
  std::vector<size_t> cuts;
  for (size_t i = 0; i + 1 < spans.size(); ++i) {
    const Span s{cps, spans[i], spans[i + 1]};
    cuts.clear();
    cuts.push_back(s.begin);
    switch (pre_kind_) {
      case Pre::kLlama3: split_llama3(s, 3, &cuts); break;
      case Pre::kQwen2: split_llama3(s, 1, &cuts); break;
      default: split_gpt2(s, &cuts); break;
    }
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      std::string word;
      for (size_t p = cuts[k]; p < cuts[k + 1]; ++p) {
        std::string utf8;
        unicode::append_utf8(cps[p], &utf8);
        for (unsigned char b : utf8) word += unicode::byte_to_text(b);
      }
      bpe_word(word, out);
    }
  }
}

// Merges adjacent symbols by merge rank, lowest rank first, leftmost first among equals.
void Tokenizer::bpe_word(std::string_view word, std::vector<TokenId>* out) const {
  struct Sym {
    size_t start, len;
    int prev, next;
  };
  std::vector<Sym> syms;
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(unicode::utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
    syms.push_back({i, len, static_cast<int>(syms.size()) - 1, static_cast<int>(syms.size()) + 1});
    i += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  struct Bigram {
    int rank, left, right;
    size_t size;
    bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  std::string key;
  auto push = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    key.assign(word.substr(syms[l].start, syms[l].len));
    key += ' ';
    key.append(word.substr(syms[r].start, syms[r].len));
    auto it = merge_rank_.find(key);
    if (it == merge_rank_.end()) return;
    queue.push({it->second, l, r, syms[l].len + syms[r].len});
  };
  for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) push(i, i + 1);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& l = syms[static_cast<size_t>(b.left)];
    Sym& r = syms[static_cast<size_t>(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = b.left;
    push(l.prev, b.left);
    push(b.left, l.next);
  }
  for (int i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Sym& s = syms[static_cast<size_t>(i)];
    if (s.len == 0) continue;
    const std::string_view piece = word.substr(s.start, s.len);
    if (const TokenId id = text_token(std::string(piece)); id >= 0) {
      out->push_back(id);
      continue;
    }
    // Not in the vocabulary: one token per byte-level character.
    for (size_t k = 0; k < piece.size();) {
      const size_t len = std::min(unicode::utf8_len(static_cast<unsigned char>(piece[k])), piece.size() - k);
      if (const TokenId id = text_token(std::string(piece.substr(k, len))); id >= 0) out->push_back(id);
      k += len;
    }
  }
}

// SentencePiece: spaces become U+2581, an optional leading one is added, then symbol pairs
// merge by highest score; pieces not in the vocabulary fall back to <0xXX> byte tokens.
void Tokenizer::spm_fragment(std::string_view text, std::vector<TokenId>* out) const {
  std::string s;
  // Every text fragment starts the text or follows a special token: llama.cpp prefixes both.
  if (add_space_prefix_) s = "\xE2\x96\x81";
  for (char c : text) {
    if (c == ' ') s += "\xE2\x96\x81";
    else s += c;
  }
  struct Sym { size_t start, len; int prev, next; };
  std::vector<Sym> syms;
  for (size_t i = 0; i < s.size();) {
    const size_t len = std::min(unicode::utf8_len(static_cast<unsigned char>(s[i])), s.size() - i);
    syms.push_back({i, len, static_cast<int>(syms.size()) - 1, static_cast<int>(syms.size()) + 1});
    i += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  struct Bigram {
    float score;
    int left, right;
    size_t size;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto push = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string piece = s.substr(syms[l].start, syms[l].len + syms[r].len);
    const TokenId id = text_token(piece);
    if (id < 0) return;
    const float score = scores_.empty() ? 0.0f : scores_[static_cast<size_t>(id)];
    queue.push({score, l, r, piece.size()});
  };
  for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) push(i, i + 1);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Sym& l = syms[static_cast<size_t>(b.left)];
    Sym& r = syms[static_cast<size_t>(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = b.left;
    push(l.prev, b.left);
    push(b.left, l.next);
  }
  for (int i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Sym& sy = syms[static_cast<size_t>(i)];
    if (sy.len == 0) continue;
    if (const TokenId id = text_token(s.substr(sy.start, sy.len)); id >= 0) {
      out->push_back(id);
      continue;
    }
    for (size_t k = 0; k < sy.len; ++k) {
      const TokenId bt = byte_tokens_[static_cast<unsigned char>(s[sy.start + k])];
      if (bt >= 0) out->push_back(bt);
      else if (unk_ >= 0) out->push_back(unk_);
    }
  }
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return {};
  const std::string& text = tokens_[static_cast<size_t>(id)];
  const TokenType ty = types_[static_cast<size_t>(id)];
  if (ty == TokenType::kControl || ty == TokenType::kUnknown) return render_special ? text : std::string();
  if (model_ == "llama") {
    if (ty == TokenType::kByte) return std::string(1, static_cast<char>(byte_value_[static_cast<size_t>(id)]));
    std::string r;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) { r += ' '; i += 3; }
      else r += text[i++];
    }
    return r;
  }
  if (ty == TokenType::kUserDefined) return text;
  std::string r;
  for (uint32_t cp : unicode::decode_utf8(text)) {
    const int b = unicode::text_to_byte(cp);
    if (b >= 0) r.push_back(static_cast<char>(b));
  }
  return r;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
  std::string r;
  for (TokenId id : ids) r += token_to_piece(id, render_special);
  if (model_ == "llama" && add_space_prefix_ && !r.empty() && r[0] == ' ') r.erase(0, 1);
  return r;
}

}  // namespace docdsa
