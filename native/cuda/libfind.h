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
 *      $CONDA_PREFIX, $HOME/.local, /usr/local, /usr and /opt/conda, and Debian's
 *      /usr/lib/python3/dist-packages/nvidia/<wheel>/lib. One glob level, no recursion.
 * A folder only counts when the file exists there (stat before dlopen).
 *
 * Sibling libraries: cuDNN 9's libcudnn.so.9 is a shim that dlopens libcudnn_graph,
 * libcudnn_engines_*, libcudnn_ops, libcudnn_cnn … by soname, and libcublas needs
 * libcublasLt. A folder outside the loader's path (a wheel, FBP_CUDNN_LIB) would leave
 * those unresolved, so before opening a library by path its siblings present in the same
 * folder are opened first, by path: the dynamic loader then matches the later by-soname
 * requests to the already loaded copies. Missing siblings are skipped (cuDNN names what it
 * lacks when it needs it).
 *
 * Supported versions (checked at load): cuDNN 9.x (the legacy API it still exports);
 * cuBLAS 12.x and 13.x (cublasGetProperty, no device needed).
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

/* Adds the existing folders matching `pattern` (glob, sorted, one level of wildcards). */
static void fbp_dirs_glob(struct fbp_dirs *d, const char *pattern) {
  glob_t g;
  if (glob(pattern, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) == 0) {
    /* Newest python first: sort descending so python3.12 comes before python3.10. */
    for (size_t i = 0; i < g.gl_pathc; i++)
      for (size_t j = i + 1; j < g.gl_pathc; j++)
        if (strcmp(g.gl_pathv[i], g.gl_pathv[j]) < 0) {
          char *t = g.gl_pathv[i];
          g.gl_pathv[i] = g.gl_pathv[j];
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

/* Opens the siblings of `spec` that exist in `dir` (their handles stay open). */
static void fbp_open_siblings(const struct fbp_lib_spec *spec, const char *dir) {
  char path[FBP_PATH_LEN];
  for (const char *const *s = spec->siblings; *s; s++) {
    if (fbp_join(path, sizeof path, dir, *s) && fbp_is_file(path))
      dlopen(path, RTLD_NOW | RTLD_LOCAL);
  }
}

/* Opens `file` in folder `dir` after its siblings; NULL with the reason in `why`. */
static void *fbp_open_in(const struct fbp_lib_spec *spec, const char *dir, const char *file,
                         char *opened, char *why, size_t why_len) {
  if (!fbp_join(opened, FBP_PATH_LEN, dir, file)) {
    snprintf(why, why_len, "cannot open %s in a folder whose path is too long", file);
    return NULL;
  }
  fbp_open_siblings(spec, dir);
  void *h = dlopen(opened, RTLD_NOW | RTLD_LOCAL);
  if (!h) snprintf(why, why_len, "cannot open %s: %s", opened, dlerror());
  return h;
}

/*
 * Opens the library of `spec`: the handle, and in `opened` (FBP_PATH_LEN bytes) the path or
 * soname it came from; NULL with a message in `why` that says what was tried.
 */
static void *fbp_open_library(const struct fbp_lib_spec *spec, char *opened, char *why,
                              size_t why_len) {
  why[0] = '\0';
  const char *env = getenv(spec->env);
  if (env && *env) {
    if (fbp_is_dir(env)) {
      for (const char *const *n = spec->sonames; *n; n++) {
        char path[FBP_PATH_LEN];
        if (fbp_join(path, sizeof path, env, *n) && fbp_is_file(path)) return fbp_open_in(spec, env, *n, opened, why, why_len);
      }
      snprintf(why, why_len, "Cannot open %s: %s=%s is a folder without %s%s", spec->what,
               spec->env, env, spec->sonames[0], spec->sonames[1] ? " or its older versions" : "");
      return NULL;
    }
    if (!fbp_is_file(env)) {
      snprintf(why, why_len, "Cannot open %s: %s=%s does not exist", spec->what, spec->env, env);
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
    void *h = fbp_open_in(spec, dir, file, opened, why, why_len);
    if (!h) {
      char detail[FBP_PATH_LEN];
      snprintf(detail, sizeof detail, "%s", why);
      snprintf(why, why_len, "Cannot open %s from %s: %s", spec->what, spec->env, detail);
    }
    return h;
  }
  for (const char *const *n = spec->sonames; *n; n++) {
    void *h = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      snprintf(opened, FBP_PATH_LEN, "%s", *n);
      return h;
    }
  }
  struct fbp_dirs dirs;
  fbp_candidate_dirs(spec, &dirs);
  char last[FBP_PATH_LEN] = "";
  for (int i = 0; i < dirs.count; i++) {
    for (const char *const *n = spec->sonames; *n; n++) {
      char path[FBP_PATH_LEN];
      if (!fbp_join(path, sizeof path, dirs.dir[i], *n) || !fbp_is_file(path)) continue;
      void *h = fbp_open_in(spec, dirs.dir[i], *n, opened, last, sizeof last);
      if (h) return h;
    }
  }
  snprintf(why, why_len,
           "Cannot open %s: %s is not on the loader's path nor in any of %d candidate folders "
           "(CUDA_HOME, CONDA_PREFIX, /usr/local/cuda, pip's nvidia/%s/lib)%s%s; set %s to "
           "the library or its folder",
           spec->what, spec->sonames[0], dirs.count, spec->wheels[0], last[0] ? "; " : "",
           last, spec->env);
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
