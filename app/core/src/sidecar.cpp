#include "docdsa/app/sidecar.h"

#include "docdsa/app/json_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace docdsa::app {

namespace fs = std::filesystem;

namespace {
fs::path absolute_normal(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? fs::path(p) : a).lexically_normal();
}

// "." + name + ".XXXXXX.tmp": hidden, and recognisable by remove_stale_temps.
std::string temp_prefix(const fs::path& target) {
  std::string s = ".";  // appended, not "." + ...: GCC 12 warns falsely (-Wrestrict) on that
  s += target.filename().string();
  s += '.';
  return s;
}
constexpr const char* kTempSuffix = ".tmp";

Status io_error(const std::string& what, const std::string& path) {
  return make_error(ErrorCode::kIo, "cannot " + what + " " + path + ": " + std::strerror(errno));
}

// The process's umask, read without setting it (umask() would, racing other threads' files):
// Linux reports it in /proc/self/status. 022 when it cannot be read.
mode_t current_umask() {
  mode_t mask = 022;
  if (std::FILE* f = std::fopen("/proc/self/status", "re")) {
    char line[256];
    while (std::fgets(line, sizeof(line), f))
      if (std::strncmp(line, "Umask:", 6) == 0) {
        mask = static_cast<mode_t>(std::strtoul(line + 6, nullptr, 8)) & 0777;
        break;
      }
    std::fclose(f);
  }
  return mask;
}
}  // namespace

std::string common_root(const std::vector<std::string>& inputs) {
  fs::path root;
  bool first = true;
  for (const auto& in : inputs) {
    std::error_code ec;
    const auto st = fs::status(in, ec);
    if (ec || !fs::exists(st)) continue;
    fs::path p = absolute_normal(in);
    if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
    if (!fs::is_directory(st)) p = p.parent_path();
    if (first) {
      root = p, first = false;
      continue;
    }
    fs::path shared;  // the longest common leading run of components
    for (auto a = root.begin(), b = p.begin(); a != root.end() && b != p.end() && *a == *b; ++a, ++b) shared /= *a;
    root = shared;
  }
  return root.string();
}

std::string sidecar_path(const std::string& out_dir, const std::string& root, const std::string& file) {
  const fs::path f = absolute_normal(file);
  fs::path rel = root.empty() ? fs::path() : f.lexically_relative(fs::path(root));
  if (rel.empty() || *rel.begin() == "..") rel = f.filename();
  return (fs::path(out_dir) / rel).string() + ".summary.md";
}

std::string sidecar_markdown(const storage::DocumentRow& row, const std::string& summary, const nlohmann::json& sources) {
  const std::string name = fs::path(row.path).filename().string();
  std::string md = "# Summary of " + (row.title.empty() ? name : row.title) + "\n\nSource: " + row.path + "\n\n" + summary +
                   "\n\n## Sources\n\n";
  // Stored sources are read back from the library: take only fields of the expected type.
  for (const auto& s : sources) {
    if (!s.is_object()) continue;
    md += "- " + json_string(s, "label") + " (" + std::to_string(static_cast<int>(100 * json_number(s, "weight"))) + "%): \"" +
          json_string(s, "snippet") + "\"\n";
  }
  return md;
}

Status write_file_atomic(const std::string& path, const std::string& text) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  // mkstemps opens with O_CREAT|O_EXCL: a new file, never an existing one or a link's target.
  std::string tmp = (dir / temp_prefix(target)).string() + "XXXXXX" + kTempSuffix;
  const int fd = mkostemps(tmp.data(), static_cast<int>(std::strlen(kTempSuffix)), O_CLOEXEC);
  if (fd < 0) return io_error("create a temporary file for", path);
  const auto fail = [&](const char* what) {
    const Status st = io_error(what, path);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  };
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  // mkostemps creates the file 0600: give it the mode a plain create would (0666 less the
  // umask), so a private umask keeps summaries of private documents private.
  if (::fchmod(fd, 0666 & ~current_umask()) != 0 || ::fsync(fd) != 0) return fail("write");
  if (::close(fd) != 0) {
    const Status st = io_error("write", path);
    ::unlink(tmp.c_str());
    return st;
  }
  // rename replaces a link at `path` itself, never the file it points to.
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const Status st = io_error("write", path);
    ::unlink(tmp.c_str());
    return st;
  }
  // The rename is durable once the folder is synced.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return io_error("sync the folder of", path);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return io_error("sync the folder of", path);
  return {};
}

void remove_stale_temps(const std::string& path) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = temp_prefix(target);
  const size_t len = prefix.size() + 6 + std::strlen(kTempSuffix);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool ours = (name.size() == len && name.compare(0, prefix.size(), prefix) == 0 &&
                       name.compare(name.size() - std::strlen(kTempSuffix), std::string::npos, kTempSuffix) == 0) ||
                      name == prefix.substr(0, prefix.size() - 1) + kTempSuffix;  // the name older versions used
    std::error_code ec2;
    if (ours && it->is_regular_file(ec2) && !it->is_symlink(ec2)) fs::remove(it->path(), ec2);
  }
}

}  // namespace docdsa::app
