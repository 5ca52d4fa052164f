/*
 * loader_harness.cpp — drives native/cuda/libfind.h on the host, without a GPU, for
 * tests/backend/cuda_loader_test.ts (which builds stub libraries to open).
 *
 *   loader_harness dirs cudnn|cublas     the candidate folders, one a line
 *   loader_harness open cudnn|cublas     "opened <path> version <v>" or "error <why>":
 *                                        open and check as fbp_init does (the version;
 *                                        cuBLAS: cublasCreate_v2 where the stub has one,
 *                                        the next soname tried when it fails)
 *   loader_harness open-closed cudnn|cublas   the same; after an error, also "still loaded
 *                                        <sibling>" for each sibling left open
 *   loader_harness plain <path>          dlopen of the file alone: "opened" or "error <why>"
 *
 * Build: c++ -I native/cuda native/cuda/test/loader_harness.cpp -o loader_harness -ldl
 */
#include <stdio.h>
#include <string.h>

#include "libfind.h"

static const struct fbp_lib_spec *spec_of(const char *name) {
  if (strcmp(name, "cudnn") == 0) return &FBP_CUDNN_SPEC;
  if (strcmp(name, "cublas") == 0) return &FBP_CUBLAS_SPEC;
  return NULL;
}

/* What fbp_init checks before it takes a library (runtime.cu): the version, and for cuBLAS
 * a first cublasCreate_v2 where the stub has one (a stub returning non-zero stands for a
 * driver too old for that cuBLAS). */
static int accept(void *, void *h, const char *opened, char *why, size_t why_len) {
  if (strstr(opened, "cudnn")) {
    typedef size_t (*version_fn)(void);
    version_fn v = (version_fn)dlsym(h, "cudnnGetVersion");
    if (!v) {
      snprintf(why, why_len, "Cannot use %s as cuDNN: it has no cudnnGetVersion", opened);
      return 1;
    }
    return fbp_check_cudnn_version(v(), opened, why, why_len);
  }
  int major = 0, minor = 0;
  if (fbp_cublas_library_version(h, opened, &major, &minor, why, why_len) ||
      fbp_check_cublas_version(major, minor, opened, why, why_len))
    return 1;
  typedef int (*create_fn)(void **);
  create_fn create = (create_fn)dlsym(h, "cublasCreate_v2");
  void *handle = NULL;
  int status = create ? create(&handle) : 0;
  if (status != 0) {
    snprintf(why, why_len, "Cannot use %s as cuBLAS: cublasCreate failed (status %d)", opened,
             status);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: loader_harness dirs|open|open-closed cudnn|cublas, or plain <path>\n");
    return 2;
  }
  if (strcmp(argv[1], "plain") == 0) {
    void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (h) printf("opened\n");
    else printf("error %s\n", dlerror());
    return 0;
  }
  const struct fbp_lib_spec *spec = spec_of(argv[2]);
  if (!spec) return 2;
  if (strcmp(argv[1], "dirs") == 0) {
    static struct fbp_dirs dirs;
    fbp_candidate_dirs(spec, &dirs);
    for (int i = 0; i < dirs.count; i++) printf("%s\n", dirs.dir[i]);
    return 0;
  }
  char opened[FBP_PATH_LEN], why[FBP_WHY_LEN];
  void *h = fbp_open_accepted(spec, accept, NULL, opened, why, sizeof why);
  if (!h) {
    printf("error %s\n", why);
    /* Siblings opened for a library that then failed to open must be closed again (a
     * library opened and refused stays loaded, with its siblings). */
    if (strcmp(argv[1], "open-closed") == 0)
      for (const char *const *s = spec->siblings; *s; s++)
        if (dlopen(*s, RTLD_NOW | RTLD_NOLOAD)) printf("still loaded %s\n", *s);
    return 0;
  }
  if (spec == &FBP_CUDNN_SPEC) {
    printf("opened %s version %zu\n", opened, ((size_t (*)(void))dlsym(h, "cudnnGetVersion"))());
    return 0;
  }
  int major = 0, minor = 0;
  fbp_cublas_library_version(h, opened, &major, &minor, why, sizeof why);
  printf("opened %s version %d.%d\n", opened, major, minor);
  return 0;
}
