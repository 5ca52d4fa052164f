/*
 * internal.cuh — private helpers shared by the files of the cuda backend (not part of the
 * ABI): error reporting, the checks of the runtime functions, the process-wide stream and
 * library handles, device scratch from the caching allocator, launch sizes and warp/block
 * reductions. The kernels' argument checks are shared with the cpu backend
 * (native/common/abi.inc, compiled in abi.cu); the files here define the impl_<kernel>
 * functions of kernels.h that it calls.
 *
 * The library is built with -fvisibility=hidden: only the functions of fbp.h (declared
 * below under visibility "default") appear in its dynamic symbol table.
 */
#ifndef FBP_CUDA_INTERNAL_CUH
#define FBP_CUDA_INTERNAL_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#pragma GCC visibility push(default)
#include "fbp.h"
#pragma GCC visibility pop

/* fbp_set_error, the element-count and window helpers (check.h; FBP_FILE stays __FILE__:
 * fbp_set_error drops its folders) and the impl_<kernel> prototypes (kernels.h). */
#pragma GCC visibility push(hidden)
#include "check.h"
#include "kernels.h"
#pragma GCC visibility pop

#include "libs.h"

/* ---- errors --------------------------------------------------------------------------- */

/* Record a failed call of the CUDA runtime, cuDNN or cuBLAS by name and status; return 1. */
int fbp_cuda_error(const char *file, int line, const char *call, cudaError_t err);
int fbp_cudnn_error(const char *file, int line, const char *call, cudnnStatus_t status);
int fbp_cublas_error(const char *file, int line, const char *call, cublasStatus_t status);

/* Fails the current function with a formatted message. */
#define FAIL(...) return fbp_set_error(__FILE__, __LINE__, __VA_ARGS__)

/* Returns report(file, line, "call", status) from the current function unless `call`
 * gives `ok`. */
#define FBP_STATUS_CHECK(type, ok, report, call)                                       \
  do {                                                                                 \
    type fbp_s_ = (call);                                                              \
    if (fbp_s_ != (ok)) return report(__FILE__, __LINE__, #call, fbp_s_);              \
  } while (0)
#define CUDA_CHECK(call) FBP_STATUS_CHECK(cudaError_t, cudaSuccess, fbp_cuda_error, call)
#define CUDNN_CHECK(call) \
  FBP_STATUS_CHECK(cudnnStatus_t, CUDNN_STATUS_SUCCESS, fbp_cudnn_error, call)
#define CUBLAS_CHECK(call) \
  FBP_STATUS_CHECK(cublasStatus_t, CUBLAS_STATUS_SUCCESS, fbp_cublas_error, call)
/* After a kernel launch: reports a bad launch (e.g. an invalid configuration) at once;
 * faults inside the kernel surface at the next synchronising call. */
#define LAUNCH_CHECK(kernel)                                                              \
  do {                                                                                    \
    cudaError_t fbp_e_ = cudaGetLastError();                                              \
    if (fbp_e_ != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, kernel, fbp_e_); \
  } while (0)

/* ---- readiness ------------------------------------------------------------------------ */

/* Checked after the arguments, so a bad argument is reported as such even without a
 * device: returns 1 with "fn: the CUDA backend is not initialised (why)" unless fbp_init
 * succeeded. abi.inc calls it for every kernel through FBP_KERNEL_READY. */
int fbp_ready_check(const char *fn);
#define REQUIRE_READY()                        \
  do {                                         \
    if (fbp_ready_check(__func__)) return 1;   \
  } while (0)
#define FBP_KERNEL_READY(fn) fbp_ready_check(fn)

/* ---- process-wide state (valid once fbp_init succeeded) -------------------------------- */

extern struct fbp_dl_table fbp_dl;
/* The one stream every kernel, copy, cuDNN and cuBLAS call is queued on. */
cudaStream_t fbp_stream(void);
cudnnHandle_t fbp_cudnn(void);
cublasHandle_t fbp_cublas(void);
/* 1 when fbp_set_math chose FBP_TF32 (--precision tf32): cuBLAS and cuDNN may use TF32
 * tensor cores for float32 math (PyTorch's allow_tf32 = True); 0: FMA-only float32. */
int fbp_tf32(void);
/* 1 when fbp_set_math asked for results that repeat bitwise run to run: conv.cu then takes
 * cuDNN's heuristic choice among the algorithms it marks deterministic. */
int fbp_deterministic(void);
/* Multiprocessors of the device (sizes reductions that want a few blocks per SM). */
int fbp_sm_count(void);

/* Device memory from the caching allocator, `fn` names the caller in the error message
 * (NULL + error on failure). Stream order makes it safe to release scratch right after
 * queueing the kernels that use it: a later allocation of the same block is only used by
 * kernels queued after them on the same stream. */
void *fbp_scratch(size_t bytes, const char *fn);
void fbp_scratch_free(void *p);
/* Returns a block from fbp_scratch to the device itself rather than to the cache (a large
 * buffer not needed again, e.g. the algorithm search's workspace); waits for the device. */
void fbp_scratch_release(void *p);
/* Returns conv.cu's shared workspace to the device (fbp_release_cache calls it; the next
 * convolution takes the size its plan needs again). Takes conv.cu's lock. */
void fbp_conv_release_workspace(void);

/* Waits for the stream, then reports the first failure in what it ran. */
int fbp_sync_checked(const char *fn);

/* ---- launches ------------------------------------------------------------------------- */

/* FBP_BLOCK, fbp_grid, fbp_index32_ok, fbp_reduce_splits (host-testable). */
#include "launch.h"

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

/* ---- one warp per row ------------------------------------------------------------------ */

/* Rows a block of FBP_BLOCK threads works on: one a warp. Launch fbp_grid(rows,
 * WARP_ROWS) blocks of FBP_BLOCK threads. */
#define WARP_ROWS (FBP_BLOCK / 32)
/* Loops `r` over the rows of the calling warp. */
#define WARP_ROW_STRIDE(r, rows)                                                            \
  for (int64_t r = (int64_t)blockIdx.x * WARP_ROWS + (threadIdx.x >> 5); r < (int64_t)(rows); \
       r += (int64_t)gridDim.x * WARP_ROWS)

/* o = softmax(x) over `cols` values by one warp, as the cpu loops do: the max, then exp and
 * its sum in double, then the scale. Returns that sum (on every lane), the max in *max. */
static __device__ double warp_softmax_row(float *o, const float *x, int cols, float *max) {
  int lane = threadIdx.x & 31;
  float mx = -INFINITY;
  for (int c = lane; c < cols; c += 32) mx = x[c] > mx ? x[c] : mx;
  mx = warp_max(mx);
  double sum = 0;
  for (int c = lane; c < cols; c += 32) {
    float e = expf(x[c] - mx);
    o[c] = e;
    sum += e;
  }
  sum = warp_sum(sum);
  float inv = (float)(1.0 / sum);
  for (int c = lane; c < cols; c += 32) o[c] *= inv;
  *max = mx;
  return sum;
}

/* ---- shared reductions ---------------------------------------------------------------- */

/* out (o0,o1,o2,o3) = inp (i0,i1,i2,i3) summed over the dims where o_k = 1 < i_k, in
 * double; sizes already validated (abi.inc). Used by sum_to_forward and for bias gradients. */
int fbp_sum_to(float *out, const float *inp, const int *is, const int *os);

#endif /* FBP_CUDA_INTERNAL_CUH */
