/**
 * Where the native backend libraries live. Loading a backend only opens these files:
 * building them is `deno task build` (tasks/_build/native_build.ts), which every task that
 * needs a native library runs first.
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (two folders above this file). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Where the built CPU library lives. */
export const CPU_LIBRARY_PATH: string = join(REPO_ROOT, "native", "build", "libfbp_cpu.so");

/** Where the built CUDA library lives. */
export const CUDA_LIBRARY_PATH: string = join(REPO_ROOT, "native", "build", "libfbp_cuda.so");

/** A path relative to the current directory when it lies below it, for messages. */
export function displayPath(path: string): string {
  const rel = relative(Deno.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}
