// Documents read once for good: a read document's KV and indexer caches (engine/session_state.h)
// kept on disk, so a question asked later, from another process, prefills only the question.
//
// Entries live under $XDG_CACHE_HOME/docdsa/contexts/ (~/.cache when unset), one file per key:
// document content hash x model fingerprint x the session's attention, RoPE and extension
// settings x the rendered prompt prefix (its tokens). A file is written to a temporary name
// and renamed, carries a header and a checksum checked on load (a damaged or partial file is
// ignored with a warning, removed, and the document read again), and is read through a memory
// map. A disk budget (default 20 GB) evicts the least recently used entries; using an entry
// counts as use (its modification time is touched).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "docdsa/engine/model.h"
#include "docdsa/engine/result.h"
#include "docdsa/engine/session.h"
#include "docdsa/engine/session_state.h"

namespace docdsa::app {

inline constexpr uint64_t kDefaultCacheBudget = 20ull * 1000 * 1000 * 1000;  // 20 GB
// How stored contexts keep K and V (session_state.h). f16 loads bit-exact; q8 halves the
// disk but was measured to move answers (README, "Read once"), so f16 stays the default.
inline constexpr KvStorage kDefaultKvStorage = KvStorage::kF16;

// Identity of a model file without reading its gigabyte of weights: its size, the first MiB
// (GGUF header, metadata, tensor table) and the first and last bytes of every tensor.
// Computed once per file (path, size, modification time) in a process.
uint64_t model_fingerprint(const Model& model);
std::string model_fingerprint_hex(const Model& model);  // 16 hex digits, as entries record it

// The key of a document read into `s` (which holds exactly the prefix): 32 hex digits.
std::string context_key(const Model& model, const Session& s, std::string_view content_hash, std::span<const TokenId> prefix);

// "20G", "500M", "1.5G", "0" (no caching), plain bytes; K/M/G/T are powers of 1000.
Result<uint64_t> parse_cache_budget(const std::string& text);
std::string format_bytes(uint64_t bytes);
// A budget as parse_cache_budget reads it back, in the largest exact unit ("20G").
std::string cache_budget_text(uint64_t bytes);
// "f16" or "q8".
Result<KvStorage> parse_kv_storage(const std::string& text);

struct ContextEntry {
  std::string key, path;
  uint64_t bytes = 0;
  int64_t last_used = 0;  // seconds since the epoch
  nlohmann::json meta;    // what store() was given (document, model, tokens, reading cost)
};

class ContextCache {
 public:
  static std::string default_dir();
  explicit ContextCache(std::string dir = default_dir(), uint64_t budget = kDefaultCacheBudget,
                        KvStorage kv = kDefaultKvStorage);

  const std::string& dir() const { return dir_; }
  uint64_t budget() const { return budget_; }
  KvStorage kv_storage() const { return kv_; }  // how store() writes K and V (load reads either)

  // Loads the entry for `key` into `s` and returns its metadata; nullopt when there is none,
  // or when it is damaged, partial or made for other settings (then with a warning naming the
  // file, which is removed). Touches the entry (last use).
  std::optional<nlohmann::json> load(const std::string& key, Session& s) const;
  bool contains(const std::string& key) const;
  // Stores s's state under `key` with `meta`, then evicts least recently used entries down to
  // the budget. An entry larger than the whole budget is not stored (Ok, nothing written).
  Status store(const std::string& key, const Session& s, nlohmann::json meta) const;
  // All entries, most recently used first (damaged ones are listed with empty meta). Without
  // `with_meta` only names, sizes and dates: no entry is opened.
  std::vector<ContextEntry> list(bool with_meta = true) const;
  // Removes least recently used entries until the total plus `incoming` bytes fits the budget;
  // returns the number removed.
  int evict(uint64_t incoming = 0) const;
  // Removes every entry (and leftover temporary files); returns the bytes freed and, in
  // `removed`, how many entries were removed.
  uint64_t clear(size_t* removed = nullptr) const;
  // Content hashes of the documents with a stored context for this model (any settings).
  std::set<std::string> documents(const Model& model) const;

 private:
  std::string path_of(const std::string& key) const;
  std::string dir_;
  uint64_t budget_;
  KvStorage kv_;
};

}  // namespace docdsa::app
