/*
 * libfind.h — where the cuda backend looks for cuDNN and cuBLAS, and the version checks
 * made when they load. Plain C++ with no CUDA types, so a host-compiled harness
 * (native/cuda/test/loader_harness.cpp) tests it without a GPU.
 *
 * Why a fixed list: a recursive search of /usr, /opt and $HOME costs seconds at every
 * start and finds whatever copy comes first. The candidates, in order:
 *   1. $FBP_CUDNN_LIB / $FBP_CUBLAS_LIB: a library file or a folder holding one. Nothing
 *      else is tried when it is set, so a wrong value is an error, not a silent fallback.
 *   2. the sonames alone (libcudnn.so.9; libcublas.so.13, then .12): dlopen's own search
 *      (LD_LIBRARY_PATH, the ldconfig cache, the system folders), which costs nothing;
 *   3. $CUDA_HOME/lib64, $CUDA_PATH/lib64, $CONDA_PREFIX/lib, /usr/local/cuda/lib64;
 *   4. NVIDIA's pip wheels (PyTorch's dependencies): <prefix>/lib/python3.<minor>/
 *      {site,dist}-packages/nvidia/<wheel>/lib for the prefixes $VIRTUAL_ENV,
 *      $CONDA_PREFIX, $HOME/.local, /usr/local, /usr and /opt/conda (newest python first,
 *      compared as versions: 3.12 before 3.9), and Debian's
 *      /usr/lib/python3/dist-packages/nvidia/<wheel>/lib. One glob level, no recursion.
 * A folder only counts when the file exists there (stat before dlopen).
 *
 * Sibling libraries: cuDNN 9's libcudnn.so.9 is a shim that dlopens libcudnn_graph,
 * libcudnn_engines_*, libcudnn_ops, libcudnn_cnn … by soname, and libcublas needs
 * libcublasLt. A folder outside the loader's path (a wheel, FBP_CUDNN_LIB) would leave
 * those unresolved, so before opening a library by path its siblings of the same major
 * version present in the same folder are opened first, by path: the dynamic loader then
 * matches the later by-soname requests to the already loaded copies. Missing siblings are
 * skipped (cuDNN names what it lacks when it needs it); one that exists but fails to open
 * has its dlerror added to the message when the library then fails too, and the siblings
 * opened for a library that failed are closed again.
 *
 * Messages start "Cannot open <what>: …" (nothing loadable found, or a file found that the
 * loader refused: then that file and the loader's reason are named, never "not found") or
 * "Cannot use <file> as <what>: …" / "Cannot use <what> <version> from <file>: …" (opened,
 * but refused by a check).
 *
 * Supported versions (checked at load): cuDNN 9.x (the legacy API it still exports);
 * cuBLAS 12.x and 13.x (cublasGetProperty, no device needed). fbp_open_accepted gives
 * way to the next soname when the caller's check refuses a library: runtime.cu falls back
 * from libcublas.so.13 to libcublas.so.12 when the former's cublasCreate fails (a driver
 * older than CUDA 13).
 */
#ifndef FBP_CUDA_LIBFIND_H
#define FBP_CUDA_LIBFIND_H

#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What to look for. Lists end with NULL. */
struct fbp_lib_spec {
  const char *what;              /* "cuDNN", for messages */
  const char *env;               /* variable naming a file or folder */
  const char *const *sonames;    /* preferred first */
  const char *const *wheels;     /* nvidia/<wheel>/lib folders of pip wheels */
  const char *const *siblings;   /* opened first from the same folder, in this order */
};

static const char *const FBP_CUDNN_SONAMES[] = {"libcudnn.so.9", NULL};
static const char *const FBP_CUDNN_WHEELS[] = {"cudnn", NULL};
/* Dependency order: graph first (the others need it), the engines, then the op sets. */
static const char *const FBP_CUDNN_SIBLINGS[] = {
    "libcudnn_graph.so.9",    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9",
    "libcudnn_ops.so.9",      "libcudnn_cnn.so.9",
    "libcudnn_adv.so.9",      NULL};
static const char *const FBP_CUBLAS_SONAMES[] = {"libcublas.so.13", "libcublas.so.12", NULL};
/* cu12 wheels: nvidia/cublas/lib; cu13 wheels put every library in nvidia/cu13/lib. */
static const char *const FBP_CUBLAS_WHEELS[] = {"cublas", "cu13", NULL};
static const char *const FBP_CUBLAS_SIBLINGS[] = {"libcublasLt.so.13", "libcublasLt.so.12",
                                                  NULL};

static const struct fbp_lib_spec FBP_CUDNN_SPEC = {"cuDNN", "FBP_CUDNN_LIB", FBP_CUDNN_SONAMES,
                                                   FBP_CUDNN_WHEELS, FBP_CUDNN_SIBLINGS};
static const struct fbp_lib_spec FBP_CUBLAS_SPEC = {"cuBLAS", "FBP_CUBLAS_LIB",
                                                    FBP_CUBLAS_SONAMES, FBP_CUBLAS_WHEELS,
                                                    FBP_CUBLAS_SIBLINGS};

#define FBP_MAX_DIRS 48
#define FBP_PATH_LEN 1024

/* The candidate folders of step 3 and 4, in order (no FBP_*_LIB, no sonames). */
struct fbp_dirs {
  int count;
  char dir[FBP_MAX_DIRS][FBP_PATH_LEN];
};

static void fbp_dirs_add(struct fbp_dirs *d, const char *dir) {
  if (d->count >= FBP_MAX_DIRS || !dir || !*dir) return;
  for (int i = 0; i < d->count; i++)
    if (strcmp(d->dir[i], dir) == 0) return;
  snprintf(d->dir[d->count++], FBP_PATH_LEN, "%s", dir);
}

static void fbp_dirs_env(struct fbp_dirs *d, const char *env, const char *suffix) {
  const char *v = getenv(env);
  if (!v || !*v) return;
  char path[FBP_PATH_LEN];
  snprintf(path, sizeof path, "%s%s", v, suffix);
  fbp_dirs_add(d, path);
}

/* Compares two strings as versions: runs of digits by their value, the rest byte by byte,
 * so "python3.9" < "python3.10" < "python3.12" (strcmp would put 3.9 last). */
static int fbp_version_cmp(const char *a, const char *b) {
  while (*a && *b) {
    if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
      while (*a == '0') a++;
      while (*b == '0') b++;
      const char *ea = a, *eb = b;
      while (*ea >= '0' && *ea <= '9') ea++;
      while (*eb >= '0' && *eb <= '9') eb++;
      if (ea - a != eb - b) return ea - a < eb - b ? -1 : 1;
      int c = strncmp(a, b, (size_t)(ea - a));
      if (c) return c < 0 ? -1 : 1;
      a = ea;
      b = eb;
    } else {
      if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
      a++;
      b++;
    }
  }
  return *a ? 1 : *b ? -1 : 0;
}

/* Adds the existing folders matching `pattern` (glob, one level of wildcards per part),
 * newest version first: python3.12 before python3.10 before python3.9. */
static void fbp_dirs_glob(struct fbp_dirs *d, const char *pattern) {
  glob_t g;
  if (glob(pattern, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0) {
    for (size_t i = 1; i < g.gl_pathc; i++) { /* insertion sort, descending */
      char *t = g.gl_pathv[i];
      size_t j = i;
      for (; j > 0 && fbp_version_cmp(g.gl_pathv[j - 1], t) < 0; j--)
        g.gl_pathv[j] = g.gl_pathv[j - 1];
      g.gl_pathv[j] = t;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) fbp_dirs_add(d, g.gl_pathv[i]);
  }
  globfree(&g);
}

static void fbp_candidate_dirs(const struct fbp_lib_spec *spec, struct fbp_dirs *d) {
  d->count = 0;
  fbp_dirs_env(d, "CUDA_HOME", "/lib64");
  fbp_dirs_env(d, "CUDA_PATH", "/lib64");
  fbp_dirs_env(d, "CONDA_PREFIX", "/lib");
  fbp_dirs_add(d, "/usr/local/cuda/lib64");
  const char *home = getenv("HOME");
  char local[FBP_PATH_LEN] = "";
  if (home && *home) snprintf(local, sizeof local, "%s/.local", home);
  const char *prefixes[] = {getenv("VIRTUAL_ENV"), getenv("CONDA_PREFIX"), local,
                            "/usr/local", "/usr", "/opt/conda"};
  for (const char *const *w = spec->wheels; *w; w++) {
    char pattern[FBP_PATH_LEN];
    for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++) {
      if (!prefixes[p] || !*prefixes[p]) continue;
      snprintf(pattern, sizeof pattern, "%s/lib/python3*/*-packages/nvidia/%s/lib", prefixes[p],
               *w);
      fbp_dirs_glob(d, pattern);
    }
    snprintf(pattern, sizeof pattern, "/usr/lib/python3/dist-packages/nvidia/%s/lib", *w);
    fbp_dirs_glob(d, pattern);
  }
}

/* out = dir/file; 0 when it does not fit (such a path is skipped). */
static int fbp_join(char *out, size_t len, const char *dir, const char *file) {
  int n = snprintf(out, len, "%s/%s", dir, file);
  return n > 0 && (size_t)n < len;
}

static int fbp_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int fbp_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* dlerror()'s text, never NULL. */
static const char *fbp_dlerror(void) {
  const char *e = dlerror();
  return e ? e : "dlopen failed without a reason";
}

/* The major version in a library's file name: "12" for ".../libcublas.so.12.4.5"; "" when
 * the name has none ("libcublas.so"). */
static void fbp_so_major(const char *path, char *out, size_t len) {
  const char *base = strrchr(path, '/');
  const char *s = strstr(base ? base + 1 : path, ".so.");
  out[0] = '\0';
  if (!s || len == 0) return;
  s += 4;
  size_t n = strcspn(s, ".");
  if (n >= len) n = len - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

/* The sonames of `spec` from index `first` on, as "a or b" (for messages). */
static void fbp_soname_list(const struct fbp_lib_spec *spec, int first, char *out, size_t len) {
  out[0] = '\0';
  size_t used = 0;
  for (int i = first; spec->sonames[i] && used < len; i++) {
    int n = snprintf(out + used, len - used, "%s%s", i > first ? " or " : "", spec->sonames[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
}

#define FBP_MAX_SIBLINGS 16
/* Message sizes: a sibling's dlerror, one candidate's reason, the whole message. */
#define FBP_SIBLING_ERROR_LEN 512
#define FBP_DETAIL_LEN 1024
#define FBP_WHY_LEN 4096

/* The siblings opened before a library: their handles, and the first one's failure. */
struct fbp_siblings {
  int count;
  void *handle[FBP_MAX_SIBLINGS];
  char error[FBP_SIBLING_ERROR_LEN];
};

/* Opens the siblings of `spec` present in `dir` whose major version is the one of `file`
 * (all of them when `file` has none): libcublasLt.so.12 goes with libcublas.so.12 only.
 * A sibling that exists but fails to open is skipped, its dlerror kept in s->error. */
static void fbp_open_siblings(const struct fbp_lib_spec *spec, const char *dir,
                              const char *file, struct fbp_siblings *s) {
  char path[FBP_PATH_LEN], major[32], sibling_major[32];
  s->count = 0;
  s->error[0] = '\0';
  fbp_so_major(file, major, sizeof major);
  for (const char *const *n = spec->siblings; *n && s->count < FBP_MAX_SIBLINGS; n++) {
    fbp_so_major(*n, sibling_major, sizeof sibling_major);
    if (major[0] && strcmp(major, sibling_major) != 0) continue;
    if (!fbp_join(path, sizeof path, dir, *n) || !fbp_is_file(path)) continue;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      s->handle[s->count++] = h;
    } else if (!s->error[0]) {
      snprintf(s->error, sizeof s->error, "%s", fbp_dlerror());
    }
  }
}

/* Closes the siblings' handles, last opened first. */
static void fbp_close_siblings(struct fbp_siblings *s) {
  while (s->count > 0) dlclose(s->handle[--s->count]);
}

/* Opens `file` in folder `dir` after its siblings: the handle (the siblings stay open, the
 * library uses them), or NULL with the loader's reason in `why`, a failed sibling's added,
 * and the siblings closed again. */
static void *fbp_open_in(const struct fbp_lib_spec *spec, const char *dir, const char *file,
                         char *opened, char *why, size_t why_len) {
  if (!fbp_join(opened, FBP_PATH_LEN, dir, file)) {
    snprintf(why, why_len, "the path of %s in %s is too long", file, dir);
    return NULL;
  }
  static struct fbp_siblings sib; /* fbp_init runs once, under std::call_once */
  fbp_open_siblings(spec, dir, file, &sib);
  void *h = dlopen(opened, RTLD_NOW | RTLD_LOCAL);
  if (h) return h;
  snprintf(why, why_len, "%s%s%s%s", fbp_dlerror(),
           sib.error[0] ? " (before it, a library beside it failed: " : "", sib.error,
           sib.error[0] ? ")" : "");
  fbp_close_siblings(&sib);
  return NULL;
}

/* Whether dlopen's error for `soname` says the file itself was not found (rather than
 * found, with a dependency missing or another fault). */
static int fbp_not_found(const char *error, const char *soname) {
  return strncmp(error, soname, strlen(soname)) == 0 && strstr(error, "No such file") != NULL;
}

/*
 * Opens the library of `spec`, its sonames tried from index `first` on: the handle, in
 * `opened` (FBP_PATH_LEN bytes) the path or soname it came from and in *index the index of
 * that soname (-1 when FBP_*_LIB names a file); NULL with a message in `why` that says
 * what was tried, or which file was found but failed to load and why.
 */
static void *fbp_open_library_from(const struct fbp_lib_spec *spec, int first, int *index,
                                   char *opened, char *why, size_t why_len) {
  static char detail[FBP_DETAIL_LEN], failed[FBP_DETAIL_LEN], failed_what[FBP_PATH_LEN];
  char names[256];
  why[0] = '\0';
  *index = -1;
  fbp_soname_list(spec, first, names, sizeof names);
  const char *env = getenv(spec->env);
  if (env && *env) {
    if (fbp_is_dir(env)) {
      for (int i = first; spec->sonames[i]; i++) {
        char path[FBP_PATH_LEN];
        if (!fbp_join(path, sizeof path, env, spec->sonames[i]) || !fbp_is_file(path)) continue;
        *index = i;
        void *h = fbp_open_in(spec, env, spec->sonames[i], opened, detail, sizeof detail);
        if (!h)
          snprintf(why, why_len, "Cannot open %s from %s=%s: %s", spec->what, spec->env, env,
                   detail);
        return h;
      }
      snprintf(why, why_len, "Cannot open %s: %s=%s is a folder without %s", spec->what,
               spec->env, env, names);
      return NULL;
    }
    if (!fbp_is_file(env)) {
      snprintf(why, why_len, "Cannot open %s: %s=%s does not exist", spec->what, spec->env, env);
      return NULL;
    }
    if (first > 0) {
      snprintf(why, why_len, "Cannot open another %s: %s=%s names one file", spec->what,
               spec->env, env);
      return NULL;
    }
    char dir[FBP_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", env);
    char *slash = strrchr(dir, '/');
    const char *file = env;
    if (slash) {
      *slash = '\0';
      file = slash + 1;
      if (!dir[0]) snprintf(dir, sizeof dir, "/");
    } else {
      snprintf(dir, sizeof dir, ".");
    }
    void *h = fbp_open_in(spec, dir, file, opened, detail, sizeof detail);
    if (!h)
      snprintf(why, why_len, "Cannot open %s from %s=%s: %s", spec->what, spec->env, env, detail);
    return h;
  }
  /* The first library found that failed to load: named in the message if nothing loads. */
  failed[0] = failed_what[0] = '\0';
  for (int i = first; spec->sonames[i]; i++) {
    void *h = dlopen(spec->sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (h) {
      *index = i;
      snprintf(opened, FBP_PATH_LEN, "%s", spec->sonames[i]);
      return h;
    }
    const char *e = fbp_dlerror();
    if (!failed[0] && !fbp_not_found(e, spec->sonames[i])) {
      snprintf(failed, sizeof failed, "%s", e);
      snprintf(failed_what, sizeof failed_what, "%s (on the loader's path)", spec->sonames[i]);
    }
  }
  static struct fbp_dirs dirs; /* 48 KiB: not on the stack */
  fbp_candidate_dirs(spec, &dirs);
  for (int d = 0; d < dirs.count; d++) {
    for (int i = first; spec->sonames[i]; i++) {
      char path[FBP_PATH_LEN];
      if (!fbp_join(path, sizeof path, dirs.dir[d], spec->sonames[i]) || !fbp_is_file(path))
        continue;
      void *h = fbp_open_in(spec, dirs.dir[d], spec->sonames[i], opened, detail, sizeof detail);
      if (h) {
        *index = i;
        return h;
      }
      if (!failed[0]) {
        snprintf(failed, sizeof failed, "%s", detail);
        snprintf(failed_what, sizeof failed_what, "%s", path);
      }
    }
  }
  if (failed[0]) {
    snprintf(why, why_len,
             "Cannot open %s: found %s but cannot load it: %s; set %s to a working copy or "
             "its folder",
             spec->what, failed_what, failed, spec->env);
  } else {
    snprintf(why, why_len,
             "Cannot open %s: %s is not on the loader's path nor in any of %d candidate folders "
             "(CUDA_HOME, CONDA_PREFIX, /usr/local/cuda, pip's nvidia/%s/lib); set %s to the "
             "library or its folder",
             spec->what, names, dirs.count, spec->wheels[0], spec->env);
  }
  return NULL;
}

/* Checks an opened library (versions, symbols, a first call): 0 takes it, else 1 with the
 * reason in `why`. */
typedef int (*fbp_accept_fn)(void *ctx, void *handle, const char *opened, char *why,
                             size_t why_len);

/*
 * Opens the library of `spec` and hands it to `accept`. When `accept` refuses a library
 * opened by one of several sonames, the next soname is looked for in the same places, and
 * so on: libcublas.so.13 whose cublasCreate fails (a driver older than CUDA 13) gives way
 * to libcublas.so.12. A refused library is not dlclosed: it may have started threads or
 * registered exit handlers, and RTLD_LOCAL keeps its symbols from the next one. NULL with
 * the reasons in `why` when nothing is accepted.
 */
static void *fbp_open_accepted(const struct fbp_lib_spec *spec, fbp_accept_fn accept, void *ctx,
                               char *opened, char *why, size_t why_len) {
  static char refused[FBP_WHY_LEN], reason[FBP_WHY_LEN], tail[FBP_WHY_LEN];
  refused[0] = '\0';
  for (int first = 0;;) {
    int index;
    void *h = fbp_open_library_from(spec, first, &index, opened, why, why_len);
    if (!h) break; /* why: nothing (more) to open */
    if (accept(ctx, h, opened, reason, sizeof reason) == 0) return h;
    if (!refused[0]) snprintf(refused, sizeof refused, "%s", reason);
    if (index < 0 || !spec->sonames[index + 1]) {
      snprintf(why, why_len, "%s", reason);
      break;
    }
    first = index + 1;
  }
  /* The first refusal leads: it names the library that would have been used. */
  if (refused[0] && strcmp(refused, why) != 0) {
    size_t n = strlen(why) + 1;
    memcpy(tail, why, n < sizeof tail ? n : sizeof tail);
    tail[sizeof tail - 1] = '\0';
    n = strlen(refused);
    if (n > why_len - 1) n = why_len - 1;
    memcpy(why, refused, n);
    const char *parts[] = {"; then ", tail};
    for (const char *part : parts)
      for (const char *c = part; *c && n + 1 < why_len; c++) why[n++] = *c;
    why[n] = '\0';
  }
  return NULL;
}

/* 0 when cuDNN's version number (cudnnGetVersion) is 9.x; else 1 with the reason. cuDNN 9
 * numbers major·10000 + minor·100 + patch, cuDNN 8 and older major·1000 + minor·100 +
 * patch. */
static int fbp_check_cudnn_version(size_t version, const char *opened, char *why,
                                   size_t why_len) {
  size_t unit = version < 10000 ? 1000 : 10000;
  if (version / unit == 9 && unit == 10000) return 0;
  snprintf(why, why_len, "Cannot use cuDNN %zu.%zu.%zu from %s: expected cuDNN 9.x",
           version / unit, version % unit / 100, version % 100, opened);
  return 1;
}

/* 0 when the cuBLAS major version is 12 or 13; else 1 with the reason. */
static int fbp_check_cublas_version(int major, int minor, const char *opened, char *why,
                                    size_t why_len) {
  if (major == 12 || major == 13) return 0;
  snprintf(why, why_len, "Cannot use cuBLAS %d.%d from %s: expected cuBLAS 12.x or 13.x", major,
           minor, opened);
  return 1;
}

/* The cuBLAS version through cublasGetProperty (MAJOR_VERSION 0, MINOR_VERSION 1), which
 * needs no device; 1 with the reason when the library does not export it. */
static int fbp_cublas_library_version(void *handle, const char *opened, int *major, int *minor,
                                      char *why, size_t why_len) {
  typedef int (*get_property_fn)(int, int *);
  get_property_fn get = (get_property_fn)dlsym(handle, "cublasGetProperty");
  if (!get || get(0, major) != 0 || get(1, minor) != 0) {
    snprintf(why, why_len, "Cannot use %s as cuBLAS: it has no working cublasGetProperty",
             opened);
    return 1;
  }
  return 0;
}

#endif /* FBP_CUDA_LIBFIND_H */
