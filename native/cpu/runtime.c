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

const char *fbp_backend_info(void) {
  static char info[128];
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  void make_info(void);
  pthread_once(&once, make_info);
  return info;
}

void make_info(void) {
  /* Defined at file scope so pthread_once can call it; writes the static buffer above. */
  extern const char *fbp_backend_info(void);
}
