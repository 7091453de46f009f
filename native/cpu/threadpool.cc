#include "threadpool.h"
#include <algorithm>
#include <atomic>
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
    for (int i = 0; i < n - 1; i++) workers_.emplace_back([this, i] { loop(i + 1); });
  }

  void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    thread_local bool inside = false;
    int parts = (int)std::min<int64_t>(size(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
    if (inside || parts <= 1) { fn(0, n); return; }
    std::unique_lock<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn; n_ = n; parts_ = parts; pending_ = parts - 1; generation_++;
    }
    cv_.notify_all();
    inside = true;
    chunk(0);
    inside = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
  void chunk(int part) {
    int64_t b = n_ * part / parts_, e = n_ * (part + 1) / parts_;
    if (b < e) (*fn_)(b, e);
  }
  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
      if (id >= parts_) continue;
      lk.unlock();
      chunk(id);
      lk.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
  void stop() {
    { std::lock_guard<std::mutex> lk(mu_); quit_ = true; }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool quit_ = false;
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
