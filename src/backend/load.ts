/**
 * Picks a backend by name. Backends are loaded lazily, so a program that never asks for
 * the native CPU library never builds or opens it.
 * @module
 */
import type { Backend } from "./backend.ts";
import { ReferenceBackend } from "./reference.ts";

/** Backend names a user may ask for. */
export type BackendName = "cpu" | "reference" | "auto";

/**
 * Loads a backend: "cpu" (oneDNN through FFI, built on first use), "reference" (slow,
 * pure TypeScript), or "auto" (the fastest available: cpu).
 * @throws {Error} when the name is unknown or the native library cannot be built or opened
 */
export async function loadBackend(name: BackendName | string): Promise<Backend> {
  switch (name) {
    case "reference":
      return new ReferenceBackend();
    case "cpu":
    case "auto": {
      const { loadCpuBackend } = await import("./cpu.ts");
      return await loadCpuBackend();
    }
  }
  throw new Error(`Cannot load backend "${name}": expected "cpu", "reference" or "auto"`);
}
