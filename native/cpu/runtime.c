/*
 * runtime.c — errors, backend info, memory and copies for the cpu backend.
 *
 * Why this shape: the TypeScript side throws on any non-zero status and shows
 * fbp_last_error(), so every failure path records "file:line: message" in a thread-local
 * buffer (one per calling thread, no locking). The oneDNN engine and stream are created
 * once per process with pthread_once; host memory is the backend memory, so copies are
 * memcpy (split across the OpenMP team when large, which helps on big activations).
 */
#include <stdarg.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "internal.h"

static _Thread_local char last_error[1024];

int fbp_set_error(const char *file, int line, const char *fmt, ...) {
  int n = snprintf(last_error, sizeof last_error, "%s:%d: ", file, line);
  if (n < 0 || (size_t)n >= sizeof last_error) return 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
  va_end(ap);
  return 1;
}

int fbp_dnnl_error(const char *file, int line, const char *call, dnnl_status_t status) {
  /* Keep the function name of the call expression, drop its argument list. */
  size_t len = strcspn(call, "(");
  return fbp_set_error(file, line, "%.*s failed: dnnl_%s", (int)len, call,
                       dnnl_status2str(status));
}

const char *fbp_last_error(void) { return last_error; }

/* ---- engine, stream, lock ------------------------------------------------------------- */

static pthread_once_t dnnl_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static dnnl_status_t g_init_status = dnnl_success;
static const char *g_init_call = "";
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void dnnl_init_once(void) {
  g_init_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
  if (g_init_status != dnnl_success) {
    g_init_call = "dnnl_engine_create";
    return;
  }
  g_init_status = dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
  if (g_init_status != dnnl_success) g_init_call = "dnnl_stream_create";
}

int fbp_dnnl_get(dnnl_engine_t *engine, dnnl_stream_t *stream) {
  pthread_once(&dnnl_once, dnnl_init_once);
  if (g_init_status != dnnl_success)
    return fbp_dnnl_error(FBP_FILE, __LINE__, g_init_call, g_init_status);
  if (engine) *engine = g_engine;
  if (stream) *stream = g_stream;
  return 0;
}

void fbp_lock(void) { pthread_mutex_lock(&g_lock); }
void fbp_unlock(void) { pthread_mutex_unlock(&g_lock); }

static char g_info[160];
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void make_info(void) {
  const dnnl_version_t *v = dnnl_version();
  const char *runtime = v->cpu_runtime == DNNL_RUNTIME_OMP   ? "OpenMP"
                        : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB"
                        : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential"
                                                              : "threadpool";
  snprintf(g_info, sizeof g_info, "cpu: oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
           runtime);
}

const char *fbp_backend_info(void) {
  pthread_once(&info_once, make_info);
  return g_info;
}

int fbp_init(void) { return fbp_dnnl_get(NULL, NULL); }

int fbp_sync(void) { return 0; }

/* ---- math ----------------------------------------------------------------------------- */

static int g_precision = FBP_FP32, g_deterministic;

int fbp_precision(void) { return g_precision; }
int fbp_deterministic(void) { return g_deterministic; }
dnnl_data_type_t fbp_compute_type(void) { return g_precision == FBP_BF16 ? dnnl_bf16 : dnnl_f32; }

int fbp_set_math(int precision, int deterministic) {
  switch (precision) {
  case FBP_FP32:
    break;
  case FBP_TF32:
    FAIL("precision tf32 is a CUDA tensor-core mode; the cpu backend computes in fp32 or bf16");
  case FBP_BF16:
    /* Native bf16 dot products (AVX512_BF16 or AMX); without them oneDNN would emulate. Ask
     * oneDNN, not the CPU: ONEDNN_MAX_CPU_ISA may hold it below what the CPU has. */
    if (!__builtin_cpu_supports("avx512bf16"))
      FAIL("precision bf16 needs a CPU with native bf16 (avx512_bf16); this one has none: "
           "use fp32");
    /* ISA codes are bit sets: a later ISA holds the bits of those it extends. */
    if ((dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_bf16) !=
        dnnl_cpu_isa_avx512_core_bf16)
      FAIL("precision bf16 needs oneDNN's avx512_core_bf16 kernels, and ONEDNN_MAX_CPU_ISA "
           "(or DNNL_MAX_CPU_ISA) holds oneDNN below them: unset it or use fp32");
    break;
  default:
    FAIL("precision must be an enum fbp_precision code (0 fp32, 1 tf32, 2 bf16), got %d",
         precision);
  }
  /* oneDNN's CPU primitives and fbp's static OpenMP loops repeat bitwise for a fixed
   * thread count, so deterministic needs nothing more here. */
  g_precision = precision;
  g_deterministic = deterministic != 0;
  return 0;
}

/* ---- memory --------------------------------------------------------------------------- */

/* Large blocks (>= CACHE_MIN bytes) are kept on exact-size free lists when freed and
 * handed out again by the next fbp_alloc of that size. Why: glibc serves blocks above
 * 32 MiB with mmap and returns them with munmap, so every training step re-faulted (and
 * the kernel re-zeroed) gigabytes of activations: ~25 s of system time per 40 s bench.
 * A step allocates the same sizes in the same order every time, so exact-size reuse hits
 * almost always. The cache holds at most FBP_CACHE_MIB MiB (default 8192; 0 disables);
 * past that, cached blocks of other sizes are released first-come. */
#define CACHE_MIN ((size_t)1 << 20)

typedef struct cblock {
  struct cblock *next; /* next cached block (free list of one size) */
  size_t bytes;
} cblock;

typedef struct {
  size_t bytes;
  cblock *head;
} cbin;

#define CACHE_BINS 512
static cbin g_bins[CACHE_BINS];
static size_t g_cached, g_cache_max = (size_t)-1;
static pthread_mutex_t g_alloc_mu = PTHREAD_MUTEX_INITIALIZER;

/* A small header in front of each large block remembers its size for fbp_free. */
#define HDR 64

static size_t cache_max(void) {
  if (g_cache_max == (size_t)-1) {
    const char *v = getenv("FBP_CACHE_MIB");
    g_cache_max = (v ? (size_t)atoll(v) : 8192) << 20;
  }
  return g_cache_max;
}

static cbin *bin_of(size_t bytes, int create) {
  size_t h = (bytes >> 6) * 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < CACHE_BINS; i++) {
    cbin *b = &g_bins[(h + i) % CACHE_BINS];
    if (b->bytes == bytes) return b;
    if (b->bytes == 0) {
      if (!create) return NULL;
      b->bytes = bytes;
      return b;
    }
  }
  return NULL;
}

/* Releases cached blocks (any size) until `want` more bytes fit under the cap. */
static void cache_trim(size_t want) {
  size_t max = cache_max();
  for (size_t i = 0; i < CACHE_BINS && g_cached + want > max; i++) {
    cbin *b = &g_bins[i];
    while (b->head && g_cached + want > max) {
      cblock *c = b->head;
      b->head = c->next;
      g_cached -= c->bytes;
      free(c);
    }
  }
}

float *fbp_alloc(int64_t n) {
  if (n < 0) {
    fbp_set_error(FBP_FILE, __LINE__, "fbp_alloc: size 'n' must be >= 0, got %lld",
                  (long long)n);
    return NULL;
  }
  if ((uint64_t)n > (SIZE_MAX - 64 - HDR) / sizeof(float)) {
    fbp_set_error(FBP_FILE, __LINE__, "fbp_alloc: %lld floats do not fit in memory",
                  (long long)n);
    return NULL;
  }
  /* aligned_alloc wants a multiple of the alignment; n == 0 still gets a unique block. */
  size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
  if (bytes == 0) bytes = 64;
  float *p;
  if (bytes < CACHE_MIN) {
    p = aligned_alloc(64, bytes + HDR);
    if (p) {
      ((cblock *)p)->bytes = 0; /* small: not cached */
      p = (float *)((char *)p + HDR);
    }
  } else {
    pthread_mutex_lock(&g_alloc_mu);
    cbin *b = bin_of(bytes, 0);
    cblock *c = b ? b->head : NULL;
    if (c) {
      b->head = c->next;
      g_cached -= bytes;
    }
    pthread_mutex_unlock(&g_alloc_mu);
    if (c == NULL) {
      c = aligned_alloc(64, bytes + HDR);
      if (c == NULL) { /* release the cache and retry once */
        pthread_mutex_lock(&g_alloc_mu);
        size_t keep = g_cache_max;
        g_cache_max = 0;
        cache_trim(0);
        g_cache_max = keep;
        pthread_mutex_unlock(&g_alloc_mu);
        c = aligned_alloc(64, bytes + HDR);
      }
      if (c) c->bytes = bytes;
    }
    p = c ? (float *)((char *)c + HDR) : NULL;
  }
  if (p == NULL)
    fbp_set_error(FBP_FILE, __LINE__, "fbp_alloc: out of memory allocating %lld floats",
                  (long long)n);
  return p;
}

int fbp_free(float *p) {
  if (p == NULL) return 0; /* free(NULL) is a no-op, as in C */
  cblock *c = (cblock *)((char *)p - HDR);
  size_t bytes = c->bytes;
  if (bytes == 0) {
    free(c);
    return 0;
  }
  pthread_mutex_lock(&g_alloc_mu);
  cbin *b = bytes <= cache_max() ? bin_of(bytes, 1) : NULL;
  if (b) {
    cache_trim(bytes);
    c->next = b->head;
    b->head = c;
    g_cached += bytes;
  }
  pthread_mutex_unlock(&g_alloc_mu);
  if (b == NULL) free(c);
  return 0;
}

int fbp_release_cache(void) {
  pthread_mutex_lock(&g_alloc_mu);
  size_t keep = cache_max();
  g_cache_max = 0;
  cache_trim(0);
  g_cache_max = keep;
  pthread_mutex_unlock(&g_alloc_mu);
  malloc_trim(0); /* and glibc's own free lists of the small blocks */
  return 0;
}

/* memcpy split into one contiguous piece per thread when large. */
static void par_copy(float *dst, const float *src, int64_t n) {
  if (n < (1 << 20)) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
#pragma omp parallel
  {
    int64_t chunks = 64, per = (n + chunks - 1) / chunks;
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
      int64_t lo = c * per, hi = lo + per < n ? lo + per : n;
      if (lo < hi) memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
    }
  }
}

int fbp_copy_in(float *dst, const float *host_src, int64_t n) {
  REQUIRE_NONNEG(n);
  if (n == 0) return 0;
  REQUIRE_PTR(dst);
  REQUIRE_PTR(host_src);
  par_copy(dst, host_src, n);
  return 0;
}

int fbp_copy_out(float *host_dst, const float *src, int64_t n) {
  REQUIRE_NONNEG(n);
  if (n == 0) return 0;
  REQUIRE_PTR(host_dst);
  REQUIRE_PTR(src);
  par_copy(host_dst, src, n);
  return 0;
}

int impl_fill_forward(float *out, float value, int64_t n) {
  FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
    for (int64_t i = 0; i < n; i++) out[i] = value;);
  return 0;
}

int impl_copy_forward(float *out, int64_t out_off, const float *inp, int64_t in_off, int64_t n,
                      int accumulate) {
  float *o = out + out_off;
  const float *x = inp + in_off;
  if (!accumulate) {
    /* The ranges may overlap when out and inp are the same storage. */
    if (o + n <= x || x + n <= o) par_copy(o, x, n);
    else memmove(o, x, (size_t)n * sizeof(float));
    return 0;
  }
  if (o != x && (o + n <= x || x + n <= o)) {
    FBP_PAR_FOR_SIMD(n > FBP_PAR_MIN,
      for (int64_t i = 0; i < n; i++) o[i] += x[i];);
  } else {
    /* Overlapping accumulate: sequential, so reads see the values a loop in order sees. */
    for (int64_t i = 0; i < n; i++) o[i] += x[i];
  }
  return 0;
}
