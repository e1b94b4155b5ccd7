#include "docdsa/app/library_common.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "docdsa/ingest/document.h"

namespace docdsa::app {

namespace fs = std::filesystem;

Result<std::unique_ptr<storage::Library>> open_library_at(const std::string& db) {
  return storage::Library::open(db.empty() ? storage::default_library_path() : db);
}

std::string format_ms(int64_t ms) {
  if (ms < 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld", static_cast<long long>(ms / 3600000),
                static_cast<long long>(ms / 60000 % 60), static_cast<long long>(ms / 1000 % 60));
  return buf;
}

std::string provenance(const storage::ChunkRow& c) {
  if (c.page_first > 0)
    return c.page_first == c.page_last ? "p. " + std::to_string(c.page_first)
                                       : "pp. " + std::to_string(c.page_first) + "-" + std::to_string(c.page_last);
  std::string s;
  if (c.start_ms >= 0) s = format_ms(c.start_ms) + "-" + format_ms(c.end_ms);
  if (!c.speakers.empty()) s += (s.empty() ? "" : " ") + c.speakers;
  return s;
}

bool supported(const std::string& path) {
  const fs::path p(path);
  static const std::set<std::string> exts = {".pdf", ".srt", ".vtt", ".txt", ".md"};
  std::string e = p.extension().string();
  for (auto& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return exts.count(e) != 0;
}

// Expands files and folders (recursively) into the supported files, in a stable order.
// Folders are walked one at a time (not with recursive_directory_iterator, which ends the
// whole walk at the first error): one that cannot be read, or is removed mid-walk, is
// reported and the rest goes on. Links to folders are not followed (no cycles).
std::vector<std::string> expand(const std::vector<std::string>& inputs, std::vector<std::pair<std::string, std::string>>* errors,
                                const std::function<void(const std::string& folder)>& on_folder) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    const auto st = fs::status(in, ec);
    if (ec || !fs::exists(st)) {
      errors->push_back({in, "no such file or folder"});
      continue;
    }
    if (!fs::is_directory(st)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    std::vector<fs::path> todo{fs::path(in)};
    while (!todo.empty()) {
      const fs::path dir = todo.back();
      todo.pop_back();
      if (on_folder) on_folder(dir.string());
      // No skip_permission_denied: it turns a folder that cannot be read into an empty one,
      // and its documents would be left out without a word.
      fs::directory_iterator it(dir, ec), end;
      if (ec) {
        errors->push_back({dir.string(), "cannot read folder: " + ec.message()});
        ec.clear();
        continue;
      }
      for (; it != end; it.increment(ec)) {
        const fs::directory_entry& e = *it;
        std::error_code ec2;
        if (e.is_symlink(ec2) ? false : e.is_directory(ec2))
          todo.push_back(e.path());
        else if (e.is_regular_file(ec2) && supported(e.path().string()))
          found.push_back(e.path().string());
      }
      if (ec) {  // the iterator is at its end now: report the folder, keep what was found
        errors->push_back({dir.string(), "cannot read folder: " + ec.message()});
        ec.clear();
      }
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

Result<IngestResult> ingest_one(storage::Library& lib, const Tokenizer& tok, const std::string& f, const std::string& password,
                                int max_tokens, const std::function<bool(int done, int total)>& on_page) {
  IngestOptions o;
  o.password = password;
  o.max_chunk_tokens = max_tokens;
  o.on_page = on_page;
  return ingest_one(lib, tok, f, o);
}

Result<IngestResult> ingest_one(storage::Library& lib, const Tokenizer& tok, const std::string& f, const IngestOptions& options) {
  auto count = [&](const std::string& s) { return static_cast<int>(tok.encode(s, false, false).size()); };
  ingest::LoadOptions lo;
  lo.password = options.password;
  lo.on_page = options.on_page;
  lo.ocr = options.ocr;
  lo.on_ocr_page = options.on_ocr_page;
  // Content stored already (by hash): not parsed again, which for a scanned PDF means no OCR.
  int64_t known_id = 0;
  std::optional<Error> lookup_error;
  lo.known = [&](const std::string& hash) {
    auto id = lib.find_by_hash(hash);
    if (!id.ok()) lookup_error = id.error();
    known_id = id.ok() ? *id : 0;
    return !id.ok() || known_id != 0;
  };
  TRY(ingest::Document doc, ingest::load_document(f, lo));
  if (lookup_error) return make_error(lookup_error->code, f + ": " + lookup_error->message);
  if (doc.known) {
    TRY(storage::DocumentRow row, lib.find(std::to_string(known_id)));
    // The same content from another path: a file that was moved or renamed keeps its document
    // (and answers, summaries, caches), now under the path it has; a copy beside the original
    // leaves the stored path alone.
    // (A stored path on a drive that is not mounted now reads as moved too.)
    std::error_code ec;
    const std::string here = fs::absolute(f, ec).lexically_normal().string();
    if (!ec && row.path != here && !fs::exists(row.path, ec) && !ec) {
      const Status moved = lib.move_path(known_id, here);
      if (moved.ok()) row.path = here;
      else spdlog::warn("{}: the stored document keeps its old path: {}", f, moved.error().message);
    }
    IngestResult r;
    r.id = known_id;
    r.outcome = storage::StoreOutcome::kUnchanged;
    r.n_segments = static_cast<size_t>(row.n_segments);
    r.n_chunks = static_cast<size_t>(row.n_chunks);
    r.row = std::move(row);
    return r;
  }
  const int max_tokens = options.max_chunk_tokens;
  const auto chunks = ingest::chunk_document(doc, max_tokens, count);
  IngestResult r;
  storage::DocumentRow& row = r.row;
  row.path = fs::absolute(f).lexically_normal().string();
  row.kind = ingest::kind_name(doc.kind);
  row.title = doc.title;
  row.author = doc.author;
  row.content_hash = doc.content_hash;
  row.file_size = doc.file_size;
  std::vector<storage::SegmentRow> segs;
  int64_t max_page = 0, end_ms = -1;
  for (const auto& s : doc.segments) {
    segs.push_back({s.page, s.start_ms, s.end_ms, s.speaker, s.text});
    max_page = std::max<int64_t>(max_page, s.page);
    end_ms = std::max(end_ms, s.end_ms);
  }
  row.n_pages = doc.kind == ingest::DocKind::kPdf ? max_page : 0;
  row.duration_ms = end_ms;
  std::vector<storage::ChunkRow> crow;
  for (const auto& c : chunks) {
    crow.push_back(
        {c.index, c.n_tokens, c.page_first, c.page_last, c.start_ms, c.end_ms, c.char_begin, c.char_end, c.speakers, c.text});
    row.n_tokens += c.n_tokens;
  }
  for (size_t w = 0; w < doc.warnings.size(); ++w) row.warnings += (w ? "; " : "") + doc.warnings[w];
  std::vector<storage::OcrWordRow> words;
  for (const auto& p : doc.ocr_pages)
    for (const auto& w : p.result.words) words.push_back({p.page, w.x0, w.y0, w.x1, w.y1, w.confidence, w.text});
  row.ocr_pages = static_cast<int64_t>(doc.ocr_pages.size());
  row.ocr_confidence = doc.ocr_confidence;
  auto stored = lib.store(row, segs, crow, words);
  if (!stored.ok()) return make_error(stored.error().code, f + ": " + stored.error().message);
  r.id = stored->first;
  r.outcome = stored->second;
  row.id = r.id;
  r.n_segments = segs.size();
  r.n_chunks = crow.size();
  r.warnings = doc.warnings;
  r.pages_without_text = doc.pages_without_text;
  r.rolling_repeats_removed = doc.rolling_repeats_removed;
  r.n_ocr_pages = doc.ocr_pages.size();
  return r;
}

}  // namespace docdsa::app
