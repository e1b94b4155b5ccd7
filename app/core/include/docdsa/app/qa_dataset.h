// Multiple-choice reading questions in the QuALITY format (as the shared corpus stores them):
// a JSON array of articles, each with its text (inline "article", or "article_file" relative
// to the dataset file), and questions with lettered options and the gold letter. The file is
// data from anywhere: every problem is an error naming the file and the place, never a throw.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa::app {

struct QaQuestion {
  std::string question;
  std::vector<std::string> options;  // option i has the letter 'A' + i
  int answer = 0;                    // index into options
};

struct QaArticle {
  std::string id, title, text;
  std::vector<QaQuestion> questions;
};

struct QaDataset {
  std::string path;
  std::vector<QaArticle> articles;
  int n_questions() const;
};

inline constexpr int kQaMinOptions = 2, kQaMaxOptions = 8;

// Reads the file and any article files it names.
Result<QaDataset> load_qa_dataset(const std::string& path);
// The same from text already read; article files are read relative to `base_dir`.
Result<QaDataset> parse_qa_dataset(std::string_view json, const std::string& path, const std::string& base_dir);

}  // namespace docdsa::app
