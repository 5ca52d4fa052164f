/**
 * Progress reporting of training runs, shared by train, sweep-ratios and compare, and the
 * part of an experiment (sweep-ratios, compare) that follows its plan.
 * @module
 */
import { writeFileAtomic } from "../../src/io/atomic_write.ts";
import { type ExperimentRun, type PlannedRun, runAll } from "../../src/train/experiments.ts";
import type { TrainOptions } from "../../src/train/trainer.ts";
import { validateRunConfig } from "../../src/train/run_config.ts";
import { useDevice } from "./device.ts";
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
        `${t} val ${m.valAccuracy === undefined ? "—" : (100 * m.valAccuracy).toFixed(1)}%`
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
  /** A run's progress note, after its `[i/n] ` number. */
  describe: (run: PlannedRun, how: "reused" | "resumed" | "new") => string;
  tables: (done: ExperimentRun[]) => ExperimentTables | Promise<ExperimentTables>;
}

/**
 * Trains (or reuses, or resumes) every planned run on `--device` with the progress bar,
 * then writes the experiment's table files and prints its table (and, with --json, the
 * JSON on the last line).
 */
export async function runExperiment(
  values: { device?: string; json?: boolean },
  runs: readonly PlannedRun[],
  report: ExperimentReport,
): Promise<void> {
  const backend = await useDevice(values.device);
  const bar = new ProgressBar();
  const done = await runAll(runs, {
    ...trainingOptions(bar),
    backend,
    onRun: (i, run, how) => bar.note(`[${i + 1}/${runs.length}] ${report.describe(run, how)}`),
  });
  const t = await report.tables(done);
  const files = { md: t.table + "\n", csv: t.csv, json: t.json, ...t.more };
  for (const [ext, text] of Object.entries(files)) {
    await writeFileAtomic(`${report.out}.${ext}`, new TextEncoder().encode(text));
  }
  console.log(t.table);
  if (values.json) console.log(JSON.stringify(JSON.parse(t.json)));
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
