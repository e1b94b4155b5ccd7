// Summary sidecars: OUT/<path relative to the inputs>.summary.md, one per input file. The
// layout under OUT mirrors the inputs' own, so a/notes.txt and b/notes.txt get two files.
// Files are written atomically and durably: a new temporary file beside the target (created
// exclusively, never through a link), fsync, rename, fsync of the folder.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/engine/result.h"
#include "docdsa/storage/library.h"

namespace docdsa::app {

// The folder all inputs share (a folder counts as itself, a file as its parent), absolute;
// inputs that do not exist are left out.
std::string common_root(const std::vector<std::string>& inputs);
// OUT / (file relative to root) + ".summary.md"; a file outside root gets its name alone.
std::string sidecar_path(const std::string& out_dir, const std::string& root, const std::string& file);
// The sidecar's Markdown: title, source path, the summary and its sources.
std::string sidecar_markdown(const storage::DocumentRow& row, const std::string& summary, const nlohmann::json& sources);

// Writes `text` to `path` as described above, creating the folders on the way.
Status write_file_atomic(const std::string& path, const std::string& text);
// Removes the temporary files a killed write_file_atomic left beside `path`.
void remove_stale_temps(const std::string& path);

}  // namespace docdsa::app
