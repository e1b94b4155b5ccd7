#include "docdsa/app/doc_prompt.h"

#include <cmath>
#include <cstdint>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "docdsa/app/json_text.h"
#include "docdsa/app/library_common.h"
#include "docdsa/engine/model_locator.h"
#include "docdsa/engine/utf8.h"

namespace docdsa::app {
namespace fs = std::filesystem;

std::string Range::label() const {
  if (page_first > 0)
    return page_first == page_last ? "page " + std::to_string(page_first)
                                   : "pages " + std::to_string(page_first) + "-" + std::to_string(page_last);
  if (ms_first >= 0) return format_ms(ms_first) + "-" + format_ms(ms_last);
  return "the whole document";
}

namespace {
// A whole non-negative number, nothing around it; -1 when malformed or past `max`.
int64_t parse_count(std::string_view s, int64_t max) {
  int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty() && v >= 0 && v <= max ? v : -1;
}
}  // namespace

Result<Range> parse_pages(const std::string& s) {
  constexpr int64_t kMaxPage = 1000000;
  const size_t dash = s.find('-');
  const int64_t a = parse_count(std::string_view(s).substr(0, dash), kMaxPage);
  const int64_t b = dash == std::string::npos ? a : parse_count(std::string_view(s).substr(dash + 1), kMaxPage);
  if (a < 0 || b < 0) return make_error(ErrorCode::kInvalidArgument, "--pages wants N or A-B (up to " + std::to_string(kMaxPage) + "), got '" + s + "'");
  if (a < 1 || b < a) return make_error(ErrorCode::kInvalidArgument, "--pages " + s + " is not a valid page range");
  Range r;
  r.page_first = static_cast<int>(a);
  r.page_last = static_cast<int>(b);
  return r;
}

namespace {
// "hh:mm:ss", "mm:ss" or seconds (fractions allowed) -> ms; -1 when malformed. Up to 10^6 hours.
int64_t parse_clock(const std::string& s) {
  constexpr int64_t kMaxSeconds = 3600LL * 1000000;
  const size_t c1 = s.find(':');
  if (c1 != std::string::npos) {
    const size_t c2 = s.find(':', c1 + 1);
    const std::string_view v(s);
    const int64_t h = c2 == std::string::npos ? 0 : parse_count(v.substr(0, c1), 1000000);
    const int64_t m = parse_count(c2 == std::string::npos ? v.substr(0, c1) : v.substr(c1 + 1, c2 - c1 - 1), kMaxSeconds / 60);
    const int64_t sec = parse_count(v.substr((c2 == std::string::npos ? c1 : c2) + 1), kMaxSeconds);
    if (h < 0 || m < 0 || sec < 0) return -1;
    const int64_t total = (h * 60 + m) * 60 + sec;
    return total <= kMaxSeconds ? total * 1000 : -1;
  }
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0' && v >= 0 && v <= static_cast<double>(kMaxSeconds) ? static_cast<int64_t>(v * 1000) : -1;
}
}  // namespace

Result<Range> parse_times(const std::string& s) {
  const size_t dash = s.find('-');
  if (dash == std::string::npos) return make_error(ErrorCode::kInvalidArgument, "--time wants START-END, got '" + s + "'");
  Range r;
  r.ms_first = parse_clock(s.substr(0, dash));
  r.ms_last = parse_clock(s.substr(dash + 1));
  if (r.ms_first < 0 || r.ms_last < r.ms_first)
    return make_error(ErrorCode::kInvalidArgument, "--time " + s + " is not a valid time range (hh:mm:ss-hh:mm:ss)");
  return r;
}

DocText render_document(const storage::DocumentRow& doc, const std::vector<storage::SegmentRow>& segs, const Range& range) {
  DocText d;
  int last_page = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    const storage::SegmentRow& s = segs[i];
    if (range.page_first > 0 && (s.page < range.page_first || s.page > range.page_last)) continue;
    if (range.ms_first >= 0 && (s.end_ms < range.ms_first || s.start_ms > range.ms_last)) continue;
    std::string head;
    if (doc.kind == "pdf") {
      if (s.page != last_page) head = std::string(d.text.empty() ? "" : "\n") + "[page " + std::to_string(s.page) + "]\n";
      last_page = s.page;
    } else {
      if (s.start_ms >= 0) head += "[" + format_ms(s.start_ms) + "] ";
      if (!s.speaker.empty()) head += s.speaker + ": ";
    }
    d.text += head;
    d.seg_begin.push_back(d.text.size());
    d.text += s.text;
    d.seg_end.push_back(d.text.size());
    d.seg_index.push_back(static_cast<int>(i));
    d.text += "\n";
  }
  return d;
}

Result<PromptTemplate> load_template(const std::string& name) {
  TRY(std::string path, locate_resource("prompts/" + name + ".txt"));
  std::ifstream f(path);
  if (!f) return make_error(ErrorCode::kIo, "cannot read prompt template " + path);
  std::stringstream text;
  text << f.rdbuf();
  return parse_template(text.str(), path);
}

Result<PromptTemplate> parse_template(const std::string& text, const std::string& path) {
  std::istringstream f(text);
  PromptTemplate t;
  std::string* cur = nullptr;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty() && line[0] == '#') continue;
    if (line == "[system]") {
      cur = &t.system;
      continue;
    }
    if (line == "[user]") {
      cur = &t.user;
      continue;
    }
    if (cur) *cur += (cur->empty() ? "" : "\n") + line;
  }
  if (t.user.find("{document}") == std::string::npos)
    return make_error(ErrorCode::kCorrupt, "prompt template " + path + " has no {document} in its [user] section");
  return t;
}

namespace {
// Placeholders become markers "\x01<tag>:<index>\x02" in the template text before the chat
// template is applied; values go in afterwards, so no value is ever read as a placeholder or as
// markup. The tag is random per process: the template file and the model's chat template (its
// default system prompt) are text we did not write either, and a "\x01" "1\x02" in them must
// not pass for a marker (it moved the split before the document).
constexpr char kSlotClose = '\x02';
const std::string& slot_open() {
  static const std::string tag = [] {
    uint64_t r = 0;
    try {
      std::random_device rd;
      r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    } catch (const std::exception&) {  // no entropy source: the clock is unguessable enough to a file
      r = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(r));
    std::string open = "\x01";  // appended, not "a" + b + c: GCC 12 warns falsely (-Wrestrict) on that
    open += buf;
    open += ':';
    return open;
  }();
  return tag;
}
}  // namespace

SplitPrompt build_prompt(const Model& model, const PromptTemplate& t, const std::string& document,
                         const std::map<std::string, std::string>& vars) {
  std::vector<std::string> slots;  // placeholder name per marker
  const auto slot = [&](const std::string& name) {
    slots.push_back(name);
    return slot_open() + std::to_string(slots.size() - 1) + kSlotClose;
  };
  std::string user;
  size_t doc_slot = std::string::npos, question_slot = std::string::npos;  // marker indexes
  for (size_t p = 0; p < t.user.size();) {
    const size_t open = t.user.find('{', p), close = open == std::string::npos ? open : t.user.find('}', open + 1);
    if (close == std::string::npos) {
      user.append(t.user, p);
      break;
    }
    const std::string name = t.user.substr(open + 1, close - open - 1);
    if (name != "document" && name != "question" && !vars.count(name)) {  // not a placeholder: text
      user.append(t.user, p, open + 1 - p);
      p = open + 1;
      continue;
    }
    user.append(t.user, p, open - p);
    if (name == "document" && doc_slot == std::string::npos) doc_slot = slots.size();
    // The question splits the prompt only after the document (its caches are reused).
    if (name == "question" && doc_slot != std::string::npos && question_slot == std::string::npos) question_slot = slots.size();
    user += slot(name);
    p = close + 1;
  }
  if (question_slot == std::string::npos) question_slot = slots.size(), user += slot("question");
  std::vector<ChatMessage> msgs;
  if (!t.system.empty()) msgs.push_back({"system", t.system});
  msgs.push_back({"user", user});
  const std::string full = model.chat_template().apply(msgs);

  SplitPrompt sp;
  std::string* out = &sp.prefix;
  Spans* markup = &sp.prefix_markup;
  for (size_t p = 0; p < full.size();) {
    // The next marker; anything else (to the end) is markup.
    const std::string& tag = slot_open();
    size_t open = full.find(tag, p), i = slots.size(), close = std::string::npos;
    for (; open != std::string::npos; open = full.find(tag, open + 1)) {
      close = full.find(kSlotClose, open + tag.size());
      const std::string digits = close == std::string::npos ? "" : full.substr(open + tag.size(), close - open - tag.size());
      if (!digits.empty() && digits.size() < 6 && digits.find_first_not_of("0123456789") == std::string::npos &&
          (i = std::stoul(digits)) < slots.size())
        break;
    }
    if (open == std::string::npos) open = full.size();
    if (open > p) {
      markup->push_back({out->size(), out->size() + (open - p)});
      out->append(full, p, open - p);
    }
    if (open >= full.size()) break;
    p = close + 1;
    if (i == question_slot) {
      out = &sp.suffix, markup = &sp.suffix_markup;
    } else if (i == doc_slot) {
      sp.doc_offset = out->size();
      *out += document;
    } else if (slots[i] != "document") {  // a later {document} stays empty: the document is read once
      const auto v = vars.find(slots[i]);
      if (v != vars.end()) *out += v->second;
    }
  }
  return sp;
}

std::vector<TokenId> encode_prompt(const Tokenizer& tok, std::string_view text, const Spans& markup, bool add_bos) {
  std::vector<TokenId> out;
  if (add_bos)
    for (TokenId id : tok.encode("", true, false))
      if (id == tok.bos()) out.push_back(id);
  // Special tokens are found in the markup alone; the text between them, data included, is
  // tokenised whole as plain text, so a prompt without specials in its data tokenises exactly
  // as before (the same fragments as one encode with parse_special).
  size_t start = 0;
  const auto plain = [&](size_t end) {
    if (end > start) {
      const auto ids = tok.encode(text.substr(start, end - start), false, false);
      out.insert(out.end(), ids.begin(), ids.end());
    }
  };
  for (const auto& [a, b] : markup) {
    if (a >= b || b > text.size()) continue;
    size_t cur = a;
    for (TokenId id : tok.encode(text.substr(a, b - a), false, true)) {
      const TokenType ty = tok.token_type(id);
      if (ty != TokenType::kControl && ty != TokenType::kUnknown) continue;
      const std::string& s = tok.token_text(id);
      const size_t at = text.substr(0, b).find(s, cur);
      if (s.empty() || at == std::string_view::npos) continue;
      plain(at);
      out.push_back(id);
      start = cur = at + s.size();
    }
  }
  plain(text.size());
  return out;
}

std::vector<int> token_segments(const Tokenizer& tok, const std::vector<TokenId>& ids, const std::string& prefix,
                                size_t doc_offset, const DocText& doc, std::vector<int64_t>* tok_char) {
  std::vector<int> out(ids.size(), -1);
  if (tok_char) tok_char->assign(ids.size(), -1);
  // Token pieces concatenate back to the prompt text; a leading BOS that is not in the text
  // is skipped.
  std::vector<size_t> off(ids.size() + 1, 0);
  size_t pos = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = tok.token_to_piece(ids[i], true);
    off[i] = pos;
    if (i == 0 && prefix.compare(0, piece.size(), piece) != 0) continue;
    pos += piece.size();
  }
  if (pos != prefix.size()) return out;  // pieces do not line up with the text: no sources
  for (size_t i = 0; i < ids.size(); ++i) {
    if (off[i] < doc_offset) continue;
    const size_t c = off[i] - doc_offset;
    auto it = std::upper_bound(doc.seg_begin.begin(), doc.seg_begin.end(), c);
    if (it == doc.seg_begin.begin()) continue;
    const size_t s = static_cast<size_t>(it - doc.seg_begin.begin()) - 1;
    if (c < doc.seg_end[s]) out[i] = static_cast<int>(s);
    if (tok_char && c < doc.text.size()) (*tok_char)[i] = static_cast<int64_t>(c);
  }
  return out;
}

void SourceCounter::attach(SessionParams& sp, size_t n_doc_tokens) {
  sinks = sp.observe_k > 0 ? 0 : sp.dsa.sinks;
  window = sp.observe_k > 0 ? 0 : sp.dsa.window;
  doc_tokens = static_cast<int64_t>(n_doc_tokens);
  count.assign(n_doc_tokens, 0.0);
  first_counted_pos = INT64_MAX;
  sp.selection_tap = [this](int, int pos, std::span<const int32_t> sel) { add(pos, sel.data(), sel.size()); };
}

void SourceCounter::add(int pos, const int32_t* sel, size_t n) {
  if (pos < first_counted_pos) return;
  const int64_t win0 = pos + 1 - window;
  for (size_t i = 0; i < n; ++i) {
    const int32_t p = sel[i];
    if (p < sinks || p >= win0 || p >= doc_tokens) continue;
    count[static_cast<size_t>(p)] += 1.0;
  }
}

namespace {
// The ~32-token stretch of rendered segments [first, last] that the selections picked most,
// widened to whole words, on one line.
std::string hottest_passage(const SourceCounter& sc, const std::vector<int>& tok_seg, const std::vector<int64_t>& tok_char,
                            const DocText& doc, int first, int last) {
  constexpr size_t kSpan = 32;
  std::vector<size_t> toks;  // prompt positions inside the group, in order
  for (size_t p = 0; p < tok_seg.size() && p < tok_char.size(); ++p)
    if (tok_seg[p] >= first && tok_seg[p] <= last && tok_char[p] >= 0) toks.push_back(p);
  if (toks.empty()) return {};
  const auto cnt = [&](size_t p) { return p < sc.count.size() ? sc.count[p] : 0.0; };
  double sum = 0, best = -1;
  size_t best_at = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    sum += cnt(toks[i]);
    if (i >= kSpan) sum -= cnt(toks[i - kSpan]);
    if (i + 1 >= std::min(kSpan, toks.size()) && sum > best) best = sum, best_at = i + 1 - std::min(kSpan, toks.size());
  }
  if (best <= 0) return {};
  const size_t end_tok = std::min(best_at + kSpan, toks.size());
  size_t b = static_cast<size_t>(tok_char[toks[best_at]]);
  size_t e = end_tok < toks.size() ? static_cast<size_t>(tok_char[toks[end_tok]]) : doc.seg_end[static_cast<size_t>(last)];
  const size_t lo = doc.seg_begin[static_cast<size_t>(first)], hi = doc.seg_end[static_cast<size_t>(last)];
  b = std::max(b, lo), e = std::min(std::max(e, b), hi);
  const auto space = [&](size_t i) { return doc.text[i] == ' ' || doc.text[i] == '\n' || doc.text[i] == '\t'; };
  while (b > lo && !space(b - 1)) --b;  // whole words
  while (e < hi && !space(e)) ++e;
  std::string out = doc.text.substr(b, e - b);
  if (out.size() > 1 && out[0] == '[') {  // a "[page N]" or "[hh:mm:ss]" marker is not text
    const size_t close = out.find(']');
    if (close != std::string::npos && close < 24) out.erase(0, close + 1);
  }
  std::string line;
  for (char ch : out) {
    const char c = (ch == '\n' || ch == '\t' || ch == '\r') ? ' ' : ch;
    if (c == ' ' && (line.empty() || line.back() == ' ')) continue;
    line += c;
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}
}  // namespace

nlohmann::json top_sources(const SourceCounter& sc, const std::vector<int>& tok_seg, const DocText& doc,
                           const storage::DocumentRow& row, const std::vector<storage::SegmentRow>& segs, int limit,
                           const std::vector<int64_t>* tok_char) {
  // Weight per rendered segment, then per page (PDF) or per segment (transcripts).
  std::vector<double> w(doc.seg_index.size(), 0.0);
  double total = 0;
  for (size_t p = 0; p < sc.count.size() && p < tok_seg.size(); ++p)
    if (tok_seg[p] >= 0 && sc.count[p] > 0) {
      w[static_cast<size_t>(tok_seg[p])] += sc.count[p];
      total += sc.count[p];
    }
  struct Src {
    double weight;
    int first_seg, last_seg;
  };
  std::vector<Src> groups;
  const bool pdf = row.kind == "pdf";
  for (size_t i = 0; i < w.size(); ++i) {
    if (pdf && !groups.empty() &&
        segs[static_cast<size_t>(doc.seg_index[static_cast<size_t>(groups.back().last_seg)])].page ==
            segs[static_cast<size_t>(doc.seg_index[i])].page) {
      groups.back().weight += w[i];
      groups.back().last_seg = static_cast<int>(i);
    } else {
      groups.push_back({w[i], static_cast<int>(i), static_cast<int>(i)});
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [](const Src& a, const Src& b) { return a.weight > b.weight; });
  nlohmann::json out = nlohmann::json::array();
  for (const Src& g : groups) {
    if (static_cast<int>(out.size()) >= limit || g.weight <= 0) break;
    const storage::SegmentRow& a = segs[static_cast<size_t>(doc.seg_index[static_cast<size_t>(g.first_seg)])];
    const storage::SegmentRow& b = segs[static_cast<size_t>(doc.seg_index[static_cast<size_t>(g.last_seg)])];
    const size_t sb = doc.seg_begin[static_cast<size_t>(g.first_seg)], se = doc.seg_end[static_cast<size_t>(g.first_seg)];
    std::string snippet = utf8_prefix(std::string_view(doc.text).substr(sb, se - sb), 160);
    for (char& ch : snippet)
      if (ch == '\n') ch = ' ';
    nlohmann::json j = {{"weight", total > 0 ? g.weight / total : 0.0}, {"snippet", snippet}};
    if (tok_char) {
      j["segment"] = doc.seg_index[static_cast<size_t>(g.first_seg)];
      const std::string passage = hottest_passage(sc, tok_seg, *tok_char, doc, g.first_seg, g.last_seg);
      if (!passage.empty()) j["passage"] = passage;
    }
    if (pdf) {
      j["page"] = a.page;
      j["label"] = "p. " + std::to_string(a.page);
    } else {
      j["start_ms"] = a.start_ms;
      j["end_ms"] = b.end_ms;
      j["speaker"] = a.speaker;
      std::string label =
          a.start_ms >= 0 ? format_ms(a.start_ms) + "-" + format_ms(b.end_ms) : "part " + std::to_string(g.first_seg + 1);
      if (!a.speaker.empty()) label += " " + a.speaker;
      j["label"] = label;
    }
    out.push_back(j);
  }
  return out;
}

std::vector<float> segment_heat(const SourceCounter& sc, const std::vector<int>& tok_seg, const DocText& doc, size_t n_segments) {
  std::vector<double> w(n_segments, 0.0);
  double total = 0;
  for (size_t p = 0; p < sc.count.size() && p < tok_seg.size(); ++p) {
    if (tok_seg[p] < 0 || sc.count[p] <= 0) continue;
    const size_t rendered = static_cast<size_t>(tok_seg[p]);
    if (rendered >= doc.seg_index.size()) continue;
    const size_t stored = static_cast<size_t>(doc.seg_index[rendered]);
    if (stored >= n_segments) continue;
    w[stored] += sc.count[p];
    total += sc.count[p];
  }
  std::vector<float> out(n_segments, 0.0f);
  if (total > 0)
    for (size_t i = 0; i < n_segments; ++i) out[i] = static_cast<float>(w[i] / total);
  return out;
}

std::string heat_to_json(const std::vector<float>& heat) {
  nlohmann::json j = nlohmann::json::array();
  for (size_t i = 0; i < heat.size(); ++i)
    if (heat[i] > 0) j.push_back({i, std::round(heat[i] * 1e5f) / 1e5f});
  return dump_json(j);
}

std::vector<float> heat_from_json(const std::string& json, size_t n_segments) {
  std::vector<float> out(n_segments, 0.0f);
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number()) continue;
    const int64_t i = e[0].get<int64_t>();
    if (i >= 0 && static_cast<size_t>(i) < n_segments) out[static_cast<size_t>(i)] = e[1].get<float>();
  }
  return out;
}

std::string sources_text(const nlohmann::json& sources) {
  std::string s;
  for (const auto& j : sources) {
    if (!j.is_object()) continue;
    char w[16];
    std::snprintf(w, sizeof(w), "%3.0f%%", std::clamp(100.0 * json_number(j, "weight"), 0.0, 100.0));
    // The passage the model read most, else the start of the source.
    const std::string passage = json_string(j, "passage");
    const std::string text = !passage.empty() ? "\u2026" + passage + "\u2026" : json_string(j, "snippet");
    s += "  " + std::string(w) + "  " + json_string(j, "label") + "  \"" + text + "\"\n";
  }
  return s;
}

Result<Prices> load_prices(const std::string& path) {
  std::string p = path;
  if (p.empty()) {
    std::string cfg;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
      cfg = std::string(x) + "/docdsa/prices.json";
    else if (const char* h = std::getenv("HOME"); h && *h)
      cfg = std::string(h) + "/.config/docdsa/prices.json";
    std::error_code ec;
    if (!cfg.empty() && fs::exists(cfg, ec)) p = cfg;
  }
  if (p.empty()) {
    TRY(p, locate_resource("prices.json"));
  }
  std::ifstream f(p);
  if (!f) return make_error(ErrorCode::kIo, "cannot read the price table " + p);
  std::stringstream text;
  text << f.rdbuf();
  return parse_prices(text.str(), p);
}

Result<Prices> parse_prices(const std::string& json, const std::string& p) {
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    Prices pr;
    pr.currency = j.value("currency", "USD");
    pr.dense_label = j.at("dense").value("label", "dense");
    pr.dsa_label = j.at("dsa").value("label", "dsa");
    pr.dense_in = j.at("dense").at("input").get<double>();
    pr.dense_out = j.at("dense").at("output").get<double>();
    pr.dsa_in = j.at("dsa").at("input").get<double>();
    pr.dsa_out = j.at("dsa").at("output").get<double>();
    return pr;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kCorrupt, "price table " + p + " is not valid: " + e.what() +
                                               " (expected {\"dense\": {\"input\": .., \"output\": ..}, \"dsa\": {...}})");
  }
}

nlohmann::json money_json(const CostReport& c, const Prices& p) {
  const double in = static_cast<double>(c.prompt_tokens) / 1e6, out = static_cast<double>(c.decoded_tokens) / 1e6;
  const double dense = in * p.dense_in + out * p.dense_out, dsa = in * p.dsa_in + out * p.dsa_out;
  return {{"currency", p.currency},    {"dense", dense},   {"dsa", dsa}, {"saved", dense - dsa}, {"dense_prices", p.dense_label},
          {"dsa_prices", p.dsa_label}, {"measured", false}};
}

std::string cost_table(CostReport c, const Prices& p) {
  c.estimate_dense_times();
  const nlohmann::json m = money_json(c, p);
  char buf[2048];
  const double fr = c.attn_flops_dsa > 0 ? c.attn_flops_dense / c.attn_flops_dsa : 0;
  const double br = c.bytes_per_decoded_token_dsa() > 0 ? c.bytes_per_decoded_token_dense() / c.bytes_per_decoded_token_dsa() : 0;
  const char* dl = c.dense_measured ? "measured" : "estimated";
  std::snprintf(buf, sizeof(buf),
                "Cost (%s, k=%d)                     dense            DSA       saving\n"
                "  tokens read: %lld prompt + %lld generated\n"
                "  attention FLOPs (counted)     %12.3g   %12.3g   %6.2fx\n"
                "  bytes read / token (counted)  %10.1f MB  %10.1f MB   %6.2fx\n"
                "  prefill time                  %10.2f s   %10.2f s    (dense %s, DSA measured)\n"
                "  decode time                   %10.2f s   %10.2f s    (dense %s, DSA measured)\n"
                "  money at list prices          %10.5f %s %8.5f %s   (%s vs %s)\n",
                attention_mode_name(c.mode), c.top_k, static_cast<long long>(c.prompt_tokens),
                static_cast<long long>(c.decoded_tokens), c.attn_flops_dense, c.attn_flops_dsa, fr,
                c.bytes_per_decoded_token_dense() / 1e6, c.bytes_per_decoded_token_dsa() / 1e6, br, c.dense_prefill_seconds,
                c.prefill_seconds, dl, c.dense_decode_seconds, c.decode_seconds, dl, m["dense"].get<double>(), p.currency.c_str(),
                m["dsa"].get<double>(), p.currency.c_str(), p.dense_label.c_str(), p.dsa_label.c_str());
  return buf;
}

}  // namespace docdsa::app
