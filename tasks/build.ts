/**
 * `deno task build`: builds the native backend libraries that are out of date.
 *
 * Usage: deno run -A tasks/build.ts [--quiet] [--force] [--help]
 * @module
 */
import {
  buildCpuLibrary,
  buildCudaLibrary,
  type BuildResult,
  CUDA_SKIPPED_NOTICE,
  displayPath,
} from "./_build/native_build.ts";
import { runCli } from "./_cli/main.ts";
import { parseFlags } from "./_cli/options.ts";
import { staleAbiFiles, writeAbiFiles } from "./_build/abi_codegen.ts";

/** A native library this task knows how to build; null: skipped, with `skipped` as notice. */
interface Target {
  name: string;
  build(options: { quiet: boolean; force: boolean }): Promise<BuildResult | null>;
  skipped?: string;
}

// CUDA is built eagerly (when nvcc exists): ~10 s on 2 cores once per source change, so
// `deno task test` has it ready and a build error shows up at once, not at first use.
const TARGETS: Target[] = [
  { name: "cpu", build: (o) => buildCpuLibrary(o) },
  { name: "cuda", build: (o) => buildCudaLibrary(o), skipped: CUDA_SKIPPED_NOTICE },
];

const HELP = `Builds the native backend libraries (native/build/) when their sources changed:
libfbp_cpu.so always, libfbp_cuda.so where nvcc is found (else skipped with a notice).
First it writes the files generated from the kernel contract (src/backend/contract.ts):
native/include/fbp.h, native/common/kernels.h and abi.inc, src/backend/kernel_types.ts.

Usage: deno task build [--quiet] [--force]

  --quiet   print nothing unless the build fails; check the generated C files instead
            of writing them (the other tasks build this way)
  --force   rebuild even when up to date
  --help    show this help`;

async function main(): Promise<void> {
  const { values } = parseFlags({
    args: Deno.args,
    options: {
      quiet: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.quiet) {
    const stale = await staleAbiFiles();
    if (stale.length > 0) {
      throw new Error(
        `Cannot build: ${stale.join(", ")} differ from src/backend/contract.ts. ` +
          "Hint: run `deno task build` to regenerate them",
      );
    }
  } else {
    for (const rel of await writeAbiFiles()) console.log(`wrote ${rel}`);
  }
  for (const t of TARGETS) {
    const r = await t.build({ quiet: values.quiet, force: values.force });
    if (r === null) {
      if (!values.quiet) console.log(t.skipped ?? `${t.name}: skipped`);
      continue;
    }
    if (!values.quiet) {
      const what = r.built ? `built in ${r.seconds.toFixed(1)} s` : "up to date";
      console.log(`${t.name}: ${displayPath(r.path)} ${what}`);
    }
  }
}

if (import.meta.main) await runCli(main);
