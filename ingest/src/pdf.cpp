#include "docdsa/ingest/pdf.h"

#include "docdsa/ingest/read_file.h"

#include <poppler-qt6.h>

#include <QString>
#include <QVariant>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <memory>

namespace docdsa::ingest {

namespace {
// Poppler reports recoverable damage on stderr; keep it in the log (-vv) instead.
void route_poppler_messages() {
  static const bool once = [] {
    Poppler::setDebugErrorFunction([](const QString& msg, const QVariant&) { spdlog::debug("poppler: {}", msg.toStdString()); }, QVariant());
    return true;
  }();
  (void)once;
}

struct Word {
  double x0, y0, x1, y1;
  std::string text;
  double yc() const { return 0.5 * (y0 + y1); }
  double h() const { return y1 - y0; }
};
struct Line {
  std::vector<Word> words;  // left to right
  double y0 = 0, y1 = 0;
};

std::string join(const std::vector<Word>& ws) {
  std::string s;
  for (const auto& w : ws) s += (s.empty() ? "" : " ") + w.text;
  return s;
}

// Reading order from word boxes: words grouped into lines; when a vertical gutter splits most
// lines of the page in two, text is read column by column between full-width lines (titles,
// figures' captions spanning both columns), as pdftotext does.
std::string layout_text(const Poppler::Page& page) {
  std::vector<Word> words;
  for (const auto& box : page.textList()) {
    const QRectF r = box->boundingBox();
    words.push_back({r.left(), r.top(), r.right(), r.bottom(), box->text().toStdString()});
  }
  if (words.empty()) return {};
  std::vector<double> hs;
  for (const auto& w : words) hs.push_back(w.h());
  std::nth_element(hs.begin(), hs.begin() + static_cast<std::ptrdiff_t>(hs.size() / 2), hs.end());
  const double med_h = std::max(1.0, hs[hs.size() / 2]);
  std::stable_sort(words.begin(), words.end(), [](const Word& a, const Word& b) { return a.yc() < b.yc(); });
  std::vector<Line> lines;
  for (auto& w : words) {
    if (lines.empty() || w.yc() - 0.5 * (lines.back().y0 + lines.back().y1) > 0.5 * med_h) {
      lines.push_back({{}, w.y0, w.y1});
    }
    Line& l = lines.back();
    l.y0 = std::min(l.y0, w.y0);
    l.y1 = std::max(l.y1, w.y1);
    l.words.push_back(std::move(w));
  }
  for (auto& l : lines) std::stable_sort(l.words.begin(), l.words.end(), [](const Word& a, const Word& b) { return a.x0 < b.x0; });
  // Find a gutter: an x that no word crosses on most lines while words lie on both sides.
  const double width = page.pageSizeF().width();
  double best_x = -1;
  int best_split = 0;
  for (double x = 0.35 * width; x <= 0.65 * width; x += width / 200.0) {
    int crossing = 0, split = 0;
    for (const auto& l : lines) {
      bool left = false, right = false, cross = false;
      for (const auto& w : l.words) {
        if (w.x1 <= x) left = true;
        else if (w.x0 >= x) right = true;
        else cross = true;
      }
      crossing += cross;
      split += left && right && !cross;
    }
    if (split > best_split && crossing * 5 <= static_cast<int>(lines.size()) && split * 3 >= static_cast<int>(lines.size())) {
      best_split = split;
      best_x = x;
    }
  }
  std::string out;
  auto emit_line = [&](const std::string& line, double gap) {
    if (line.empty()) return;
    if (!out.empty()) out += gap > 1.6 * med_h ? "\n\n" : "\n";
    out += line;
  };
  if (best_x < 0) {
    double prev = -1e9;
    for (const auto& l : lines) {
      emit_line(join(l.words), l.y0 - prev);
      prev = l.y1;
    }
    return out;
  }
  std::vector<std::pair<std::string, double>> left, right;  // (text, top)
  double lprev = -1e9, rprev = -1e9, prev = -1e9;
  auto flush = [&] {
    for (auto& [t, gap] : left) emit_line(t, gap);
    for (size_t i = 0; i < right.size(); ++i) emit_line(right[i].first, i == 0 ? 1e9 : right[i].second);
    left.clear();
    right.clear();
  };
  for (const auto& l : lines) {
    std::vector<Word> lw, rw;
    bool cross = false;
    for (const auto& w : l.words) {
      if (w.x1 <= best_x) lw.push_back(w);
      else if (w.x0 >= best_x) rw.push_back(w);
      else cross = true;
    }
    if (cross) {
      flush();
      emit_line(join(l.words), l.y0 - prev);
      prev = l.y1;
      lprev = rprev = l.y1;
      continue;
    }
    if (!lw.empty()) left.push_back({join(lw), l.y0 - lprev}), lprev = l.y1;
    if (!rw.empty()) right.push_back({join(rw), l.y0 - rprev}), rprev = l.y1;
    prev = l.y1;
  }
  flush();
  return out;
}

}  // namespace

Result<PdfDocument> read_pdf(const std::string& path, const std::string& password, const PageProgress& on_page) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return make_error(ErrorCode::kNotFound, path + ": no such file");
  TRY(std::string bytes, read_file_limited(path, kMaxPdfBytes));
  return read_pdf_bytes(bytes, path, password, on_page);
}

Result<PdfDocument> read_pdf_bytes(const std::string& bytes, const std::string& path, const std::string& password,
                                   const PageProgress& on_page) {
  PdfReadOptions o;
  o.password = password;
  o.on_page = on_page;
  o.ocr.enabled = false;
  return read_pdf_bytes(bytes, path, o);
}

Result<PdfDocument> read_pdf_bytes(const std::string& bytes, const std::string& path, const PdfReadOptions& options) {
  route_poppler_messages();
  const std::string& password = options.password;
  const PageProgress& on_page = options.on_page;
  // Poppler documents are not thread-safe: each call owns its own. fromRawData: no copy.
  std::unique_ptr<Poppler::Document> doc =
      Poppler::Document::loadFromData(QByteArray::fromRawData(bytes.data(), static_cast<qsizetype>(bytes.size())),
                                      QByteArray::fromStdString(password), QByteArray::fromStdString(password));
  if (!doc) return make_error(ErrorCode::kCorrupt, path + ": not a readable PDF (damaged or not a PDF)");
  if (doc->isLocked())
    return make_error(ErrorCode::kInvalidArgument,
                      path + (password.empty() ? ": the PDF is encrypted and needs a password (use --password)" : ": wrong password: the PDF needs a password"));
  PdfDocument out;
  out.title = doc->info(QStringLiteral("Title")).toStdString();
  out.author = doc->info(QStringLiteral("Author")).toStdString();
  const int n = doc->numPages();
  if (n <= 0) return make_error(ErrorCode::kCorrupt, path + ": the PDF has no pages Poppler can read");
  const auto stopped = [&](int done) { return on_page && !on_page(done, n); };
  if (stopped(0)) return make_error(ErrorCode::kCancelled, path + ": stopped before its first page");
  std::vector<int> no_text;
  for (int i = 0; i < n; ++i) {
    PdfPage p;
    p.number = i + 1;
    std::unique_ptr<Poppler::Page> page = doc->page(i);
    if (page) p.text = layout_text(*page);
    p.has_text = p.text.find_first_not_of(" \t\r\n\f") != std::string::npos;
    if (!p.has_text && page) no_text.push_back(p.number);
    out.pages.push_back(std::move(p));
    if (stopped(i + 1))
      return make_error(ErrorCode::kCancelled, path + ": stopped after page " + std::to_string(i + 1) + " of " + std::to_string(n));
  }
  if (!options.ocr.enabled || no_text.empty()) return out;
  doc.reset();  // the OCR workers open their own
  TRY(std::vector<OcrPage> read, ocr_pdf_pages(bytes, path, password, no_text, options.ocr, options.on_ocr_page));
  for (size_t k = 0; k < no_text.size(); ++k) {
    PdfPage& p = out.pages[static_cast<size_t>(no_text[k] - 1)];
    OcrPage& r = read[k];
    for (auto& w : r.warnings) out.warnings.push_back(std::move(w));
    r.warnings.clear();
    p.ocr = true;
    p.text = r.text;
    p.has_text = !r.words.empty();
    p.ocr_result = std::move(r);
  }
  return out;
}

}  // namespace docdsa::ingest

namespace docdsa::ingest {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == '\n') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

std::string trimmed(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\f");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\f") - a + 1);
}

// Digits collapsed so "Page 3 of 90" and "Page 4 of 90" compare equal.
std::string shape(const std::string& line) {
  std::string k;
  for (char c : trimmed(line)) {
    if (c >= '0' && c <= '9') {
      if (k.empty() || k.back() != '#') k += '#';
    } else {
      k += c;
    }
  }
  return k;
}

bool is_page_number(const std::string& line) {
  const std::string t = trimmed(line);
  if (t.empty() || t.size() > 12) return false;
  return t.find_first_not_of("0123456789ivxlcdmIVXLCDM-– ") == std::string::npos;
}

void replace_all(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) s->replace(at, from.size(), to);
}

}  // namespace

int normalize_pages(std::vector<PdfPage>* pages) {
  static const std::pair<const char*, const char*> kLigatures[] = {
      {"\xEF\xAC\x80", "ff"}, {"\xEF\xAC\x81", "fi"}, {"\xEF\xAC\x82", "fl"}, {"\xEF\xAC\x83", "ffi"},
      {"\xEF\xAC\x84", "ffl"}, {"\xEF\xAC\x85", "st"}, {"\xEF\xAC\x86", "st"}};
  // Running headers and footers: the first and last two non-empty lines of each page.
  std::map<std::string, int> top, bottom;
  int with_text = 0;
  for (const auto& p : *pages) {
    if (!p.has_text) continue;
    ++with_text;
    std::vector<std::string> ls;
    for (const auto& l : lines_of(p.text))
      if (!trimmed(l).empty()) ls.push_back(l);
    std::set<std::string> seen_top, seen_bottom;
    for (size_t i = 0; i < std::min<size_t>(2, ls.size()); ++i) seen_top.insert(shape(ls[i]));
    for (size_t i = ls.size() > 2 ? ls.size() - 2 : 0; i < ls.size(); ++i) seen_bottom.insert(shape(ls[i]));
    for (const auto& k : seen_top) ++top[k];
    for (const auto& k : seen_bottom) ++bottom[k];
  }
  const int threshold = std::max(3, with_text / 2);
  int removed = 0;
  for (auto& p : *pages) {
    if (!p.has_text) continue;
    for (const auto& [from, to] : kLigatures) replace_all(&p.text, from, to);
    auto ls = lines_of(p.text);
    std::vector<size_t> nonempty;
    for (size_t i = 0; i < ls.size(); ++i)
      if (!trimmed(ls[i]).empty()) nonempty.push_back(i);
    std::set<size_t> drop;
    for (size_t k = 0; k < std::min<size_t>(2, nonempty.size()); ++k) {
      const size_t i = nonempty[k];
      if ((with_text >= 3 && top[shape(ls[i])] >= threshold) || is_page_number(ls[i])) drop.insert(i);
    }
    for (size_t k = nonempty.size() > 2 ? nonempty.size() - 2 : 0; k < nonempty.size(); ++k) {
      const size_t i = nonempty[k];
      if ((with_text >= 3 && bottom[shape(ls[i])] >= threshold) || is_page_number(ls[i])) drop.insert(i);
    }
    std::string out;
    for (size_t i = 0; i < ls.size(); ++i) {
      if (drop.count(i)) {
        ++removed;
        continue;
      }
      std::string line = ls[i];
      // "exam-" + "ple" on the next line -> "example" (lower-case letters on both sides).
      if (!out.empty() && out.size() >= 2 && out.back() == '-' && std::islower(static_cast<unsigned char>(out[out.size() - 2]))) {
        const std::string t = trimmed(line);
        if (!t.empty() && std::islower(static_cast<unsigned char>(t[0]))) {
          out.pop_back();
          out += t;
          continue;
        }
      }
      if (!out.empty()) out += '\n';
      out += line;
    }
    p.text = out;
    p.has_text = p.text.find_first_not_of(" \t\r\n\f") != std::string::npos;
  }
  return removed;
}

}  // namespace docdsa::ingest
