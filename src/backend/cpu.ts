/**
 * The CPU backend: native/build/libfbp_cpu.so (native/cpu/*.c over oneDNN), built when
 * its sources change and bound through the shared fbp.h binding in native.ts.
 * @module
 */
import { ensureCpuLibrary } from "./native_build.ts";
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
 * Builds the CPU library when its sources changed, then opens it. The environment variable
 * `FBP_CPU_LIB` names another build to open as is (e.g. the AddressSanitizer variant of
 * `deno task test:asan`, native/build/libfbp_cpu_asan.so).
 */
export async function loadCpuBackend(): Promise<CpuBackend> {
  const override = Deno.env.get("FBP_CPU_LIB");
  if (override) return openCpuBackend(override);
  return openCpuBackend(await ensureCpuLibrary({ quiet: true }));
}
