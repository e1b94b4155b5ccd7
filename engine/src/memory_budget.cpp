#include "docdsa/engine/memory_budget.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace docdsa {
namespace {

// v1 reports "no limit" as the page counter's maximum (about 2^63); anything this large is none.
constexpr uint64_t kNoLimit = 1ull << 62;

std::optional<std::string> read_text(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return std::nullopt;
  std::string s;
  char buf[4096];
  size_t n;
  // /proc and cgroup files report size 0: read until EOF, bounded (they are a few KiB).
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && s.size() < (1u << 20)) s.append(buf, n);
  std::fclose(f);
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The value of "key N" lines (memory.stat) or "Key: N kB" lines (meminfo, scaled by `unit`).
std::optional<uint64_t> field(const std::string& text, std::string_view key, uint64_t unit) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key) continue;
    std::string_view rest = line.substr(key.size());
    if (rest.front() != ':' && !std::isspace(static_cast<unsigned char>(rest.front()))) continue;  // a longer key
    rest = trim(rest.substr(rest.front() == ':' ? 1 : 0));
    if (unit != 1) {
      if (rest.size() < 2 || rest.substr(rest.size() - 2) != "kB") return std::nullopt;
      rest.remove_suffix(2);
    }
    const auto v = parse_u64(rest);
    if (!v || *v > UINT64_MAX / unit) return std::nullopt;
    return *v * unit;
  }
  return std::nullopt;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The process's cgroup path in one hierarchy, from /proc/self/cgroup: v2 is "0::/path", v1
// "N:controller,...:/path" with `controller` among the names.
std::optional<std::string> cgroup_path(const std::string& text, bool v2) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, a), ctl = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (path.empty() || path.front() != '/' || path.find("..") != std::string_view::npos) continue;
    if (v2 && id == "0" && ctl.empty()) return std::string(path);
    if (!v2) {
      for (size_t s = 0; s <= ctl.size();) {
        size_t e = ctl.find(',', s);
        if (e == std::string_view::npos) e = ctl.size();
        if (ctl.substr(s, e - s) == "memory") return std::string(path);
        s = e + 1;
      }
    }
  }
  return std::nullopt;
}

// The directories from the process's cgroup up to the hierarchy's root. A path that does not
// exist under the mount (a container that sees its own cgroup as the root) leaves the root.
std::vector<std::string> levels(const std::string& base, const std::string& path) {
  std::vector<std::string> out;
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (is_dir(base + p)) {
    while (p.size() > 1) {
      out.push_back(base + p);
      p.erase(p.rfind('/'));
    }
  }
  out.push_back(base);
  return out;
}

struct Figure {
  uint64_t bytes;
  std::string source;
};

void keep_least(std::optional<Figure>& best, Figure f) {
  if (!best || f.bytes < best->bytes) best = std::move(f);
}

// One cgroup level: limit minus the usage that reclaim cannot free.
void cgroup_level(const std::string& dir, const char* limit_file, const char* usage_file, const char* inactive_key,
                  std::optional<Figure>& best) {
  const std::string limit_path = dir + "/" + limit_file;
  const auto limit_text = read_text(limit_path);
  if (!limit_text) return;
  const auto limit = parse_u64(*limit_text);  // v2 "max" is no number: no limit here
  if (!limit || *limit >= kNoLimit) return;
  uint64_t used = 0;
  if (const auto u = read_text(dir + "/" + usage_file)) used = parse_u64(*u).value_or(0);
  if (const auto st = read_text(dir + "/memory.stat")) {
    const uint64_t inactive = field(*st, inactive_key, 1).value_or(0);
    used -= std::min(used, inactive);
  }
  keep_least(best, {*limit > used ? *limit - used : 0, "the cgroup limit in " + limit_path});
}

}  // namespace

MemorySources MemorySources::from_system() {
  MemorySources s;
  if (const char* v = std::getenv(kMemoryLimitEnv)) s.limit_override = std::string(v);
  return s;
}

Result<std::optional<uint64_t>> parse_memory_limit(const std::string& text) {
  std::string t(trim(text));
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "unlimited") return std::optional<uint64_t>();
  uint64_t mult = 1;
  // "8GiB" and "8GB" -> "8g", "100B" -> "100".
  if (t.size() > 2 && t.substr(t.size() - 2) == "ib") {
    t.erase(t.size() - 2);
  } else if (!t.empty() && t.back() == 'b') {
    t.pop_back();
  }
  constexpr std::string_view kSuffixes = "kmgt";  // binary: K = 2^10 ... T = 2^40
  if (const size_t i = t.empty() ? std::string_view::npos : kSuffixes.find(t.back()); i != std::string_view::npos) {
    mult = 1ull << (10 * (i + 1));
    t.pop_back();
  }
  const auto v = parse_u64(t);
  if (!v || *v > UINT64_MAX / mult)
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(kMemoryLimitEnv) + "='" + text + "' is not a byte count (such as 8G or 512M) or 'unlimited'");
  return std::optional<uint64_t>(*v * mult);
}

Result<MemoryBudget> memory_budget(const MemorySources& src) {
  if (src.limit_override) {
    TRY(std::optional<uint64_t> bytes, parse_memory_limit(*src.limit_override));
    return MemoryBudget{bytes, std::string(kMemoryLimitEnv) + "=" + *src.limit_override};
  }
  std::optional<Figure> best;
  if (const auto mi = read_text(src.meminfo))
    if (const auto avail = field(*mi, "MemAvailable", 1024)) keep_least(best, {*avail, "MemAvailable in " + src.meminfo});
  if (const auto cg = read_text(src.self_cgroup)) {
    if (const auto p2 = cgroup_path(*cg, true)) {
      // Unified hierarchy at the root (pure v2) or under unified/ (hybrid systems).
      for (const std::string& base : {src.cgroup_root, src.cgroup_root + "/unified"})
        for (const std::string& dir : levels(base, *p2)) cgroup_level(dir, "memory.max", "memory.current", "inactive_file", best);
    }
    if (const auto p1 = cgroup_path(*cg, false)) {
      for (const std::string& dir : levels(src.cgroup_root + "/memory", *p1))
        cgroup_level(dir, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file", best);
    }
  }
  if (!best)
    return make_error(ErrorCode::kUnsupported, "cannot tell how much memory is free (neither " + src.meminfo +
                                                   " nor a cgroup memory limit is readable); set " + kMemoryLimitEnv +
                                                   " to a byte count (such as 8G) or to 'unlimited'");
  return MemoryBudget{best->bytes, std::move(best->source)};
}

}  // namespace docdsa
