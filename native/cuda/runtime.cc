#include "runtime.h"
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>
#include "../src/args.h"
#include "../src/registry.h"
#include "dynlibs.h"

namespace mamba {
namespace {

// Device memory handed to JS. A view points inside its parent and keeps the parent alive.
struct DevBuf {
  void* ptr = nullptr;
  size_t bytes = 0;
  size_t capacity = 0;  // bytes actually reserved (allocator bucket)
  bool owner = true;
  bool freed = false;
  Napi::ObjectReference parent;
};

// Caching allocator: freed blocks go to a free list by bucket size and are reused; on out-of-memory
// the cache is released and the allocation retried once.
class Allocator {
 public:
  static size_t bucket(size_t n) {
    if (n <= 512) return 512;
    if (n <= (size_t)1 << 20) {
      size_t b = 512;
      while (b < n) b <<= 1;
      return b;
    }
    return (n + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);  // 1 MiB granularity above 1 MiB
  }
  cudaError_t alloc(size_t n, void** p, size_t* cap) {
    size_t b = bucket(n);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = free_.find(b);
    if (it != free_.end() && !it->second.empty()) {
      *p = it->second.back();
      it->second.pop_back();
      cached_ -= b;
      in_use_ += b;
      *cap = b;
      return cudaSuccess;
    }
    cudaError_t e = cudaMalloc(p, b);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_locked();
      e = cudaMalloc(p, b);
    }
    if (e == cudaSuccess) {
      in_use_ += b;
      *cap = b;
      peak_ = std::max(peak_, in_use_);
    }
    return e;
  }
  void free(void* p, size_t cap) {
    std::lock_guard<std::mutex> lk(mu_);
    free_[cap].push_back(p);
    cached_ += cap;
    in_use_ -= cap;
  }
  void release() {
    std::lock_guard<std::mutex> lk(mu_);
    release_locked();
  }
  size_t in_use() const { return in_use_; }
  size_t cached() const { return cached_; }
  size_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }

 private:
  void release_locked() {
    cudaStreamSynchronize(cuda_stream());
    for (auto& kv : free_)
      for (void* p : kv.second) cudaFree(p);
    free_.clear();
    cached_ = 0;
  }
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

Allocator& allocator() {
  static Allocator a;
  return a;
}

DevBuf* get_buf(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw_type(env, std::string(what) + ": expected a CUDA buffer");
  auto* b = v.As<Napi::External<DevBuf>>().Data();
  if (b == nullptr || b->freed) throw Napi::Error::New(env, std::string(what) + ": the CUDA buffer was already freed");
  return b;
}

void finalize_buf(Napi::Env, DevBuf* b) {
  if (b->owner && !b->freed && b->ptr) allocator().free(b->ptr, b->capacity);
  delete b;
}

Napi::Value wrap(Napi::Env env, DevBuf* b) { return Napi::External<DevBuf>::New(env, b, finalize_buf); }

}  // namespace

cudaStream_t cuda_stream() {
  static cudaStream_t s = [] {
    cudaStream_t st = nullptr;
    cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    return st;
  }();
  return s;
}

void cuda_check(Napi::Env env, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  if (e == cudaErrorMemoryAllocation) {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    throw Napi::Error::New(env, std::string("CUDA out of memory in ") + what + ": " +
                                    std::to_string(allocator().in_use() >> 20) + " MiB in use by mamba, " +
                                    std::to_string(fr >> 20) + " MiB free of " + std::to_string(tot >> 20) +
                                    " MiB; use a shorter --seq-len or a smaller --batch");
  }
  throw Napi::Error::New(env, std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

void check_launch(Napi::Env env, const char* kernel) { cuda_check(env, cudaGetLastError(), kernel); }

int current_device() {
  int d = 0;
  if (cudaGetDevice(&d) != cudaSuccess) cudaGetLastError();  // (no device: 0, and no error left for the next check)
  return d;
}

bool pdl_enabled() {
  static const bool on = [] {
    const char* e = getenv("MAMBA_PDL");
    if (e && e[0] == '0') return false;
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, current_device()) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return on;
}

void* arg_device(const Napi::CallbackInfo& info, size_t i, const char* what, size_t min_bytes) {
  if (i >= info.Length()) throw_type(info.Env(), std::string(what) + ": missing CUDA buffer");
  DevBuf* b = get_buf(info.Env(), info[i], what);
  if (b->bytes < min_bytes)
    throw Napi::RangeError::New(info.Env(), std::string(what) + ": CUDA buffer has " + std::to_string(b->bytes) +
                                                " bytes, needs " + std::to_string(min_bytes));
  return b->ptr;
}

void* field_device(Napi::Env env, const Napi::Value& v, const char* op, const char* key, size_t min_bytes) {
  if (v.IsExternal()) {
    auto* b = v.As<Napi::External<DevBuf>>().Data();
    if (b != nullptr && !b->freed && b->bytes >= min_bytes) return b->ptr;
  }
  return value_device(env, v, (std::string(op) + " " + key).c_str(), min_bytes);  // throws the precise error
}

std::pair<void*, size_t> device_span(Napi::Env env, const Napi::Value& v, const char* what) {
  const DevBuf* b = get_buf(env, v, what);
  return {b->ptr, b->bytes};
}

void* value_device(Napi::Env env, const Napi::Value& v, const char* what, size_t min_bytes) {
  DevBuf* b = get_buf(env, v, what);
  if (b->bytes < min_bytes)
    throw Napi::RangeError::New(env, std::string(what) + ": CUDA buffer has " + std::to_string(b->bytes) +
                                         " bytes, needs " + std::to_string(min_bytes));
  return b->ptr;
}

}  // namespace mamba

using namespace mamba;

// cuda.deviceCount() -> number of usable GPUs (0 when the driver is missing or no GPU is present)
MAMBA_OP(cuda, deviceCount) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    n = 0;
  }
  return Napi::Number::New(info.Env(), n);
}

// cuda.deviceInfo(i) -> { name, major, minor, multiprocessors, totalBytes }
MAMBA_OP(cuda, deviceInfo) {
  int dev = (int)arg_int(info, 0, "deviceInfo(device)");
  cudaDeviceProp p;
  cuda_check(info.Env(), cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", p.name);
  o.Set("major", p.major);
  o.Set("minor", p.minor);
  o.Set("multiprocessors", p.multiProcessorCount);
  o.Set("totalBytes", (double)p.totalGlobalMem);
  return o;
}

MAMBA_OP(cuda, setDevice) {
  cuda_check(info.Env(), cudaSetDevice((int)arg_int(info, 0, "setDevice(device)")), "cudaSetDevice");
  return info.Env().Undefined();
}

// cuda.alloc(bytes) -> buffer (uninitialised)
MAMBA_OP(cuda, alloc) {
  int64_t n = arg_int(info, 0, "alloc(bytes)");
  if (n < 0) throw Napi::RangeError::New(info.Env(), "alloc: negative size");
  auto* b = new DevBuf();
  cudaError_t e = allocator().alloc((size_t)std::max<int64_t>(n, 1), &b->ptr, &b->capacity);
  if (e != cudaSuccess) {
    delete b;
    cuda_check(info.Env(), e, "alloc");
  }
  b->bytes = (size_t)n;
  return wrap(info.Env(), b);
}

// cuda.free(buffer): returns the memory to the cache now instead of at garbage collection
MAMBA_OP(cuda, free) {
  DevBuf* b = get_buf(info.Env(), info[0], "free");
  if (!b->owner) throw Napi::Error::New(info.Env(), "free: cannot free a view; free its parent");
  cudaStreamSynchronize(cuda_stream());
  allocator().free(b->ptr, b->capacity);
  b->freed = true;
  return info.Env().Undefined();
}

// cuda.view(buffer, byteOffset, bytes) -> buffer pointing inside `buffer`
MAMBA_OP(cuda, view) {
  DevBuf* p = get_buf(info.Env(), info[0], "view");
  int64_t off = arg_int(info, 1, "view byteOffset"), n = arg_int(info, 2, "view bytes");
  if (off < 0 || n < 0 || (size_t)(off + n) > p->bytes)
    throw Napi::RangeError::New(info.Env(), "view: range outside the buffer");
  auto* b = new DevBuf();
  b->ptr = static_cast<char*>(p->ptr) + off;
  b->bytes = (size_t)n;
  b->owner = false;
  b->parent = Napi::Persistent(info[0].As<Napi::Object>());
  return wrap(info.Env(), b);
}

// cuda.upload(buffer, typedArray): host -> device, the whole array
MAMBA_OP(cuda, upload) {
  if (!info[1].IsTypedArray()) throw_type(info.Env(), "upload: expected a TypedArray");
  auto ta = info[1].As<Napi::TypedArray>();
  size_t n = ta.ByteLength();
  void* dst = arg_device(info, 0, "upload", n);
  const char* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  cuda_check(info.Env(), cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cuda_stream()), "upload");
  cuda_check(info.Env(), cudaStreamSynchronize(cuda_stream()), "upload");
  return info.Env().Undefined();
}

// cuda.download(buffer, typedArray): device -> host, the whole array
MAMBA_OP(cuda, download) {
  if (!info[1].IsTypedArray()) throw_type(info.Env(), "download: expected a TypedArray");
  auto ta = info[1].As<Napi::TypedArray>();
  size_t n = ta.ByteLength();
  const void* src = arg_device(info, 0, "download", n);
  char* dst = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  cuda_check(info.Env(), cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cuda_stream()), "download");
  cuda_check(info.Env(), cudaStreamSynchronize(cuda_stream()), "download");
  return info.Env().Undefined();
}

// cuda.copy(dst, src, bytes): device -> device
MAMBA_OP(cuda, copy) {
  int64_t n = arg_int(info, 2, "copy bytes");
  void* dst = arg_device(info, 0, "copy dst", n);
  const void* src = arg_device(info, 1, "copy src", n);
  cuda_check(info.Env(), cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cuda_stream()), "copy");
  return info.Env().Undefined();
}

// cuda.memset(buffer, byte, bytes)
MAMBA_OP(cuda, memset) {
  int64_t n = arg_int(info, 2, "memset bytes");
  void* dst = arg_device(info, 0, "memset", n);
  cuda_check(info.Env(), cudaMemsetAsync(dst, (int)arg_int(info, 1, "memset value"), n, cuda_stream()), "memset");
  return info.Env().Undefined();
}

MAMBA_OP(cuda, synchronize) {
  cuda_check(info.Env(), cudaStreamSynchronize(cuda_stream()), "synchronize");
  return info.Env().Undefined();
}

namespace mamba {
size_t scratch_bytes();  // scratch.cu
}

// cuda.memoryStats() -> { inUse, cached, peak, scratch, free, total } in bytes (scratch: the multi-pass
// kernels' buffer and the tuned products' workspace, outside the caching allocator)
MAMBA_OP(cuda, memoryStats) {
  size_t fr = 0, tot = 0;
  cuda_check(info.Env(), cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inUse", (double)allocator().in_use());
  o.Set("cached", (double)allocator().cached());
  o.Set("peak", (double)allocator().peak());
  o.Set("scratch", (double)(scratch_bytes() + gemm_workspace_bytes()));
  o.Set("free", (double)fr);
  o.Set("total", (double)tot);
  return o;
}

MAMBA_OP(cuda, resetPeakMemory) {
  allocator().reset_peak();
  return info.Env().Undefined();
}
MAMBA_OP(cuda, emptyCache) {
  allocator().release();
  return info.Env().Undefined();
}

// ---- CUDA graphs: capture a sequence of ops on the stream once, replay it with one launch ----------
// Used for the recurrent decoding step, where ~200 small kernels per token are bound by launch cost.

namespace {
struct GraphExec {
  cudaGraphExec_t exec = nullptr;
};
void finalize_graph(Napi::Env, GraphExec* g) {
  if (g->exec) cudaGraphExecDestroy(g->exec);
  delete g;
}
}  // namespace

namespace mamba {
bool stream_capturing() {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(cuda_stream(), &st) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return st == cudaStreamCaptureStatusActive;
}
}  // namespace mamba

// cuda.captureBegin(): ops issued until captureEnd are recorded, not run
MAMBA_OP(cuda, captureBegin) {
  cuda_check(info.Env(), cudaStreamBeginCapture(cuda_stream(), cudaStreamCaptureModeThreadLocal),
             "cudaStreamBeginCapture");
  return info.Env().Undefined();
}

// cuda.captureEnd() -> graph (an External): ends the capture and instantiates it. Also ends a capture
// that an error interrupted (then throws), so the stream is usable again.
MAMBA_OP(cuda, captureEnd) {
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(cuda_stream(), &graph);
  if (e != cudaSuccess || graph == nullptr) {
    if (graph) cudaGraphDestroy(graph);
    cuda_check(info.Env(), e == cudaSuccess ? cudaErrorStreamCaptureInvalidated : e, "cudaStreamEndCapture");
  }
  auto* g = new GraphExec();
  e = cudaGraphInstantiate(&g->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    delete g;
    cuda_check(info.Env(), e, "cudaGraphInstantiate");
  }
  return Napi::External<GraphExec>::New(info.Env(), g, finalize_graph);
}

// cuda.graphLaunch(graph): replays a captured graph on the stream
MAMBA_OP(cuda, graphLaunch) {
  if (info.Length() < 1 || !info[0].IsExternal())
    throw_type(info.Env(), "graphLaunch: expected a graph from captureEnd");
  auto* g = info[0].As<Napi::External<GraphExec>>().Data();
  cuda_check(info.Env(), cudaGraphLaunch(g->exec, cuda_stream()), "cudaGraphLaunch");
  return info.Env().Undefined();
}
