// A fixed pool of workers for the forward pass. run() hands out task indices dynamically and
// returns when all are done; the calling thread works too. Workers spin briefly before
// sleeping, because one decode step has hundreds of short parallel sections.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace docdsa {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // <= 0: all hardware threads
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // fn(task, thread) for task in [0, n_tasks).
  void run(int n_tasks, const std::function<void(int, int)>& fn);

 private:
  void worker(int index);
  void work(int thread);

  int n_threads_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_task_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  int n_tasks_ = 0;
  const std::function<void(int, int)>* fn_ = nullptr;
};

}  // namespace docdsa
