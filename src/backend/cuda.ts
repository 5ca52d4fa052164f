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
 * Math follows {@link CudaBackend.setMath} (`--precision fp32|tf32`, `--deterministic`;
 * docs/gpu.md maps each to PyTorch's switches); bf16 is refused on CUDA for now. cuDNN 9
 * and cuBLAS 12.x/13.x are looked for in a fixed list of places (native/cuda/libfind.h,
 * `FBP_CUDNN_LIB` / `FBP_CUBLAS_LIB` name a file or folder).
 *
 * Without a usable GPU (no driver, no device, no cuDNN/cuBLAS) the library still loads
 * and fbp_init says why; {@link loadCudaBackend} then throws a {@link CudaUnavailableError}
 * such as "Cannot load the CUDA backend: runtime.cu:117: no CUDA device: cudaGetDeviceCount
 * returned 35 (CUDA driver version is insufficient for CUDA runtime version)".
 * @module
 */
import { CUDA_LIBRARY_PATH } from "./library_paths.ts";
import {
  cString,
  NativeBackend,
  type NativeLibrary,
  NativeStorage,
  openNativeLibrary,
} from "./native.ts";

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

/** Device memory the library's caching allocator holds, in MiB. */
export interface CudaMemory {
  /** Blocks handed out and not freed. */
  inUseMiB: number;
  /** Freed blocks kept for reuse. */
  cachedMiB: number;
  /**
   * Highest in-use + cached total since the last `releaseCache()` (or the start): the
   * counterpart of PyTorch's `torch.cuda.max_memory_reserved()` after
   * `reset_peak_memory_stats()`.
   */
  peakMiB: number;
}

/** The native CUDA backend (own kernels, cuDNN, cuBLAS). */
export class CudaBackend extends NativeBackend {
  #infoLine: () => string;
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
    this.#infoLine = () => cString(lib.symbols.fbp_backend_info());
  }

  /**
   * The allocator's figures now (the library appends them to its info line).
   * @throws {Error} when the line has no memory figures (a library from before them)
   */
  memory(): CudaMemory {
    const line = this.#infoLine();
    const m = /memory MiB: in use ([\d.]+), cached ([\d.]+), peak ([\d.]+)/.exec(line);
    if (!m) throw new Error(`Cannot read the CUDA memory figures: info line is "${line}"`);
    return { inUseMiB: Number(m[1]), cachedMiB: Number(m[2]), peakMiB: Number(m[3]) };
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
 * Opens and initialises the CUDA library: the file `FBP_CUDA_LIB` names when set (a
 * prebuilt library carried to a GPU host without nvcc, opened as is), else the one
 * `deno task build` built (native/build/libfbp_cuda.so, where nvcc exists).
 * @throws {CudaUnavailableError} when no FBP_CUDA_LIB is set and the library is not built,
 * or when it loads but finds no usable GPU; the message names the call that failed, e.g.
 * "no CUDA device: cudaGetDeviceCount returned 35 (…)", "Cannot open cuDNN: …" or
 * "Cannot use <file> as cuBLAS: …"
 * @throws {Error} when the file is missing or is not a loadable library
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
