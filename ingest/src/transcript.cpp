#include "docdsa/ingest/transcript.h"

#include "docdsa/engine/utf8.h"
#include "docdsa/ingest/read_file.h"

#include <iconv.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace docdsa::ingest {
namespace {

Result<std::string> iconv_to_utf8(std::string_view in, const char* from) {
  iconv_t cd = iconv_open("UTF-8", from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return make_error(ErrorCode::kUnsupported, std::string("no converter from ") + from);
  // Grown on demand rather than sized for the worst case (4x the input for a large file).
  std::string out(in.size() + in.size() / 2 + 16, '\0');
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  size_t used = 0;
  for (;;) {
    char* dst = out.data() + used;
    size_t dst_left = out.size() - used;
    const size_t rc = iconv(cd, &src, &src_left, &dst, &dst_left);
    const int err = errno;
    used = out.size() - dst_left;
    if (rc != static_cast<size_t>(-1)) break;
    if (err != E2BIG) {
      iconv_close(cd);
      return make_error(ErrorCode::kCorrupt, std::string("not valid ") + from + " text (" + std::strerror(err) + ")");
    }
    out.resize(out.size() * 2);
  }
  iconv_close(cd);
  out.resize(used);
  return out;
}

// Windows-1252 as browsers decode it (WHATWG): 0x80-0x9F per the code page, and the five
// bytes it leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) as the Latin-1 code points
// U+0081..., so one stray byte no longer fails the whole file. Every other byte is Latin-1.
std::string windows1252_to_utf8(std::string_view in) {
  static constexpr uint16_t kC1[32] = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                                       0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                                       0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  std::string out;
  out.reserve(in.size() + in.size() / 8);
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) out.push_back(ch);
    else append_utf8(c < 0xA0 ? kC1[c - 0x80] : c, &out);
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\n') {
      lines.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return lines;
}

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

constexpr size_t kMaxEntityBytes = 32;

// Removes markup (<i>, <font ...>, <c.class>, inline <00:01.000> timestamps) and resolves
// entities; a <v Name> voice tag sets `speaker` when it is still empty.
std::string clean_cue_text(std::string_view s, std::string* speaker) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '<') {
      const size_t close = s.find('>', i);
      if (close == std::string_view::npos) { out.append(s.substr(i)); break; }
      std::string_view tag = s.substr(i + 1, close - i - 1);
      if (!tag.empty() && tag[0] == 'v' && (tag.size() == 1 || tag[1] == ' ' || tag[1] == '.')) {
        const size_t sp = tag.find(' ');
        if (sp != std::string_view::npos && speaker && speaker->empty()) *speaker = trim(tag.substr(sp + 1));
      }
      i = close + 1;
      continue;
    }
    if (s[i] == '&') {
      // Look for the ';' only a little way ahead (the longest entity we know, "&#x10FFFF;", is
      // 10 bytes): searching to the end of the cue for every '&' was quadratic on a long cue.
      const size_t rel = s.substr(i, kMaxEntityBytes).find(';');
      if (rel != std::string_view::npos) {
        const size_t semi = i + rel;
        const std::string_view ent = s.substr(i + 1, semi - i - 1);
        static const std::pair<const char*, uint32_t> kNamed[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'},
                                                                 {"apos", '\''}, {"nbsp", 0xA0}, {"lrm", 0x200E}, {"rlm", 0x200F}};
        bool done = false;
        for (auto [name, cp] : kNamed)
          if (ent == name) { append_utf8(cp, &out); done = true; break; }
        if (!done && ent.size() > 1 && ent[0] == '#') {
          const bool hex = ent[1] == 'x' || ent[1] == 'X';
          const std::string digits(ent.substr(hex ? 2 : 1));
          char* end = nullptr;
          const unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
          if (!digits.empty() && end && *end == '\0' && cp > 0 && cp <= 0x10FFFF) { append_utf8(static_cast<uint32_t>(cp), &out); done = true; }
        }
        if (done) { i = semi + 1; continue; }
      }
    }
    out.push_back(s[i++]);
  }
  return trim(out);
}

bool parse_timing(std::string_view line, int64_t* start, int64_t* end) {
  const size_t arrow = line.find("-->");
  if (arrow == std::string_view::npos) return false;
  const std::string a = trim(line.substr(0, arrow));
  std::string rest = trim(line.substr(arrow + 3));
  const size_t sp = rest.find_first_of(" \t");
  const std::string b = sp == std::string::npos ? rest : rest.substr(0, sp);  // cue settings follow
  *start = parse_timestamp(a);
  *end = parse_timestamp(b);
  return *start >= 0 && *end >= 0;
}

// Reads one cue block starting at lines[*i] (a non-blank line): an optional identifier or
// sequence number, the timing line, then text lines up to a blank line or the next timing
// line. On a block without valid timing, records a warning, skips the block, returns false.
bool read_cue_block(const std::vector<std::string>& lines, size_t* i, Cue* cue, std::string* raw, std::vector<std::string>* warnings) {
  const size_t block_start = *i;
  size_t timing = *i;
  if (lines[*i].find("-->") == std::string::npos) timing = *i + 1;
  if (timing >= lines.size() || !parse_timing(lines[timing], &cue->start_ms, &cue->end_ms)) {
    warnings->push_back("line " + std::to_string(block_start + 1) + ": no valid cue timing; block skipped");
    while (*i < lines.size() && !trim(lines[*i]).empty()) ++*i;
    return false;
  }
  *i = timing + 1;
  raw->clear();
  while (*i < lines.size() && !trim(lines[*i]).empty()) {
    int64_t x, y;
    if (lines[*i].find("-->") != std::string::npos && parse_timing(lines[*i], &x, &y)) break;  // no blank line before it
    if (!raw->empty()) *raw += '\n';
    *raw += lines[(*i)++];
  }
  return true;
}

// YouTube-style rolling captions repeat the previous cue's last line first: drop it.
void remove_rolling_repeats(Transcript* t) {
  std::string prev_last;
  std::vector<Cue> kept;
  for (Cue& c : t->cues) {
    auto lines = split_lines(c.text);
    while (!lines.empty() && !prev_last.empty() && trim(lines.front()) == prev_last) {
      lines.erase(lines.begin());
      ++t->rolling_repeats_removed;
    }
    std::string text;
    for (const auto& l : lines) {
      if (trim(l).empty()) continue;
      if (!text.empty()) text += '\n';
      text += trim(l);
    }
    if (!lines.empty()) prev_last = trim(lines.back());
    if (text.empty() && c.text.size() > 0) continue;  // nothing new in this cue
    c.text = text;
    kept.push_back(std::move(c));
  }
  t->cues = std::move(kept);
}

// "Name: text" at the start of a cue (any capitalisation of a short name) sets the speaker.
void split_speaker_label(Cue* c) {
  const size_t colon = c->text.find(": ");
  if (colon == std::string::npos || colon == 0 || colon > 60 || c->text.find('\n') < colon) return;
  const std::string label = c->text.substr(0, colon);
  int words = 1;
  bool word_start = true;
  for (char ch : label) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == ' ') { ++words; word_start = true; continue; }
    if (word_start && std::islower(u)) return;  // every word capitalised
    if (!(std::isalpha(u) || ch == '.' || ch == ',' || ch == '-' || ch == '\'' || u >= 0x80)) return;
    word_start = false;
  }
  if (words > 6 || parse_timestamp(label) >= 0) return;
  c->speaker = label;
  c->text = trim(c->text.substr(colon + 2));
}

Result<Transcript> finish(Transcript t, const std::string& name) {
  if (t.cues.empty()) {
    std::string why = name + ": no usable cues";
    if (!t.warnings.empty()) why += " (" + t.warnings.front() + ")";
    return make_error(ErrorCode::kCorrupt, why);
  }
  return t;
}

}  // namespace

const char* format_name(TranscriptFormat f) {
  switch (f) {
    case TranscriptFormat::kSrt: return "srt";
    case TranscriptFormat::kVtt: return "vtt";
    case TranscriptFormat::kText: return "txt";
  }
  return "?";
}

Result<std::string> decode_text(std::string_view b, std::string* encoding) {
  auto starts = [&](std::initializer_list<unsigned char> bom) {
    if (b.size() < bom.size()) return false;
    size_t i = 0;
    for (unsigned char c : bom)
      if (static_cast<unsigned char>(b[i++]) != c) return false;
    return true;
  };
  std::string text;
  if (starts({0xEF, 0xBB, 0xBF})) {
    *encoding = "utf-8 (BOM)";
    text.assign(b.substr(3));
  } else if (starts({0xFF, 0xFE, 0x00, 0x00})) {
    *encoding = "utf-32le";
    TRY(text, iconv_to_utf8(b.substr(4), "UTF-32LE"));
  } else if (starts({0x00, 0x00, 0xFE, 0xFF})) {
    *encoding = "utf-32be";
    TRY(text, iconv_to_utf8(b.substr(4), "UTF-32BE"));
  } else if (starts({0xFF, 0xFE})) {
    *encoding = "utf-16le";
    TRY(text, iconv_to_utf8(b.substr(2), "UTF-16LE"));
  } else if (starts({0xFE, 0xFF})) {
    *encoding = "utf-16be";
    TRY(text, iconv_to_utf8(b.substr(2), "UTF-16BE"));
  } else if (valid_utf8(b)) {
    *encoding = "utf-8";
    text.assign(b);
  } else {
    *encoding = "windows-1252";
    text = windows1252_to_utf8(b);
  }
  if (text.find('\0') != std::string::npos) return make_error(ErrorCode::kCorrupt, "binary data, not text");
  // CRLF and lone CR -> LF, in place (the output is never longer), sparing a copy of a big file.
  size_t w = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      text[w++] = '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      text[w++] = text[i];
    }
  }
  text.resize(w);
  return text;
}

int64_t parse_timestamp(std::string_view s) {
  // [h:]m:s[.,fraction]
  int64_t parts[3] = {0, 0, 0};
  int n = 0;
  size_t i = 0;
  while (n < 3) {
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
    int64_t v = 0;
    int digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && digits < 9) v = v * 10 + (s[i++] - '0'), ++digits;
    parts[n++] = v;
    if (i < s.size() && s[i] == ':') { ++i; continue; }
    break;
  }
  if (n < 2) return -1;
  int64_t ms = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    int64_t scale = 100;
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ms += (s[i++] - '0') * scale;
      scale /= 10;
    }
  }
  if (i != s.size()) return -1;
  const int64_t h = n == 3 ? parts[0] : 0, m = n == 3 ? parts[1] : parts[0], sec = n == 3 ? parts[2] : parts[1];
  if (m >= 60 || sec >= 60) return -1;
  return ((h * 60 + m) * 60 + sec) * 1000 + ms;
}

Result<Transcript> parse_srt(std::string_view utf8, const std::string& name) {
  Transcript t;
  t.format = TranscriptFormat::kSrt;
  const auto lines = split_lines(utf8);
  size_t i = 0;
  while (i < lines.size()) {
    while (i < lines.size() && trim(lines[i]).empty()) ++i;
    if (i >= lines.size()) break;
    Cue c;
    std::string raw;
    if (!read_cue_block(lines, &i, &c, &raw, &t.warnings)) continue;
    c.text = clean_cue_text(raw, &c.speaker);
    split_speaker_label(&c);
    if (c.end_ms < c.start_ms) t.warnings.push_back("cue " + std::to_string(t.cues.size() + 1) + ": ends before it starts");
    t.cues.push_back(std::move(c));
  }
  return finish(std::move(t), name);
}

Result<Transcript> parse_vtt(std::string_view utf8, const std::string& name) {
  Transcript t;
  t.format = TranscriptFormat::kVtt;
  const auto lines = split_lines(utf8);
  if (lines.empty() || lines[0].rfind("WEBVTT", 0) != 0 || (lines[0].size() > 6 && lines[0][6] != ' ' && lines[0][6] != '\t'))
    return make_error(ErrorCode::kCorrupt, name + ": not a WebVTT file (the first line must be WEBVTT)");
  size_t i = 1;
  bool karaoke = false;
  while (i < lines.size() && !trim(lines[i]).empty()) ++i;  // header lines (Kind:, Language:, Style:)
  while (i < lines.size()) {
    while (i < lines.size() && trim(lines[i]).empty()) ++i;
    if (i >= lines.size()) break;
    const std::string first = trim(lines[i]);
    if (first.rfind("NOTE", 0) == 0 || first.rfind("STYLE", 0) == 0 || first.rfind("REGION", 0) == 0) {
      while (i < lines.size() && !trim(lines[i]).empty()) ++i;
      continue;
    }
    Cue c;
    std::string raw;
    if (!read_cue_block(lines, &i, &c, &raw, &t.warnings)) continue;
    // Auto-captions (YouTube) carry inline <hh:mm:ss.mmm> word timings or <c> classes.
    if (raw.find("<0") != std::string::npos || raw.find("<c") != std::string::npos) karaoke = true;
    c.text = clean_cue_text(raw, &c.speaker);
    t.cues.push_back(std::move(c));
  }
  if (karaoke) remove_rolling_repeats(&t);
  return finish(std::move(t), name);
}

Result<Transcript> parse_text_transcript(std::string_view utf8, const std::string& name) {
  Transcript t;
  t.format = TranscriptFormat::kText;
  auto is_label = [](std::string_view s) {
    // Speaker labels: upper-case names of up to six words ("KEVIN SCOTT", "JOHN G. ROBERTS, JR.").
    if (s.empty() || s.size() > 60) return false;
    int letters = 0, words = 1;
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (std::islower(c)) return false;
      if (std::isupper(c)) ++letters;
      if (c == ' ') ++words;
      if (!(std::isupper(c) || c == ' ' || c == '.' || c == ',' || c == '-' || c == '\'' || std::isdigit(c) || c >= 0x80)) return false;
    }
    return letters >= 2 && words <= 6;
  };
  Cue cur;
  bool open = false;
  auto flush = [&] {
    if (open) {
      cur.text = trim(cur.text);
      if (!cur.text.empty()) t.cues.push_back(cur);
    }
    cur = Cue{};
    open = false;
  };
  for (const auto& raw : split_lines(utf8)) {
    std::string line = trim(raw);
    if (line.empty()) continue;
    int64_t time = -1;
    // [hh:mm:ss] prefix
    if (line[0] == '[') {
      const size_t close = line.find(']');
      if (close != std::string::npos) {
        const int64_t ts = parse_timestamp(line.substr(1, close - 1));
        if (ts >= 0) {
          time = ts;
          line = trim(line.substr(close + 1));
        }
      }
    }
    // "NAME  0:00" header line
    const size_t gap = line.rfind("  ");
    if (gap != std::string::npos && is_label(trim(line.substr(0, gap))) && parse_timestamp(trim(line.substr(gap))) >= 0) {
      flush();
      open = true;
      cur.speaker = trim(line.substr(0, gap));
      cur.start_ms = parse_timestamp(trim(line.substr(gap)));
      continue;
    }
    const size_t colon = line.find(':');
    if (colon != std::string::npos && is_label(trim(line.substr(0, colon))) && parse_timestamp(line.substr(0, colon)) < 0) {
      flush();
      open = true;
      cur.speaker = trim(line.substr(0, colon));
      cur.start_ms = time;
      cur.text = trim(line.substr(colon + 1));
      continue;
    }
    if (!open) {
      open = true;
      cur.start_ms = time;
    }
    if (!cur.text.empty()) cur.text += '\n';
    cur.text += line;
  }
  flush();
  return finish(std::move(t), name);
}

Result<Transcript> parse_transcript(std::string_view bytes, const std::string& path, std::string* decoded) {
  if (bytes.empty()) return make_error(ErrorCode::kCorrupt, path + ": empty file");
  std::string encoding;
  auto text = decode_text(bytes, &encoding);
  if (!text.ok()) return text.error().context(path);
  // One huge line (a minified dump, a binary file that happens to decode) is not a transcript,
  // and every line is copied a few times while parsing: refuse it with the limit named.
  for (size_t start = 0, line = 1; start < text->size(); ++line) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    if (static_cast<int64_t>(end - start) > kMaxLineBytes)
      return make_error(ErrorCode::kOutOfRange, path + ": line " + std::to_string(line) + " is too long (" + std::to_string(end - start) +
                                                    " bytes; the limit is " + format_size(kMaxLineBytes) + " per line)");
    start = end + 1;
  }
  if (trim(*text).empty()) return make_error(ErrorCode::kCorrupt, path + ": no text (" + encoding + ")");
  std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  Result<Transcript> r = ext == ".srt" ? parse_srt(*text, path) : ext == ".vtt" ? parse_vtt(*text, path) : parse_text_transcript(*text, path);
  if (r.ok()) {
    r->encoding = encoding;
    if (decoded) *decoded = std::move(*text);
  }
  return r;
}

Result<Transcript> read_transcript(const std::string& path) {
  TRY(const std::string bytes, read_file_limited(path, kMaxTextFileBytes));
  return parse_transcript(bytes, path);
}

}  // namespace docdsa::ingest
