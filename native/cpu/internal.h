/*
 * internal.h — private helpers shared by the files of the cpu backend (not part of the
 * ABI). Error reporting, the checks of the runtime functions, the oneDNN engine/stream, and
 * the shape-keyed primitive cache used by conv.c, linear.c (bf16) and pool.c. The kernels'
 * argument checks are shared with the cuda backend: native/common/abi.inc, generated from
 * the contract.
 */
#ifndef FBP_CPU_INTERNAL_H
#define FBP_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "oneapi/dnnl/dnnl.h"
#include "oneapi/dnnl/dnnl_debug.h"
#include "fbp.h"

#ifdef __FILE_NAME__
#define FBP_FILE __FILE_NAME__
#else
#define FBP_FILE __FILE__
#endif

/* Private functions stay out of the library's dynamic symbol table: it exports the ABI. */
#pragma GCC visibility push(hidden)

/* fbp_set_error, the element-count and window helpers, and the impl_<kernel> prototypes
 * that the files of this backend define (abi.c exports the checked entry points). */
#include "check.h"
#include "kernels.h"

/* Element count above which the plain C loops run with an OpenMP team. */
#define FBP_PAR_MIN 32768

/* Runs the for-loop `...` with an OpenMP team when `cond` holds, else serially. Not the
 * `if` clause of `omp parallel`: that still enters libgomp and costs ~0.4 µs per call,
 * 50× the FFI call itself, on the many tiny tensors of a training step. */
#define FBP_PAR_FOR(cond, ...)                                \
  do {                                                        \
    if (cond) {                                               \
      _Pragma("omp parallel for schedule(static)") __VA_ARGS__ \
    } else {                                                  \
      __VA_ARGS__                                             \
    }                                                         \
  } while (0)
#define FBP_PAR_FOR_SIMD(cond, ...)                                \
  do {                                                             \
    if (cond) {                                                    \
      _Pragma("omp parallel for simd schedule(static)") __VA_ARGS__ \
    } else {                                                       \
      _Pragma("omp simd") __VA_ARGS__                              \
    }                                                              \
  } while (0)

/* Fails the current function with a formatted message. */
#define FAIL(...) return fbp_set_error(FBP_FILE, __LINE__, __VA_ARGS__)

/* Records the failing dnnl call and its status name, then returns 1. */
int fbp_dnnl_error(const char *file, int line, const char *call, dnnl_status_t status);
#define CHECK(call)                                                                   \
  do {                                                                                \
    dnnl_status_t fbp_st_ = (call);                                                   \
    if (fbp_st_ != dnnl_success) return fbp_dnnl_error(FBP_FILE, __LINE__, #call, fbp_st_); \
  } while (0)

/* Checks of the runtime functions (fbp_alloc, fbp_copy_in, …; the kernels are checked by
 * abi.inc): each returns an error naming the argument. */
#define REQUIRE_PTR(p) \
  do { if ((p) == NULL) FAIL("%s: argument '%s' is NULL", __func__, #p); } while (0)
#define REQUIRE_NONNEG(v)                                                           \
  do {                                                                              \
    if ((v) < 0) FAIL("%s: '%s' must be >= 0, got %lld", __func__, #v, (long long)(v)); \
  } while (0)

/* The process-wide CPU engine and stream (created on first use; NULL + error on failure). */
int fbp_dnnl_get(dnnl_engine_t *engine, dnnl_stream_t *stream);

/* The math fbp_set_math chose: an enum fbp_precision code (FBP_FP32 or FBP_BF16 here), and
 * whether results must repeat bitwise run to run. */
int fbp_precision(void);
int fbp_deterministic(void);

/* Serialises use of the primitive cache and of the memory objects it holds. */
void fbp_lock(void);
void fbp_unlock(void);

/* ---- primitive cache ------------------------------------------------------------------ */

#define FBP_KEY_LEN 14
#define FBP_MAX_ARGS 10

/* One tensor argument of a cached primitive. `user` wraps the caller's plain-layout
 * pointer; when the primitive wants another layout, `inner` describes a buffer in that layout
 * and `reorder` converts user -> inner (inputs) or inner -> user (outputs). */
typedef struct {
  int arg;
  int output;
  dnnl_memory_t user;
  dnnl_memory_t inner;
  size_t inner_bytes; /* size of `inner` (its buffer is a shared scratch, see prim.c) */
  dnnl_primitive_t reorder;
} fbp_arg;

typedef struct fbp_prim {
  struct fbp_prim *next;
  int64_t key[FBP_KEY_LEN];
  dnnl_primitive_t prim;
  int nargs;
  fbp_arg args[FBP_MAX_ARGS];
  dnnl_exec_arg_t exec[FBP_MAX_ARGS];
  void *owned; /* an extra buffer the builder allocated (freed with the entry), or NULL */
} fbp_prim;

/* Builds the primitive of a new cache entry; returns 0 or 1 (error recorded). */
typedef int (*fbp_prim_builder)(fbp_prim *p, const int64_t *key, dnnl_engine_t engine);

/* Finds the entry for `key` (unused trailing key slots must be 0), building it on a miss. */
int fbp_prim_get(const int64_t key[FBP_KEY_LEN], fbp_prim_builder build, fbp_prim **out);

/* Adds an argument to an entry under construction: `user_md` is the caller's layout,
 * the primitive's layout is queried from `pd`. */
int fbp_prim_add_arg(fbp_prim *p, const_dnnl_primitive_desc_t pd, dnnl_engine_t engine,
                     int arg, const dnnl_memory_desc_t *user_md, int output);

/* Runs an entry: ptrs[i] is the caller's pointer for args[i]. Call under fbp_lock. */
int fbp_prim_run(fbp_prim *p, void *const *ptrs);

/* Looks up (building on a miss) and runs the entry for `key` under the global lock. */
int fbp_prim_call(const int64_t key[FBP_KEY_LEN], fbp_prim_builder build, void *const *ptrs);

/* Plain memory descriptors: nchw (4-D), oihw (4-D weights), x (1-D); float32. */
int fbp_md_nchw(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w,
                dnnl_format_tag_t tag);
int fbp_md_1d(dnnl_memory_desc_t *md, int64_t n);

/* The oneDNN data type a conv/linear primitive reads its inputs in: dnnl_bf16 when
 * fbp_precision() is FBP_BF16, else dnnl_f32. Outputs (dst, diff_src, diff_weights,
 * diff_bias) stay dnnl_f32: bf16 products accumulate in float32, and the ABI's buffers are
 * float32 either way (the cache entry's input reorder converts). */
dnnl_data_type_t fbp_compute_type(void);

#pragma GCC visibility pop

#endif /* FBP_CPU_INTERNAL_H */
