/**
 * `--device cpu|cuda|auto` for every command that runs a network.
 * @module
 */
import type { Backend } from "../../src/backend/backend.ts";
import { loadBackend } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";

/** The parseArgs options every command that runs a network shares. */
export const NETWORK_CLI_OPTIONS = {
  json: { type: "boolean" },
  device: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Help text line of the flag. */
export const DEVICE_HELP =
  "  --device cpu|cuda|auto   where to run (default auto: CUDA when a usable NVIDIA GPU is\n" +
  "                           found, else the CPU; on a terminal it says once why not CUDA)";

/**
 * Loads the backend for a `--device` value and makes it the default. When "auto" falls
 * back to the CPU, the reason is printed once on stderr if stderr is a terminal: piped
 * runs (scripts, tests, CI) keep stderr for errors, one line each, and see the backend's
 * name in the command's own output.
 * @throws {Error} for an unknown device or a backend that cannot load
 */
export async function useDevice(device: string | undefined): Promise<Backend> {
  const name = device ?? "auto";
  if (!["cpu", "cuda", "auto", "reference"].includes(name)) {
    throw new Error(`Cannot use device "${name}": expected cpu, cuda or auto`);
  }
  const onNote = (line: string) => {
    if (Deno.stderr.isTerminal()) console.error(line);
  };
  const backend = await loadBackend(name, { onNote });
  setDefaultBackend(backend);
  return backend;
}
