/**
 * The CUDA backend: binds native/build/libfbp_cuda.so (native/cuda/*.cu: own kernels, with
 * cuDNN 9 and cuBLAS opened by the library at run time) with Deno.dlopen, the same ABI as
 * the CPU backend (native/include/fbp.h).
 *
 * Storages hold device pointers from the library's caching allocator. Every kernel is
 * queued on one CUDA stream and returns at once; only copyOut (and sync) wait for the
 * device, so host↔device traffic happens where the caller asks for it: a batch's input,
 * the loss read-back, checkpoints. A non-zero status becomes an Error with the library's
 * fbp_last_error() text; a fault inside a queued kernel surfaces at the next waiting call.
 *
 * Without a usable GPU (no driver, no device, no cuDNN/cuBLAS) the library still loads
 * and fbp_init says why; {@link loadCudaBackend} then throws a {@link CudaUnavailableError}
 * such as "Cannot load the CUDA backend: runtime.cu:117: no CUDA device: cudaGetDeviceCount
 * returned 35 (CUDA driver version is insufficient for CUDA runtime version)".
 * @module
 */
import { CUDA_LIBRARY_PATH } from "./library_paths.ts";
import { NativeBackend, type NativeLibrary, NativeStorage, openNativeLibrary } from "./native.ts";

export { FBP_ABI_SYMBOLS } from "./native.ts";
/** CUDA storage: a device pointer from the library's caching allocator. */
export { NativeStorage as CudaStorage };

/**
 * The CUDA backend cannot run here: its library is not built (no nvcc), no device or
 * driver, or cuDNN / cuBLAS missing. `loadBackend("auto")` falls back to the CPU.
 */
export class CudaUnavailableError extends Error {
  override name = "CudaUnavailableError";
}

/** The native CUDA backend (own kernels, cuDNN, cuBLAS). */
export class CudaBackend extends NativeBackend {
  /**
   * Wraps an opened library and initialises it (use {@link loadCudaBackend}).
   * @throws {CudaUnavailableError} when fbp_init fails (no device, driver or libraries)
   */
  constructor(lib: NativeLibrary, libraryPath: string) {
    super(
      "cuda",
      lib,
      libraryPath,
      (reason) => new CudaUnavailableError(`Cannot load the CUDA backend: ${reason}`),
    );
  }
}

/**
 * Opens a built CUDA library and initialises it. The library stays loaded even when
 * fbp_init fails (unloading a library that started the CUDA runtime gains nothing and
 * risks its exit handlers), so a second attempt reports the same reason at no cost.
 * @throws {Error} when the file is missing or is not a loadable library
 * @throws {CudaUnavailableError} when it loads but finds no usable device or libraries
 */
export function openCudaBackend(libPath: string): CudaBackend {
  return new CudaBackend(openNativeLibrary(libPath, "CUDA"), libPath);
}

/**
 * Opens the built CUDA library (`deno task build` builds it where nvcc exists). The
 * environment variable `FBP_CUDA_LIB` names a prebuilt library to open as is (e.g. one
 * built on another machine and carried to a GPU host without nvcc).
 * @throws {CudaUnavailableError} when the library is not built (and no FBP_CUDA_LIB), or without a usable
 * GPU: the message says which call failed, e.g. "no CUDA device: cudaGetDeviceCount
 * returned 35 (…)" or "cannot open libcudnn.so.9: …"
 * @throws {Error} when the library cannot be opened
 */
export async function loadCudaBackend(): Promise<CudaBackend> {
  const override = Deno.env.get("FBP_CUDA_LIB");
  if (override) return openCudaBackend(override);
  try {
    await Deno.stat(CUDA_LIBRARY_PATH);
  } catch {
    throw new CudaUnavailableError(
      "Cannot load the CUDA backend: its library is not built (`deno task build` builds " +
        "it where nvcc exists; or set FBP_CUDA_LIB to a prebuilt libfbp_cuda.so)",
    );
  }
  return openCudaBackend(CUDA_LIBRARY_PATH);
}
