// The free-memory check before a session sizes its caches, on fake /proc and cgroup files:
// a cgroup limit below MemAvailable wins (v2 memory.max and v1 memory.limit_in_bytes, on the
// process's cgroup or an ancestor), "max" falls back to MemAvailable, reclaimable file cache
// is not counted as used, and when nothing is readable the session is refused with a message
// naming the DOCDSA_MEMORY_LIMIT override, which also works.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "docdsa/engine/memory_budget.h"
#include "docdsa/engine/model.h"
#include "docdsa/engine/session.h"
#include "gguf_writer.h"
#include "scratch_dir.h"

namespace docdsa {
namespace {

namespace fs = std::filesystem;

class FakeSystem {
 public:
  explicit FakeSystem(const std::string& name)
      : root_(docdsa::test::scratch_dir() / ("docdsa-mem-test-" + std::to_string(::getpid()) + "-" + name)) {
    fs::remove_all(root_);
    fs::create_directories(root_);
    src.meminfo = (root_ / "meminfo").string();
    src.self_cgroup = (root_ / "self-cgroup").string();
    src.cgroup_root = (root_ / "cgroup").string();
  }
  ~FakeSystem() { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void mem_available_kb(uint64_t kb) const {
    write("meminfo", "MemTotal:       32000000 kB\nMemFree:         1000 kB\nMemAvailable:   " + std::to_string(kb) + " kB\n");
  }
  MemorySources src;

 private:
  fs::path root_;
};

TEST(MemoryBudget, CgroupV2LimitBelowMemAvailableWins) {
  FakeSystem f("v2");
  f.mem_available_kb(16u << 20);  // 16 GiB
  f.write("self-cgroup", "0::/app.slice/docdsa\n");
  f.write("cgroup/app.slice/docdsa/memory.max", "2000000\n");
  f.write("cgroup/app.slice/docdsa/memory.current", "1500000\n");
  f.write("cgroup/app.slice/docdsa/memory.stat", "anon 900000\nfile 600000\ninactive_file 500000\nactive_file 100000\n");
  auto b = memory_budget(f.src);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->bytes.has_value());
  EXPECT_EQ(*b->bytes, 2000000u - (1500000u - 500000u));  // inactive file cache is reclaimable
  EXPECT_NE(b->source.find("app.slice/docdsa/memory.max"), std::string::npos) << b->source;

  // A tighter limit on an ancestor applies too.
  f.write("cgroup/app.slice/memory.max", "1200000\n");
  f.write("cgroup/app.slice/memory.current", "1100000\n");
  b = memory_budget(f.src);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b->bytes, 100000u);
  EXPECT_NE(b->source.find("app.slice/memory.max"), std::string::npos) << b->source;
}

TEST(MemoryBudget, UnlimitedCgroupFallsBackToMemAvailable) {
  FakeSystem f("max");
  f.mem_available_kb(4096);
  f.write("self-cgroup", "0::/\n");
  f.write("cgroup/memory.max", "max\n");
  f.write("cgroup/memory.current", "123\n");
  auto b = memory_budget(f.src);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b->bytes, 4096u * 1024);
  EXPECT_NE(b->source.find("MemAvailable"), std::string::npos) << b->source;
  // Without /proc/meminfo an unlimited cgroup says nothing about free memory.
  fs::remove(f.src.meminfo);
  b = memory_budget(f.src);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find(kMemoryLimitEnv), std::string::npos) << b.error().message;
}

TEST(MemoryBudget, CgroupV1HybridLayout) {
  FakeSystem f("v1");
  f.mem_available_kb(16u << 20);
  f.write("self-cgroup", "9:name=systemd:/\n4:cpu,memory:/docker/abc\n0::/\n");
  f.write("cgroup/memory/docker/abc/memory.limit_in_bytes", "3000000\n");
  f.write("cgroup/memory/docker/abc/memory.usage_in_bytes", "1000000\n");
  f.write("cgroup/memory/docker/abc/memory.stat", "inactive_file 1\ntotal_inactive_file 200000\n");
  f.write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1 "no limit"
  f.write("cgroup/unified/cgroup.controllers", "");                         // hybrid: v2 without the memory controller
  auto b = memory_budget(f.src);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b->bytes, 3000000u - 800000u);
  EXPECT_NE(b->source.find("memory.limit_in_bytes"), std::string::npos) << b->source;
}

TEST(MemoryBudget, OverrideParsesOrNamesTheVariable) {
  EXPECT_EQ(**parse_memory_limit("8G"), 8ull << 30);
  EXPECT_EQ(**parse_memory_limit("512MiB"), 512ull << 20);
  EXPECT_EQ(**parse_memory_limit(" 1048576 "), 1048576u);
  EXPECT_EQ(**parse_memory_limit("64k"), 64u << 10);
  EXPECT_FALSE(parse_memory_limit("unlimited")->has_value());
  for (const char* bad : {"", "lots", "-1", "8X", "1.5G", "99999999999999999999T"}) {
    auto r = parse_memory_limit(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(kMemoryLimitEnv), std::string::npos);
  }
}

TEST(MemoryBudget, TheRealSystemIsReadable) {
  MemorySources s;  // the real paths, no override
  auto b = memory_budget(s);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->bytes.has_value());
  EXPECT_GT(*b->bytes, 0u);
}

// Session::create uses the budget: the tiny model's 512-token cache is 128 KiB.
TEST(MemoryBudget, SessionRefusesWhatCannotFitOrIsUnknown) {
  const std::string path = (docdsa::test::scratch_dir() / ("docdsa-mem-test-" + std::to_string(::getpid()) + ".gguf")).string();
  testing::write_tiny_model(path, {});
  auto m = Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  FakeSystem f("session");
  SessionParams sp;
  sp.n_ctx = 512;
  sp.memory = &f.src;

  f.mem_available_kb(16u << 20);
  f.write("self-cgroup", "0::/job\n");
  f.write("cgroup/job/memory.max", "100000\n");
  f.write("cgroup/job/memory.current", "0\n");
  auto s = Session::create(**m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOutOfRange);
  EXPECT_NE(s.error().message.find("512-token context"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("job/memory.max"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(kMemoryLimitEnv), std::string::npos) << s.error().message;

  f.write("cgroup/job/memory.max", "max\n");  // falls back to MemAvailable: 16 GiB
  EXPECT_TRUE(Session::create(**m, sp).ok());
  f.mem_available_kb(64);
  s = Session::create(**m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("MemAvailable"), std::string::npos) << s.error().message;

  // Nothing readable: refused, naming the override; the override then decides.
  MemorySources none;
  none.meminfo = "/nonexistent/meminfo";
  none.self_cgroup = "/nonexistent/cgroup";
  none.cgroup_root = "/nonexistent/sys";
  sp.memory = &none;
  s = Session::create(**m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(kMemoryLimitEnv), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("/nonexistent/meminfo"), std::string::npos) << s.error().message;
  none.limit_override = "unlimited";
  EXPECT_TRUE(Session::create(**m, sp).ok());
  none.limit_override = "1G";
  EXPECT_TRUE(Session::create(**m, sp).ok());
  none.limit_override = "64K";
  s = Session::create(**m, sp);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find(std::string(kMemoryLimitEnv) + "=64K"), std::string::npos) << s.error().message;
  fs::remove(path);
}

}  // namespace
}  // namespace docdsa
