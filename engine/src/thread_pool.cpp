#include "docdsa/engine/thread_pool.h"

#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace docdsa {

namespace {

// The pool (if any) whose task this thread is running, and its thread index there: a nested
// run() on the same pool runs inline instead of waiting for workers that are busy with its caller.
thread_local const ThreadPool* tl_pool = nullptr;
thread_local int tl_thread = 0;

// Idle spinning before sleeping. Gaps between a decode step's sections are a few microseconds;
// a futex wake-up costs tens. Oversubscribed, a spinner only takes the CPU from a thread with work.
constexpr int64_t kSpinNs = 100'000;
constexpr int64_t kSpinNsOversubscribed = 2'000;

// Tasks per claim: a share of what is left (guided scheduling), so the first claims are large
// and the last small; a thread descheduled mid-chunk holds back at most 1/(8*threads) of the rest.
// Low half of the claim word while a run is being set up: above any task count.
constexpr uint64_t kClosed = 0xffffffffu;

int chunk_for(int remaining, int n_threads) { return std::max(1, remaining / (8 * n_threads)); }

template <class Done>
bool spin_until(Done done, int64_t budget_ns, bool yield) {
  if (budget_ns <= 0) return done();
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(budget_ns);
  while (true) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      if (yield) sched_yield();
      else _mm_pause();
    }
    if (std::chrono::steady_clock::now() >= end) return done();
  }
}

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (f) std::getline(f, line);
  return line;
}

// Smallest CPU quota on the way from `dir` up to `root` (a parent's quota binds its children).
int quota_up_from(const std::string& root, std::string dir, const char* file, const char* period_file) {
  int best = 0;
  while (true) {
    std::string text = read_first_line(root + dir + "/" + file);
    if (period_file && !text.empty()) {
      text += ' ';
      text += read_first_line(root + dir + "/" + period_file);
    }
    const int q = cgroup_quota_cpus(text);
    if (q > 0 && (best == 0 || q < best)) best = q;
    if (dir.empty() || dir == "/") break;
    const size_t slash = dir.rfind('/');
    dir = slash == std::string::npos || slash == 0 ? std::string() : dir.substr(0, slash);
  }
  return best;
}

int cgroup_cpu_limit() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  int best = 0;
  auto take = [&](int q) {
    if (q > 0 && (best == 0 || q < best)) best = q;
  };
  while (std::getline(f, line)) {
    // "hierarchy-id:controllers:path"; v2 is "0::path".
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty()) {
      take(quota_up_from("/sys/fs/cgroup", path, "cpu.max", nullptr));
      continue;
    }
    std::stringstream ss(controllers);
    for (std::string c; std::getline(ss, c, ',');)
      if (c == "cpu") {
        take(quota_up_from("/sys/fs/cgroup/" + controllers, path, "cpu.cfs_quota_us", "cpu.cfs_period_us"));
        take(quota_up_from("/sys/fs/cgroup/cpu", path, "cpu.cfs_quota_us", "cpu.cfs_period_us"));
      }
  }
  return best;
}

}  // namespace

int cgroup_quota_cpus(std::string_view text) {
  const size_t sp = text.find(' ');
  if (sp == std::string_view::npos) return 0;
  const std::string_view qs = text.substr(0, sp), ps = text.substr(sp + 1);
  int64_t quota = 0, period = 0;
  if (std::from_chars(qs.data(), qs.data() + qs.size(), quota).ec != std::errc()) return 0;  // "max"
  auto pr = std::from_chars(ps.data(), ps.data() + ps.size(), period);
  if (pr.ec != std::errc() || quota <= 0 || period <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((quota + period - 1) / period, 1 << 20));
}

int available_cpus() {
  int n = 0;
  for (int size = 1024; size <= (1 << 16) && n == 0; size *= 4) {
    cpu_set_t* set = CPU_ALLOC(size);
    if (!set) break;
    const size_t bytes = CPU_ALLOC_SIZE(size);
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) n = CPU_COUNT_S(bytes, set);
    CPU_FREE(set);
    if (n == 0 && errno != EINVAL) break;
  }
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (const int q = cgroup_cpu_limit(); q > 0) n = std::min(n, q);
  return std::max(1, n);
}

ThreadPool::ThreadPool(int n_threads, bool oversubscribe) {
  const int cpus = available_cpus();
  requested_ = n_threads <= 0 ? cpus : n_threads;
  n_threads_ = oversubscribe ? requested_ : std::min(requested_, cpus);
  oversubscribed_ = n_threads_ > cpus;
  spin_ns_ = oversubscribed_ ? kSpinNsOversubscribed : kSpinNs;
  threads_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  wake_.fetch_add(1, std::memory_order_seq_cst);
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

// Records the first exception and skips the tasks of generation `gen` nobody has claimed yet.
void ThreadPool::fail(uint32_t gen) {
  if (!failed_.exchange(true, std::memory_order_acq_rel)) error_ = std::current_exception();
  uint64_t c = claim_.load(std::memory_order_acquire);
  while (static_cast<uint32_t>(c >> 32) == gen) {
    const uint32_t next32 = static_cast<uint32_t>(c);
    const int n = n_tasks_.load(std::memory_order_acquire);
    if (next32 >= static_cast<uint32_t>(n)) return;
    const int next = static_cast<int>(next32);
    if (claim_.compare_exchange_weak(c, (static_cast<uint64_t>(gen) << 32) | static_cast<uint32_t>(n),
                                     std::memory_order_acq_rel, std::memory_order_acquire)) {
      done_.fetch_add(n - next, std::memory_order_seq_cst);  // never the last: our own chunk is still open
      return;
    }
  }
}

void ThreadPool::work(int thread) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  while (true) {
    // n_tasks_ is read after the claim word; if a newer generation has started (or is being set
    // up) since, the compare-exchange below fails and we retry with its values.
    const uint32_t gen = static_cast<uint32_t>(c >> 32), next32 = static_cast<uint32_t>(c);
    const int n = n_tasks_.load(std::memory_order_acquire);
    if (next32 >= static_cast<uint32_t>(n)) return;  // exhausted, or closed (kClosed)
    const int next = static_cast<int>(next32);
    const int chunk = std::min(n - next, chunk_for(n - next, n_threads_));
    if (!claim_.compare_exchange_weak(c, c + static_cast<uint64_t>(chunk), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      continue;
    // The claim succeeded, so generation `gen` cannot finish (nor job_ change) before this chunk is done.
    const Job job = job_;
    try {
      for (int t = next; t < next + chunk; ++t) job.call(job.fn, t, thread);
    } catch (...) {
      fail(gen);
    }
    if (done_.fetch_add(chunk, std::memory_order_seq_cst) + chunk == n &&
        caller_sleeping_.load(std::memory_order_seq_cst))
      done_.notify_one();
    c = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int index) {
  tl_pool = this;
  tl_thread = index;
  uint32_t seen = 0;
  while (true) {
    uint32_t g = wake_.load(std::memory_order_acquire);
    if (g == seen) {
      spin_until([&] { return (g = wake_.load(std::memory_order_acquire)) != seen; }, spin_ns_, oversubscribed_);
      if (g == seen) {
        // Announce the sleep before the last look, so run() either sees a sleeper and wakes it
        // or this look sees its new generation (both sides sequentially consistent).
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while ((g = wake_.load(std::memory_order_seq_cst)) == seen) wake_.wait(seen, std::memory_order_seq_cst);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    work(index);
  }
}

void ThreadPool::run_inline(int n_tasks, Job job, int thread) {
  const ThreadPool* outer_pool = tl_pool;
  const int outer_thread = tl_thread;
  tl_pool = this;
  tl_thread = thread;
  struct Restore {
    const ThreadPool* p;
    int t;
    ~Restore() {
      tl_pool = p;
      tl_thread = t;
    }
  } restore{outer_pool, outer_thread};
  for (int t = 0; t < n_tasks; ++t) job.call(job.fn, t, thread);
}

void ThreadPool::run_job(int n_tasks, Job job) {
  if (n_tasks <= 0) return;
  if (tl_pool == this) return run_inline(n_tasks, job, tl_thread);  // nested: workers are busy with our caller
  std::lock_guard lock(run_mutex_);
  if (n_threads_ == 1 || n_tasks == 1) return run_inline(n_tasks, job, 0);

  const ThreadPool* outer_pool = tl_pool;
  const int outer_thread = tl_thread;
  tl_pool = this;
  tl_thread = 0;
  // Close the claim word under the new generation before n_tasks_ changes: a worker still holding
  // the last run's exhausted word would otherwise read the new, larger count and claim past the
  // old end. Its compare-exchange now fails (the acquire load of n_tasks_ makes the close visible).
  const uint32_t gen = ++gen_;
  claim_.store(static_cast<uint64_t>(gen) << 32 | kClosed, std::memory_order_relaxed);
  job_ = job;
  error_ = nullptr;
  failed_.store(false, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  n_tasks_.store(n_tasks, std::memory_order_release);
  claim_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  wake_.store(gen, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_.notify_all();

  work(0);
  // Only tasks already running on other threads are left: spin briefly, then sleep until the
  // thread finishing the last one wakes us.
  if (!spin_until([&] { return done_.load(std::memory_order_acquire) == n_tasks; }, spin_ns_, oversubscribed_)) {
    caller_sleeping_.store(true, std::memory_order_seq_cst);
    for (int d; (d = done_.load(std::memory_order_seq_cst)) != n_tasks;) done_.wait(d, std::memory_order_seq_cst);
    caller_sleeping_.store(false, std::memory_order_relaxed);
  }
  tl_pool = outer_pool;
  tl_thread = outer_thread;
  if (failed_.load(std::memory_order_acquire)) std::rethrow_exception(std::exchange(error_, nullptr));
}

}  // namespace docdsa
