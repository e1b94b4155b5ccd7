#include "docdsa/app/qa_dataset.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "docdsa/ingest/read_file.h"

namespace docdsa::app {

namespace fs = std::filesystem;

int QaDataset::n_questions() const {
  int n = 0;
  for (const auto& a : articles) n += static_cast<int>(a.questions.size());
  return n;
}

namespace {

// The ingest limit for text files (256 MiB) holds for a dataset and its articles too.
Result<std::string> read_file(const std::string& path, const std::string& what) {
  auto text = ingest::read_file_limited(path, ingest::kMaxTextFileBytes);
  if (text.ok()) return text;
  if (text.error().code == ErrorCode::kOutOfRange)
    return make_error(ErrorCode::kCorrupt, path + ": " + what + " is larger than 256 MiB");
  return make_error(ErrorCode::kIo, path + ": cannot read " + what + " (" + text.error().message + ")");
}

const nlohmann::json* field(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

Result<QaQuestion> parse_question(const nlohmann::json& q, const std::string& where) {
  if (!q.is_object()) return make_error(ErrorCode::kCorrupt, where + ": not an object");
  QaQuestion out;
  const auto* text = field(q, "question");
  if (!text || !text->is_string() || text->get<std::string>().empty())
    return make_error(ErrorCode::kCorrupt, where + ": 'question' must be a non-empty string");
  out.question = text->get<std::string>();
  const auto* opts = field(q, "options");
  if (!opts) return make_error(ErrorCode::kCorrupt, where + ": no 'options'");
  if (opts->is_array()) {
    for (const auto& o : *opts) {
      if (!o.is_string()) return make_error(ErrorCode::kCorrupt, where + ": every option must be a string");
      out.options.push_back(o.get<std::string>());
    }
  } else if (opts->is_object()) {
    // {"A": ..., "B": ...}: the letters must run from A without gaps.
    for (size_t i = 0; i < opts->size(); ++i) {
      const std::string letter(1, static_cast<char>('A' + i));
      const auto* o = field(*opts, letter.c_str());
      if (!o || !o->is_string())
        return make_error(ErrorCode::kCorrupt,
                          where + ": 'options' must have string options A, B, C... without gaps (no " + letter + ")");
      out.options.push_back(o->get<std::string>());
    }
  } else {
    return make_error(ErrorCode::kCorrupt, where + ": 'options' must be an object {\"A\": ...} or an array");
  }
  const int n = static_cast<int>(out.options.size());
  if (n < kQaMinOptions || n > kQaMaxOptions)
    return make_error(ErrorCode::kCorrupt, where + ": " + std::to_string(n) + " options; between " +
                                               std::to_string(kQaMinOptions) + " and " + std::to_string(kQaMaxOptions) +
                                               " expected");
  const std::string last(1, static_cast<char>('A' + n - 1));
  if (const auto* a = field(q, "answer"); a && a->is_string() && a->get<std::string>().size() == 1 &&
                                          a->get<std::string>()[0] >= 'A' && a->get<std::string>()[0] < 'A' + n) {
    out.answer = a->get<std::string>()[0] - 'A';
  } else if (const auto* g = field(q, "gold_label");
             !a && g && g->is_number_integer() && g->get<int64_t>() >= 1 && g->get<int64_t>() <= n) {
    out.answer = static_cast<int>(g->get<int64_t>()) - 1;  // QuALITY's own files: 1-based
  } else {
    return make_error(ErrorCode::kCorrupt, where + ": 'answer' must be one of the option letters A-" + last);
  }
  return out;
}

}  // namespace

Result<QaDataset> parse_qa_dataset(std::string_view json, const std::string& path, const std::string& base_dir) {
  const nlohmann::json root = nlohmann::json::parse(json, nullptr, false);
  if (root.is_discarded()) return make_error(ErrorCode::kCorrupt, path + ": not valid JSON");
  const nlohmann::json* list = &root;
  if (root.is_object() && root.contains("articles")) list = &root["articles"];
  if (!list->is_array())
    return make_error(ErrorCode::kCorrupt, path + ": expected a JSON array of articles (or {\"articles\": [...]})");
  QaDataset ds;
  ds.path = path;
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& a = (*list)[i];
    std::string where = path + ": article " + std::to_string(i + 1);
    if (!a.is_object()) return make_error(ErrorCode::kCorrupt, where + ": not an object");
    QaArticle art;
    if (const auto* id = field(a, "id"); id && id->is_string()) art.id = id->get<std::string>();
    if (art.id.empty())
      art.id = "article " + std::to_string(i + 1);
    else
      where += " (" + art.id + ")";
    if (const auto* t = field(a, "title"); t && t->is_string()) art.title = t->get<std::string>();
    if (const auto* text = field(a, "article"); text && text->is_string()) {
      art.text = text->get<std::string>();
    } else if (const auto* file = field(a, "article_file"); file && file->is_string() && !file->get<std::string>().empty()) {
      const fs::path p = fs::path(base_dir) / file->get<std::string>();
      auto body = read_file(p.string(), "article file named in " + path);
      if (!body.ok()) return body.error();
      art.text = std::move(*body);
    } else {
      return make_error(ErrorCode::kCorrupt, where + ": needs the text as 'article' or a file as 'article_file'");
    }
    if (art.text.find_first_not_of(" \t\r\n") == std::string::npos)
      return make_error(ErrorCode::kCorrupt, where + ": the article text is empty");
    const auto* qs = field(a, "questions");
    if (!qs || !qs->is_array() || qs->empty())
      return make_error(ErrorCode::kCorrupt, where + ": 'questions' must be a non-empty array");
    for (size_t k = 0; k < qs->size(); ++k) {
      auto q = parse_question((*qs)[k], where + ", question " + std::to_string(k + 1));
      if (!q.ok()) return q.error();
      art.questions.push_back(std::move(*q));
    }
    ds.articles.push_back(std::move(art));
  }
  if (ds.articles.empty()) return make_error(ErrorCode::kCorrupt, path + ": no articles");
  return ds;
}

Result<QaDataset> load_qa_dataset(const std::string& path) {
  TRY(std::string text, read_file(path, "the dataset"));
  return parse_qa_dataset(text, path, fs::path(path).parent_path().string());
}

}  // namespace docdsa::app
