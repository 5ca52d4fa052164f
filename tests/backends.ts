/**
 * The backends every parametrised test runs on: the reference backend always, the CPU
 * backend always (a failure to load it fails the tests: CI has oneDNN), and CUDA only
 * where a device is present. Where it is not, each test file that asks registers one
 * ignored test whose name says why, so the CUDA cases show as skipped, not passed; with
 * FBP_REQUIRE_CUDA=1 (tasks/gpu_check.sh sets it) that is a failure instead.
 * FBP_TEST_BACKENDS (a comma list, default "reference,cpu,cuda") narrows the set: a GPU
 * host without oneDNN runs only "cuda".
 */
import type { Backend } from "../src/backend/backend.ts";
import { type CudaBackend, CudaUnavailableError, loadCudaBackend } from "../src/backend/cuda.ts";
import { ReferenceBackend } from "../src/backend/reference.ts";
import { loadBackend } from "../src/backend/load.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";

/** A named backend under test. */
export interface TestBackend {
  name: string;
  backend: Backend;
}

let cached: TestBackend[] | null = null;

/** The CUDA backend, or why it cannot run here (the call that said so, shortened). */
export interface CudaForTests {
  backend: CudaBackend | null;
  reason: string;
}

let cuda: Promise<CudaForTests> | null = null;

/**
 * Loads the CUDA backend once per test file. "Unavailable" (no nvcc, device, driver,
 * cuDNN or cuBLAS) is a skip reason; any other failure (e.g. a build error) throws, as
 * does unavailability under FBP_REQUIRE_CUDA=1.
 */
export function cudaForTests(): Promise<CudaForTests> {
  return cuda ??= (async () => {
    try {
      return { backend: await loadCudaBackend(), reason: "" };
    } catch (err) {
      if (!(err instanceof CudaUnavailableError)) throw err;
      if (Deno.env.get("FBP_REQUIRE_CUDA") === "1") {
        throw new Error(`FBP_REQUIRE_CUDA=1, but ${err.message}`);
      }
      const reason = err.message.replace(/^Cannot load the CUDA backend: (\S+:\d+: )?/, "");
      return { backend: null, reason };
    }
  })();
}

/** Reference, CPU and (where it runs) CUDA backends, loaded once per test file. */
export async function testBackends(): Promise<TestBackend[]> {
  if (cached) return cached;
  const wanted = (Deno.env.get("FBP_TEST_BACKENDS") ?? "reference,cpu,cuda").split(",")
    .map((s) => s.trim());
  const reference = new ReferenceBackend();
  setDefaultBackend(reference);
  const list: TestBackend[] = [];
  if (wanted.includes("reference")) list.push({ name: "reference", backend: reference });
  if (wanted.includes("cpu")) list.push({ name: "cpu", backend: await loadBackend("cpu") });
  const { backend, reason } = wanted.includes("cuda")
    ? await cudaForTests()
    : { backend: null, reason: "" };
  if (backend) list.push({ name: "cuda", backend });
  else if (reason) {
    Deno.test({
      name: `cuda backend: this file's cases are skipped (${reason})`,
      ignore: true,
      fn() {},
    });
  }
  cached = list;
  return cached;
}
