// A folder of this test process's own under the system's temporary folder, removed with all it
// holds when the process exits. Tests write their libraries, models and PDFs there, so that a run
// of the suite leaves nothing behind (each test runs as a process of its own under ctest, and
// the files they left in /tmp had grown to 474 MB over a few dozen runs).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace docdsa::test {

inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("docdsa-test-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

}  // namespace docdsa::test
