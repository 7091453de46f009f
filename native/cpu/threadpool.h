// A small persistent thread pool. parallel_for splits [0, n) into contiguous ranges, one per worker,
// and runs them with the calling thread taking part; nested calls run serially.
#pragma once
#include <cstdint>
#include <functional>

namespace mamba {

int num_threads();
void set_num_threads(int n);
// fn(begin, end) is called on disjoint ranges covering [0, n). `grain` is the smallest range worth a thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

}  // namespace mamba
