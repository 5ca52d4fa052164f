/**
 * Builds the native CPU library (native/cpu/*.c over oneDNN) on demand.
 *
 * The library is rebuilt only when the SHA-256 of its sources (native/include/*.h,
 * native/cpu/*), the compiler and the flags differs from the stamp written next to it in
 * native/build/. Output goes to a temporary file that is renamed into place, so parallel
 * processes (e.g. test workers) that race to build never load a half-written library.
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (two folders above this file). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Where the built CPU library lives. */
export const CPU_LIBRARY_PATH: string = join(REPO_ROOT, "native", "build", "libfbp_cpu.so");

/** Compiler flags of the CPU library (part of the stamp, so changing them rebuilds). */
export const CPU_CFLAGS: readonly string[] = [
  "-O3",
  "-fPIC",
  "-shared",
  "-fopenmp",
  "-Wall",
  "-Wextra",
];

/** Options of {@link ensureCpuLibrary}. */
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

/** Ensures the CPU library is built and current; returns its absolute path. */
export async function ensureCpuLibrary(options: BuildOptions = {}): Promise<string> {
  return (await buildCpuLibrary(options)).path;
}

/** Like {@link ensureCpuLibrary}, but also reports whether a compile happened. */
export async function buildCpuLibrary(options: BuildOptions = {}): Promise<BuildResult> {
  const start = performance.now();
  const compiler = Deno.env.get("CC") || "cc";
  const sources = await listSources();
  const cFiles = sources.filter((f) => f.startsWith("native/cpu/") && f.endsWith(".c"));
  if (cFiles.length === 0) {
    throw new Error(`No C sources found under ${join(REPO_ROOT, "native/cpu")}`);
  }
  const compileArgs = (output: string) => [
    ...CPU_CFLAGS,
    "-I",
    "native/include",
    ...cFiles,
    "-o",
    output,
    "-ldnnl",
  ];
  const digest = await hashSources(sources, [compiler, ...compileArgs("OUTPUT")]);
  const stampPath = CPU_LIBRARY_PATH + ".stamp";
  if (!options.force && await isCurrent(stampPath, digest)) {
    return { path: CPU_LIBRARY_PATH, built: false, seconds: (performance.now() - start) / 1000 };
  }
  await ensureOneDnnHeader(compiler, options.quiet ?? false);
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

/** Source files (relative to the repository root, sorted) that make up the library. */
async function listSources(): Promise<string[]> {
  const files: string[] = [];
  for (const [dir, keep] of [["native/include", /\.h$/], ["native/cpu", /./]] as const) {
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

async function hashSources(files: string[], command: string[]): Promise<string> {
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

async function isCurrent(stampPath: string, digest: string): Promise<boolean> {
  try {
    const [stamp] = await Promise.all([
      Deno.readTextFile(stampPath),
      Deno.stat(CPU_LIBRARY_PATH),
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

/** Checks that <oneapi/dnnl/dnnl.h> is visible to the compiler; installs it when root. */
async function ensureOneDnnHeader(compiler: string, quiet: boolean): Promise<void> {
  if (await hasHeader(compiler)) return;
  const install = "apt-get install -y libdnnl-dev";
  if (Deno.uid() !== 0) {
    throw new Error(
      `Cannot build the CPU library: the oneDNN header <oneapi/dnnl/dnnl.h> is missing. ` +
        `Install the Debian package libdnnl-dev: \`sudo ${install}\``,
    );
  }
  if (!quiet) console.error(`cpu: oneDNN header missing, running \`${install}\``);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const apt = (args: string[]) =>
    run("apt-get", args, { env, missing: "apt-get not found", inherit: !quiet });
  let res = await apt(["install", "-y", "libdnnl-dev"]);
  if (res.code !== 0) {
    res = await apt(["update"]);
    if (res.code === 0) res = await apt(["install", "-y", "libdnnl-dev"]);
  }
  if (res.code !== 0 || !await hasHeader(compiler)) {
    throw new Error(
      `Cannot build the CPU library: installing libdnnl-dev failed (\`${install}\`)` +
        (res.text ? `:\n${res.text}` : ""),
    );
  }
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
  env?: Record<string, string>;
  /** Message of the Error thrown when the program does not exist. */
  missing: string;
  /** Show the program's output live instead of capturing it. */
  inherit?: boolean;
}

/** Runs a program in the repository root; returns its exit code and combined output. */
async function run(
  program: string,
  args: string[],
  opts: RunOptions,
): Promise<{ code: number; text: string }> {
  const io = opts.inherit ? "inherit" : "piped";
  try {
    const out = await new Deno.Command(program, {
      args,
      cwd: REPO_ROOT,
      env: opts.env,
      stdout: io,
      stderr: io,
    }).output();
    const dec = new TextDecoder();
    const text = opts.inherit ? "" : dec.decode(out.stdout) + dec.decode(out.stderr);
    return { code: out.code, text };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(opts.missing);
    throw err;
  }
}

/** The library path relative to the current directory, for messages. */
export function displayPath(path: string): string {
  const rel = relative(Deno.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}
