/*
 * check.h — the helpers of the argument checks that both backends share (abi.inc and the
 * kernels): the largest buffer, overflow-safe element counts and window output sizes.
 * Each backend defines fbp_set_error (in its runtime file) and its internal header may
 * define FBP_FILE (the file name its messages start with) before including this.
 */
#ifndef FBP_CHECK_H
#define FBP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#ifndef FBP_FILE
#define FBP_FILE __FILE__
#endif

/* Records "file:line: message" as this thread's last error; always returns 1. */
int fbp_set_error(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The status of a failed argument check, with its message recorded. */
#define FBP_ABI_FAIL(...) fbp_set_error(FBP_FILE, __LINE__, __VA_ARGS__)

/* Most elements any buffer can have: what fbp_alloc can return. */
#define FBP_MAX_NUMEL ((int64_t)((SIZE_MAX - 64) / sizeof(float)))

/* 1 when the product of `n` sizes (each already checked >= 1) overflows int64 or exceeds
 * FBP_MAX_NUMEL: no buffer that large exists, and a wrapped product would make the loops
 * index outside the caller's buffers. */
static inline int fbp_numel_overflows(const int64_t *dims, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (__builtin_mul_overflow(p, dims[i], &p) || p > FBP_MAX_NUMEL) return 1;
  return 0;
}

/* Output size of a window of `k` over `x` with stride and symmetric padding. */
static inline int64_t fbp_out_size(int64_t x, int64_t k, int64_t stride, int64_t pad) {
  int64_t span = x + 2 * pad - k;
  return span < 0 ? 0 : span / stride + 1;
}

/* The same with PyTorch's ceil_mode when `ceil`: rounded up, less one when the last window
 * would start in the right padding. */
static inline int64_t fbp_out_size_ceil(int64_t x, int64_t k, int64_t stride, int64_t pad,
                                        int ceil) {
  int64_t span = x + 2 * pad - k;
  if (span < 0) return 0;
  if (!ceil) return span / stride + 1;
  int64_t o = (span + stride - 1) / stride + 1;
  if ((o - 1) * stride >= x + pad) o--;
  return o;
}

#endif /* FBP_CHECK_H */
