#include "docdsa/ingest/document.h"

#include <QCryptographicHash>
#include <QByteArray>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "docdsa/engine/utf8.h"
#include "docdsa/ingest/pdf.h"
#include "docdsa/ingest/read_file.h"
#include "docdsa/ingest/transcript.h"

namespace docdsa::ingest {
namespace {

std::string lower_ext(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
  std::string e = path.substr(dot);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

// Splits `text` into pieces of at most max_tokens, preferring paragraph, then line, then
// sentence, then word boundaries.
std::vector<std::string> split_oversized(const std::string& text, int max_tokens, const std::function<int(const std::string&)>& count) {
  if (count(text) <= max_tokens) return {text};
  for (const char* sep : {"\n\n", "\n", ". ", " "}) {
    std::vector<std::string> parts;
    size_t start = 0;
    const size_t sl = std::strlen(sep);
    while (start < text.size()) {
      size_t at = text.find(sep, start);
      if (at == std::string::npos) at = text.size();
      else at += sl;
      parts.push_back(text.substr(start, at - start));
      start = at;
    }
    if (parts.size() < 2) continue;
    std::vector<std::string> out;
    std::string cur;
    for (const auto& p : parts) {
      if (!cur.empty() && count(cur + p) > max_tokens) {
        for (auto& piece : split_oversized(cur, max_tokens, count)) out.push_back(std::move(piece));
        cur.clear();
      }
      cur += p;
    }
    if (!cur.empty())
      for (auto& piece : split_oversized(cur, max_tokens, count)) out.push_back(std::move(piece));
    return out;
  }
  return {text};  // one unbreakable run: keep it whole
}

}  // namespace

const char* kind_name(DocKind k) {
  switch (k) {
    case DocKind::kPdf: return "pdf";
    case DocKind::kSrt: return "srt";
    case DocKind::kVtt: return "vtt";
    case DocKind::kText: return "txt";
  }
  return "?";
}

std::string sha256_hex(const std::string& bytes) {
  const QByteArray h = QCryptographicHash::hash(QByteArray::fromRawData(bytes.data(), static_cast<qsizetype>(bytes.size())),
                                                QCryptographicHash::Sha256);
  return h.toHex().toStdString();
}

Result<Document> load_document(const std::string& path, const std::string& password, const PageProgress& on_page) {
  LoadOptions o;
  o.password = password;
  o.on_page = on_page;
  return load_document(path, o);
}

Result<Document> load_document(const std::string& path, const LoadOptions& options) {
  const std::string ext = lower_ext(path);
  // The file is read once, within the size limit for its kind (read_file.h): the bytes hashed
  // are the bytes parsed.
  TRY(std::string bytes, read_file_limited(path, ext == ".pdf" ? kMaxPdfBytes : kMaxTextFileBytes));
  if (bytes.empty()) return make_error(ErrorCode::kCorrupt, path + ": empty file");
  Document d;
  d.path = path;
  d.content_hash = sha256_hex(bytes);
  d.file_size = static_cast<int64_t>(bytes.size());
  if (options.known && options.known(d.content_hash)) {
    d.known = true;
    return d;
  }
  const bool looks_pdf = bytes.compare(0, 5, "%PDF-") == 0;
  if (ext == ".pdf" || looks_pdf) {
    if (!looks_pdf) return make_error(ErrorCode::kCorrupt, path + ": named .pdf but is not a PDF file");
    // Poppler parses the very bytes that were hashed, not the file again by name.
    PdfReadOptions ro;
    ro.password = options.password;
    ro.on_page = options.on_page;
    ro.ocr = options.ocr;
    ro.on_ocr_page = options.on_ocr_page;
    TRY(PdfDocument pdf, read_pdf_bytes(bytes, path, ro));
    const int furniture = normalize_pages(&pdf.pages);
    d.kind = DocKind::kPdf;
    d.title = pdf.title.empty() ? std::string(path.substr(path.rfind('/') + 1)) : pdf.title;
    d.author = pdf.author;
    double conf_sum = 0;
    size_t n_words = 0;
    for (auto& p : pdf.pages) {
      if (!p.has_text) {
        d.pages_without_text.push_back(p.number);
        continue;
      }
      d.segments.push_back(Segment{p.text, p.number, -1, -1, {}});
      if (p.ocr) {
        for (const auto& w : p.ocr_result.words) conf_sum += w.confidence;
        n_words += p.ocr_result.words.size();
        d.ocr_pages.push_back({p.number, std::move(p.ocr_result)});
      }
    }
    if (n_words) d.ocr_confidence = static_cast<float>(conf_sum / static_cast<double>(n_words));
    const bool ocr_ran = std::any_of(pdf.pages.begin(), pdf.pages.end(), [](const PdfPage& p) { return p.ocr; });
    if (d.segments.empty() && ocr_ran)
      return make_error(ErrorCode::kUnsupported, path + ": no text on any of its " + std::to_string(pdf.pages.size()) +
                                                     " pages (no text layer, and OCR found no words)");
    if (d.segments.empty())
      return make_error(ErrorCode::kUnsupported, path + ": no text layer on any of its " + std::to_string(pdf.pages.size()) +
                                                     " pages (scanned or image-only; OCR it first)");
    for (auto& w : pdf.warnings) d.warnings.push_back(std::move(w));
    if (!d.pages_without_text.empty())
      d.warnings.push_back(std::to_string(d.pages_without_text.size()) + (ocr_ran ? " page(s) without text" : " page(s) without a text layer"));
    if (furniture > 0) d.warnings.push_back(std::to_string(furniture) + " header/footer/page-number lines removed");
    return d;
  }
  if (ext != ".srt" && ext != ".vtt" && ext != ".txt" && ext != ".md" && ext != ".text")
    return make_error(ErrorCode::kUnsupported, path + ": unsupported file type '" + ext + "' (PDF, SRT, VTT and text are)");
  std::string text;  // decoded from `bytes`, the same bytes that were hashed
  TRY(Transcript t, parse_transcript(bytes, path, &text));
  d.kind = ext == ".srt" ? DocKind::kSrt : ext == ".vtt" ? DocKind::kVtt : DocKind::kText;
  d.rolling_repeats_removed = t.rolling_repeats_removed;
  d.warnings = t.warnings;
  int with_speaker = 0;
  for (const auto& c : t.cues) with_speaker += !c.speaker.empty();
  if (d.kind == DocKind::kText && with_speaker < 2) {
    // Plain prose: paragraphs are the segments.
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find("\n\n", start);
      if (end == std::string::npos) end = text.size();
      std::string para = text.substr(start, end - start);
      const size_t a = para.find_first_not_of(" \t\n");
      if (a != std::string::npos) d.segments.push_back(Segment{para.substr(a, para.find_last_not_of(" \t\n") - a + 1), 0, -1, -1, {}});
      start = end + 2;
    }
  } else {
    for (auto& c : t.cues) d.segments.push_back(Segment{std::move(c.text), 0, c.start_ms, c.end_ms, std::move(c.speaker)});
  }
  if (!d.segments.empty() && d.title.empty()) {
    const std::string& first = d.segments.front().text;
    d.title = utf8_prefix(std::string_view(first).substr(0, first.find('\n')), 80);  // whole characters
  }
  const size_t slash = path.rfind('/');
  if (d.kind != DocKind::kText || d.title.empty()) d.title = slash == std::string::npos ? path : path.substr(slash + 1);
  return d;
}

std::string full_text(const Document& doc) {
  std::string out;
  for (size_t i = 0; i < doc.segments.size(); ++i) {
    if (i) out += "\n\n";
    const Segment& s = doc.segments[i];
    if (!s.speaker.empty()) out += s.speaker + ": ";
    out += s.text;
  }
  return out;
}

std::vector<Chunk> chunk_document(const Document& doc, int max_tokens, const std::function<int(const std::string&)>& count) {
  std::vector<Chunk> chunks;
  Chunk cur;
  bool open = false;
  int64_t offset = 0;
  auto close = [&] {
    if (!open) return;
    cur.n_tokens = count(cur.text);
    cur.index = static_cast<int>(chunks.size());
    chunks.push_back(cur);
    open = false;
  };
  auto add_speaker = [](Chunk& c, const std::string& sp) {
    if (sp.empty()) return;
    std::string list = "," + c.speakers + ",";
    if (list.find("," + sp + ",") == std::string::npos) c.speakers += (c.speakers.empty() ? "" : ",") + sp;
  };
  for (size_t si = 0; si < doc.segments.size(); ++si) {
    const Segment& s = doc.segments[si];
    const std::string seg_text = (s.speaker.empty() ? "" : s.speaker + ": ") + s.text;
    const int64_t seg_begin = offset + (si ? 2 : 0);
    offset = seg_begin + static_cast<int64_t>(seg_text.size());
    for (const std::string& piece : split_oversized(seg_text, max_tokens, count)) {
      const std::string joined = open ? cur.text + "\n\n" + piece : piece;
      if (open && count(joined) > max_tokens) close();
      if (!open) {
        cur = Chunk{};
        cur.first_segment = static_cast<int>(si);
        cur.page_first = s.page;
        cur.start_ms = s.start_ms;
        cur.char_begin = seg_begin;
        cur.text = piece;
        open = true;
      } else {
        cur.text += "\n\n" + piece;
      }
      cur.last_segment = static_cast<int>(si);
      cur.page_last = s.page;
      if (s.end_ms >= 0) cur.end_ms = s.end_ms;
      if (cur.start_ms < 0) cur.start_ms = s.start_ms;
      add_speaker(cur, s.speaker);
      cur.char_end = offset;
    }
  }
  close();
  return chunks;
}

}  // namespace docdsa::ingest
