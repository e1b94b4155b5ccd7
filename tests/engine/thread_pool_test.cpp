// The thread pool every parallel kernel runs through: each task exactly once for any thread count
// (1 to 17 threads on however few cores), nested and concurrent callers, exceptions, shutdown
// while idle, the default size from affinity and cgroup quota, and no allocation per run().
// Its own binary, because it replaces the global operator new to count allocations.
#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "docdsa/engine/thread_pool.h"

namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<long> g_allocs{0};
}  // namespace

void* operator new(size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace docdsa {
namespace {

const int kThreadCounts[] = {1, 2, 3, 8, 17};

// Every index in [0, n) visited exactly once, by a thread index below size(), over many runs in a
// row (late workers of one run must never take tasks of the next).
void expect_each_once(ThreadPool& pool, int n, int repeats) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int> bad_thread{0};
  for (int r = 0; r < repeats; ++r) {
    pool.run(n, [&](int task, int thread) {
      hits[static_cast<size_t>(task)].fetch_add(1, std::memory_order_relaxed);
      if (thread < 0 || thread >= pool.size()) bad_thread.fetch_add(1);
    });
  }
  for (int i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), repeats) << "task " << i << " of " << n;
  EXPECT_EQ(bad_thread.load(), 0);
}

TEST(ThreadPool, EveryTaskExactlyOnceForAnyThreadCount) {
  for (int threads : kThreadCounts) {
    SCOPED_TRACE(threads);
    ThreadPool pool(threads, /*oversubscribe=*/true);  // really that many threads, even on 2 cores
    EXPECT_EQ(pool.size(), threads);
    for (int n : {0, 1, 2, 3, 5, 16, 17, 100, 1000, 10007}) expect_each_once(pool, n, n > 1000 ? 20 : 200);
  }
}

TEST(ThreadPool, SleepingWorkersWakeAndShareTheWork) {
  // Each task waits until a second thread has taken one: a worker must wake from its sleep (a
  // lost wake-up) and claim work while the caller is busy. The deadline only bounds a failure.
  for (int threads : {2, 3, 8, 17}) {
    ThreadPool pool(threads, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: workers asleep
    std::vector<std::atomic<int>> by_thread(static_cast<size_t>(threads));
    std::atomic<int> distinct{0};
    std::vector<std::atomic<int>> hits(64);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    pool.run(64, [&](int t, int thread) {
      if (by_thread[static_cast<size_t>(thread)].fetch_add(1) == 0) distinct.fetch_add(1);
      while (distinct.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      hits[static_cast<size_t>(t)].fetch_add(1);
    });
    EXPECT_GE(distinct.load(), 2) << threads << " threads";
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, ResultsIdenticalForAnyThreadCount) {
  const int n = 4099;
  auto compute = [&](ThreadPool& pool) {
    std::vector<double> out(static_cast<size_t>(n));
    pool.run(n, [&](int t, int) {
      double s = 0;
      for (int k = 1; k <= 200; ++k) s += 1.0 / (t + k);
      out[static_cast<size_t>(t)] = s;
    });
    return out;
  };
  ThreadPool one(1);
  const std::vector<double> want = compute(one);
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads, true);
    EXPECT_EQ(compute(pool), want) << threads << " threads";
  }
}

TEST(ThreadPool, NestedRunCoversEveryPairInline) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads, true);
    const int outer = 37, inner = 23;
    std::vector<std::atomic<int>> hits(outer * inner);
    std::atomic<int> wrong_thread{0};
    pool.run(outer, [&](int o, int thread) {
      pool.run(inner, [&](int i, int inner_thread) {
        hits[static_cast<size_t>(o * inner + i)].fetch_add(1);
        if (inner_thread != thread) wrong_thread.fetch_add(1);  // inline on the calling thread
      });
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads";
    EXPECT_EQ(wrong_thread.load(), 0);
  }
}

TEST(ThreadPool, ConcurrentCallersTakeTurns) {
  ThreadPool pool(3, true);
  std::vector<std::atomic<int>> hits(2 * 500);
  std::vector<std::thread> callers;
  for (int c = 0; c < 2; ++c)
    callers.emplace_back([&, c] {
      for (int r = 0; r < 300; ++r) pool.run(500, [&](int t, int) { hits[static_cast<size_t>(c * 500 + t)].fetch_add(1); });
    });
  for (auto& t : callers) t.join();
  for (auto& h : hits) ASSERT_EQ(h.load(), 300);
}

TEST(ThreadPool, ExceptionSkipsTheRestAndReachesTheCaller) {
  for (int threads : kThreadCounts) {
    ThreadPool pool(threads, true);
    std::atomic<int> ran{0};
    try {
      pool.run(100000, [&](int t, int) {
        if (t == 3) throw std::runtime_error("task 3 failed");
        ran.fetch_add(1);
      });
      ADD_FAILURE() << "no exception, " << threads << " threads";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "task 3 failed");
    }
    EXPECT_LT(ran.load(), 100000 - 1) << "the tasks after the failure were not skipped";
    expect_each_once(pool, 1000, 3);  // still usable
  }
}

TEST(ThreadPool, ManyTinyRunsWithMoreThreadsThanCoresFinish) {
  // A decode step is hundreds of microsecond sections; 17 threads on 2 cores must neither hang
  // nor lose a task (ctest's timeout catches a deadlock).
  ThreadPool pool(17, true);
  long sum = 0;
  std::vector<int> part(64);
  for (int r = 0; r < 5000; ++r) {
    pool.run(64, [&](int t, int) { part[static_cast<size_t>(t)] = t + r; });
    sum += std::accumulate(part.begin(), part.end(), 0L);
  }
  long want = 0;
  for (int r = 0; r < 5000; ++r) want += 64L * 63 / 2 + 64L * r;
  EXPECT_EQ(sum, want);
}

TEST(ThreadPool, LateWorkersNeverTakeTasksOfTheNextRun) {
  // Runs of very different sizes back to back: a worker still looking at an exhausted run when
  // the next, larger one is being set up must not claim indices past the old run's end.
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads, true);
    std::vector<std::atomic<int>> hits(257);
    std::atomic<int> out_of_range{0};
    long want = 0;
    for (int r = 0; r < 20000; ++r) {
      const int n = r % 3 == 0 ? 257 : 1 + r % 5;
      want += n;
      pool.run(n, [&](int t, int) {
        if (t < 0 || t >= n) out_of_range.fetch_add(1);
        else hits[static_cast<size_t>(t)].fetch_add(1, std::memory_order_relaxed);
      });
    }
    long got = 0;
    for (auto& h : hits) got += h.load();
    EXPECT_EQ(out_of_range.load(), 0) << threads << " threads";
    EXPECT_EQ(got, want) << threads << " threads";
  }
}

TEST(ThreadPool, DestroyedWhileIdle) {
  for (int threads : kThreadCounts) {
    { ThreadPool never_used(threads, true); }
    {
      ThreadPool spinning(threads, true);
      expect_each_once(spinning, 100, 1);  // destroyed right away, workers still spinning
    }
    ThreadPool asleep(threads, true);
    expect_each_once(asleep, 100, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin: workers sleep
    expect_each_once(asleep, 100, 1);                            // woken again
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(ThreadPool, RunDoesNotAllocate) {
  ThreadPool pool(3, true);
  std::vector<int> out(1000);
  int a = 1, b = 2, c = 3;  // captures beyond std::function's small buffer
  pool.run(1000, [&](int t, int) { out[static_cast<size_t>(t)] = t * a + b - c; });  // warm
  g_allocs.store(0);
  g_count_allocs.store(true);
  for (int r = 0; r < 100; ++r) pool.run(1000, [&](int t, int) { out[static_cast<size_t>(t)] = t * a + b - c + r; });
  g_count_allocs.store(false);
  EXPECT_EQ(g_allocs.load(), 0);
  EXPECT_EQ(out[999], 999 + 2 - 3 + 99);
}

TEST(ThreadPool, DefaultSizeIsTheCpusThisProcessMayUse) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_LE(available_cpus(), CPU_COUNT(&set));
  EXPECT_GE(available_cpus(), 1);
  EXPECT_EQ(ThreadPool(0).size(), available_cpus());
  // A thread pinned to one CPU (as taskset or a container would) gets a pool of one.
  std::thread pinned([] {
    cpu_set_t cur, one;
    CPU_ZERO(&cur);
    CPU_ZERO(&one);
    ASSERT_EQ(sched_getaffinity(0, sizeof(cur), &cur), 0);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &cur)) {
        CPU_SET(c, &one);
        break;
      }
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    EXPECT_EQ(available_cpus(), 1);
    ThreadPool pool(0);
    EXPECT_EQ(pool.size(), 1);
    ThreadPool eight(8);  // more than the CPUs: capped, not time-sliced
    EXPECT_EQ(eight.size(), 1);
    EXPECT_EQ(eight.requested(), 8);
    expect_each_once(eight, 100, 2);
  });
  pinned.join();
}

TEST(ThreadPool, MoreThreadsThanCpusAreCapped) {
  ThreadPool pool(available_cpus() + 6);
  EXPECT_EQ(pool.size(), available_cpus());
  EXPECT_EQ(pool.requested(), available_cpus() + 6);
  expect_each_once(pool, 1000, 5);
}

TEST(ThreadPool, CgroupQuotaParsing) {
  EXPECT_EQ(cgroup_quota_cpus("200000 100000"), 2);
  EXPECT_EQ(cgroup_quota_cpus("150000 100000"), 2);  // 1.5 CPUs: two threads, throttled a little
  EXPECT_EQ(cgroup_quota_cpus("50000 100000"), 1);
  EXPECT_EQ(cgroup_quota_cpus("max 100000"), 0);
  EXPECT_EQ(cgroup_quota_cpus("-1 100000"), 0);  // v1: no limit
  EXPECT_EQ(cgroup_quota_cpus(""), 0);
  EXPECT_EQ(cgroup_quota_cpus("100000"), 0);
  EXPECT_EQ(cgroup_quota_cpus("100000 0"), 0);
  EXPECT_EQ(cgroup_quota_cpus("abc def"), 0);
}

}  // namespace
}  // namespace docdsa
