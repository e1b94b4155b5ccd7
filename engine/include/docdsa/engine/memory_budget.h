// How much memory a session may still allocate, before it allocates: Linux overcommits, so a
// context too large for the machine is not a failed allocation but the OOM killer later.
// MemAvailable alone is blind to container limits, so the cgroup limits (v2 memory.max, v1
// memory.limit_in_bytes, on the process's cgroup and each ancestor) count too. When nothing
// can be read, the caller refuses rather than guesses; DOCDSA_MEMORY_LIMIT overrides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "docdsa/engine/result.h"

namespace docdsa {

// The environment variable that overrides detection: a byte count with an optional binary
// suffix (K, M, G, T; e.g. "8G") or "unlimited".
inline constexpr const char* kMemoryLimitEnv = "DOCDSA_MEMORY_LIMIT";

// Where the figures come from; tests point these at fake files.
struct MemorySources {
  std::string meminfo = "/proc/meminfo";
  std::string self_cgroup = "/proc/self/cgroup";
  std::string cgroup_root = "/sys/fs/cgroup";  // v2 here or in unified/, v1 in memory/
  std::optional<std::string> limit_override;   // the value of DOCDSA_MEMORY_LIMIT, if set
  // The real paths and the environment's override.
  static MemorySources from_system();
};

struct MemoryBudget {
  std::optional<uint64_t> bytes;  // nullopt: unlimited (the override says so)
  std::string source;             // what sets it, for messages ("MemAvailable in /proc/meminfo")
};

// The least of MemAvailable and, for each cgroup level with a limit, the limit minus the
// usage that cannot be reclaimed (usage less inactive file cache). kInvalidArgument for a
// malformed override; kUnsupported when no figure can be read. Both messages name the
// override variable.
Result<MemoryBudget> memory_budget(const MemorySources& src);

// "8G", "512M", "1048576", "unlimited" (nullopt) -> bytes.
Result<std::optional<uint64_t>> parse_memory_limit(const std::string& text);

}  // namespace docdsa
