#include "docdsa/app/context_cache.h"
#include "docdsa/app/json_text.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <tuple>

#include "docdsa/base/paths.h"
#include "docdsa/engine/session_state.h"

namespace docdsa::app {

namespace fs = std::filesystem;

namespace {
constexpr char kMagic[8] = {'D', 'O', 'C', 'D', 'S', 'A', 'C', 'X'};
constexpr uint32_t kVersion = 1;
constexpr const char* kExt = ".ctx";
constexpr const char* kTempMark = ".ctx.tmp-";

// File layout: Header, meta (JSON text), state (engine/session_state.h).
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t meta_bytes;
  uint64_t state_bytes;
  uint64_t checksum;  // XXH3-64 of meta and state
  uint8_t pad[24];
};
static_assert(sizeof(Header) == 64);

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string errno_text() {
  return std::strerror(errno);
}

// A read-only map of a whole file, unmapped on destruction.
struct Mapped {
  const uint8_t* data = nullptr;
  size_t size = 0;
  Mapped() = default;
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  ~Mapped() {
    if (data) ::munmap(const_cast<uint8_t*>(data), size);
  }
};

Status map_file(const std::string& path, Mapped& m) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, "cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kIo, "not a regular file");
  }
  if (st.st_size < static_cast<off_t>(sizeof(Header))) {
    ::close(fd);
    return make_error(ErrorCode::kCorrupt, "truncated (" + std::to_string(st.st_size) + " bytes)");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return make_error(ErrorCode::kIo, "cannot map: " + errno_text());
  ::madvise(p, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
  m.data = static_cast<const uint8_t*>(p);
  m.size = static_cast<size_t>(st.st_size);
  return {};
}

// Checks the header and sizes (and with `verify`, the checksum); returns the meta text.
Result<std::string_view> check_file(const Mapped& m, bool verify) {
  Header h;
  std::memcpy(&h, m.data, sizeof(h));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) return make_error(ErrorCode::kCorrupt, "not a DocDSA context file");
  if (h.version != kVersion) return make_error(ErrorCode::kUnsupported, "context file version " + std::to_string(h.version));
  const uint64_t body = m.size - sizeof(Header);
  if (h.meta_bytes > body || h.state_bytes != body - h.meta_bytes)
    return make_error(ErrorCode::kCorrupt, "partial file (" + std::to_string(m.size) + " bytes, the header says " +
                                               std::to_string(sizeof(Header) + h.meta_bytes + h.state_bytes) + ")");
  if (verify && XXH3_64bits(m.data + sizeof(Header), body) != h.checksum)
    return make_error(ErrorCode::kCorrupt, "checksum mismatch (damaged)");
  return std::string_view(reinterpret_cast<const char*>(m.data) + sizeof(Header), h.meta_bytes);
}

// Reads only the header and meta of an entry (listing).
Result<nlohmann::json> read_meta(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return make_error(ErrorCode::kIo, "cannot open: " + errno_text());
  Header h;
  std::string meta;
  bool ok = std::fread(&h, sizeof(h), 1, f) == 1 && std::memcmp(h.magic, kMagic, sizeof(kMagic)) == 0 && h.version == kVersion &&
            h.meta_bytes < (1u << 24);
  if (ok) {
    meta.resize(h.meta_bytes);
    ok = std::fread(meta.data(), 1, meta.size(), f) == meta.size();
  }
  std::fclose(f);
  if (!ok) return make_error(ErrorCode::kCorrupt, "unreadable header");
  auto j = nlohmann::json::parse(meta, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorCode::kCorrupt, "unreadable metadata");
  return j;
}

void touch(const std::string& path) {
  // Last use is the modification time: LRU needs no index file to keep consistent.
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
}

int64_t mtime_of(const fs::directory_entry& e) {
  struct stat st {};
  if (::stat(e.path().c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec);
}

bool is_entry(const fs::path& p) {
  return p.extension() == kExt;
}
bool is_temp(const fs::path& p) {
  return p.filename().string().find(kTempMark) != std::string::npos;
}
}  // namespace

uint64_t model_fingerprint(const Model& model) {
  static std::mutex mu;
  static std::map<std::tuple<std::string, uint64_t, int64_t>, uint64_t> memo;
  struct stat st {};
  const int64_t mtime = ::stat(model.path().c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtim.tv_sec) : 0;
  const auto id = std::make_tuple(model.path(), model.file().size(), mtime);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = memo.find(id); it != memo.end()) return it->second;
  }
  XXH3_state_t* x = XXH3_createState();
  XXH3_64bits_reset(x);
  const uint64_t size = model.file().size();
  XXH3_64bits_update(x, &size, sizeof(size));
  if (std::FILE* f = std::fopen(model.path().c_str(), "rb")) {
    std::vector<char> head(1 << 20);
    const size_t n = std::fread(head.data(), 1, head.size(), f);
    XXH3_64bits_update(x, head.data(), n);
    std::fclose(f);
  }
  for (const auto& t : model.file().tensors()) {
    XXH3_64bits_update(x, t.name.data(), t.name.size());
    XXH3_64bits_update(x, t.ne.data(), t.ne.size() * sizeof(int64_t));
    XXH3_64bits_update(x, &t.offset, sizeof(t.offset));
    if (t.data && t.nbytes > 0) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(t.nbytes, 256));
      XXH3_64bits_update(x, t.data, k);
      XXH3_64bits_update(x, t.data + t.nbytes - k, k);
    }
  }
  const uint64_t h = XXH3_64bits_digest(x);
  XXH3_freeState(x);
  std::lock_guard<std::mutex> lock(mu);
  memo[id] = h;
  return h;
}

std::string model_fingerprint_hex(const Model& model) {
  return hex64(model_fingerprint(model));
}

std::string context_key(const Model& model, const Session& s, std::string_view content_hash, std::span<const TokenId> prefix) {
  XXH3_state_t* x = XXH3_createState();
  XXH3_128bits_reset(x);
  const auto add = [&](const void* p, size_t n) {
    const uint64_t len = n;  // lengths keep the parts apart
    XXH3_128bits_update(x, &len, sizeof(len));
    XXH3_128bits_update(x, p, n);
  };
  add(content_hash.data(), content_hash.size());
  const uint64_t fp = model_fingerprint(model), sig = session_state_signature(s);
  add(&fp, sizeof(fp));
  add(&sig, sizeof(sig));
  add(prefix.data(), prefix.size_bytes());
  const XXH128_hash_t h = XXH3_128bits_digest(x);
  XXH3_freeState(x);
  return hex64(h.high64) + hex64(h.low64);
}

Result<uint64_t> parse_cache_budget(const std::string& text) {
  const auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "cache budget '" + text + "' is not a size (such as 20G, 500M, 0 to turn the context cache off)");
  };
  if (text.empty()) return bad();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !(v >= 0) || !std::isfinite(v)) return bad();
  std::string unit(end);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  double mult = 1;
  if (unit.empty())
    mult = 1;
  else if (unit == "K" || unit == "k")
    mult = 1e3;
  else if (unit == "M" || unit == "m")
    mult = 1e6;
  else if (unit == "G" || unit == "g")
    mult = 1e9;
  else if (unit == "T" || unit == "t")
    mult = 1e12;
  else
    return bad();
  const double bytes = v * mult;
  if (bytes > 1e18) return bad();
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t bytes) {
  char b[32];
  if (bytes >= 1000ull * 1000 * 1000)
    std::snprintf(b, sizeof(b), "%.2f GB", static_cast<double>(bytes) / 1e9);
  else if (bytes >= 1000ull * 1000)
    std::snprintf(b, sizeof(b), "%.1f MB", static_cast<double>(bytes) / 1e6);
  else if (bytes >= 1000)
    std::snprintf(b, sizeof(b), "%.1f kB", static_cast<double>(bytes) / 1e3);
  else
    std::snprintf(b, sizeof(b), "%llu B", static_cast<unsigned long long>(bytes));
  return b;
}

std::string cache_budget_text(uint64_t bytes) {
  static const std::pair<uint64_t, const char*> units[] = {
      {1000ull * 1000 * 1000 * 1000, "T"}, {1000ull * 1000 * 1000, "G"}, {1000ull * 1000, "M"}, {1000ull, "K"}};
  for (const auto& [u, name] : units)
    if (bytes >= u && bytes % u == 0) return std::to_string(bytes / u) + name;
  return std::to_string(bytes);
}

Result<KvStorage> parse_kv_storage(const std::string& text) {
  if (text == "f16") return KvStorage::kF16;
  if (text == "q8") return KvStorage::kQ8;
  return make_error(ErrorCode::kInvalidArgument, "stored KV type '" + text + "' is not f16 or q8");
}

std::string ContextCache::default_dir() { return xdg_cache_home() + "/docdsa/contexts"; }

ContextCache::ContextCache(std::string dir, uint64_t budget, KvStorage kv) : dir_(std::move(dir)), budget_(budget), kv_(kv) {}

std::string ContextCache::path_of(const std::string& key) const {
  return (fs::path(dir_) / (key + kExt)).string();
}

bool ContextCache::contains(const std::string& key) const {
  std::error_code ec;
  return fs::is_regular_file(path_of(key), ec);
}

std::optional<nlohmann::json> ContextCache::load(const std::string& key, Session& s) const {
  const std::string path = path_of(key);
  const auto ignore = [&](const std::string& why) -> std::optional<nlohmann::json> {
    spdlog::warn("{}: stored context ignored ({}); the document will be read again", path, why);
    std::error_code ec;
    fs::remove(path, ec);
    return std::nullopt;
  };
  Mapped m;
  if (Status st = map_file(path, m); !st.ok()) {
    if (st.error().code == ErrorCode::kNotFound) return std::nullopt;
    return ignore(st.error().message);
  }
  auto meta_text = check_file(m, true);
  if (!meta_text.ok()) return ignore(meta_text.error().message);
  auto meta = nlohmann::json::parse(*meta_text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || json_string(meta, "key") != key) return ignore("unreadable metadata");
  const size_t off = sizeof(Header) + meta_text->size();
  // The caches are copied from the map straight into the session: no read buffer between.
  if (Status st = load_session_state(s, std::span<const uint8_t>(m.data + off, m.size - off)); !st.ok())
    return ignore(st.error().message);
  touch(path);
  return meta;
}

Status ContextCache::store(const std::string& key, const Session& s, nlohmann::json meta) const {
  meta["key"] = key;
  meta["kv"] = kv_storage_name(kv_);
  const std::string meta_text = meta.dump();
  const uint64_t state_bytes = session_state_bytes(s, kv_);
  const uint64_t total = sizeof(Header) + meta_text.size() + state_bytes;
  if (total > budget_) {
    spdlog::info("context of {} not stored: larger than the cache budget ({})", format_bytes(total), format_bytes(budget_));
    return {};
  }
  evict(total);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + dir_ + ": " + ec.message());
  const std::string path = path_of(key);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return make_error(ErrorCode::kIo, tmp + ": cannot create: " + errno_text());
  const auto fail = [&](const std::string& why) -> Status {
    std::fclose(f);
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, tmp + ": " + why);
  };
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.meta_bytes = meta_text.size();
  h.state_bytes = state_bytes;
  XXH3_state_t* x = XXH3_createState();
  XXH3_64bits_reset(x);
  const auto write = [&](const void* p, size_t n) -> Status {
    XXH3_64bits_update(x, p, n);
    if (std::fwrite(p, 1, n, f) != n) return make_error(ErrorCode::kIo, "write failed: " + errno_text());
    return {};
  };
  bool ok = std::fwrite(&h, sizeof(h), 1, f) == 1 && write(meta_text.data(), meta_text.size()).ok();
  if (ok) ok = save_session_state(s, write, kv_).ok();
  h.checksum = XXH3_64bits_digest(x);
  XXH3_freeState(x);
  if (!ok) return fail("write failed (disk full?)");
  // The checksum goes in last: a file cut short anywhere fails the size or checksum check.
  if (std::fseek(f, 0, SEEK_SET) != 0 || std::fwrite(&h, sizeof(h), 1, f) != 1 || std::fflush(f) != 0)
    return fail("write failed");
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, tmp + ": write failed: " + errno_text());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, path + ": cannot rename into place: " + why);
  }
  return {};
}

std::vector<ContextEntry> ContextCache::list(bool with_meta) const {
  std::vector<ContextEntry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || !is_entry(it->path())) continue;
    ContextEntry e;
    e.path = it->path().string();
    e.key = it->path().stem().string();
    e.bytes = it->file_size(ec);
    e.last_used = mtime_of(*it);
    if (with_meta) {
      if (auto m = read_meta(e.path); m.ok()) e.meta = *m;
    }
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const ContextEntry& a, const ContextEntry& b) {
    return a.last_used != b.last_used ? a.last_used > b.last_used : a.key < b.key;
  });
  return out;
}

int ContextCache::evict(uint64_t incoming) const {
  std::error_code ec;
  // Temporary files of writers that died (older than an hour: a live writer is never that slow).
  const auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (is_temp(it->path()) && now - it->last_write_time(ec) > std::chrono::hours(1)) fs::remove(it->path(), ec);
  auto entries = list(false);  // sizes and dates are all eviction needs
  uint64_t total = incoming;
  for (const auto& e : entries) total += e.bytes;
  int removed = 0;
  while (total > budget_ && !entries.empty()) {
    const ContextEntry& lru = entries.back();
    if (fs::remove(lru.path, ec)) {
      ++removed;
      spdlog::info("context cache over its budget: removed {} ({}, last used {})", lru.path, format_bytes(lru.bytes),
                   lru.last_used);
    }
    total -= std::min(total, lru.bytes);
    entries.pop_back();
  }
  return removed;
}

uint64_t ContextCache::clear(size_t* removed) const {
  uint64_t freed = 0;
  if (removed) *removed = 0;
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && (is_entry(it->path()) || is_temp(it->path()))) doomed.push_back(it->path());
  for (const auto& p : doomed) {
    const uint64_t n = fs::file_size(p, ec);
    if (fs::remove(p, ec)) {
      freed += ec ? 0 : n;
      if (removed && is_entry(p)) ++*removed;
    }
  }
  return freed;
}

std::set<std::string> ContextCache::documents(const Model& model) const {
  std::set<std::string> out;
  const std::string fp = model_fingerprint_hex(model);
  for (const auto& e : list())
    if (json_string(e.meta, "model_fingerprint") == fp && e.meta.contains("document"))
      out.insert(json_string(e.meta["document"], "content_hash"));
  return out;
}

}  // namespace docdsa::app
