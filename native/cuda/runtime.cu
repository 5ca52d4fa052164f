/*
 * runtime.cu — errors, initialisation, backend info, the caching allocator, host↔device
 * copies and sync for the cuda backend.
 *
 * Why this shape:
 * - The CUDA runtime is linked statically (nvcc's default), so the library loads on a
 *   machine without an NVIDIA driver; cudaGetDeviceCount then fails (35: "CUDA driver
 *   version is insufficient") and fbp_init reports "no CUDA device: …" instead of the
 *   loader failing. cuDNN 9 and cuBLAS 12/13 are opened with dlopen in fbp_init (libs.h
 *   lists what is resolved, libfind.h where they are looked for and which versions are
 *   accepted), so building needs nvcc only and their absence is a message too.
 * - Math settings (fbp_set_math) follow PyTorch's switches: fp32 = allow_tf32 False for
 *   cuDNN and cuBLAS, tf32 = allow_tf32 True for both; conv.cu keys its plans by them.
 * - One stream for everything: kernels, copies, cuDNN and cuBLAS are ordered on it, so
 *   memory freed by the host can be handed out again at once (see fbp_scratch).
 * - The allocator keeps freed blocks on exact-size free lists (sizes rounded up to 512 B,
 *   or 2 MiB above 1 MiB): a training step allocates the same sizes every step, so after
 *   the first step no cudaMalloc/cudaFree (each a device-wide synchronisation) happens.
 *   When cudaMalloc runs out of memory, the cache is released and the call retried once.
 *   It counts the bytes it holds from the device (in use + cached, conv.cu's workspace
 *   included) and their peak since the last fbp_release_cache, which fbp_backend_info
 *   reports (PyTorch's torch.cuda.max_memory_reserved after empty_cache and
 *   reset_peak_memory_stats, for the benchmark).
 * - Copies from the host are cudaMemcpyAsync on the stream: for pageable memory (what
 *   Deno passes) the call returns once the source is staged, so the caller's buffer may
 *   be reused at once; copies to the host wait for the stream.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "internal.cuh"
#include "libfind.h"

static thread_local char last_error[1024];

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

int fbp_set_error(const char *file, int line, const char *fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "%s:%d: ", base_name(file), line);
  if (n < 0 || (size_t)n >= sizeof last_error) return 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
  va_end(ap);
  return 1;
}

/* The function name of a call expression, without "fbp_dl." and the argument list. */
static int call_name(const char *call, const char **start) {
  if (strncmp(call, "fbp_dl.", 7) == 0) call += 7;
  *start = call;
  return (int)strcspn(call, "(");
}

int fbp_cuda_error(const char *file, int line, const char *call, cudaError_t err) {
  const char *name;
  int len = call_name(call, &name);
  return fbp_set_error(file, line, "%.*s failed: %s (%s)", len, name, cudaGetErrorName(err),
                       cudaGetErrorString(err));
}

static void (*g_cudnn_last_error)(char *, size_t);
static const char *(*g_cublas_status_string)(cublasStatus_t);

int fbp_cudnn_error(const char *file, int line, const char *call, cudnnStatus_t status) {
  const char *name;
  int len = call_name(call, &name);
  char detail[512] = "";
  if (g_cudnn_last_error) g_cudnn_last_error(detail, sizeof detail);
  return fbp_set_error(file, line, "%.*s failed: %s (status %d)%s%s", len, name,
                       fbp_dl.cudnnGetErrorString(status), (int)status, detail[0] ? ": " : "",
                       detail);
}

int fbp_cublas_error(const char *file, int line, const char *call, cublasStatus_t status) {
  const char *name;
  int len = call_name(call, &name);
  return fbp_set_error(file, line, "%.*s failed: %s (status %d)", len, name,
                       g_cublas_status_string ? g_cublas_status_string(status) : "cuBLAS error",
                       (int)status);
}

const char *fbp_last_error(void) { return last_error; }

/* ---- initialisation ------------------------------------------------------------------ */

struct fbp_dl_table fbp_dl;

static std::once_flag g_once;
static std::atomic<int> g_state{-1}; /* -1: fbp_init not called, 0: ready, 1: failed */
static char g_init_error[1024];
static cudaStream_t g_stream;
static cudnnHandle_t g_cudnn;
static cublasHandle_t g_cublas;
static int g_tf32, g_deterministic, g_device, g_sms = 1;
/* The fixed part of the info line (device, versions), made once by fbp_init. */
static char g_info[1200] = "cuda: not initialised (fbp_init was not called)";

cudaStream_t fbp_stream(void) { return g_stream; }
cudnnHandle_t fbp_cudnn(void) { return g_cudnn; }
cublasHandle_t fbp_cublas(void) { return g_cublas; }
int fbp_tf32(void) { return g_tf32; }
int fbp_deterministic(void) { return g_deterministic; }
int fbp_sm_count(void) { return g_sms; }

static int init_device(void) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    FAIL("no CUDA device: cudaGetDeviceCount returned %d (%s)", (int)e, cudaGetErrorString(e));
  if (count == 0) FAIL("no CUDA device: cudaGetDeviceCount found 0 devices");
  const char *dev = getenv("FBP_CUDA_DEVICE");
  g_device = dev && *dev ? atoi(dev) : 0;
  if (g_device < 0 || g_device >= count)
    FAIL("FBP_CUDA_DEVICE is %d, expected 0..%d (%d CUDA devices)", g_device, count - 1, count);
  CUDA_CHECK(cudaSetDevice(g_device));
  CUDA_CHECK(cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, g_device));
  CUDA_CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  return 0;
}

/* fbp_open_accepted's check of a cuDNN: every symbol, version 9.x. */
static int accept_cudnn(void *, void *h, const char *path, char *why, size_t why_len) {
#define FBP_RESOLVE_CUDNN(ret, name, params)                                                  \
  fbp_dl.name = (ret(*) params)dlsym(h, #name);                                               \
  if (!fbp_dl.name) {                                                                         \
    snprintf(why, why_len,                                                                    \
             "Cannot use %s as cuDNN: it has no symbol %s (cuDNN 9.x with its legacy API is " \
             "expected)",                                                                     \
             path, #name);                                                                    \
    return 1;                                                                                 \
  }
  FBP_CUDNN_SYMBOLS(FBP_RESOLVE_CUDNN)
#undef FBP_RESOLVE_CUDNN
  if (fbp_check_cudnn_version(fbp_dl.cudnnGetVersion(), path, why, why_len)) return 1;
  g_cudnn_last_error = (void (*)(char *, size_t))dlsym(h, "cudnnGetLastErrorString");
  return 0;
}

static int init_cudnn(void) {
  char path[FBP_PATH_LEN], why[FBP_WHY_LEN];
  if (!fbp_open_accepted(&FBP_CUDNN_SPEC, accept_cudnn, NULL, path, why, sizeof why))
    FAIL("%s", why);
  CUDNN_CHECK(fbp_dl.cudnnCreate(&g_cudnn));
  CUDNN_CHECK(fbp_dl.cudnnSetStream(g_cudnn, g_stream));
  return 0;
}

/* fbp_open_accepted's check of a cuBLAS: version 12.x or 13.x, every symbol, and a handle
 * from cublasCreate, which fails on a driver older than the library (libcublas.so.13 needs
 * a CUDA 13 driver): fbp_open_accepted then tries libcublas.so.12. */
static int accept_cublas(void *, void *h, const char *path, char *why, size_t why_len) {
  int major = 0, minor = 0;
  if (fbp_cublas_library_version(h, path, &major, &minor, why, why_len) ||
      fbp_check_cublas_version(major, minor, path, why, why_len))
    return 1;
#define FBP_RESOLVE_CUBLAS(ret, name, params)                                            \
  fbp_dl.name = (ret(*) params)dlsym(h, #name "_v2");                                    \
  if (!fbp_dl.name) fbp_dl.name = (ret(*) params)dlsym(h, #name);                        \
  if (!fbp_dl.name) {                                                                    \
    snprintf(why, why_len, "Cannot use %s as cuBLAS: it has no symbol %s_v2 or %s", path, \
             #name, #name);                                                              \
    return 1;                                                                            \
  }
  FBP_CUBLAS_SYMBOLS(FBP_RESOLVE_CUBLAS)
#undef FBP_RESOLVE_CUBLAS
  g_cublas_status_string = (const char *(*)(cublasStatus_t))dlsym(h, "cublasGetStatusString");
  cublasStatus_t s = fbp_dl.cublasCreate(&g_cublas);
  if (s != CUBLAS_STATUS_SUCCESS) {
    g_cublas = NULL;
    snprintf(why, why_len, "Cannot use %s as cuBLAS %d.%d: cublasCreate failed: %s (status %d)",
             path, major, minor,
             g_cublas_status_string ? g_cublas_status_string(s) : "cuBLAS error", (int)s);
    return 1;
  }
  return 0;
}

static int init_cublas(void) {
  char path[FBP_PATH_LEN], why[FBP_WHY_LEN];
  if (!fbp_open_accepted(&FBP_CUBLAS_SPEC, accept_cublas, NULL, path, why, sizeof why))
    FAIL("%s", why);
  CUBLAS_CHECK(fbp_dl.cublasSetStream(g_cublas, g_stream));
  CUBLAS_CHECK(fbp_dl.cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH));
  return 0;
}

static int make_info(void) {
  char name[256];
  int major = 0, minor = 0, rt = 0, drv = 0, blas = 0;
  size_t free_b = 0, total_b = 0;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, g_device));
  snprintf(name, sizeof name, "%s", prop.name);
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, g_device));
  CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, g_device));
  CUDA_CHECK(cudaRuntimeGetVersion(&rt));
  CUDA_CHECK(cudaDriverGetVersion(&drv));
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  CUBLAS_CHECK(fbp_dl.cublasGetVersion(g_cublas, &blas));
  size_t dnn = fbp_dl.cudnnGetVersion();
  snprintf(g_info, sizeof g_info,
           "cuda: %s (sm_%d%d, %d SMs, %.1f GiB), CUDA runtime %d.%d, driver %d.%d, "
           "cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d",
           name, major, minor, g_sms, (double)total_b / (1 << 30), rt / 1000, rt % 1000 / 10,
           drv / 1000, drv % 1000 / 10, dnn / 10000, dnn % 10000 / 100, dnn % 100,
           blas / 10000, blas % 10000 / 100, blas % 100);
  return 0;
}

/* Math starts as fp32, not deterministic (fbp_set_math changes it; the old FBP_TF32
 * variable is gone: --precision tf32 says it per run). */
static int init_all(void) {
  if (init_device() || init_cudnn() || init_cublas() || make_info()) return 1;
  return 0;
}

int fbp_init(void) {
  std::call_once(g_once, [] {
    int rc = init_all();
    if (rc) {
      snprintf(g_init_error, sizeof g_init_error, "%s", last_error);
      snprintf(g_info, sizeof g_info, "cuda: unavailable (%s)", last_error);
    }
    g_state.store(rc);
  });
  if (g_state.load() != 0) {
    snprintf(last_error, sizeof last_error, "%s", g_init_error);
    return 1;
  }
  return 0;
}

int fbp_ready_check(const char *fn) {
  int s = g_state.load();
  if (s == 0) return 0;
  return fbp_set_error(__FILE__, __LINE__, "%s: the CUDA backend is not initialised (%s)", fn,
                       s < 0 ? "fbp_init was not called" : g_init_error);
}

static void memory_stats(size_t *live, size_t *cached, size_t *peak);

/* The fixed line, then (once initialised) the math settings and the allocator's figures,
 * which change: "…, math fp32, deterministic off; memory MiB: in use 12.0, cached 3.0,
 * peak 20.0". */
const char *fbp_backend_info(void) {
  static thread_local char line[1600];
  if (g_state.load() != 0) return g_info;
  size_t live, cached, peak;
  memory_stats(&live, &cached, &peak);
  const double mib = 1 << 20;
  snprintf(line, sizeof line,
           "%s, math %s, deterministic %s; memory MiB: in use %.1f, cached %.1f, peak %.1f",
           g_info, g_tf32 ? "tf32" : "fp32", g_deterministic ? "on" : "off", live / mib,
           cached / mib, peak / mib);
  return line;
}

/* fp32: cuBLAS default math (no TF32: torch.backends.cuda.matmul.allow_tf32 = False);
 * tf32: CUBLAS_TF32_TENSOR_OP_MATH (allow_tf32 = True). bf16 is refused here: the cuDNN
 * and cuBLAS bf16 paths would choose their data types from it (a later change). cuBLAS
 * sgemm is deterministic on one stream, so `deterministic` only changes conv.cu's
 * choices; every reduction of this library is atomic-free in both modes. */
int fbp_set_math(int precision, int deterministic) {
  REQUIRE_READY();
  if (precision != FBP_FP32 && precision != FBP_TF32)
    FAIL("Cannot set precision %d on the cuda backend: expected fp32 (%d) or tf32 (%d); bf16 "
         "is not implemented for CUDA yet",
         precision, FBP_FP32, FBP_TF32);
  CUBLAS_CHECK(fbp_dl.cublasSetMathMode(g_cublas, precision == FBP_TF32
                                                      ? CUBLAS_TF32_TENSOR_OP_MATH
                                                      : CUBLAS_DEFAULT_MATH));
  g_tf32 = precision == FBP_TF32;
  g_deterministic = deterministic != 0;
  return 0;
}

int fbp_sync_checked(const char *fn) {
  cudaError_t e = cudaStreamSynchronize(g_stream);
  if (e != cudaSuccess)
    return fbp_set_error(__FILE__, __LINE__, "%s: the stream failed: %s (%s)", fn,
                         cudaGetErrorName(e), cudaGetErrorString(e));
  return 0;
}

int fbp_sync(void) {
  REQUIRE_READY();
  return fbp_sync_checked(__func__);
}

static void release_cache_locked(void);
static std::mutex g_alloc_mu;

/* Frees the cached blocks and conv.cu's shared workspace (the next convolution allocates
 * the one its plan needs again), so the peak restarts from the memory in use: the
 * counterpart of torch.cuda.empty_cache() + reset_peak_memory_stats(), whose cuDNN
 * workspace also lives in the caching allocator. Lock order: conv.cu's, then the
 * allocator's (as a convolution takes them). */
int fbp_release_cache(void) {
  REQUIRE_READY();
  fbp_conv_release_workspace();
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  release_cache_locked();
  return 0;
}

/* ---- caching allocator ---------------------------------------------------------------- */

static std::unordered_map<void *, size_t> g_live;               /* pointer -> bytes */
static std::unordered_map<size_t, std::vector<void *>> g_cache; /* bytes -> free blocks */
static size_t g_live_bytes, g_cached_bytes, g_peak_bytes; /* peak of live + cached */

static void memory_stats(size_t *live, size_t *cached, size_t *peak) {
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  *live = g_live_bytes;
  *cached = g_cached_bytes;
  *peak = g_peak_bytes;
}

static size_t round_bytes(size_t bytes) {
  const size_t small = 512, large = (size_t)2 << 20;
  if (bytes == 0) bytes = 1; /* n == 0 still gets a unique block */
  return bytes < ((size_t)1 << 20) ? (bytes + small - 1) / small * small
                                   : (bytes + large - 1) / large * large;
}

/* Frees every cached block (after the stream is idle: queued kernels may still use one);
 * the peak restarts from what is still in use. */
static void release_cache_locked(void) {
  cudaStreamSynchronize(g_stream);
  for (auto &bin : g_cache)
    for (void *p : bin.second) cudaFree(p);
  g_cache.clear();
  g_cached_bytes = 0;
  g_peak_bytes = g_live_bytes;
}

static void *device_alloc(size_t want, const char *fn) {
  size_t bytes = round_bytes(want);
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  void *p = NULL;
  auto bin = g_cache.find(bytes);
  if (bin != g_cache.end() && !bin->second.empty()) {
    p = bin->second.back();
    bin->second.pop_back();
    g_cached_bytes -= bytes;
  } else {
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation && g_cached_bytes > 0) {
      cudaGetLastError(); /* clear the (non-sticky) allocation error */
      release_cache_locked();
      e = cudaMalloc(&p, bytes);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      fbp_set_error(__FILE__, __LINE__,
                    "%s: cannot allocate %.1f MiB of GPU memory: %s (%.1f MiB in use)", fn,
                    (double)bytes / (1 << 20), cudaGetErrorString(e),
                    (double)g_live_bytes / (1 << 20));
      return NULL;
    }
  }
  g_live[p] = bytes;
  g_live_bytes += bytes;
  if (g_live_bytes + g_cached_bytes > g_peak_bytes) g_peak_bytes = g_live_bytes + g_cached_bytes;
  return p;
}

static int device_free(void *p, const char *fn) {
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  auto it = g_live.find(p);
  if (it == g_live.end()) FAIL("%s: %p is not a live allocation of this backend", fn, p);
  size_t bytes = it->second;
  g_live.erase(it);
  g_live_bytes -= bytes;
  g_cache[bytes].push_back(p);
  g_cached_bytes += bytes;
  return 0;
}

void *fbp_scratch(size_t bytes, const char *fn) { return device_alloc(bytes, fn); }

void fbp_scratch_free(void *p) {
  if (p) device_free(p, "fbp_scratch_free");
}

void fbp_scratch_release(void *p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(g_alloc_mu);
  auto it = g_live.find(p);
  if (it == g_live.end()) return;
  g_live_bytes -= it->second;
  g_live.erase(it);
  cudaFree(p); /* waits for the device: queued kernels that use p finish first */
}

float *fbp_alloc(int64_t n) {
  if (n < 0) {
    fbp_set_error(__FILE__, __LINE__, "fbp_alloc: size 'n' must be >= 0, got %lld",
                  (long long)n);
    return NULL;
  }
  if ((uint64_t)n > (SIZE_MAX - ((size_t)2 << 20)) / sizeof(float)) {
    fbp_set_error(__FILE__, __LINE__, "fbp_alloc: %lld floats do not fit in memory",
                  (long long)n);
    return NULL;
  }
  if (fbp_ready_check(__func__)) return NULL;
  return (float *)device_alloc((size_t)n * sizeof(float), __func__);
}

int fbp_free(float *p) {
  if (p == NULL) return 0; /* free(NULL) is a no-op, as in C */
  REQUIRE_READY();
  return device_free(p, __func__);
}

/* fbp_copy_in / fbp_copy_out: the cpu backend's checks and messages, then the copy on the
 * stream; a copy to the host waits for it. */
static int copy_host(const char *fn, void *dst, const char *dst_name, const void *src,
                     const char *src_name, int64_t n, cudaMemcpyKind kind) {
  if (n < 0) FAIL("%s: 'n' must be >= 0, got %lld", fn, (long long)n);
  if (n == 0) return 0;
  if (dst == NULL) FAIL("%s: argument '%s' is NULL", fn, dst_name);
  if (src == NULL) FAIL("%s: argument '%s' is NULL", fn, src_name);
  if (fbp_ready_check(fn)) return 1;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * sizeof(float), kind, g_stream));
  return kind == cudaMemcpyDeviceToHost ? fbp_sync_checked(fn) : 0;
}

int fbp_copy_in(float *dst, const float *host_src, int64_t n) {
  return copy_host(__func__, dst, "dst", host_src, "host_src", n, cudaMemcpyHostToDevice);
}

int fbp_copy_out(float *host_dst, const float *src, int64_t n) {
  return copy_host(__func__, host_dst, "host_dst", src, "src", n, cudaMemcpyDeviceToHost);
}
