// Shards of a batch (summarize --shard K/N): the partition of the input files is disjoint and
// covers them for any N, does not depend on where the inputs are mounted, and --shard auto reads
// Slurm's and Kubernetes' task index.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "docdsa/app/library_common.h"
#include "docdsa/app/shard.h"
#include "scratch_dir.h"

namespace docdsa::app {
namespace {

namespace fs = std::filesystem;

fs::path make_tree(const std::string& name) {
  const fs::path root = docdsa::test::scratch_dir() / ("docdsa-shard-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(root);
  for (int i = 0; i < 97; ++i) {
    const fs::path p = root / ("d" + std::to_string(i % 7)) / (i % 3 ? "" : "deep") / ("f" + std::to_string(i) + ".txt");
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "file " << i << "\n";
  }
  std::ofstream(root / "ignored.bin") << "x";  // not a supported kind: never listed
  return root;
}

TEST(Shard, PartitionsAreDisjointAndCoverTheInputsForAnyN) {
  const fs::path root = make_tree("cover");
  const std::string single = (root / "d1" / "f1.txt").string();  // a file given by itself, also inside the folder
  const std::vector<std::string> inputs = {root.string(), single};
  std::vector<std::pair<std::string, std::string>> errors;
  const auto all = expand(inputs, &errors);
  ASSERT_TRUE(errors.empty());
  ASSERT_EQ(all.size(), 98u);
  for (int n : {1, 2, 3, 4, 5, 7, 8, 13, 64, 97, 200}) {
    std::multiset<std::string> seen;
    for (int k = 0; k < n; ++k) {
      std::vector<std::pair<std::string, std::string>> e;
      for (const auto& f : expand_shard(inputs, ShardSpec{k, n, "test"}, &e)) seen.insert(f);
      EXPECT_TRUE(e.empty());
    }
    // Every file of the whole batch exactly once (the file given twice: once per time given).
    EXPECT_EQ(seen, std::multiset<std::string>(all.begin(), all.end())) << "N=" << n;
  }
  fs::remove_all(root);
}

TEST(Shard, EveryMachineAgreesWhereverTheInputsAreMounted) {
  const fs::path a = make_tree("mount-a"), b = make_tree("mount-b");
  for (int n : {2, 3, 10}) {
    for (int k = 0; k < n; ++k) {
      std::vector<std::pair<std::string, std::string>> e;
      std::set<std::string> ra, rb;
      for (const auto& f : expand_shard({a.string()}, ShardSpec{k, n, ""}, &e)) ra.insert(fs::relative(f, a).generic_string());
      for (const auto& f : expand_shard({b.string() + "/"}, ShardSpec{k, n, ""}, &e))
        rb.insert(fs::relative(f, b).generic_string());
      EXPECT_EQ(ra, rb) << k << "/" << n;
    }
  }
  // The keys: relative to the input folder; a file given alone is keyed by its name.
  EXPECT_EQ(shard_key(a.string(), (a / "d1" / "f1.txt").string()), "d1/f1.txt");
  EXPECT_EQ(shard_key((a / "d1" / "f1.txt").string(), (a / "d1" / "f1.txt").string()), "f1.txt");
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(Shard, TheHashIsPinned) {
  // Machines running different builds must agree: XXH3-64 of the key's bytes, modulo N.
  EXPECT_EQ(shard_of("reports/2019/a.pdf", 1), 0);
  std::map<int, int> spread;
  for (int i = 0; i < 3000; ++i) spread[shard_of("doc" + std::to_string(i) + ".txt", 3)]++;
  ASSERT_EQ(spread.size(), 3u);
  for (const auto& [k, c] : spread) EXPECT_GT(c, 800) << "shard " << k;  // roughly even
  EXPECT_EQ(shard_of("reports/2019/a.pdf", 1000), 240);                  // XXH3_64bits = 18149855483975166240
}

struct Env {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() const {
    return [this](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(Shard, ParsesExplicitSpecs) {
  const Env none;
  auto s = parse_shard("1/3", 0, none.fn());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->index, 1);
  EXPECT_EQ(s->count, 3);
  for (const char* bad : {"3/3", "-1/3", "0/0", "x/3", "1", "1/", "/3", "1/3x", "99999999999999999999/3"}) {
    auto b = parse_shard(bad, 0, none.fn());
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(parse_shard("1/3", 4, none.fn()).ok());  // --shards disagrees
  auto e = parse_shard("auto", 0, none.fn());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("SLURM_ARRAY_TASK_ID"), std::string::npos);
}

TEST(Shard, AutoReadsSlurmArrays) {
  Env env;
  env.vars = {{"SLURM_ARRAY_TASK_ID", "2"},
              {"SLURM_ARRAY_TASK_MIN", "0"},
              {"SLURM_ARRAY_TASK_MAX", "2"},
              {"SLURM_ARRAY_TASK_COUNT", "3"}};
  auto s = parse_shard("auto", 0, env.fn());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 3);
  // No COUNT: MAX + 1 (--array=0-MAX).
  env.vars = {{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_MAX", "3"}};
  s = parse_shard("auto", 0, env.fn());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->index, 1);
  EXPECT_EQ(s->count, 4);
  // A failed shard rerun alone (sbatch --array=2, --shards 3): still shard 2 of 3, not 0 of 1.
  env.vars = {{"SLURM_ARRAY_TASK_ID", "2"},
              {"SLURM_ARRAY_TASK_MIN", "2"},
              {"SLURM_ARRAY_TASK_MAX", "2"},
              {"SLURM_ARRAY_TASK_COUNT", "1"}};
  s = parse_shard("auto", 3, env.fn());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 3);
  env.vars["DOCDSA_SHARD_COUNT"] = "3";  // or from the environment
  s = parse_shard("auto", 0, env.fn());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 3);
  env.vars.erase("DOCDSA_SHARD_COUNT");  // without either: refused, saying what to give
  auto e = parse_shard("auto", 0, env.fn());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--shards"), std::string::npos) << e.error().message;
  env.vars = {{"SLURM_ARRAY_TASK_ID", "3"}};  // no count at all
  EXPECT_FALSE(parse_shard("auto", 0, env.fn()).ok());
  s = parse_shard("auto", 5, env.fn());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->index, 3);
  EXPECT_EQ(s->count, 5);
  env.vars = {{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_COUNT", "4"}};  // --array=1-4
  EXPECT_FALSE(parse_shard("auto", 0, env.fn()).ok());
  env.vars = {{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "3"}};
  EXPECT_FALSE(parse_shard("auto", 0, env.fn()).ok());
}

// Counts at the ends of int64 are refused, not wrapped: MAX + 1 and N - 1 overflowed here
// (signed overflow; the sanitizer build reports it).
TEST(Shard, AutoRefusesCountsThatOverflow) {
  Env env;
  for (const auto& vars : std::vector<std::map<std::string, std::string>>{
           {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_MAX", "9223372036854775807"}},
           {{"SLURM_ARRAY_TASK_ID", "0"}, {"DOCDSA_SHARD_COUNT", "-9223372036854775808"}},
           {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "0"}}}) {
    env.vars = vars;
    auto s = parse_shard("auto", 0, env.fn());
    ASSERT_FALSE(s.ok()) << vars.begin()->second;
    EXPECT_NE(s.error().message.find("1 to 1000000"), std::string::npos) << s.error().message;
  }
}

TEST(Shard, AutoReadsKubernetesIndexedJobs) {
  Env env;
  env.vars = {{"JOB_COMPLETION_INDEX", "4"}, {"DOCDSA_SHARD_COUNT", "8"}};
  auto s = parse_shard("auto", 0, env.fn());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->index, 4);
  EXPECT_EQ(s->count, 8);
  env.vars = {{"JOB_COMPLETION_INDEX", "4"}};
  auto e = parse_shard("auto", 0, env.fn());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("DOCDSA_SHARD_COUNT"), std::string::npos);
  s = parse_shard("auto", 6, env.fn());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->count, 6);
}

}  // namespace
}  // namespace docdsa::app
