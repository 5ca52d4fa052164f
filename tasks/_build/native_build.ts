/**
 * Builds the native CPU library (native/cpu/*.c over oneDNN) and, where `nvcc` exists, the
 * CUDA library (native/cuda/*.cu), for `deno task build`.
 *
 * A library is rebuilt only when the SHA-256 of its sources (native/include/*.h,
 * native/common/*, and native/cpu/* or native/cuda/*), the compiler and the flags differs
 * from the stamp written next to it in native/build/. Output goes to a temporary file that is renamed into place, so parallel
 * processes (e.g. test workers) that race to build never load a half-written library.
 * @module
 */
import { basename, join } from "node:path";
import {
  CPU_LIBRARY_PATH,
  CUDA_LIBRARY_PATH,
  displayPath,
  REPO_ROOT,
} from "../../src/backend/library_paths.ts";

export { CPU_LIBRARY_PATH, CUDA_LIBRARY_PATH, displayPath, REPO_ROOT };

/**
 * Compiler flags of the CPU library (part of the stamp, so changing them rebuilds).
 * `-march=native`: the library is built on the machine that runs it, and the own kernels
 * (AFF fusion, elementwise, pooling) are memory-bound loops that only reach the memory
 * bandwidth with the machine's widest vectors; the stamp holds the CPU's identity so a
 * tree copied to another CPU rebuilds instead of faulting on an illegal instruction.
 */
export const CPU_CFLAGS: readonly string[] = [
  "-O3",
  "-march=native",
  "-fPIC",
  "-shared",
  "-fopenmp",
  "-Wall",
  "-Wextra",
];

/**
 * nvcc flags of the CUDA library (part of the stamp). Machine code for sm_75 (Turing) and
 * sm_90 (H100/H200) plus PTX of both, which the driver compiles for other GPUs (sm_8x from
 * compute_75, newer ones from compute_90). The CUDA runtime is linked statically (nvcc's
 * default), so the library loads where no NVIDIA driver is installed.
 */
export const CUDA_NVCC_FLAGS: readonly string[] = [
  "-O3",
  "-std=c++17",
  "-Xcompiler",
  "-fPIC",
  "-Xcompiler",
  "-fvisibility=hidden",
  "-Xcompiler",
  "-Wall",
  "-gencode",
  "arch=compute_75,code=[sm_75,compute_75]",
  "-gencode",
  "arch=compute_90,code=[sm_90,compute_90]",
];

/** Options of {@link buildCpuLibrary} and {@link buildCudaLibrary}. */
export interface BuildOptions {
  /** Print nothing (the default prints what is being built and compiler warnings). */
  quiet?: boolean;
  /** Rebuild even when the stamp matches. */
  force?: boolean;
}

/** What {@link buildCpuLibrary} did. */
export interface BuildResult {
  /** Absolute path of the library. */
  path: string;
  /** True when it was compiled now, false when the existing build was up to date. */
  built: boolean;
  /** Seconds spent (checking, and compiling when built). */
  seconds: number;
}

/** Builds the CPU library when its sources changed; says whether a compile happened. */
export async function buildCpuLibrary(options: BuildOptions = {}): Promise<BuildResult> {
  const start = performance.now();
  const compiler = Deno.env.get("CC") || "cc";
  const sources = await listSources([["native/include", /\.h$/], ["native/common", /./], [
    "native/cpu",
    /./,
  ]]);
  const cFiles = sources.filter((f) => f.startsWith("native/cpu/") && f.endsWith(".c"));
  if (cFiles.length === 0) {
    throw new Error(`No C sources found under ${join(REPO_ROOT, "native/cpu")}`);
  }
  const compileArgs = (output: string) => [
    ...CPU_CFLAGS,
    "-I",
    "native/include",
    "-I",
    "native/common",
    ...cFiles,
    "-o",
    output,
    "-ldnnl",
  ];
  const digest = await hashSources(sources, [
    compiler,
    ...compileArgs("OUTPUT"),
    await cpuIdentity(),
  ]);
  const stampPath = CPU_LIBRARY_PATH + ".stamp";
  if (!options.force && await isCurrent(stampPath, digest, CPU_LIBRARY_PATH)) {
    return { path: CPU_LIBRARY_PATH, built: false, seconds: (performance.now() - start) / 1000 };
  }
  await ensureOneDnnHeader(compiler);
  await Deno.mkdir(join(REPO_ROOT, "native", "build"), { recursive: true });
  const tmp = `${CPU_LIBRARY_PATH}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const out = await run(compiler, compileArgs(tmp), {
      missing: compilerMissing(compiler),
    });
    if (out.code !== 0) {
      throw new Error(
        `Cannot build the CPU library: ${compiler} exited with code ${out.code}:\n${out.text}`,
      );
    }
    if (out.text.trim() && !options.quiet) console.error(out.text.trimEnd());
    await Deno.rename(tmp, CPU_LIBRARY_PATH);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  const stampTmp = `${stampPath}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(stampTmp, digest + "\n");
  await Deno.rename(stampTmp, stampPath);
  return { path: CPU_LIBRARY_PATH, built: true, seconds: (performance.now() - start) / 1000 };
}

/** The one-line notice of a build without nvcc. */
export const CUDA_SKIPPED_NOTICE =
  "cuda: skipped (nvcc not found: install the CUDA toolkit or set NVCC to enable the CUDA backend)";

/**
 * The nvcc to use: `$NVCC` (a path, or a name looked up on PATH), else `nvcc` on PATH,
 * else /usr/local/cuda/bin/nvcc; null when there is none.
 */
export async function findNvcc(): Promise<string | null> {
  const wanted = Deno.env.get("NVCC") || "nvcc";
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d);
  const candidates = wanted.includes("/")
    ? [wanted]
    : [...dirs.map((d) => join(d, wanted)), "/usr/local/cuda/bin/nvcc"];
  for (const c of candidates) {
    try {
      const st = await Deno.stat(c);
      if (st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0) return c;
    } catch {
      // not there
    }
  }
  return null;
}

/**
 * Builds the CUDA library when its sources changed; says whether a compile happened. Without
 * nvcc it returns null (callers show {@link CUDA_SKIPPED_NOTICE}). Each .cu file
 * compiles to an object in parallel (one nvcc per core: the build then takes about 10 s on
 * 2 cores), nvcc links them, and the result is renamed into place as the CPU build's is.
 */
export async function buildCudaLibrary(options: BuildOptions = {}): Promise<BuildResult | null> {
  const start = performance.now();
  const nvcc = await findNvcc();
  if (nvcc === null) return null;
  const sources = await cudaSources();
  const cuFiles = sources.filter((f) => f.startsWith("native/cuda/") && f.endsWith(".cu"));
  if (cuFiles.length === 0) {
    throw new Error(`No CUDA sources found under ${join(REPO_ROOT, "native/cuda")}`);
  }
  const compileArgs = (src: string, obj: string) => [
    ...CUDA_NVCC_FLAGS,
    "-I",
    "native/include",
    "-I",
    "native/common",
    "-c",
    src,
    "-o",
    obj,
  ];
  const linkArgs = (objs: string[], output: string) => ["-shared", ...objs, "-o", output, "-ldl"];
  const digest = await hashSources(sources, [
    nvcc,
    ...compileArgs("SOURCE", "OBJECT"),
    ...linkArgs(["OBJECT"], "OUTPUT"),
  ]);
  const stampPath = CUDA_LIBRARY_PATH + ".stamp";
  if (!options.force && await isCurrent(stampPath, digest, CUDA_LIBRARY_PATH)) {
    return { path: CUDA_LIBRARY_PATH, built: false, seconds: (performance.now() - start) / 1000 };
  }
  const buildDir = join(REPO_ROOT, "native", "build");
  await Deno.mkdir(buildDir, { recursive: true });
  const tag = `${Deno.pid}.${crypto.randomUUID().slice(0, 8)}`;
  const objDir = join(buildDir, `cuda-objects.${tag}.tmp`);
  const tmp = `${CUDA_LIBRARY_PATH}.${tag}.tmp`;
  const missing = `nvcc not found (\`${nvcc}\`): install the CUDA toolkit or set NVCC`;
  await Deno.mkdir(objDir);
  try {
    const objects = cuFiles.map((f) => join(objDir, basename(f).replace(/\.cu$/, ".o")));
    const warnings: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cuFiles.length) {
        const i = next++;
        const out = await run(nvcc, compileArgs(cuFiles[i], objects[i]), { missing });
        if (out.code !== 0) {
          throw new Error(
            `Cannot build the CUDA library: nvcc exited with code ${out.code} on ${
              cuFiles[i]
            }:\n${out.text}`,
          );
        }
        if (out.text.trim()) warnings.push(out.text.trimEnd());
      }
    };
    const jobs = Math.min(cuFiles.length, Math.max(1, navigator.hardwareConcurrency || 1));
    await Promise.all(Array.from({ length: jobs }, worker));
    const out = await run(nvcc, linkArgs(objects, tmp), { missing });
    if (out.code !== 0) {
      throw new Error(
        `Cannot build the CUDA library: linking with nvcc exited with code ${out.code}:\n${out.text}`,
      );
    }
    if (out.text.trim()) warnings.push(out.text.trimEnd());
    if (!options.quiet) { for (const w of warnings) console.error(w); }
    await Deno.rename(tmp, CUDA_LIBRARY_PATH);
  } finally {
    await Deno.remove(tmp).catch(() => {});
    await Deno.remove(objDir, { recursive: true }).catch(() => {});
  }
  const stampTmp = `${stampPath}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(stampTmp, digest + "\n");
  await Deno.rename(stampTmp, stampPath);
  return { path: CUDA_LIBRARY_PATH, built: true, seconds: (performance.now() - start) / 1000 };
}

/** The CUDA library's sources: headers, the common ABI files and native/cuda's own. */
export function cudaSources(): Promise<string[]> {
  return listSources([["native/include", /\.h$/], ["native/common", /./], [
    "native/cuda",
    /\.(cu|cuh|h)$/,
  ]]);
}

/** Source files (relative to the repository root, sorted) in `dirs` that pass their filter. */
async function listSources(dirs: [string, RegExp][]): Promise<string[]> {
  const files: string[] = [];
  for (const [dir, keep] of dirs) {
    try {
      for await (const e of Deno.readDir(join(REPO_ROOT, dir))) {
        if (e.isFile && keep.test(e.name)) files.push(`${dir}/${e.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return files.sort();
}

/** SHA-256 (hex) of a build command and the named files, each with its path. */
export async function hashSources(files: string[], command: readonly string[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(command.join("\0") + "\0\0")];
  for (const f of files) {
    parts.push(enc.encode(f + "\0"), await Deno.readFile(join(REPO_ROOT, f)), enc.encode("\0"));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The CPU's model and feature flags (first processor of /proc/cpuinfo); "" elsewhere. */
async function cpuIdentity(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    const first = info.split("\n\n")[0];
    return first.split("\n").filter((l) => /^(vendor_id|model name|flags)\s*:/.test(l)).join(
      "\n",
    );
  } catch {
    return "";
  }
}

async function isCurrent(stampPath: string, digest: string, library: string): Promise<boolean> {
  try {
    const [stamp] = await Promise.all([
      Deno.readTextFile(stampPath),
      Deno.stat(library),
    ]);
    return stamp.trim() === digest;
  } catch {
    return false;
  }
}

function compilerMissing(compiler: string): string {
  return `No C compiler found (\`${compiler}\`): install gcc, e.g. \`apt-get install -y gcc\`` +
    ` (or set CC to a compiler).`;
}

/**
 * Checks that <oneapi/dnnl/dnnl.h> is visible to the compiler. Installing it is a setup
 * step (README, .ci/run), never a side effect of a build.
 */
async function ensureOneDnnHeader(compiler: string): Promise<void> {
  if (await hasHeader(compiler)) return;
  throw new Error(
    `Cannot build the CPU library: the oneDNN header <oneapi/dnnl/dnnl.h> is missing. ` +
      "Install the Debian package libdnnl-dev: `apt-get install -y libdnnl-dev`",
  );
}

async function hasHeader(compiler: string): Promise<boolean> {
  const cmd = new Deno.Command(compiler, {
    args: ["-E", "-x", "c", "-", "-o", "/dev/null"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  });
  let child: Deno.ChildProcess;
  try {
    child = cmd.spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(compilerMissing(compiler));
    throw err;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("#include <oneapi/dnnl/dnnl.h>\n"));
  await writer.close();
  return (await child.status).success;
}

interface RunOptions {
  /** Message of the Error thrown when the program does not exist. */
  missing: string;
}

/** Runs a program in the repository root; returns its exit code and combined output. */
async function run(
  program: string,
  args: string[],
  opts: RunOptions,
): Promise<{ code: number; text: string }> {
  // A sanitizer runtime preloaded into this process (deno task test:asan) must not reach
  // the compilers: nvcc's front end crashes with libasan preloaded.
  const env = Deno.env.toObject();
  delete env.LD_PRELOAD;
  try {
    const out = await new Deno.Command(program, {
      args,
      cwd: REPO_ROOT,
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const text = dec.decode(out.stdout) + dec.decode(out.stderr);
    return { code: out.code, text };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(opts.missing);
    throw err;
  }
}
