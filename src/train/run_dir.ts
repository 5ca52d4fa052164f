/**
 * The run folder: which files a run writes there (and `--force` may delete: nothing
 * else), whether a folder may take a new run, a lock so two runs never write the same
 * folder, the append-only `log.jsonl`, and atomic JSON writes (temp file + rename) for
 * everything else.
 *
 * A folder takes a new run when it is missing or empty. A folder holding a run (its
 * config.json is a run config, or only fbp's lock file says a run started there) is
 * refused unless the caller resumes it or replaces it (`force`); a folder holding other
 * files is refused even with `force`. Replacing deletes the old run's files before the new
 * run writes any, config.json last, so a kill at any moment leaves either a (partly
 * deleted) old run or the new run's first files, never a mix.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { isRunConfig, type RunConfig } from "./run_config.ts";

/**
 * Every file a run writes into its folder, by name, in the order refusals list them
 * (src/report/report.ts writes report.md and the plots).
 */
export const RUN_FILES: readonly string[] = [
  "config.json",
  "splits.json",
  "last.safetensors",
  "checkpoint.safetensors",
  "metrics.json",
  "report.md",
  "log.jsonl",
  "loss.svg",
  "accuracy.svg",
  "policy.svg",
  "policy-path.svg",
  "task-weights.svg",
  ".lock",
];

/** Run files named per task or per write: confusion plots, the lock's private pid file. */
const RUN_FILE_PATTERNS = [/^confusion-[A-Za-z0-9_-]+\.svg$/, /^\.lock\.\d+\.\d+\.new$/];

/** Whether `name` is a file a run writes: RUN_FILES, the patterns, their atomic-write temps. */
export function isRunFile(name: string): boolean {
  if (RUN_FILES.includes(name) || RUN_FILE_PATTERNS.some((p) => p.test(name))) return true;
  const temp = /^\.([^.].*)\.\d+\.tmp$/.exec(name);
  return temp !== null && isRunFile(temp[1]);
}

/** What a folder holds, for deciding whether a run may write it. */
export interface RunFolder {
  /** missing; empty; a run's folder; a file or a folder of other files. */
  kind: "missing" | "empty" | "run" | "file" | "other";
  /** Run files present (plain files), in RUN_FILES order. */
  runFiles: string[];
  /** Everything else present. */
  others: string[];
}

/** Reads a folder's config.json if it is a run config. */
async function storedRunConfig(dir: string): Promise<RunConfig | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    return isRunConfig(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Looks at a folder without changing it.
 * @param ownLock leave this process's `.lock` out (inspecting a folder it holds)
 * @throws {Error} naming the folder when it cannot be read
 */
export async function inspectRunFolder(dir: string, ownLock = false): Promise<RunFolder> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kind: "missing", runFiles: [], others: [] };
    throw new Error(`Cannot use run folder "${dir}": ${(e as Error).message}`, { cause: e });
  }
  if (!info.isDirectory) return { kind: "file", runFiles: [], others: [] };
  const runFiles: string[] = [], others: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (ownLock && e.name === ".lock") continue;
      (e.isFile && isRunFile(e.name) ? runFiles : others).push(e.name);
    }
  } catch (e) {
    throw new Error(`Cannot use run folder "${dir}": ${(e as Error).message}`, { cause: e });
  }
  const rank = (n: string) => {
    const i = RUN_FILES.indexOf(n);
    return i < 0 ? RUN_FILES.length : i;
  };
  runFiles.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  others.sort();
  if (runFiles.length === 0 && others.length === 0) return { kind: "empty", runFiles, others };
  const isRun = runFiles.includes("config.json")
    ? await storedRunConfig(dir) !== undefined
    : runFiles.includes(".lock");
  return { kind: isRun ? "run" : "other", runFiles, others };
}

/** Up to four names, then "…". */
function some(names: readonly string[]): string {
  return names.length > 4 ? `${names.slice(0, 4).join(", ")}, …` : names.join(", ");
}

/** How a run uses its folder: a new run, a replacement (`--force`), or a resumed run. */
export type RunFolderMode = "new" | "force" | "resume";

/**
 * Refuses a folder that `mode` may not write, without changing anything.
 * @throws {Error} one line naming the folder, what it holds and the ways on
 */
export function checkRunFolder(dir: string, folder: RunFolder, mode: RunFolderMode): void {
  if (folder.kind === "file") {
    throw new Error(
      `Cannot ${mode === "resume" ? "resume" : "start"} run: "${dir}" is a file, not a folder. ` +
        `Hint: ${mode === "resume" ? "give the run folder" : "choose a folder with --out"}`,
    );
  }
  if (mode === "resume") {
    if (folder.kind !== "run") {
      throw new Error(
        `Cannot resume run: "${dir}" ${
          folder.kind === "missing" ? "does not exist" : "holds no run (no config.json of a run)"
        }. Hint: give the folder of a stopped run`,
      );
    }
    return;
  }
  if (folder.kind === "other") {
    throw new Error(
      `Cannot start run: "${dir}" is not empty and holds no run (${
        some([...folder.others, ...folder.runFiles])
      })` +
        `${mode === "force" ? "; --force replaces only a run folder" : ""}. ` +
        `Hint: choose a new or empty folder with --out`,
    );
  }
  if (folder.kind === "run" && mode === "new") {
    throw new Error(
      `Cannot start run: "${dir}" already holds a run (${some(folder.runFiles)}). ` +
        `Hint: continue it with --resume ${dir}, or replace it with --force`,
    );
  }
}

/**
 * `base` if it is missing or empty, else the first free `base-2`, `base-3`, …: where a run
 * with a default name goes, so a second run never meets the first one's folder.
 */
export async function freeRunFolder(base: string): Promise<string> {
  for (let i = 1; i < 10_000; i++) {
    const dir = i === 1 ? base : `${base}-${i}`;
    const { kind } = await inspectRunFolder(dir);
    if (kind === "missing" || kind === "empty") return dir;
  }
  throw new Error(`Cannot find a free run folder: "${base}" to "${base}-9999" are all taken`);
}

/**
 * Takes the run folder for `mode`, after checking it again under its lock (another run may
 * have written it meanwhile): creates it if needed, and for a replacement deletes the old
 * run's files (config.json last, everything not a run file kept), calling `onRemoved`
 * after each.
 * @throws {Error} as checkRunFolder, or when another process holds the folder
 */
export async function takeRunFolder(
  dir: string,
  mode: RunFolderMode,
  onRemoved?: (name: string) => void,
): Promise<RunLock> {
  await RunLock.checkFree(dir);
  const before = await inspectRunFolder(dir);
  checkRunFolder(dir, before, mode);
  const lock = await RunLock.acquire(dir);
  try {
    const folder = await inspectRunFolder(dir, true);
    // A dead run's lock, now replaced by this one, may have been all that showed a run.
    if (folder.kind === "other" && before.kind === "run") folder.kind = "run";
    checkRunFolder(dir, folder, mode);
    if (mode === "force" && folder.kind === "run") {
      const order = [...folder.runFiles.filter((n) => n !== "config.json"), "config.json"];
      for (const name of order.filter((n) => folder.runFiles.includes(n))) {
        await Deno.remove(join(dir, name)).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) {
            throw new Error(
              `Cannot replace run "${dir}": cannot delete "${name}": ${(e as Error).message}`,
              { cause: e },
            );
          }
        });
        onRemoved?.(name);
      }
    }
    return lock;
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/**
 * Undoes a run that failed before it saved any progress (no `last.safetensors`, no
 * `checkpoint.safetensors`): deletes
 * the files it wrote (config.json, log.jsonl…), so the folder is as the user left it and
 * the same command can simply be run again. A run that saved progress keeps everything
 * (it can be resumed). Call it holding the run's lock; `removeEmptyFolder` afterwards.
 * @returns whether the run's files were deleted
 */
export async function undoFailedStart(dir: string): Promise<boolean> {
  // A resume state or a best checkpoint is progress worth keeping (it may be hours).
  for (const kept of ["last.safetensors", "checkpoint.safetensors"]) {
    if (await Deno.stat(join(dir, kept)).then(() => true, () => false)) return false;
  }
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name !== ".lock" && isRunFile(e.name)) {
      await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  }
  return true;
}

/** The folders of `dir`'s path that do not exist yet, deepest first (a run creates them). */
export async function missingFolders(dir: string): Promise<string[]> {
  const out: string[] = [];
  const missing = (d: string) =>
    Deno.stat(d).then(() => false, (e) => e instanceof Deno.errors.NotFound);
  for (let d = resolve(dir); await missing(d);) {
    out.push(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  return out;
}

/** Deletes `dir` if it is empty (a folder a failed run created); anything in it stays. */
export async function removeEmptyFolder(dir: string): Promise<void> {
  await Deno.remove(dir).catch(() => {}); // not recursive: fails on a folder with files
}

/**
 * Runs the write of a run file; a failure (a full disk, a read-only folder) becomes one
 * Error naming the file and the reason. Writes are atomic, so the file's previous version,
 * if any, is still whole.
 * @param what the file's role in the message ("checkpoint", "resume state")
 */
export async function writeRunFile(
  path: string,
  what: string,
  write: () => Promise<void>,
): Promise<void> {
  try {
    await write();
  } catch (e) {
    throw new Error(
      `Cannot write ${what} "${path}": ${(e as Error).message}. Its previous version, if any, ` +
        `is intact. Hint: free disk space, then continue the run with --resume`,
      { cause: e },
    );
  }
}

/** Writes `value` as pretty JSON atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** An exclusive hold on a run folder; `release()` removes the lock file. */
export class RunLock {
  /** Lock files this process holds: its own pid in a lock file proves nothing to itself. */
  static readonly #held = new Set<string>();
  private constructor(readonly path: string) {}

  /**
   * Refuses a folder that a live process (this one included) is writing, without
   * changing anything.
   * @throws {Error} naming the process and the lock file
   */
  static async checkFree(dir: string): Promise<void> {
    const path = join(dir, ".lock");
    if (RunLock.#held.has(resolve(path))) throw RunLock.#heldHere(dir, path);
    const holder = Number((await Deno.readTextFile(path).catch(() => "")).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== Deno.pid && processAlive(holder)) {
      throw RunLock.#heldBy(dir, path, holder);
    }
  }

  static #heldHere(dir: string, path: string): Error {
    return new Error(
      `Cannot use run folder "${dir}": this process is already writing it (lock file "${path}"). Hint: choose another --out`,
    );
  }

  static #heldBy(dir: string, path: string, holder: number): Error {
    return new Error(
      `Cannot use run folder "${dir}": process ${holder} is writing it (lock file "${path}"). Hint: choose another --out, or wait for that run`,
    );
  }

  /**
   * Takes the folder's lock, replacing a lock left by a process that no longer runs.
   * @throws {Error} when a live process, or this one, holds it
   */
  static async acquire(dir: string): Promise<RunLock> {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, ".lock");
    const key = resolve(path);
    // Check and reserve in one synchronous step, so two runs started together in this
    // process cannot both pass (a lock file with this pid may also be a stale one left by
    // an earlier process that had the same pid, e.g. in a restarted container).
    if (RunLock.#held.has(key)) throw RunLock.#heldHere(dir, path);
    RunLock.#held.add(key);
    try {
      await RunLock.#create(dir, path);
    } catch (e) {
      RunLock.#held.delete(key);
      throw e;
    }
    // Temporary files of a run's atomic writes left by a killed run: no one else writes
    // here now.
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".tmp") && isRunFile(e.name)) {
        await Deno.remove(join(dir, e.name)).catch(() => {});
      }
    }
    return new RunLock(path);
  }

  /**
   * Creates the lock file with this pid in it. The pid goes into a private file that is
   * then hard-linked to the lock name (which fails if it exists), so another process never
   * sees a lock file without its pid and takes it for a stale one.
   */
  static async #create(dir: string, path: string): Promise<void> {
    const random = crypto.getRandomValues(new Uint32Array(1))[0];
    const mine = join(dir, `.lock.${Deno.pid}.${random}.new`);
    await Deno.writeTextFile(mine, `${Deno.pid}\n`);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await Deno.link(mine, path);
          return;
        } catch (e) {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
          const holder = Number((await Deno.readTextFile(path).catch(() => "")).trim());
          if (
            Number.isInteger(holder) && holder > 0 && holder !== Deno.pid && processAlive(holder)
          ) {
            throw RunLock.#heldBy(dir, path, holder);
          }
          await Deno.remove(path).catch(() => {});
        }
      }
    } finally {
      await Deno.remove(mine).catch(() => {});
    }
    throw new Error(`Cannot lock run folder "${dir}": the lock file keeps reappearing`);
  }

  /** Removes the lock file. */
  async release(): Promise<void> {
    RunLock.#held.delete(resolve(this.path));
    await Deno.remove(this.path).catch(() => {});
  }
}

/** Appends JSON lines to `log.jsonl`. */
export class RunLog {
  readonly #file: Deno.FsFile;
  private constructor(file: Deno.FsFile, readonly path: string) {
    this.#file = file;
  }
  /** Opens (appending) the log of a run folder; `truncate` starts it afresh. */
  static async open(dir: string, truncate: boolean): Promise<RunLog> {
    const path = join(dir, "log.jsonl");
    const file = await Deno.open(path, {
      create: true,
      write: true,
      append: !truncate,
      truncate,
    });
    return new RunLog(file, path);
  }
  /**
   * Writes one line.
   * @throws {Error} naming the log file when the write fails (e.g. the disk is full)
   */
  async write(entry: Record<string, unknown>): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(entry) + "\n");
    try {
      let done = 0;
      while (done < bytes.length) done += await this.#file.write(bytes.subarray(done));
    } catch (e) {
      throw new Error(`Cannot append to run log "${this.path}": ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
