/*
 * internal.cuh — private helpers shared by the files of the cuda backend (not part of the
 * ABI): error reporting, argument validation (the same checks and messages as the cpu
 * backend's internal.h), the process-wide stream and library handles, device scratch
 * from the caching allocator, launch sizes and warp/block reductions.
 *
 * The library is built with -fvisibility=hidden: only the functions of fbp.h (declared
 * below under visibility "default") appear in its dynamic symbol table.
 */
#ifndef FBP_CUDA_INTERNAL_CUH
#define FBP_CUDA_INTERNAL_CUH

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#pragma GCC visibility push(default)
#include "fbp.h"
#pragma GCC visibility pop

#include "libs.h"

/* ---- errors --------------------------------------------------------------------------- */

/* Records "file:line: message" (file without its folders) as this thread's last error;
 * always returns 1. */
int fbp_set_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record a failed call of the CUDA runtime, cuDNN or cuBLAS by name and status; return 1. */
int fbp_cuda_error(const char *file, int line, const char *call, cudaError_t err);
int fbp_cudnn_error(const char *file, int line, const char *call, cudnnStatus_t status);
int fbp_cublas_error(const char *file, int line, const char *call, cublasStatus_t status);

/* Fails the current function with a formatted message. */
#define FAIL(...) return fbp_set_error(__FILE__, __LINE__, __VA_ARGS__)

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    cudaError_t fbp_e_ = (call);                                                         \
    if (fbp_e_ != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, #call, fbp_e_); \
  } while (0)
#define CUDNN_CHECK(call)                                                                 \
  do {                                                                                    \
    cudnnStatus_t fbp_s_ = (call);                                                        \
    if (fbp_s_ != CUDNN_STATUS_SUCCESS)                                                   \
      return fbp_cudnn_error(__FILE__, __LINE__, #call, fbp_s_);                          \
  } while (0)
#define CUBLAS_CHECK(call)                                                                \
  do {                                                                                    \
    cublasStatus_t fbp_s_ = (call);                                                       \
    if (fbp_s_ != CUBLAS_STATUS_SUCCESS)                                                  \
      return fbp_cublas_error(__FILE__, __LINE__, #call, fbp_s_);                         \
  } while (0)
/* After a kernel launch: reports a bad launch (e.g. an invalid configuration) at once;
 * faults inside the kernel surface at the next synchronising call. */
#define LAUNCH_CHECK(kernel)                                                              \
  do {                                                                                    \
    cudaError_t fbp_e_ = cudaGetLastError();                                              \
    if (fbp_e_ != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, kernel, fbp_e_); \
  } while (0)

/* ---- argument validation (as native/cpu/internal.h) ----------------------------------- */

#define REQUIRE_PTR(p) \
  do { if ((p) == NULL) FAIL("%s: argument '%s' is NULL", __func__, #p); } while (0)
#define REQUIRE_POS(v)                                                                    \
  do {                                                                                    \
    if ((v) <= 0) FAIL("%s: size '%s' must be >= 1, got %lld", __func__, #v, (long long)(v)); \
  } while (0)
#define REQUIRE_NONNEG(v)                                                                 \
  do {                                                                                    \
    if ((v) < 0) FAIL("%s: '%s' must be >= 0, got %lld", __func__, #v, (long long)(v));   \
  } while (0)

/* Most elements any buffer can have. */
#define FBP_MAX_NUMEL ((int64_t)((SIZE_MAX - 64) / sizeof(float)))

/* Product of `n` sizes (each already checked >= 1) in *out; 1 when it overflows int64 or
 * exceeds FBP_MAX_NUMEL. */
static inline int fbp_numel(const int64_t *dims, int n, int64_t *out) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (__builtin_mul_overflow(p, dims[i], &p) || p > FBP_MAX_NUMEL) return 1;
  *out = p;
  return 0;
}

/* Sets `out` to the element count of sizes `...` of buffer `what`, or fails naming it. */
#define REQUIRE_NUMEL(fn, what, out, ...)                                                  \
  do {                                                                                     \
    const int64_t fbp_dims_[] = {__VA_ARGS__};                                             \
    if (fbp_numel(fbp_dims_, (int)(sizeof fbp_dims_ / sizeof fbp_dims_[0]), &(out)))      \
      FAIL("%s: %s (%s) has more elements than any buffer can hold", fn, what, #__VA_ARGS__); \
  } while (0)

/* Checked after the arguments, so a bad argument is reported as such even without a
 * device: returns 1 with "fn: the CUDA backend is not initialised (why)" unless fbp_init
 * succeeded. */
int fbp_ready_check(const char *fn);
#define REQUIRE_READY()                        \
  do {                                         \
    if (fbp_ready_check(__func__)) return 1;   \
  } while (0)

/* Output size of a window of `k` over `x` with stride and symmetric padding. */
static inline int64_t fbp_out_size(int64_t x, int64_t k, int64_t stride, int64_t pad) {
  int64_t span = x + 2 * pad - k;
  return span < 0 ? 0 : span / stride + 1;
}

/* ---- process-wide state (valid once fbp_init succeeded) -------------------------------- */

extern struct fbp_dl_table fbp_dl;
/* The one stream every kernel, copy, cuDNN and cuBLAS call is queued on. */
cudaStream_t fbp_stream(void);
cudnnHandle_t fbp_cudnn(void);
cublasHandle_t fbp_cublas(void);
/* 1 when FBP_TF32=1: cuBLAS and cuDNN may use TF32 tensor cores for float32 math. */
int fbp_tf32(void);
/* Multiprocessors of the device (sizes reductions that want a few blocks per SM). */
int fbp_sm_count(void);

/* Device memory from the caching allocator, `fn` names the caller in the error message
 * (NULL + error on failure). Stream order makes it safe to release scratch right after
 * queueing the kernels that use it: a later allocation of the same block is only used by
 * kernels queued after them on the same stream. */
void *fbp_scratch(size_t bytes, const char *fn);
void fbp_scratch_free(void *p);

/* Waits for the stream, then reports the first failure in what it ran. */
int fbp_sync_checked(const char *fn);

/* ---- launches ------------------------------------------------------------------------- */

#define FBP_BLOCK 256
/* Blocks for `n` work items of `block` threads, capped (kernels use grid-stride loops). */
static inline unsigned fbp_grid(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65536) g = 65536;
  return (unsigned)g;
}

#define GRID_STRIDE(i, n)                                                            \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
       i += (int64_t)gridDim.x * blockDim.x)

/* Sum over the 32 lanes of a warp; every lane gets the result. */
template <typename T>
static __device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* Largest value over the warp, NaN ignored unless every lane holds NaN (as `x > m ? x : m`
 * in the cpu backend's loops). */
static __device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
 * result. The order is fixed by the block size, so results are reproducible. */
template <typename T>
static __device__ T block_sum(T v) {
  __shared__ T part[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (int)(blockDim.x >> 5) ? part[lane] : T(0);
    v = warp_sum(v);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  T r = part[0];
  __syncthreads(); /* part may be reused by the caller's next block_sum */
  return r;
}

/* ---- shared reductions ---------------------------------------------------------------- */

/* out (o0,o1,o2,o3) = inp (i0,i1,i2,i3) summed over the dims where o_k = 1 < i_k, in
 * double; sizes already validated. Used by sum_to_forward and for bias gradients. */
int fbp_sum_to(float *out, const float *inp, const int *is, const int *os);

#endif /* FBP_CUDA_INTERNAL_CUH */
