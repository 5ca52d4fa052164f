/*
 * loader_harness.cpp — drives native/cuda/libfind.h on the host, without a GPU, for
 * tests/backend/cuda_loader_test.ts (which builds stub libraries to open).
 *
 *   loader_harness dirs cudnn|cublas     the candidate folders, one a line
 *   loader_harness open cudnn|cublas     "opened <path> version <v>" or "error <why>":
 *                                        open as fbp_init does, then its version check
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

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: loader_harness dirs|open cudnn|cublas, or plain <path>\n");
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
  char opened[FBP_PATH_LEN], why[2000];
  void *h = fbp_open_library(spec, opened, why, sizeof why);
  if (!h) {
    printf("error %s\n", why);
    return 0;
  }
  if (spec == &FBP_CUDNN_SPEC) {
    typedef size_t (*version_fn)(void);
    version_fn v = (version_fn)dlsym(h, "cudnnGetVersion");
    if (!v) {
      printf("error %s has no cudnnGetVersion\n", opened);
      return 0;
    }
    if (fbp_check_cudnn_version(v(), opened, why, sizeof why)) printf("error %s\n", why);
    else printf("opened %s version %zu\n", opened, v());
    return 0;
  }
  int major = 0, minor = 0;
  if (fbp_cublas_library_version(h, opened, &major, &minor, why, sizeof why) ||
      fbp_check_cublas_version(major, minor, opened, why, sizeof why))
    printf("error %s\n", why);
  else
    printf("opened %s version %d.%d\n", opened, major, minor);
  return 0;
}
