#include "threadpool.h"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#include "../src/args.h"
#include "../src/registry.h"

namespace mamba {
namespace {

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }
  int size() const { return (int)workers_.size() + 1; }

  void resize(int n) {
    stop();
    n = std::max(1, n);
    quit_ = false;
    // new workers start at the current generation: a finished region must not look new to them
    const uint64_t g = generation_.load();
    for (int i = 0; i < n - 1; i++) workers_.emplace_back([this, i, g] { loop(i + 1, g); });
  }

  void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    thread_local bool inside = false;
    int parts = (int)std::min<int64_t>(size(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
    if (inside || parts <= 1) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      parts_ = parts;
      pending_.store(parts - 1);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    inside = true;
    chunk(0);
    inside = false;
    // spin briefly (regions are often short), then sleep
    const auto t0 = std::chrono::steady_clock::now();
    while (pending_.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() - t0 < kSpin) cpu_relax();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_.load() == 0; });
    fn_ = nullptr;
  }

 private:
  // Workers spin this long for the next region before sleeping on the condition variable: waking a
  // sleeping thread costs tens of microseconds, which dominated short kernels (gemm per K block).
  static constexpr std::chrono::microseconds kSpin{50};
  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  void chunk(int part) {
    int64_t b = n_ * part / parts_, e = n_ * (part + 1) / parts_;
    if (b < e) (*fn_)(b, e);
  }
  void loop(int id, uint64_t seen) {
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      while (generation_.load(std::memory_order_acquire) == seen && !quit_.load() &&
             std::chrono::steady_clock::now() - t0 < kSpin)
        cpu_relax();
      bool run;
      {
        // read the region's fields under the lock: they change only under it
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_.load() || generation_.load() != seen; });
        if (quit_.load()) return;
        seen = generation_.load();
        run = id < parts_;
      }
      if (!run) continue;
      chunk(id);
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        done_cv_.notify_one();
      }
    }
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> quit_{false};
};

int default_threads() {
  if (const char* s = std::getenv("MAMBA_NUM_THREADS")) {
    int v = std::atoi(s);
    if (v > 0) return v;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  pool().run(n, fn, grain);
}

}  // namespace mamba

MAMBA_OP(cpu, numThreads) { return Napi::Number::New(info.Env(), mamba::num_threads()); }
MAMBA_OP(cpu, setNumThreads) {
  int64_t n = mamba::arg_int(info, 0, "setNumThreads(n)");
  if (n < 1 || n > 1024) throw Napi::RangeError::New(info.Env(), "setNumThreads: n must be in 1..1024");
  mamba::set_num_threads((int)n);
  return info.Env().Undefined();
}
