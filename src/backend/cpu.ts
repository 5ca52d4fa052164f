/**
 * The CPU backend: native/build/libfbp_cpu.so (native/cpu/*.c over oneDNN, built by
 * `deno task build`), bound through the shared fbp.h binding in native.ts.
 * @module
 */
import { CPU_LIBRARY_PATH } from "./library_paths.ts";
import { NativeBackend, type NativeLibrary, NativeStorage, openNativeLibrary } from "./native.ts";

/** CPU storage: host memory from fbp_alloc. */
export { NativeStorage as CpuStorage };

/** The native CPU backend (oneDNN). */
export class CpuBackend extends NativeBackend {
  /** Wraps an opened library (use {@link loadCpuBackend} or {@link openCpuBackend}). */
  constructor(lib: NativeLibrary, libraryPath: string) {
    super(
      "cpu",
      lib,
      libraryPath,
      (reason) => new Error(`Cannot run kernel "fbp_init": ${reason}`),
    );
  }
}

/** Opens an already built CPU library; throws a clear Error when it is missing or broken. */
export function openCpuBackend(libPath: string): CpuBackend {
  const lib = openNativeLibrary(libPath, "CPU");
  try {
    return new CpuBackend(lib, libPath);
  } catch (err) {
    lib.close();
    throw err;
  }
}

/**
 * Opens the built CPU library (`deno task build` builds it). The environment variable
 * `FBP_CPU_LIB` names another build to open as is (e.g. the AddressSanitizer variant of
 * `deno task test:asan`, native/build/libfbp_cpu_asan.so).
 */
// async so that a failure is a rejected promise, as for the other backends.
// deno-lint-ignore require-await
export async function loadCpuBackend(): Promise<CpuBackend> {
  return openCpuBackend(Deno.env.get("FBP_CPU_LIB") || CPU_LIBRARY_PATH);
}
