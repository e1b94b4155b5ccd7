#include "docdsa/ingest/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace docdsa::ingest {

std::string format_size(int64_t bytes) {
  if (bytes >= (int64_t{1} << 30) && bytes % (int64_t{1} << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (int64_t{1} << 20) && bytes % (int64_t{1} << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (int64_t{1} << 10) && bytes % (int64_t{1} << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

Result<std::string> read_file_limited(const std::string& path, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error(ErrorCode::kIo, path + ": cannot stat: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return make_error(ErrorCode::kIo, path + ": is a directory");
  auto too_large = [&](int64_t size, bool at_least) {
    return make_error(ErrorCode::kOutOfRange, path + ": file is too large (" + (at_least ? "over " : "") + format_size(size) +
                                                  "; the limit is " + format_size(max_bytes) + ")");
  };
  // The size of the same open file we read, so nothing is read when it is over the limit.
  if (S_ISREG(st.st_mode) && st.st_size > max_bytes) return too_large(st.st_size, false);
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIo, path + ": read error: " + std::strerror(errno));
    }
    if (n == 0) break;
    // A file growing while it is read, or a pipe: stop at the limit rather than trust st_size.
    if (static_cast<int64_t>(out.size()) + n > max_bytes) return too_large(max_bytes, true);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace docdsa::ingest
