// Whole-document prompts: the document rendered with its provenance markers, the editable
// prompt templates in resources/prompts, token -> segment maps for sources, the sources
// themselves (from the DSA selections), and the price table.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/engine/dsa.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "docdsa/storage/library.h"

namespace docdsa::app {

// A page range (PDF) or time range in ms (transcripts) to read instead of the whole document.
struct Range {
  int page_first = 0, page_last = 0;    // 0: no page limit
  int64_t ms_first = -1, ms_last = -1;  // -1: no time limit
  bool empty() const { return page_first == 0 && ms_first < 0; }
  std::string label() const;
};
// "3-7" or "12" -> pages; "00:10:00-00:20:00" or "600-1200" (seconds) -> times.
Result<Range> parse_pages(const std::string& s);
Result<Range> parse_times(const std::string& s);

struct DocText {
  std::string text;
  std::vector<size_t> seg_begin, seg_end;  // char range of each rendered segment in text
  std::vector<int> seg_index;              // index into the segment list
};
// PDF: "[page N]" before each page; transcripts: "[hh:mm:ss] Speaker: text" lines.
DocText render_document(const storage::DocumentRow& doc, const std::vector<storage::SegmentRow>& segs, const Range& range);

// A prompt template: [system] and [user] sections, '#' comment lines.
struct PromptTemplate {
  std::string system, user;
};
Result<PromptTemplate> load_template(const std::string& name);  // resources/prompts/<name>.txt
// The same from text already read; `path` names it in errors.
Result<PromptTemplate> parse_template(const std::string& text, const std::string& path);

// Byte ranges [first, second) of a prompt string.
using Spans = std::vector<std::pair<size_t, size_t>>;

// The prompt split where the question goes: prefix (system + document) and suffix (after the
// question, up to the assistant's turn). Follow-up questions reuse the prefix's caches.
struct SplitPrompt {
  std::string prefix, suffix;
  size_t doc_offset = 0;  // where the document text starts inside prefix
  // The template's own text and chat markup in prefix / suffix. Everything else (the
  // document, the title, file names, the question) is data: see encode_prompt.
  Spans prefix_markup, suffix_markup;
};
// The template is split at its {placeholders} before any value is put in, so a value holding
// "{document}", "{question}" or chat markup stays text. {question} marks the split (after
// {document}; at the end of the user message when absent); other {name}s come from `vars`.
SplitPrompt build_prompt(const Model& model, const PromptTemplate& t, const std::string& document,
                         const std::map<std::string, std::string>& vars);
// Tokenises a prompt with special tokens ("<|im_start|>") recognised only inside `markup`:
// the rest is plain text, whatever it contains. `add_bos`: the BOS the model file asks for.
std::vector<TokenId> encode_prompt(const Tokenizer& tok, std::string_view text, const Spans& markup, bool add_bos);

// For each token of `ids` (the tokenised prefix), the rendered segment it falls in, or -1.
// `tok_char` (may be null) receives each token's offset in doc.text, or -1 outside it.
std::vector<int> token_segments(const Tokenizer& tok, const std::vector<TokenId>& ids, const std::string& prefix,
                                size_t doc_offset, const DocText& doc, std::vector<int64_t>* tok_char = nullptr);

// Counts how often each prompt position was selected by the answer tokens' sparse attention
// (sinks and the local window excluded: they are always kept, so they say nothing).
struct SourceCounter {
  int sinks = 0, window = 0;
  int64_t first_counted_pos = 0;  // query positions before this (the prompt) are ignored
  int64_t doc_tokens = 0;         // positions < doc_tokens are document tokens
  std::vector<double> count;      // [doc_tokens]
  void add(int pos, const int32_t* sel, size_t n);
  // Sizes the counter for `n_doc_tokens` and taps `sp`'s selections into it. When attention
  // stays dense (sp.observe_k > 0) the indexer's picks are counted whole: no sinks or window
  // to leave out. Counting starts once first_counted_pos is set; the counter must not move.
  void attach(SessionParams& sp, size_t n_doc_tokens);
};
// The top segments (grouped by page for PDFs) by selection weight.
// With `tok_char`, each source also carries "passage": its most-selected stretch of about 32
// tokens (the text the model read most while answering), and "segment": the stored segment.
nlohmann::json top_sources(const SourceCounter& sc, const std::vector<int>& tok_seg, const DocText& doc,
                           const storage::DocumentRow& row, const std::vector<storage::SegmentRow>& segs, int limit,
                           const std::vector<int64_t>* tok_char = nullptr);
std::string sources_text(const nlohmann::json& sources);
// Selection weight per stored segment (indexes `n_segments` segments as stored, not only the
// rendered range): the attention map the GUI's heat strip draws. Sums to 1, or all 0.
std::vector<float> segment_heat(const SourceCounter& sc, const std::vector<int>& tok_seg, const DocText& doc, size_t n_segments);
// The stored form of a heat map: [[segment, weight], ...] for the non-zero segments.
std::string heat_to_json(const std::vector<float>& heat);
// Back to one weight per segment; malformed or out-of-range entries are ignored.
std::vector<float> heat_from_json(const std::string& json, size_t n_segments);

// Prices per million tokens, dense era vs DSA era.
struct Prices {
  std::string currency = "USD", dense_label, dsa_label;
  double dense_in = 0, dense_out = 0, dsa_in = 0, dsa_out = 0;
};
// --prices FILE, else $XDG_CONFIG_HOME/docdsa/prices.json, else resources/prices.json.
Result<Prices> load_prices(const std::string& path);
// The same from JSON text already read; `path` names it in errors.
Result<Prices> parse_prices(const std::string& json, const std::string& path);
nlohmann::json money_json(const CostReport& c, const Prices& p);
// The cost table printed after an answer or a summary.
std::string cost_table(CostReport c, const Prices& p);

}  // namespace docdsa::app
