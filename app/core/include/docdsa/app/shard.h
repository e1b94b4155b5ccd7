// Shards of a batch: `summarize --shard K/N` takes the files whose key hashes to K modulo N, so
// N machines (a Slurm job array, a Kubernetes Indexed Job) split one input set between them
// without talking to each other. The key is the file's path relative to the input folder it
// was found under (a file given by itself: its name), so machines that mount the inputs at
// different places still agree; the hash (XXH3-64 of the key's bytes) does not depend on the
// machine, the order of the walk or the number of files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "docdsa/engine/result.h"

namespace docdsa::app {

struct ShardSpec {
  int index = 0;       // 0 <= index < count
  int count = 1;       // 1: the whole batch
  std::string source;  // where it came from: "--shard", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"
};

// "K/N", or "auto": the scheduler's task index from the environment (`env` reads a variable,
// nullptr when unset): SLURM_ARRAY_TASK_ID (the id itself, so arrays run 0..N-1 and a shard
// rerun alone with --array=K stays K) or JOB_COMPLETION_INDEX. The count: `shards` (--shards N)
// if > 0, else DOCDSA_SHARD_COUNT, else (Slurm) SLURM_ARRAY_TASK_COUNT, else MAX + 1. Errors are
// kInvalidArgument and say what to set.
Result<ShardSpec> parse_shard(const std::string& spec, int shards, const std::function<const char*(const char*)>& env);

// The partition key of `file`, found under the input `input` (a folder, or the file itself).
std::string shard_key(const std::string& input, const std::string& file);
// The shard (0..count-1) that owns `key`.
int shard_of(const std::string& key, int count);

// Like expand() (library_common.h), keeping only the files of `shard`. Problems with the
// inputs themselves (a missing input, an unreadable folder) are reported by every shard: none
// of them can tell whose files were behind it.
std::vector<std::string> expand_shard(const std::vector<std::string>& inputs, const ShardSpec& shard,
                                      std::vector<std::pair<std::string, std::string>>* errors);

}  // namespace docdsa::app
