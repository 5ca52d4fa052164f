/**
 * The run folder: a lock so two runs never write the same folder, the append-only
 * `log.jsonl`, and atomic JSON writes (temp file + rename) for everything else.
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";

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

/** Temporary files of writeFileAtomic: `.<name>.<digits>.tmp`. */
const ATOMIC_TEMP = /^\..+\.\d+\.tmp$/;

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
    if (RunLock.#held.has(key)) {
      throw new Error(
        `Cannot use run folder "${dir}": this process is already writing it (lock file "${path}"). Hint: choose another --out`,
      );
    }
    RunLock.#held.add(key);
    try {
      await RunLock.#create(dir, path);
    } catch (e) {
      RunLock.#held.delete(key);
      throw e;
    }
    // Temporary files of atomic writes left by a killed run: no one else writes here now.
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && ATOMIC_TEMP.test(e.name)) {
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
            throw new Error(
              `Cannot use run folder "${dir}": process ${holder} is writing it (lock file "${path}"). Hint: choose another --out, or wait for that run`,
            );
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
