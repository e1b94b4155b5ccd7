#include "docdsa/app/shard.h"

#include <xxhash.h>

#include <charconv>
#include <filesystem>

#include "docdsa/app/library_common.h"

namespace docdsa::app {

namespace fs = std::filesystem;

namespace {

Result<int64_t> parse_int(const std::string& s, const std::string& what) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end)
    return make_error(ErrorCode::kInvalidArgument, what + ": '" + s + "' is not a whole number");
  return v;
}

Result<ShardSpec> checked(int64_t index, int64_t count, const std::string& source) {
  if (count < 1 || count > 1000000)
    return make_error(ErrorCode::kInvalidArgument,
                      source + ": the number of shards must be 1 to 1000000, not " + std::to_string(count));
  if (index < 0 || index >= count)
    return make_error(ErrorCode::kInvalidArgument,
                      source + ": shard " + std::to_string(index) + " is outside 0.." + std::to_string(count - 1));
  return ShardSpec{static_cast<int>(index), static_cast<int>(count), source};
}

}  // namespace

Result<ShardSpec> parse_shard(const std::string& spec, int shards, const std::function<const char*(const char*)>& env) {
  if (spec != "auto") {
    const auto slash = spec.find('/');
    if (slash == std::string::npos)
      return make_error(ErrorCode::kInvalidArgument,
                        "--shard '" + spec + "': expected K/N (shard K of N, counting from 0) or auto");
    TRY(int64_t k, parse_int(spec.substr(0, slash), "--shard " + spec));
    TRY(int64_t n, parse_int(spec.substr(slash + 1), "--shard " + spec));
    if (shards > 0 && shards != n)
      return make_error(ErrorCode::kInvalidArgument, "--shard " + spec + " and --shards " + std::to_string(shards) + " disagree");
    return checked(k, n, "--shard " + spec);
  }
  const auto get = [&](const char* name) -> std::string {
    const char* v = env(name);
    return v ? std::string(v) : std::string();
  };
  // The count: --shards, else DOCDSA_SHARD_COUNT, else what the scheduler says (Slurm only).
  const auto count_from = [&](const std::string& src, const char* fallback_var, int64_t fallback_add) -> Result<int64_t> {
    if (shards > 0) return static_cast<int64_t>(shards);
    if (const std::string s = get("DOCDSA_SHARD_COUNT"); !s.empty()) return parse_int(s, src + ": DOCDSA_SHARD_COUNT");
    if (fallback_var) {
      if (const std::string s = get(fallback_var); !s.empty()) {
        TRY(int64_t v, parse_int(s, src + ": " + fallback_var));
        return v > 1000000 ? v : v + fallback_add;  // no overflow near INT64_MAX: checked() refuses it
      }
    }
    return make_error(ErrorCode::kInvalidArgument,
                      src + ": the number of shards is unknown; give --shards N or set DOCDSA_SHARD_COUNT");
  };
  if (const std::string id = get("SLURM_ARRAY_TASK_ID"); !id.empty()) {
    // The task id itself is the shard (not its place in this submission): a shard rerun alone
    // with sbatch --array=K is still shard K.
    const std::string src = "--shard auto (Slurm array task " + id + ")";
    TRY(int64_t k, parse_int(id, src + ": SLURM_ARRAY_TASK_ID"));
    const bool no_count = shards <= 0 && get("DOCDSA_SHARD_COUNT").empty() && get("SLURM_ARRAY_TASK_COUNT").empty();
    TRY(int64_t count, no_count ? count_from(src, "SLURM_ARRAY_TASK_MAX", 1)  // --array=0-MAX
                                : count_from(src, "SLURM_ARRAY_TASK_COUNT", 0));
    if (count < 1 || count > 1000000) return checked(k, count, src);  // before count - 1 below
    if (k >= count)
      return make_error(ErrorCode::kInvalidArgument, src + ": shard " + std::to_string(k) + " of " + std::to_string(count) +
                                                         ": array task ids are the shards, 0..N-1 (sbatch --array=0-" +
                                                         std::to_string(count - 1) +
                                                         "; a rerun of one: --array=K with --shards N)");
    return checked(k, count, src);
  }
  if (const std::string id = get("JOB_COMPLETION_INDEX"); !id.empty()) {
    const std::string src = "--shard auto (Kubernetes completion index " + id + ")";
    TRY(int64_t k, parse_int(id, src + ": JOB_COMPLETION_INDEX"));
    TRY(int64_t count, count_from(src, nullptr, 0));
    return checked(k, count, src);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes "
                    "Indexed Job) is set; give --shard K/N");
}

std::string shard_key(const std::string& input, const std::string& file) {
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    const fs::path rel = fs::path(file).lexically_normal().lexically_relative(fs::path(input).lexically_normal());
    if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
  }
  return fs::path(file).filename().string();
}

int shard_of(const std::string& key, int count) {
  if (count <= 1) return 0;
  return static_cast<int>(XXH3_64bits(key.data(), key.size()) % static_cast<uint64_t>(count));
}

std::vector<std::string> expand_shard(const std::vector<std::string>& inputs, const ShardSpec& shard,
                                      std::vector<std::pair<std::string, std::string>>* errors) {
  std::vector<std::string> files;
  for (const auto& in : inputs)  // one input at a time: each file's key is relative to its own input
    for (auto& f : expand({in}, errors))
      if (shard.count <= 1 || shard_of(shard_key(in, f), shard.count) == shard.index) files.push_back(std::move(f));
  return files;
}

}  // namespace docdsa::app
