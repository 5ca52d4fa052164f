/**
 * The paper's experiments as groups of independent runs under one folder: the λ1:λ2
 * sweep (Tables 9–10) and the comparison of baselines and the method with and without AFF
 * (Tables 3–8), each cell optionally repeated over cross-validation folds and seeds
 * ({@link planRepeats}). A run whose `metrics.json` exists is reused; one with a
 * `last.safetensors` is resumed; one that stopped before its first epoch ended is started
 * again; so a killed sweep continues where it stopped. Each only when the folder's
 * config.json is the planned run's (apart from its folder and the decode workers): a
 * folder of another run, or of other files, is refused. Runs are trained in this process
 * ({@link runAll}) or by any {@link RunExecutor}, several at once ({@link runPlanned}).
 * @module
 */
import { archNames, torchvisionDropout } from "../models/archs/registry.ts";
import { join } from "node:path";
import type { RunResult } from "./result.ts";
import { configDifferences, type RunConfig } from "./run_config.ts";
import { inspectRunFolder } from "./run_dir.ts";
import { readRunConfig, RESUME_MAY_CHANGE } from "./resume.ts";
import { RunInterrupted, train, type TrainOptions } from "./trainer.ts";

/** One planned run of an experiment. */
export interface PlannedRun {
  /** Row label in the tables. */
  label: string;
  /** The run's full config; `config.out` is its run folder. */
  config: RunConfig;
  /**
   * The table cell this run repeats (the planned run's name before {@link planRepeats}):
   * the tables show the mean ± std of a cell's runs. Absent: the run is a cell of its own.
   */
  cell?: string;
  /** Cross-validation fold (1–5) of a repeated run. */
  fold?: number;
  /** Seed of a repeated run. */
  seed?: number;
}

/** A finished run, with its cell, fold and seed when it repeats a cell. */
export interface ExperimentRun {
  /** Row label in the tables (the planned run's). */
  label: string;
  /** The finished run's result. */
  result: RunResult;
  /** The table cell this run repeats, as planned; absent for a cell of its own. */
  cell?: string;
  /** Cross-validation fold (1–5) of a repeated run. */
  fold?: number;
  /** Seed of a repeated run. */
  seed?: number;
}

/** What a planned run's folder says about it: reuse its metrics, resume it, or start it. */
export interface RunStart {
  /** Reuse the finished run, resume the stopped one, or start anew. */
  how: "reused" | "resumed" | "new";
  /** metrics.json of a reused run. */
  result?: RunResult;
  /** train() options: continue from last.safetensors / replace its own killed start. */
  resume: boolean;
  /** train() option: replace the folder's own run killed before its first epoch ended. */
  force: boolean;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Looks at a planned run's folder: its own finished run is reused, its own stopped run
 * resumed, its own run killed before a first epoch ended replaced; a missing or empty
 * folder is a new run (train() refuses any other folder that is not empty).
 * @throws {Error} naming the folder and the options when it holds another run
 */
export async function runStart(run: PlannedRun): Promise<RunStart> {
  const dir = run.config.out;
  const folder = await inspectRunFolder(dir);
  // A run folder without config.json holds only the lock of a run killed as it started.
  const own = folder.kind === "run" &&
    (!folder.runFiles.includes("config.json") || await sameRun(run.config));
  const metrics = join(dir, "metrics.json");
  if (own && await exists(metrics)) {
    const result = JSON.parse(await Deno.readTextFile(metrics));
    return { how: "reused", result, resume: false, force: false };
  }
  const resume = own && await exists(join(dir, "last.safetensors"));
  return { how: resume ? "resumed" : "new", resume, force: own && !resume };
}

/**
 * Trains one planned run (in this process, or in a child process) and returns its result.
 * `signal` asks it to stop: it should save where it is and reject.
 */
export type RunExecutor = (
  run: PlannedRun,
  start: { resume: boolean; force: boolean },
  signal: AbortSignal,
) => Promise<RunResult>;

/** Options of {@link runPlanned}. */
export interface RunPlannedOptions {
  /** Runs trained at once (default 1). */
  jobs?: number;
  /** Called as each run starts (or is reused), with its index in the plan. */
  onRun?: (i: number, run: PlannedRun, how: RunStart["how"]) => void;
  /** Called as each run finishes (or is reused). */
  onDone?: (i: number, done: ExperimentRun, how: RunStart["how"]) => void;
  /** Stops the experiment: running runs are asked to stop, no new one starts. */
  signal?: AbortSignal;
}

/** The experiment stopped on request; finished runs are kept, stopped ones resume. */
export class ExperimentInterrupted extends Error {
  constructor(done: number, of: number) {
    super(
      `Experiment interrupted: ${done} of ${of} runs finished. Hint: run the same command ` +
        `again to continue (finished runs are reused, stopped ones resumed)`,
    );
    this.name = "ExperimentInterrupted";
  }
}

/**
 * Runs (or reuses, or resumes) every planned run, up to `jobs` at once, and returns the
 * finished runs in plan order. Every folder is checked before the first run starts. When
 * a run fails (or `onRun`/`onDone` throws), no other starts, the running ones are asked to
 * stop, and its error is thrown once they have.
 * @throws {ExperimentInterrupted} when `signal` stopped it (or a run was interrupted)
 */
export async function runPlanned(
  runs: readonly PlannedRun[],
  execute: RunExecutor,
  opts: RunPlannedOptions = {},
): Promise<ExperimentRun[]> {
  const jobs = Math.max(1, opts.jobs ?? 1);
  const starts: RunStart[] = [];
  for (const run of runs) starts.push(await runStart(run));
  const out: (ExperimentRun | undefined)[] = runs.map(() => undefined);
  const finish = (i: number, result: RunResult, how: RunStart["how"]) => {
    const { label, cell, fold, seed } = runs[i];
    out[i] = { label, result, ...(cell === undefined ? {} : { cell, fold, seed }) };
    opts.onDone?.(i, out[i]!, how);
  };
  const stop = new AbortController();
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    stop.abort();
  };
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort);
  let failure: { error: unknown } | undefined;
  // A run's error, or one thrown by onRun/onDone: no new run starts, the others stop.
  const onError = (error: unknown) => {
    if (error instanceof RunInterrupted) interrupted = true;
    else failure ??= { error };
    stop.abort();
  };
  const running = new Set<Promise<void>>();
  try {
    try {
      for (const [i, run] of runs.entries()) {
        const start = starts[i];
        if (start.how === "reused") {
          opts.onRun?.(i, run, "reused");
          finish(i, start.result!, "reused");
          continue;
        }
        while (running.size >= jobs) await Promise.race(running);
        if (failure || stop.signal.aborted) break;
        opts.onRun?.(i, run, start.how);
        // Only what train() takes: RunStart's how and result stay here.
        const options = { resume: start.resume, force: start.force };
        const p: Promise<void> = execute(run, options, stop.signal)
          .then((result) => finish(i, result, start.how))
          .catch(onError)
          .finally(() => running.delete(p));
        running.add(p);
      }
    } catch (error) {
      // onRun, a reused run's onDone or execute itself threw: stop the runs started.
      onError(error);
    }
    await Promise.all(running);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  // A failure that a stop request caused is part of the interruption, not a failure.
  if (failure && !(opts.signal?.aborted)) throw failure.error;
  if (interrupted || failure) {
    throw new ExperimentInterrupted(out.filter((r) => r).length, runs.length);
  }
  return out as ExperimentRun[];
}

/**
 * Runs (or reuses, or resumes) every planned run in order, in this process.
 * @param onRun called before each run with its index and whether it is reused/resumed
 */
export function runAll(
  runs: readonly PlannedRun[],
  opts: TrainOptions & Pick<RunPlannedOptions, "onRun" | "onDone">,
): Promise<ExperimentRun[]> {
  const { onRun, onDone, ...trainOptions } = opts;
  return runPlanned(
    runs,
    (run, start, signal) =>
      train(run.config, { ...trainOptions, resume: start.resume, force: start.force, signal }),
    { onRun, onDone, signal: opts.signal },
  );
}

/**
 * Whether the run folder's config.json is this planned run's (apart from its folder and
 * the options a resumed run may change).
 * @throws {Error} naming the folder and the options when it is another run's
 */
async function sameRun(config: RunConfig): Promise<boolean> {
  const stored = await readRunConfig(config.out).catch(() => undefined);
  if (!stored) return false;
  const differ = configDifferences(stored, config, ["out", ...RESUME_MAY_CHANGE]);
  if (differ.length > 0) {
    throw new Error(
      `Cannot reuse run "${config.out}": it was trained with other options (${
        differ.join(", ")
      }) than this experiment plans. Hint: choose another --dir, or move that run away`,
    );
  }
  return true;
}

/** λ1:λ2:… ratio as written in the paper's tables ("1:0.6"). */
export function ratioLabel(...lambdas: number[]): string {
  return lambdas.join(":");
}

/**
 * The weight-ratio sweep: the base config for each weight vector (one λ per task, in the
 * config's task order: λ1:λ2 for the paper's two tasks) and batch size. Run folders are
 * `ratio-<λ1>-<λ2>-…-batch-<B>`. With task weights gradnorm or dwa, λ only sets the start
 * weights T·λ/Σλ, so two vectors that are multiples of each other (1:0.5 and 2:1) would
 * train the same run: they are refused.
 * @param ratios weight vectors, each with one λ per task of `base`
 * @throws {Error} when a vector's length is not the number of tasks, or two vectors are
 *   multiples of each other under gradnorm or dwa
 */
export function planSweep(
  base: RunConfig,
  ratios: readonly (readonly number[])[],
  batches: readonly number[],
  dir: string,
): PlannedRun[] {
  const wrong = ratios.find((r) => r.length !== base.tasks.length);
  if (wrong) {
    throw new Error(
      `Cannot plan the ratio sweep: weight vector ${ratioLabel(...wrong)} has ${wrong.length} ` +
        `weights, expected one per task (${base.tasks.length}: ${
          base.tasks.map((t) => t.name).join(", ")
        })`,
    );
  }
  if (base.taskWeights === "gradnorm" || base.taskWeights === "dwa") {
    // Compare the normalised vectors, as the scheme sees them (to rounding).
    const seen = new Map<string, readonly number[]>();
    for (const r of ratios) {
      const sum = r.reduce((a, x) => a + x, 0);
      const key = r.map((x) => (x / sum).toPrecision(12)).join(":");
      const same = seen.get(key);
      if (same) {
        throw new Error(
          `Cannot plan the ratio sweep: with task weights ${base.taskWeights} λ only sets the ` +
            `start weights T·λ/Σλ, so ${ratioLabel(...same)} and ${ratioLabel(...r)} would ` +
            `train the same run: expected ratios that are not multiples of each other`,
        );
      }
      seen.set(key, r);
    }
  }
  const runs: PlannedRun[] = [];
  for (const batch of batches) {
    for (const lambdas of ratios) {
      const name = `ratio-${lambdas.join("-")}-batch-${batch}`;
      runs.push({
        label: `${ratioLabel(...lambdas)} (batch ${batch})`,
        config: {
          ...base,
          name,
          out: join(dir, name),
          batch,
          tasks: base.tasks.map((t, i) => ({ ...t, lambda: lambdas[i] })),
        },
      });
    }
  }
  return runs;
}

/** One variant of a run: a row label and the run's config with the option changed. */
export interface Variant {
  /** Row label, e.g. "balance=focal". */
  label: string;
  /** The variant's config; {@link planVariants} sets its name and folder. */
  config: Omit<RunConfig, "name" | "out">;
}

/**
 * Variants of one run, each in a folder of its own under `dir`, named after its label
 * (characters other than letters, digits, ".", "_" and "-" become "-").
 * @throws {Error} when two labels give the same folder name
 */
export function planVariants(variants: readonly Variant[], dir: string): PlannedRun[] {
  const seen = new Map<string, string>();
  return variants.map(({ label, config }) => {
    const name = label.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "variant";
    const other = seen.get(name);
    if (other !== undefined) {
      throw new Error(
        `Cannot plan variants "${other}" and "${label}": both would be run folder "${name}"`,
      );
    }
    seen.set(name, label);
    return { label, config: { ...config, name, out: join(dir, name) } };
  });
}

/**
 * The comparison: per task a single-task ResNet18 baseline with and without AFF, and the
 * method with and without AFF on all tasks.
 */
export function planComparison(base: RunConfig, dir: string): PlannedRun[] {
  const runs: PlannedRun[] = [];
  for (const aff of [false, true]) {
    for (const task of base.tasks) {
      const name = `baseline${aff ? "-aff" : ""}-${task.name}`;
      runs.push({
        label: aff ? "ResNet18 + AFF" : "ResNet18",
        config: {
          ...base,
          name,
          out: join(dir, name),
          method: "baseline",
          aff,
          tasks: [task],
          databases: base.databases.filter((d) => d.name === task.database),
        },
      });
    }
  }
  for (const aff of [false, true]) {
    const name = `adashare${aff ? "-aff" : ""}`;
    runs.push({
      label: aff ? "Ours (AdaShare + DAB + AFF)" : "AdaShare + DAB (no AFF)",
      config: { ...base, name, out: join(dir, name), method: "adashare", aff },
    });
  }
  return runs;
}

/**
 * The paper's Table 11: each architecture of `archs` as a single-task baseline (no AFF, no
 * policy) on `base`'s first task, and the method (AdaShare + DAB + AFF on ResNet18) on all
 * of `base`'s tasks, as independent runs under `dir`. A baseline's head dropout is
 * torchvision's for its arch unless `keepDropout` (the user set `--dropout`).
 * @throws {Error} naming an unknown architecture
 */
export function planArchComparison(
  base: RunConfig,
  dir: string,
  archs: readonly string[],
  keepDropout = false,
): PlannedRun[] {
  const task = base.tasks[0];
  const known = archNames();
  const runs: PlannedRun[] = archs.map((arch) => {
    if (!known.includes(arch)) {
      throw new Error(`Unknown architecture "${arch}": expected one of ${known.join(", ")}`);
    }
    const name = `baseline-${arch}-${task.name}`;
    return {
      label: arch,
      config: {
        ...base,
        name,
        out: join(dir, name),
        method: "baseline",
        arch,
        aff: false,
        dropout: keepDropout ? base.dropout : torchvisionDropout(arch) ?? base.dropout,
        tasks: [task],
        databases: base.databases.filter((d) => d.name === task.database),
      },
    };
  });
  runs.push({
    label: "Ours (AdaShare + DAB + AFF, ResNet18)",
    config: {
      ...base,
      name: "adashare-aff",
      out: join(dir, "adashare-aff"),
      method: "adashare",
      arch: "resnet18",
      aff: true,
    },
  });
  return runs;
}

/** How each cell of an experiment is repeated (see {@link planRepeats}). */
export interface Repeats {
  /**
   * Cross-validation folds (1–5): fold k trains every database in `foldSources` on its
   * split "cvK". Absent: the databases keep their splits.
   */
  folds?: readonly number[];
  /** Sources (DatabaseSpec.source) that ship cross-validation folds. */
  foldSources?: ReadonlySet<string>;
  /** Seeds; every fold runs once per seed. */
  seeds: readonly number[];
}

/** A repeated run's folder name: `fold3-seed1`, or `seed1` without folds. */
export function repeatName(fold: number | undefined, seed: number): string {
  return `${fold === undefined ? "" : `fold${fold}-`}seed${seed}`;
}

/**
 * Repeats every planned run (a table cell) over folds × seeds: the run in
 * `<its folder>/fold<k>-seed<s>`, named `<its name>-fold<k>-seed<s>`, with that seed and,
 * per fold k, split "cvK" for every database whose source ships folds. A run none of whose
 * databases ships folds (a single-task baseline on a database without them, say) would
 * train the same split in every fold: it is repeated over the seeds only, in
 * `<its folder>/seed<s>`, as every run is without folds. Runs are ordered fold by fold,
 * then seed by seed, so the first runs to finish fill every cell once.
 * @throws {Error} when folds are asked for and no database of any run ships them
 */
export function planRepeats(runs: readonly PlannedRun[], repeats: Repeats): PlannedRun[] {
  const sources = repeats.foldSources ?? new Set<string>();
  const hasFolds = (run: PlannedRun) => run.config.databases.some((d) => sources.has(d.source));
  if (repeats.folds && runs.length > 0 && !runs.some(hasFolds)) {
    throw new Error(
      `Cannot plan folds: no database of the experiment ships cross-validation folds (${
        [...new Set(runs.flatMap((r) => r.config.databases.map((d) => d.source)))].join(", ")
      })`,
    );
  }
  const out: PlannedRun[] = [];
  for (const [f, fold] of (repeats.folds ?? [undefined]).entries()) {
    for (const seed of repeats.seeds) {
      for (const run of runs) {
        const folded = fold !== undefined && hasFolds(run);
        // Without fold databases, the first fold's pass plans the run's seeds; later skip.
        if (fold !== undefined && !folded && f > 0) continue;
        const sub = repeatName(folded ? fold : undefined, seed);
        const databases = run.config.databases.map((d) =>
          folded && sources.has(d.source) ? { ...d, split: `cv${fold}` } : d
        );
        out.push({
          label: run.label,
          cell: run.config.name,
          ...(folded ? { fold } : {}),
          seed,
          config: {
            ...run.config,
            name: `${run.config.name}-${sub}`,
            out: join(run.config.out, sub),
            seed,
            databases,
          },
        });
      }
    }
  }
  return out;
}
