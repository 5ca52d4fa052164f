/**
 * `--device cpu|cuda|auto` for every command that runs a network.
 * @module
 */
import type { Backend } from "../../src/backend/backend.ts";
import { loadBackend } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";

/** Help text line of the flag. */
export const DEVICE_HELP =
  "  --device cpu|cuda|auto   where to run (default auto: the fastest available)";

/**
 * Loads the backend for a `--device` value and makes it the default.
 * @throws {Error} for an unknown device or a backend that cannot load
 */
export async function useDevice(device: string | undefined): Promise<Backend> {
  const name = device ?? "auto";
  if (!["cpu", "cuda", "auto", "reference"].includes(name)) {
    throw new Error(`Cannot use device "${name}": expected cpu, cuda or auto`);
  }
  const backend = await loadBackend(name);
  setDefaultBackend(backend);
  return backend;
}
