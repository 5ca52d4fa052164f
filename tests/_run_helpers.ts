/**
 * Small training runs for the tests that train (tests/train, tests/reliability): run
 * configs of a narrow network on 32×32 synthetic images, and the command that trains one
 * in a child process (tests/reliability/_tiny_run.ts).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Backend } from "../src/backend/backend.ts";
import { readSource } from "../src/data/source.ts";
import { RunInterrupted, train } from "../src/train/trainer.ts";
import { RUN_DEFAULTS, type RunConfig } from "../src/train/run_config.ts";

/**
 * A run config: RUN_DEFAULTS with a 4-4-8-8 network on 32×32 images (resized from 36)
 * decoded without workers, then `over` (which names the databases and tasks).
 */
export function tinyRun(
  name: string,
  out: string,
  over: Partial<RunConfig> & Pick<RunConfig, "databases" | "tasks">,
): RunConfig {
  return {
    ...RUN_DEFAULTS,
    name,
    out,
    widths: [4, 4, 8, 8],
    imageSize: 32,
    resize: 36,
    workers: 0,
    ...over,
  };
}

/** A single-task baseline of `epochs` epochs: "gender" on the one database "people". */
export function genderBaseline(
  people: string,
  epochs: number,
): Pick<RunConfig, "method" | "databases" | "tasks" | "epochs"> {
  return {
    method: "baseline",
    databases: [{ name: "people", source: people }],
    tasks: [{ name: "gender", database: "people", label: "gender", lambda: 1 }],
    epochs: { warmup: 0, policy: 0, retrain: 1, baseline: epochs },
  };
}

/** The method's two tasks: "beauty" (λ 1) on database "faces", "gender" (λ 0.6) on "people". */
export function twoTasks(faces: string, people: string): Pick<RunConfig, "databases" | "tasks"> {
  return {
    databases: [{ name: "faces", source: faces }, { name: "people", source: people }],
    tasks: [
      { name: "beauty", database: "faces", label: "beauty", lambda: 1 },
      { name: "gender", database: "people", label: "gender", lambda: 0.6 },
    ],
  };
}

/**
 * Writes `config` to `<dir>/<name>.json` and returns the command that trains it in a child
 * process (tests/reliability/_tiny_run.ts, with `args` after the config file), its stderr
 * piped.
 */
export async function tinyRunCommand(
  config: RunConfig,
  dir: string,
  args: string[],
  stdout: "piped" | "null",
): Promise<Deno.Command> {
  const file = join(dir, `${config.name}.json`);
  await Deno.writeTextFile(file, JSON.stringify(config));
  const script = new URL("./reliability/_tiny_run.ts", import.meta.url).pathname;
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, file, ...args],
    stdout,
    stderr: "piped",
    // One thread: under CPU contention an OpenMP team spin-waits for descheduled threads
    // and a 3 s run can take minutes; runs compared with each other use the same count.
    env: { OMP_NUM_THREADS: "1" },
  });
}

/** What a command printed and how it ended. */
export interface TaskOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tasks/<name>.ts` with `args` in a child process (in `cwd`, one OpenMP thread) and
 * returns its exit code and output.
 */
export async function runTask(name: string, args: string[], cwd?: string): Promise<TaskOutput> {
  const tool = new URL(`../tasks/${name}.ts`, import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", tool, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", OMP_NUM_THREADS: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Every file under `dir` (hidden ones too) by path relative to it, with its bytes. */
export async function snapshot(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? join(sub, e.name) : e.name;
      if (e.isDirectory) await walk(rel);
      else files.set(rel, await Deno.readFile(join(dir, rel)));
    }
  };
  await walk("");
  return new Map([...files].sort(([a], [b]) => a.localeCompare(b)));
}

/** Copies a folder of files (and subfolders) to `to`, which must not exist. */
export async function copyFolder(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for (const [rel, bytes] of await snapshot(from)) {
    await Deno.mkdir(join(to, rel, ".."), { recursive: true });
    await Deno.writeFile(join(to, rel), bytes);
  }
}

/** Whether a path exists. */
export function exists(path: string): Promise<boolean> {
  return Deno.lstat(path).then(() => true, () => false);
}

/**
 * Trains `c` from scratch, stopping it once at each of `stops` (steps counted over the whole
 * run, ascending) and resuming it after each: a resume test then finishes it and compares
 * with a run never stopped.
 */
export async function trainStoppingAt(
  c: RunConfig,
  backend: Backend,
  stops: readonly number[],
): Promise<void> {
  let done = 0;
  for (const at of stops) {
    const controller = new AbortController();
    await assert.rejects(
      train(c, {
        backend,
        resume: done > 0,
        signal: controller.signal,
        onProgress: () => {
          if (++done === at) controller.abort();
        },
      }),
      RunInterrupted,
      `the stop at step ${at}`,
    );
    assert.equal(done, at, `the stop at step ${at}`);
  }
}

/**
 * The resume tests' data: a synthetic beauty database ("faces") and gender database
 * ("people") of `count` images each under `root`, written now.
 */
export async function resumeTestSources(
  root: string,
  count: number,
): Promise<{ faces: string; people: string }> {
  const faces = `synthetic:dir=${root}/faces,count=${count},size=36,seed=3,genders=F,labels=beauty`;
  const people = `synthetic:dir=${root}/people,count=${count},size=36,seed=4,labels=gender`;
  await readSource(faces);
  await readSource(people);
  return { faces, people };
}

/** The resume tests' run: the method on both tasks, batch 8, with `epochs` and `extra`. */
export function resumeTestRun(
  name: string,
  dir: string,
  data: { faces: string; people: string },
  epochs: RunConfig["epochs"],
  extra: Partial<RunConfig> = {},
): RunConfig {
  return tinyRun(name, dir, {
    ...twoTasks(data.faces, data.people),
    batch: 8,
    lr: 3e-3,
    dropout: 0.1,
    epochs,
    curriculumSpeed: 0.5,
    ...extra,
  });
}
