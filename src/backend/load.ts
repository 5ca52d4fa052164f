/**
 * Picks a backend by name. Backends are loaded lazily, so a program that never asks for
 * a native library never opens it. Loading only opens: `deno task build` builds.
 *
 * "auto" tries CUDA first and falls back to the CPU when CUDA cannot run here. Library
 * code stays quiet: the reason for the fallback goes to `onNote`, once per process (the
 * CLI passes a function that prints it to stderr).
 * @module
 */
import type { Backend, MathSettings, PrecisionName } from "./backend.ts";
import { ReferenceBackend } from "./reference.ts";

/** A precision a user may ask for: one of the backend precisions, or "auto". */
export type PrecisionChoice = PrecisionName | "auto";

/** Backend names a user may ask for. */
export type BackendName = "cpu" | "cuda" | "reference" | "auto";

/** Options of {@link loadBackend}. */
export interface LoadBackendOptions {
  /**
   * Receives the one-line note that "auto" fell back to the CPU and why, the first time it
   * does in this process (later fallbacks stay silent). Default: nothing is reported.
   */
  onNote?: (message: string) => void;
  /**
   * How convolutions and matrix products compute (default fp32, not forced
   * deterministic). Precision "auto" takes {@link autoPrecision} of the loaded backend.
   */
  math?: { precision?: PrecisionChoice; deterministic?: boolean };
}

/**
 * What precision "auto" means on a backend: bf16 on a CPU with native bf16 dot products,
 * tf32 on CUDA (PyTorch's default for cuDNN convolutions), else fp32.
 */
export function autoPrecision(backend: Backend): PrecisionName {
  const wanted: PrecisionName = backend.name === "cpu"
    ? "bf16"
    : backend.name === "cuda"
    ? "tf32"
    : "fp32";
  if (wanted === "fp32") return wanted;
  const before = backend.math;
  try {
    backend.setMath({ ...before, precision: wanted });
    return wanted;
  } catch {
    return "fp32";
  } finally {
    backend.setMath(before);
  }
}

/**
 * Sets a loaded backend's math from a user's choice ("auto" resolved per backend).
 * @throws {Error} when the backend or machine cannot compute in the precision asked for
 */
export function applyMath(backend: Backend, math: LoadBackendOptions["math"] = {}): MathSettings {
  const choice = math.precision ?? "fp32";
  const settings: MathSettings = {
    precision: choice === "auto" ? autoPrecision(backend) : choice,
    deterministic: math.deterministic ?? false,
  };
  backend.setMath(settings);
  return settings;
}

let fallbackNoted = false;

/**
 * Loads a backend: "cpu" (oneDNN through FFI), "cuda" (NVIDIA GPU: own kernels, cuDNN and
 * cuBLAS), both built beforehand by `deno task build`, "reference" (slow, pure
 * TypeScript), or "auto" (CUDA when it can run here, otherwise the CPU).
 * @throws {Error} when the name is unknown, a native library is not built or cannot be opened,
 * or "cuda" cannot run here (a CudaUnavailableError saying which call failed, e.g. "no
 * CUDA device: cudaGetDeviceCount returned 35 (…)")
 */
export async function loadBackend(
  name: BackendName | string,
  options: LoadBackendOptions = {},
): Promise<Backend> {
  const backend = await openBackend(name, options);
  applyMath(backend, options.math);
  return backend;
}

async function openBackend(name: string, options: LoadBackendOptions): Promise<Backend> {
  switch (name) {
    case "reference":
      return new ReferenceBackend();
    case "cpu": {
      const { loadCpuBackend } = await import("./cpu.ts");
      return await loadCpuBackend();
    }
    case "cuda": {
      const { loadCudaBackend } = await import("./cuda.ts");
      return await loadCudaBackend();
    }
    case "auto": {
      const { loadCudaBackend } = await import("./cuda.ts");
      try {
        return await loadCudaBackend();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        if (!fallbackNoted) {
          fallbackNoted = true;
          options.onNote?.(`Using the CPU backend (device auto): ${why}`);
        }
      }
      const { loadCpuBackend } = await import("./cpu.ts");
      return await loadCpuBackend();
    }
  }
  throw new Error(
    `Cannot load backend "${name}": expected "cpu", "cuda", "reference" or "auto"`,
  );
}
