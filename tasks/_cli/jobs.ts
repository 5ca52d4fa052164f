/**
 * `--jobs N` of the experiments: each planned run trained by a child process
 * (tasks/_cli/run_cell.ts), N at once, the CPU threads shared out between them. Which
 * runs to reuse, resume or start is decided by the experiment (src/train/experiments.ts
 * runPlanned); a child only trains the run it is given.
 * @module
 */
import { dirname, join } from "node:path";
import { ensureSynthetic, parseSource } from "../../src/data/source.ts";
import type { PlannedRun, RunExecutor } from "../../src/train/experiments.ts";
import type { RunResult } from "../../src/train/result.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { RunInterrupted } from "../../src/train/trainer.ts";
import type { DeviceFlags } from "./device.ts";

/** What the parent writes on a child's stdin: the run and how to start it. */
export interface CellJob extends DeviceFlags {
  config: RunConfig;
  /** Continue from last.safetensors. */
  resume: boolean;
  /** Replace the run's own start that was killed before a first epoch ended. */
  force: boolean;
}

/**
 * Threads each of `jobs` children gets: the cores shared out (at least 1), or fewer when
 * OMP_NUM_THREADS already asks for fewer. The CPU backend's oneDNN is Debian's OpenMP
 * build (libgomp), and the backend's own loops use the same OpenMP team, so
 * OMP_NUM_THREADS is what sets a child's threads; without it every child would start one
 * thread per core and they would spin-wait on each other.
 */
export function threadsPerJob(jobs: number): number {
  const share = Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / jobs));
  const set = Number(Deno.env.get("OMP_NUM_THREADS"));
  return Number.isInteger(set) && set >= 1 && set < share ? set : share;
}

/**
 * Generates every synthetic source of the plan once, before children that share one
 * would race to write the same folder.
 */
export async function prepareSources(runs: readonly PlannedRun[]): Promise<void> {
  const specs = new Set(runs.flatMap((r) => r.config.databases.map((d) => d.source)));
  for (const spec of specs) {
    const s = parseSource(spec);
    if (s.kind === "synthetic") await ensureSynthetic(s.options);
  }
}

/** The log a child writes: beside its run folder, which holds only run files. */
export function cellLog(config: RunConfig): string {
  return `${config.out}.log`;
}

/**
 * The last line that says what went wrong (the child's "error: …" line) among those
 * written to the log from byte `from` on: the log is appended to by every attempt, and
 * an earlier attempt's error is not this one's.
 */
async function lastError(log: string, from: number): Promise<string> {
  const bytes = await Deno.readFile(log).catch(() => new Uint8Array());
  const text = new TextDecoder().decode(bytes.subarray(from));
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const error = lines.findLast((l) => l.startsWith("error: "));
  return (error ?? lines.at(-1) ?? "no output").replace(/^error: /, "");
}

/** Writes all of `bytes` (a write may take only part). */
async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
}

/** Copies a child's output stream to the log file until it ends or is cancelled. */
async function pump(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  file: Deno.FsFile,
): Promise<void> {
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    await writeAll(file, r.value);
  }
}

/**
 * A {@link RunExecutor} that trains each run in a child process with `threads` OpenMP
 * threads, its output appended to `<run folder>.log`. Stopping (the signal) sends the
 * child SIGINT: it saves last.safetensors and exits. Should anything here fail while the
 * child runs (its log cannot be written, say), the child is killed (SIGKILL) and waited
 * for before the error is thrown, so no child outlives the experiment.
 * @throws {RunInterrupted} when the child was interrupted
 * @throws {Error} naming the run, its exit code or signal, its last error line and its log when
 *   it fails
 */
export function childExecutor(opts: DeviceFlags & { threads: number }): RunExecutor {
  const script = new URL("./run_cell.ts", import.meta.url).pathname;
  return async (run, start, signal): Promise<RunResult> => {
    const { config } = run;
    const log = cellLog(config);
    await Deno.mkdir(dirname(log), { recursive: true });
    const file = await Deno.open(log, { create: true, append: true });
    let status: Deno.CommandStatus | undefined;
    /** Size of the log before this attempt's child wrote to it. */
    let from = 0;
    try {
      await writeAll(
        file,
        new TextEncoder().encode(
          `# ${new Date().toISOString()} ${start.resume ? "resume" : "start"} ${config.name}\n`,
        ),
      );
      from = (await file.stat()).size;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: { OMP_NUM_THREADS: String(opts.threads) },
      }).spawn();
      const readers = [child.stdout.getReader(), child.stderr.getReader()];
      const pumps: Promise<void>[] = [];
      const stop = () => {
        try {
          child.kill("SIGINT");
        } catch {
          // Already exited.
        }
      };
      signal.addEventListener("abort", stop);
      if (signal.aborted) stop();
      try {
        // Only the fields a child reads: RunStart's others (how, result) stay here.
        const job: CellJob = {
          config,
          resume: start.resume,
          force: start.force,
          device: opts.device,
          precision: opts.precision,
          deterministic: opts.deterministic,
        };
        const writer = child.stdin.getWriter();
        // A child stopped before it read its job breaks the pipe: its exit status says so.
        await writer.write(new TextEncoder().encode(JSON.stringify(job))).catch(() => {});
        await writer.close().catch(() => {});
        pumps.push(...readers.map((r) => pump(r, file)));
        await Promise.all(pumps);
        status = await child.status;
      } finally {
        signal.removeEventListener("abort", stop);
        if (status === undefined) {
          // Something failed while the child ran: it must not run on, unread, after us.
          try {
            child.kill("SIGKILL");
          } catch {
            // Already exited.
          }
          await child.status;
        }
        // Ends the pump still reading, if one failed; the file closes after both stop.
        await Promise.allSettled(readers.map((r) => r.cancel()));
        await Promise.allSettled(pumps);
      }
    } finally {
      file.close();
    }
    if (status.success) {
      return JSON.parse(await Deno.readTextFile(join(config.out, "metrics.json")));
    }
    if (status.code === 130 || status.signal === "SIGINT") {
      throw new RunInterrupted(join(config.out, "last.safetensors"));
    }
    throw new Error(
      `Run "${config.name}" (${run.label}) failed with ${
        status.signal ? `signal ${status.signal}` : `exit code ${status.code}`
      }: ` +
        `${await lastError(log, from)}. Its log: ${log}`,
    );
  };
}
