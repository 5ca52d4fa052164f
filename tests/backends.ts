/**
 * The backends every parametrised test runs on: the reference backend always, the CPU
 * backend always (a failure to load it fails the tests: CI has oneDNN), and CUDA only
 * where a device is present.
 */
import type { Backend } from "../src/backend/backend.ts";
import { ReferenceBackend } from "../src/backend/reference.ts";
import { loadBackend } from "../src/backend/load.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";

/** A named backend under test. */
export interface TestBackend {
  name: string;
  backend: Backend;
}

let cached: TestBackend[] | null = null;

/** Reference and CPU backends (loaded once per test file). */
export async function testBackends(): Promise<TestBackend[]> {
  if (cached) return cached;
  const reference = new ReferenceBackend();
  setDefaultBackend(reference);
  cached = [{ name: "reference", backend: reference }, {
    name: "cpu",
    backend: await loadBackend("cpu"),
  }];
  return cached;
}
