/*
 * prim.c — the shape-keyed cache of oneDNN primitives used by conv.c, linear.c and pool.c.
 *
 * Why: creating a oneDNN primitive JIT-compiles code (milliseconds), while a training
 * step calls the same few shapes thousands of times. Each entry is built once and keeps
 * everything a call needs: the primitive, one memory object per argument whose data
 * handle is swapped per call, and — where the primitive prefers a blocked layout over the
 * ABI's plain NCHW, or another data type (bf16 inputs, conv.c) — a converting reorder into
 * a scratch buffer in that layout (shared by all entries, see attach_scratch), so the
 * steady state allocates nothing. Entries live until the process exits (a run uses a
 * bounded set of shapes). A hash table with chaining keeps lookups O(1) for the few
 * hundred shapes of a ResNet with per-database batch norms.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BUCKETS 256
static fbp_prim *g_table[BUCKETS];

static unsigned hash_key(const int64_t *key) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < FBP_KEY_LEN; i++) {
    h ^= (uint64_t)key[i];
    h *= 1099511628211ull;
  }
  return (unsigned)(h ^ (h >> 32)) % BUCKETS;
}

static void prim_destroy(fbp_prim *p) {
  for (int i = 0; i < p->nargs; i++) {
    fbp_arg *a = &p->args[i];
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->inner) dnnl_memory_destroy(a->inner);
    if (a->user) dnnl_memory_destroy(a->user);
  }
  if (p->prim) dnnl_primitive_destroy(p->prim);
  free(p->owned);
  free(p);
}

int fbp_prim_get(const int64_t key[FBP_KEY_LEN], fbp_prim_builder build, fbp_prim **out) {
  unsigned b = hash_key(key);
  for (fbp_prim *p = g_table[b]; p; p = p->next) {
    if (memcmp(p->key, key, sizeof p->key) == 0) {
      *out = p;
      return 0;
    }
  }
  dnnl_engine_t engine;
  if (fbp_dnnl_get(&engine, NULL)) return 1;
  fbp_prim *p = calloc(1, sizeof *p);
  if (p == NULL) FAIL("out of memory creating a primitive cache entry");
  memcpy(p->key, key, sizeof p->key);
  if (build(p, key, engine)) {
    prim_destroy(p);
    return 1;
  }
  for (int i = 0; i < p->nargs; i++) {
    p->exec[i].arg = p->args[i].arg;
    p->exec[i].memory = p->args[i].inner ? p->args[i].inner : p->args[i].user;
  }
  p->next = g_table[b];
  g_table[b] = p;
  *out = p;
  return 0;
}

int fbp_prim_add_arg(fbp_prim *p, const_dnnl_primitive_desc_t pd, dnnl_engine_t engine,
                     int arg, const dnnl_memory_desc_t *user_md, int output) {
  if (p->nargs >= FBP_MAX_ARGS) FAIL("too many primitive arguments (max %d)", FBP_MAX_ARGS);
  fbp_arg *a = &p->args[p->nargs++];
  a->arg = arg;
  a->output = output;
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
  if (want == NULL || want->ndims == 0) FAIL("primitive has no argument %d", arg);
  CHECK(dnnl_memory_create(&a->user, user_md, engine, DNNL_MEMORY_NONE));
  if (dnnl_memory_desc_equal(user_md, want)) return 0;
  /* The primitive wants another layout: a buffer in it (the shared scratch of this
   * argument slot, attached per run) and a converting reorder. */
  CHECK(dnnl_memory_create(&a->inner, want, engine, DNNL_MEMORY_NONE));
  a->inner_bytes = dnnl_memory_desc_get_size(want);
  dnnl_primitive_desc_t rpd;
  if (output) CHECK(dnnl_reorder_primitive_desc_create(&rpd, want, engine, user_md, engine, NULL));
  else CHECK(dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, want, engine, NULL));
  dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  CHECK(st);
  return 0;
}

static int run_reorder(fbp_arg *a, dnnl_stream_t stream) {
  dnnl_exec_arg_t args[2] = {
      {DNNL_ARG_FROM, a->output ? a->inner : a->user},
      {DNNL_ARG_TO, a->output ? a->user : a->inner},
  };
  CHECK(dnnl_primitive_execute(a->reorder, stream, 2, args));
  return 0;
}

/* Blocked-layout buffers of a run, packed into one scratch block shared by every cache
 * entry (runs are serialised by fbp_lock) and grown to the largest run's total. Why: a
 * buffer per entry kept a blocked copy of every activation shape alive for the whole
 * process — gigabytes at batch 32 — although only one primitive runs at a time; and one
 * block per argument slot kept the largest of each slot (the stem's forward output and
 * its backward-weights input, 103 MB each at batch 32) although no run needs both. */
static void *g_scratch;
static size_t g_scratch_bytes;

static int attach_scratch(fbp_prim *p) {
  size_t total = 0;
  for (int i = 0; i < p->nargs; i++)
    if (p->args[i].inner) total += (p->args[i].inner_bytes + 63) & ~(size_t)63;
  if (total > g_scratch_bytes) {
    free(g_scratch);
    g_scratch = aligned_alloc(64, total);
    g_scratch_bytes = g_scratch ? total : 0;
    if (g_scratch == NULL) FAIL("out of memory allocating %zu bytes of scratch", total);
  }
  size_t offset = 0;
  for (int i = 0; i < p->nargs; i++) {
    fbp_arg *a = &p->args[i];
    if (a->inner == NULL) continue;
    CHECK(dnnl_memory_set_data_handle(a->inner, (char *)g_scratch + offset));
    offset += (a->inner_bytes + 63) & ~(size_t)63;
  }
  return 0;
}

int fbp_prim_run(fbp_prim *p, void *const *ptrs) {
  dnnl_stream_t stream;
  if (fbp_dnnl_get(NULL, &stream)) return 1;
  if (attach_scratch(p)) return 1;
  for (int i = 0; i < p->nargs; i++) CHECK(dnnl_memory_set_data_handle(p->args[i].user, ptrs[i]));
  for (int i = 0; i < p->nargs; i++)
    if (p->args[i].reorder && !p->args[i].output && run_reorder(&p->args[i], stream)) return 1;
  CHECK(dnnl_primitive_execute(p->prim, stream, p->nargs, p->exec));
  for (int i = 0; i < p->nargs; i++)
    if (p->args[i].reorder && p->args[i].output && run_reorder(&p->args[i], stream)) return 1;
  CHECK(dnnl_stream_wait(stream));
  return 0;
}

int fbp_prim_call(const int64_t key[FBP_KEY_LEN], fbp_prim_builder build, void *const *ptrs) {
  fbp_lock();
  fbp_prim *p;
  int rc = fbp_prim_get(key, build, &p) || fbp_prim_run(p, ptrs);
  fbp_unlock();
  return rc;
}

int fbp_md_nchw(dnnl_memory_desc_t *md, int64_t n, int64_t c, int64_t h, int64_t w,
                dnnl_format_tag_t tag) {
  dnnl_dims_t dims = {n, c, h, w};
  CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag));
  return 0;
}

int fbp_md_1d(dnnl_memory_desc_t *md, int64_t n) {
  dnnl_dims_t dims = {n};
  CHECK(dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, dnnl_a));
  return 0;
}
