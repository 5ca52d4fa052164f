/**
 * The run folder: a lock so two runs never write the same folder, the append-only
 * `log.jsonl`, and atomic JSON writes (temp file + rename) for everything else.
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";

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
  private constructor(readonly path: string) {}

  /**
   * Takes the folder's lock, replacing a lock left by a process that no longer runs.
   * @throws {Error} when a live process holds it
   */
  static async acquire(dir: string): Promise<RunLock> {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, ".lock");
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const f = await Deno.open(path, { createNew: true, write: true });
        await f.write(new TextEncoder().encode(`${Deno.pid}\n`));
        f.close();
        return new RunLock(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        const holder = Number((await Deno.readTextFile(path).catch(() => "")).trim());
        if (Number.isInteger(holder) && holder > 0 && holder !== Deno.pid && processAlive(holder)) {
          throw new Error(
            `Cannot use run folder "${dir}": process ${holder} is writing it (lock file "${path}"). Hint: choose another --out, or wait for that run`,
          );
        }
        await Deno.remove(path).catch(() => {});
      }
    }
    throw new Error(`Cannot lock run folder "${dir}": the lock file keeps reappearing`);
  }

  /** Removes the lock file. */
  async release(): Promise<void> {
    await Deno.remove(this.path).catch(() => {});
  }
}

/** Appends JSON lines to `log.jsonl`. */
export class RunLog {
  readonly #file: Deno.FsFile;
  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }
  /** Opens (appending) the log of a run folder; `truncate` starts it afresh. */
  static async open(dir: string, truncate: boolean): Promise<RunLog> {
    const file = await Deno.open(join(dir, "log.jsonl"), {
      create: true,
      write: true,
      append: !truncate,
      truncate,
    });
    return new RunLog(file);
  }
  /** Writes one line. */
  async write(entry: Record<string, unknown>): Promise<void> {
    await this.#file.write(new TextEncoder().encode(JSON.stringify(entry) + "\n"));
  }
  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
