// A fixed pool of workers for the forward pass. run() hands out task indices dynamically (small
// chunks claimed from one atomic counter, so a preempted thread delays at most its own chunk) and
// returns when every task is done; the calling thread works too and never waits for a worker that
// has no task. Idle workers spin briefly (a decode step has hundreds of short parallel sections)
// and then sleep on a futex, so an idle or oversubscribed pool does not burn the CPUs it shares.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

namespace docdsa {

// CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (cpu.max or
// cpu.cfs_quota_us, rounded up); at least 1. std::thread::hardware_concurrency() counts neither.
int available_cpus();
// The CPUs a cgroup quota allows: "150000 100000" (v2 cpu.max, or v1 "quota period") -> 2;
// "max 100000", "-1 100000" or anything malformed -> 0 (no limit).
int cgroup_quota_cpus(std::string_view quota_period);

class ThreadPool {
 public:
  // n_threads <= 0: available_cpus(). Threads beyond available_cpus() would only time-slice with
  // each other (and stall a section whenever one holding a task is descheduled), so the pool
  // runs at most that many unless `oversubscribe` is set (tests use it to stress the pool).
  explicit ThreadPool(int n_threads, bool oversubscribe = false);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that run tasks (the caller included); the `thread` argument of fn is below this.
  int size() const { return n_threads_; }
  // What the constructor was asked for (after the <= 0 default).
  int requested() const { return requested_; }

  // fn(task, thread) for every task in [0, n_tasks), each exactly once; returns when all are done.
  // No allocation: fn is called through a pointer. A call from inside fn (nested) runs inline on
  // that thread; calls from different outside threads take turns. If fn throws, the tasks not yet
  // started are skipped and the first exception is rethrown here once the running ones finish.
  template <class F>
  void run(int n_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_job(n_tasks, Job{const_cast<void*>(static_cast<const void*>(std::addressof(fn))),
                         [](void* f, int task, int thread) { (*static_cast<Fn*>(f))(task, thread); }});
  }

 private:
  struct Job {
    void* fn;
    void (*call)(void*, int, int);
  };
  void run_job(int n_tasks, Job job);
  void run_inline(int n_tasks, Job job, int thread);
  void worker(int index);
  void work(int thread);
  void fail(uint32_t gen);

  int n_threads_ = 1;
  int requested_ = 1;
  bool oversubscribed_ = false;  // more threads than CPUs: spin less, yield while spinning
  int64_t spin_ns_ = 0;
  std::vector<std::thread> threads_;
  std::mutex run_mutex_;  // one outside caller at a time
  uint32_t gen_ = 0;      // owned by the caller holding run_mutex_
  Job job_{};
  std::exception_ptr error_;

  // Hot atomics on their own cache lines: claims, completions and wake-ups do not contend.
  alignas(64) std::atomic<uint64_t> claim_{0};  // generation << 32 | next unclaimed task
  alignas(64) std::atomic<int> n_tasks_{0};
  std::atomic<bool> failed_{false};
  alignas(64) std::atomic<int> done_{0};  // tasks finished (or skipped) in this generation
  std::atomic<bool> caller_sleeping_{false};
  alignas(64) std::atomic<uint32_t> wake_{0};  // generation, for sleeping workers
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace docdsa
