/**
 * Progress reporting of training runs, shared by train, sweep-ratios and compare, and the
 * part of an experiment (sweep-ratios, compare) that follows its plan: the repeats over
 * folds and seeds (`--folds`, `--seeds`) and the runs at once (`--jobs`).
 * @module
 */
import { sourceFolds } from "../../src/data/source.ts";
import { writeFileAtomic } from "../../src/io/atomic_write.ts";
import { formatDuration, formatPercent } from "../../src/report/tables.ts";
import {
  ExperimentInterrupted,
  type ExperimentRun,
  type PlannedRun,
  planRepeats,
  repeatName,
  runAll,
  runPlanned,
  type RunStart,
} from "../../src/train/experiments.ts";
import { RunInterrupted, train, type TrainOptions } from "../../src/train/trainer.ts";
import { isScoreMetrics, type RunResult } from "../../src/train/result.ts";
import { type RunConfig, validateRunConfig } from "../../src/train/run_config.ts";
import {
  type DeviceFlags,
  deviceName,
  pickDeviceFlags,
  precisionChoice,
  useDevice,
} from "./device.ts";
import { childExecutor, prepareSources, threadsPerJob } from "./jobs.ts";
import { numberFlag, stringOptions } from "./options.ts";
import { ProgressBar } from "./progress.ts";

/** Trainer callbacks that draw the bar and print one line per epoch. */
export function trainingOptions(
  bar: ProgressBar,
): Pick<TrainOptions, "onProgress" | "onEpoch" | "onNote"> {
  return {
    onProgress: (e) =>
      bar.update(
        `${e.kind} ${e.epoch}/${e.of}`,
        e.step,
        e.steps,
        e.images,
        e.seconds,
        `loss ${e.loss.toFixed(3)}`,
      ),
    onEpoch: (h) => {
      const tasks = Object.entries(h.tasks).map(([t, m]) =>
        `${t} val ${m.valAccuracy === undefined ? "—" : (100 * m.valAccuracy).toFixed(1)}%` +
        (m.valPc === undefined ? "" : ` PC ${m.valPc.toFixed(3)}`)
      );
      bar.note(
        `${h.stage} ${h.epoch}: loss ${h.loss.toFixed(3)}  ${tasks.join("  ")}${
          h.tau ? `  τ ${h.tau.toFixed(2)}` : ""
        }`,
      );
    },
    onNote: (m) => bar.note(m),
  };
}

/**
 * train() with the bar's callbacks: the run's result, or null when it was interrupted (its
 * message, naming last.safetensors, noted on the bar).
 */
export async function trainWithProgress(
  config: RunConfig,
  opts: Omit<TrainOptions, "onProgress" | "onEpoch" | "onNote">,
  bar: ProgressBar,
): Promise<RunResult | null> {
  try {
    return await train(config, { ...trainingOptions(bar), ...opts });
  } catch (e) {
    if (!(e instanceof RunInterrupted)) throw e;
    bar.note(e.message);
    return null;
  }
}

/** What an experiment writes and prints once its runs are done. */
export interface ExperimentTables {
  /** The markdown table: printed, and written as `<out>.md`. */
  table: string;
  /** Written as `<out>.csv`. */
  csv: string;
  /** Written as `<out>.json`, and printed on one line with --json. */
  json: string;
  /** More files by extension, written after those (the sweep's chart: `{svg: …}`). */
  more?: Record<string, string>;
}

/** How an experiment names its runs and reports on them. */
export interface ExperimentReport {
  /** Path of the table files without extension (`<dir>/sweep` → sweep.md, sweep.csv, …). */
  out: string;
  /** A run's progress note, after its `[i/n] ` number ("done": it has just finished). */
  describe: (run: PlannedRun, how: RunStart["how"] | "done") => string;
  tables: (done: ExperimentRun[]) => ExperimentTables | Promise<ExperimentTables>;
}

/** parseArgs options of the experiment flags (compare, sweep-ratios). */
export const EXPERIMENT_OPTIONS = stringOptions("folds", "seeds", "jobs");

/** Help text of the experiment flags. */
export const EXPERIMENT_HELP =
  `  --folds LIST             cross-validation folds, e.g. 1-5, 1,3 or 2: fold k trains every
                           database whose source ships folds (scut:DIR, synthetic) on its
                           split cvK (validation carved out of its train list, see --db);
                           a run on none of them is repeated over the seeds only
  --seeds N                each run with seeds S, S+1, …, S+N-1 (S = --seed, default 0).
                           With --folds or --seeds, runs go to <dir>/<run>/fold<k>-seed<s>
                           (seed<s> without --folds) and each table cell is the mean ±
                           sample std (n − 1) of its runs
  --jobs N                 train N runs at once, each in a child process with its share of
                           the cores (OMP_NUM_THREADS); its output goes to <run folder>.log
                           (default 1: one run at a time in this process)`;

/** Most folds SCUT-FBP5500 ships. */
const MAX_FOLD = 5;

/**
 * Parses `--folds`: fold numbers 1–5 and ranges, comma-separated ("1-5", "1,3", "2"),
 * each once; returns them in ascending order.
 * @throws {Error} naming the flag and the part that is wrong
 */
export function parseFolds(text: string): number[] {
  const folds = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const [lo, hi] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [NaN, NaN];
    if (!(lo >= 1 && hi <= MAX_FOLD && lo <= hi)) {
      throw new Error(
        `Cannot parse --folds: "${part}" is not a fold from 1 to ${MAX_FOLD} or a range ` +
          `such as 1-5: current value is "${text}"`,
      );
    }
    for (let k = lo; k <= hi; k++) {
      if (folds.has(k)) throw new Error(`Cannot parse --folds: fold ${k} is given twice`);
      folds.add(k);
    }
  }
  return [...folds].sort((a, b) => a - b);
}

/**
 * The runs of an experiment repeated over `--folds` and `--seeds` (planRepeats); the plan
 * unchanged when neither is given. Fold k applies to every database whose source ships
 * folds (sourceFolds), found before anything is trained.
 * @throws {Error} when no database ships folds, or one lacks a fold asked for
 */
export async function repeatRuns(
  values: { folds?: string; seeds?: string },
  base: RunConfig,
  runs: readonly PlannedRun[],
): Promise<PlannedRun[]> {
  if (values.folds === undefined && values.seeds === undefined) return [...runs];
  const count = numberFlag(values.seeds, "seeds", { integer: true, min: 1, max: 1000 }) ?? 1;
  const seeds = Array.from({ length: count }, (_, i) => base.seed + i);
  if (values.folds === undefined) return planRepeats(runs, { seeds });
  const folds = parseFolds(values.folds);
  const foldSources = new Set<string>();
  const without: string[] = [];
  for (const db of base.databases) {
    const have = await sourceFolds(db.source);
    const name = `"${db.name}" (${db.source})`;
    if (have.length === 0) {
      without.push(name);
      continue;
    }
    const missing = folds.filter((k) => !have.includes(k));
    if (missing.length > 0) {
      throw new Error(
        `Cannot use --folds ${values.folds}: database ${name} ships fold${
          have.length === 1 ? "" : "s"
        } ${have.join(", ")} only, not ${missing.join(", ")}`,
      );
    }
    foldSources.add(db.source);
  }
  if (foldSources.size === 0) {
    throw new Error(
      `Cannot use --folds: no database ships cross-validation folds (${without.join(", ")}). ` +
        `Hint: folds come with SCUT-FBP5500 (scut:DIR, its 5_folders_cross_validations_files) ` +
        `and synthetic sources`,
    );
  }
  return planRepeats(runs, { folds, foldSources, seeds });
}

/** A finished run's figures for its progress line: test ACC and F1 per task, its time. */
export function runFigures(result: RunResult): string {
  const tasks = Object.entries(result.tasks).map(([t, m]) =>
    `${t} ACC ${formatPercent(m.test.accuracy)} F1 ${formatPercent(m.test.f1_weighted)}` +
    (isScoreMetrics(m.test) ? ` PC ${m.test.pc.toFixed(4)}` : "")
  );
  return `${tasks.join(", ")}; ${formatDuration(result.trainSeconds)}`;
}

/**
 * Trains (or reuses, or resumes) every planned run on `--device` — in this process with
 * the progress bar, or with `--jobs N` in N child processes at once — printing one line
 * per finished run with its figures; then writes the experiment's table files and prints
 * its table (and, with --json, the JSON on the last line). Ctrl-C stops every run (each
 * saves where it is); the next invocation continues.
 * @returns the exit code: 0, or 130 when interrupted
 * @throws {Error} for a run that failed (naming it and, with --jobs, its log)
 */
export async function runExperiment(
  values: DeviceFlags & { json?: boolean; jobs?: string },
  runs: readonly PlannedRun[],
  report: ExperimentReport,
): Promise<number> {
  const jobs = numberFlag(values.jobs, "jobs", { integer: true, min: 1, max: 256 }) ?? 1;
  const bar = new ProgressBar();
  const n = runs.length;
  const onRun = (i: number, run: PlannedRun, how: RunStart["how"]) => {
    if (how !== "reused") bar.note(`[${i + 1}/${n}] ${report.describe(run, how)}`);
  };
  let finished = 0;
  const onDone = (i: number, done: ExperimentRun, how: RunStart["how"]) =>
    bar.note(
      `[${i + 1}/${n}] ${report.describe(runs[i], how === "reused" ? how : "done")}: ${
        runFigures(done.result)
      } (${++finished} of ${n} finished)`,
    );
  const controller = new AbortController();
  const onSignal = () => {
    bar.note("interrupt: stopping the runs; each saves last.safetensors …");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  let done: ExperimentRun[];
  try {
    if (jobs === 1) {
      const backend = await useDevice(values);
      done = await runAll(runs, {
        ...trainingOptions(bar),
        backend,
        onRun,
        onDone,
        signal: controller.signal,
      });
    } else {
      // Checked here: every child would fail on a device that does not exist.
      deviceName(values.device);
      precisionChoice(values.precision);
      await prepareSources(runs);
      const threads = threadsPerJob(jobs);
      bar.note(`${jobs} runs at once, ${threads} thread${threads === 1 ? "" : "s"} each`);
      const execute = childExecutor({ ...pickDeviceFlags(values), threads });
      done = await runPlanned(runs, execute, { jobs, onRun, onDone, signal: controller.signal });
    }
  } catch (e) {
    if (!(e instanceof ExperimentInterrupted)) throw e;
    bar.note(e.message);
    return 130;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  const t = await report.tables(done);
  const files = { md: t.table + "\n", csv: t.csv, json: t.json, ...t.more };
  for (const [ext, text] of Object.entries(files)) {
    await writeFileAtomic(`${report.out}.${ext}`, new TextEncoder().encode(text));
  }
  console.log(t.table);
  if (values.json) console.log(JSON.stringify(JSON.parse(t.json)));
  return 0;
}

/** A planned run's name in progress lines: its cell and repeat ("adashare fold2-seed0"). */
export function runName(run: PlannedRun): string {
  return run.cell === undefined
    ? run.config.name
    : `${run.cell} ${repeatName(run.fold, run.seed ?? run.config.seed)}`;
}

/** Checks every planned run before the first starts: a bad option fails now, not hours in. */
export function validatePlan(runs: readonly PlannedRun[]): void {
  for (const run of runs) {
    try {
      validateRunConfig(run.config);
    } catch (e) {
      throw new Error(`${(e as Error).message} (run ${run.config.name})`);
    }
  }
}
