/**
 * `deno task gpu-bundle`: prepares `.gpu/` (git-ignored) for tasks/gpu_check.sh on a GPU
 * machine that has no Deno, no network and maybe no nvcc:
 *
 *   .gpu/deno.xz              this Deno binary, xz-compressed (gzip where xz is missing)
 *   .gpu/deno_dir.tar.xz      the subset of the Deno cache the GPU run needs: the npm
 *                             packages its entry points import (found with `deno info`,
 *                             copied from this machine's cache), their type-check cache,
 *                             and deno_dir/deno.lock: deno.lock cut down to those packages
 *                             (Deno installs every package a lockfile lists, and some are
 *                             large native ones the GPU run never loads; the GPU run passes
 *                             --lock=deno_dir/deno.lock). Proven complete by `deno check`
 *                             against it alone, with no network (so the GPU run can use
 *                             --no-check); Deno's V8 code cache files are left out
 *   .gpu/libfbp_cuda.so       the CUDA library built here (`deno task build`), and
 *   .gpu/libfbp_cuda.digest   the digest of the sources it was built from, so the check
 *                             script can tell a stale library from a current one
 *
 * The bundle must stay within 60 MiB (the GPU machine's carry limit): the command builds
 * it in a temporary folder and refuses, naming each part's size, when it would not fit.
 * A compressed Deno of the same version is reused rather than compressed again.
 *
 * Usage: deno task gpu-bundle            build .gpu/
 *        deno run -A tasks/gpu_bundle.ts --digest   print the CUDA sources' digest
 * @module
 */
import { dirname, join, relative } from "node:path";
import {
  buildCudaLibrary,
  CUDA_LIBRARY_PATH,
  CUDA_NVCC_FLAGS,
  cudaSources,
  hashSources,
  REPO_ROOT,
} from "./_build/native_build.ts";

/** The bundle's size limit in bytes. */
export const BUNDLE_LIMIT = 60 * 1024 * 1024;

/** What the GPU run executes (tasks/gpu_check.sh): their npm imports go into the bundle. */
export const GPU_ENTRY_POINTS: readonly string[] = [
  "tasks/gpu_check.ts",
  "tasks/gpu_bundle.ts",
  "tasks/train.ts",
  "tasks/_build/native_build.ts",
  "tests/backend/cuda_test.ts",
  "tests/backend/cuda_gpu_test.ts",
  "tests/models/network_fixture_test.ts",
  "tests/ops/torch_fixtures_test.ts",
];

const GPU_DIR = join(REPO_ROOT, ".gpu");

/**
 * SHA-256 of the CUDA library's sources and nvcc flags (native/include/*.h,
 * native/common/*, native/cuda/*.{cu,cuh,h}): equal digests mean a library built from
 * the same code.
 */
export async function cudaSourcesDigest(): Promise<string> {
  return await hashSources(await cudaSources(), CUDA_NVCC_FLAGS);
}

/** Runs a program; returns stdout, or throws with its output. */
async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd: REPO_ROOT, ...opts }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `Cannot bundle: ${cmd} ${args.join(" ")} exited with code ${out.code}:\n` +
        dec.decode(out.stderr).slice(-2000),
    );
  }
  return dec.decode(out.stdout);
}

async function has(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

interface NpmPackage {
  name: string;
  version: string;
  dependencies: string[];
  localPath?: string;
}

/** The npm packages (ids like "imagescript@1.3.1") the entry points load, dependencies too. */
async function npmPackagesOf(entries: readonly string[]): Promise<Map<string, NpmPackage>> {
  const needed = new Map<string, NpmPackage>();
  for (const entry of entries) {
    const info = JSON.parse(await run(Deno.execPath(), ["info", "--json", entry]));
    const all: Record<string, NpmPackage> = info.npmPackages ?? {};
    const stack: string[] = [];
    for (const m of info.modules as { kind?: string; specifier: string; npmPackage?: string }[]) {
      if (m.kind === "npm" && m.npmPackage) stack.push(m.npmPackage);
      else if (/^(https?|jsr):/.test(m.specifier)) {
        throw new Error(
          `Cannot bundle: ${entry} loads the remote module ${m.specifier}; only npm ` +
            "packages are carried",
        );
      }
    }
    while (stack.length) {
      const id = stack.pop()!;
      if (needed.has(id)) continue;
      const pkg = all[id];
      if (!pkg) throw new Error(`Cannot bundle: deno info lists no npm package "${id}"`);
      needed.set(id, pkg);
      stack.push(...pkg.dependencies);
    }
  }
  return needed;
}

/** Copies a folder tree (files and folders only). */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const [a, b] = [join(from, e.name), join(to, e.name)];
    if (e.isDirectory) await copyTree(a, b);
    else if (e.isFile) await Deno.copyFile(a, b);
  }
}

/** deno.lock with only the npm packages in `keep` (and the specifiers that lead to them). */
async function trimmedLock(keep: Set<string>): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.lock")));
  const npm: Record<string, unknown> = {};
  for (const [id, v] of Object.entries(lock.npm ?? {})) if (keep.has(id)) npm[id] = v;
  const specifiers: Record<string, string> = {};
  for (const [spec, version] of Object.entries(lock.specifiers ?? {}) as [string, string][]) {
    const name = spec.replace(/^npm:/, "").replace(/@[^@]*$/, "");
    if (keep.has(`${name}@${version}`)) specifiers[spec] = version;
  }
  return JSON.stringify({ ...lock, specifiers, npm }, null, 2) + "\n";
}

/** The Deno cache subset in `dir`: the npm packages, then a check that needs nothing else. */
export async function denoDirSubset(dir: string): Promise<number> {
  const packages = await npmPackagesOf(GPU_ENTRY_POINTS);
  await Deno.mkdir(dir, { recursive: true });
  const lockPath = join(dir, "deno.lock");
  await Deno.writeTextFile(lockPath, await trimmedLock(new Set(packages.keys())));
  const info = await run(Deno.execPath(), ["info", "--json"]);
  const home = JSON.parse(info).denoDir as string;
  for (const pkg of packages.values()) {
    if (!pkg.localPath) throw new Error(`Cannot bundle: npm package ${pkg.name} is not cached`);
    const rel = relative(home, pkg.localPath);
    await copyTree(pkg.localPath, join(dir, rel));
    const registry = join(dirname(pkg.localPath), "registry.json");
    await Deno.copyFile(registry, join(dir, dirname(rel), "registry.json")).catch(() => {});
  }
  // Offline proof: type-check every entry point from this cache alone (the GPU run then
  // uses --no-check).
  await run(Deno.execPath(), [
    "check",
    "--cached-only",
    "--quiet",
    `--lock=${lockPath}`,
    ...GPU_ENTRY_POINTS,
  ], {
    env: { DENO_DIR: dir, PATH: Deno.env.get("PATH") ?? "", HOME: dir, NO_COLOR: "1" },
    clearEnv: true,
  });
  // Deno's V8 code cache (v8_code_cache_v2 and its -wal / -shm journal, megabytes) is
  // specific to this machine's run and rebuilt where needed: not carried.
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.startsWith("v8_code_cache")) await Deno.remove(join(dir, e.name));
  }
  return packages.size;
}

async function size(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** Builds .gpu/; returns the sizes of its parts. */
export async function gpuBundle(): Promise<Record<string, number>> {
  const lib = await buildCudaLibrary({ quiet: false });
  if (lib === null) {
    throw new Error(
      "Cannot bundle: nvcc was not found, so there is no libfbp_cuda.so to carry " +
        "(install the CUDA toolkit or set NVCC)",
    );
  }
  const xz = await has("xz");
  const tmp = await Deno.makeTempDir({ prefix: "fbp-gpu-bundle-" });
  try {
    // Deno: reused when .gpu/ holds this version already.
    const version = (await run(Deno.execPath(), ["--version"])).split("\n")[0];
    const denoName = xz ? "deno.xz" : "deno.gz";
    const idFile = join(GPU_DIR, `${denoName}.version`);
    const id = `${version} ${await size(Deno.execPath())}`;
    const known = await Deno.readTextFile(idFile).catch(() => "");
    if (known.trim() === id && await size(join(GPU_DIR, denoName)).catch(() => 0) > 0) {
      await Deno.copyFile(join(GPU_DIR, denoName), join(tmp, denoName));
    } else {
      console.error(`compressing ${Deno.execPath()} (${version})`);
      const packed = xz
        ? await new Deno.Command("xz", {
          args: ["-6", "-T2", "-c", Deno.execPath()],
          stdout: "piped",
        })
          .output()
        : await new Deno.Command("gzip", { args: ["-9", "-c", Deno.execPath()], stdout: "piped" })
          .output();
      if (!packed.success) throw new Error(`Cannot bundle: compressing the Deno binary failed`);
      await Deno.writeFile(join(tmp, denoName), packed.stdout);
    }
    await Deno.writeTextFile(join(tmp, `${denoName}.version`), id + "\n");

    // The Deno cache subset, as one archive.
    console.error("collecting the npm packages of the GPU entry points");
    const cache = join(tmp, "deno_dir");
    const count = await denoDirSubset(cache);
    const archive = xz ? "deno_dir.tar.xz" : "deno_dir.tar.gz";
    await run("tar", ["-C", tmp, xz ? "-cJf" : "-czf", join(tmp, archive), "deno_dir"], {
      env: { XZ_OPT: "-6 -T2" },
    });
    await Deno.remove(cache, { recursive: true });

    await Deno.copyFile(CUDA_LIBRARY_PATH, join(tmp, "libfbp_cuda.so"));
    await Deno.writeTextFile(join(tmp, "libfbp_cuda.digest"), await cudaSourcesDigest() + "\n");

    const sizes: Record<string, number> = {};
    for await (const e of Deno.readDir(tmp)) sizes[e.name] = await size(join(tmp, e.name));
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    const parts = Object.entries(sizes).map(([k, v]) => `${k} ${mib(v)}`).join(", ");
    if (total > BUNDLE_LIMIT) {
      throw new Error(
        `Cannot bundle: .gpu/ would hold ${mib(total)}, more than the ${
          mib(BUNDLE_LIMIT)
        } a GPU run may carry (${parts})`,
      );
    }
    // Replace the bundle's files (other files in .gpu/, e.g. unpacked ones, stay).
    await Deno.mkdir(GPU_DIR, { recursive: true });
    for (const name of Object.keys(sizes)) {
      await Deno.copyFile(join(tmp, name), join(GPU_DIR, name));
    }
    console.error(`.gpu/: ${parts}; ${count} npm packages; total ${mib(total)}`);
    return { ...sizes, total };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--digest") console.log(await cudaSourcesDigest());
  else await gpuBundle();
}
