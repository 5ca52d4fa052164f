/**
 * `deno task test:asan`: builds an AddressSanitizer + UndefinedBehaviorSanitizer variant of
 * the CPU library (native/build/libfbp_cpu_asan.so) and runs the native-facing tests
 * against it.
 *
 * How it works: the tests open the library named by FBP_CPU_LIB instead of the normal
 * build (src/backend/cpu.ts). Deno itself is not instrumented, and the ASan runtime must
 * be the first library in the process, so it is preloaded with LD_PRELOAD (the path
 * `cc -print-file-name=libasan.so` gives). Leak detection is off: at exit it would report
 * V8's and Deno's own allocations. Every sanitizer finding aborts the test process, so a
 * clean run is exit code 0.
 *
 * Usage: deno task test:asan [TEST_PATH...]
 * (default: tests/backend/ tests/ops/ tests/models/, every test that drives the kernels)
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { CPU_CFLAGS, displayPath, REPO_ROOT } from "./_build/native_build.ts";

const HELP = `Builds native/build/libfbp_cpu_asan.so (-fsanitize=address,undefined; native/cpu/*.c
with the shared argument checks of native/common/abi.inc) and runs the
native-facing tests against it (FBP_CPU_LIB selects the library, LD_PRELOAD loads libasan
first). A sanitizer report aborts the run with a stack trace into native/cpu/*.c.

Usage: deno task test:asan [TEST_PATH...]

  TEST_PATH   test files or folders (default: tests/backend/ tests/ops/ tests/models/,
              the tests that drive the kernels; tests/train/ works too, slower)
  --help      this help

Needs gcc (or clang, via CC) with its sanitizer runtimes (Debian: libasan8, libubsan1,
installed with gcc). About 10 s: the instrumented kernels run 2–5× slower.`;

/** Where the instrumented library goes. */
export const ASAN_LIBRARY_PATH: string = join(REPO_ROOT, "native", "build", "libfbp_cpu_asan.so");

const SANITIZE = [
  "-fsanitize=address,undefined",
  "-fno-sanitize-recover=all",
  "-fno-omit-frame-pointer",
  "-g",
];

async function output(cmd: string, args: string[]): Promise<{ code: number; text: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot build the ASan library: "${cmd}" not found. Hint: apt-get install -y gcc`,
      );
    }
    throw e;
  }
}

/** Compiles every native/cpu/*.c with the sanitizers (-O1: usable stacks, bearable speed). */
async function buildAsanLibrary(compiler: string): Promise<void> {
  const sources = [...Deno.readDirSync(join(REPO_ROOT, "native", "cpu"))]
    .filter((e) => e.isFile && e.name.endsWith(".c"))
    .map((e) => `native/cpu/${e.name}`)
    .sort();
  const flags = CPU_CFLAGS.filter((f) => !/^-O/.test(f));
  await Deno.mkdir(join(REPO_ROOT, "native", "build"), { recursive: true });
  const tmp = `${ASAN_LIBRARY_PATH}.${Deno.pid}.tmp`;
  const r = await output(compiler, [
    ...flags,
    "-O1",
    ...SANITIZE,
    "-I",
    "native/include",
    "-I",
    "native/common",
    ...sources,
    "-o",
    tmp,
    "-ldnnl",
  ]);
  if (r.code !== 0) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(
      `Cannot build the ASan library: ${compiler} exited with code ${r.code}:\n${r.text}`,
    );
  }
  if (r.text.trim()) console.error(r.text.trimEnd());
  await Deno.rename(tmp, ASAN_LIBRARY_PATH);
}

/** Path of the compiler's libasan.so, to preload. */
async function asanRuntime(compiler: string): Promise<string> {
  const r = await output(compiler, ["-print-file-name=libasan.so"]);
  const path = r.text.trim();
  if (r.code !== 0 || !path.startsWith("/")) {
    throw new Error(
      `Cannot find libasan.so for ${compiler}: it printed "${path}". Hint: apt-get install -y libasan8`,
    );
  }
  return await Deno.realPath(path);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (Deno.build.os !== "linux") {
    console.error("test:asan runs on Linux only (LD_PRELOAD of the ASan runtime)");
    return 1;
  }
  const compiler = Deno.env.get("CC") || "cc";
  const t0 = performance.now();
  await buildAsanLibrary(compiler);
  const runtime = await asanRuntime(compiler);
  console.error(
    `asan: built ${displayPath(ASAN_LIBRARY_PATH)} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s; ` +
      `preloading ${runtime}`,
  );
  const tests = positionals.length > 0
    ? positionals
    : ["tests/backend/", "tests/ops/", "tests/models/"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--quiet", ...tests],
    cwd: REPO_ROOT,
    env: {
      FBP_CPU_LIB: ASAN_LIBRARY_PATH,
      LD_PRELOAD: runtime,
      // Leaks: off (V8 and Deno free at exit, or never). Any error aborts with a report.
      ASAN_OPTIONS:
        "detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0",
      UBSAN_OPTIONS: "print_stacktrace=1:halt_on_error=1",
      // One thread: reports stay readable and the run does not depend on OpenMP timing.
      OMP_NUM_THREADS: Deno.env.get("OMP_NUM_THREADS") ?? "1",
    },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await child.status;
  if (status.success) console.error("asan: clean (no AddressSanitizer or UBSan report)");
  else {console.error(
      `asan: FAILED (exit ${status.code}${status.signal ? `, ${status.signal}` : ""})`,
    );}
  return status.code || (status.success ? 0 : 1);
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
