/**
 * The paper's experiments as groups of independent runs under one folder: the λ1:λ2
 * sweep (Tables 9–10) and the comparison of baselines and the method with and without AFF
 * (Tables 3–8). A run whose `metrics.json` exists is reused; one with a `last.safetensors`
 * is resumed; one that stopped before its first epoch ended is started again; so a killed
 * sweep continues where it stopped. Each only when the folder's config.json is the planned
 * run's (apart from its folder and the decode workers): a folder of another run, or of
 * other files, is refused.
 * @module
 */
import { join } from "node:path";
import type { RunResult } from "./result.ts";
import { configDifferences, type RunConfig } from "./run_config.ts";
import { inspectRunFolder } from "./run_dir.ts";
import { readRunConfig, RESUME_MAY_CHANGE } from "./resume.ts";
import { train, type TrainOptions } from "./trainer.ts";

/** One planned run of an experiment. */
export interface PlannedRun {
  /** Row label in the tables. */
  label: string;
  config: RunConfig;
}

/** A finished run. */
export interface ExperimentRun {
  label: string;
  result: RunResult;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Runs (or reuses, or resumes) every planned run in order.
 * @param onRun called before each run with its index and whether it is reused/resumed
 */
export async function runAll(
  runs: readonly PlannedRun[],
  opts: TrainOptions & {
    onRun?: (i: number, run: PlannedRun, how: "reused" | "resumed" | "new") => void;
  },
): Promise<ExperimentRun[]> {
  const out: ExperimentRun[] = [];
  for (const [i, run] of runs.entries()) {
    const dir = run.config.out;
    const folder = await inspectRunFolder(dir);
    // A run folder without config.json holds only the lock of a run killed as it started.
    const own = folder.kind === "run" &&
      (!folder.runFiles.includes("config.json") || await sameRun(run.config));
    const metrics = join(dir, "metrics.json");
    if (own && await exists(metrics)) {
      opts.onRun?.(i, run, "reused");
      out.push({ label: run.label, result: JSON.parse(await Deno.readTextFile(metrics)) });
      continue;
    }
    const resume = own && await exists(join(dir, "last.safetensors"));
    opts.onRun?.(i, run, resume ? "resumed" : "new");
    // Its own run killed before a first epoch ended is replaced; any other folder that is
    // not empty is refused by train().
    const force = own && !resume;
    out.push({ label: run.label, result: await train(run.config, { ...opts, resume, force }) });
  }
  return out;
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

/** λ1:λ2 ratio as written in the paper's tables ("1:0.6"). */
export function ratioLabel(l1: number, l2: number): string {
  return `${l1}:${l2}`;
}

/**
 * The weight-ratio sweep: the base config (two tasks) for each ratio and batch size.
 * @throws {Error} when the base config does not have exactly two tasks
 */
export function planSweep(
  base: RunConfig,
  ratios: readonly [number, number][],
  batches: readonly number[],
  dir: string,
): PlannedRun[] {
  if (base.tasks.length !== 2) {
    throw new Error(
      `Cannot plan the ratio sweep: it needs exactly two tasks, the config has ${base.tasks.length}`,
    );
  }
  const runs: PlannedRun[] = [];
  for (const batch of batches) {
    for (const [l1, l2] of ratios) {
      const name = `ratio-${l1}-${l2}-batch-${batch}`;
      runs.push({
        label: `${ratioLabel(l1, l2)} (batch ${batch})`,
        config: {
          ...base,
          name,
          out: join(dir, name),
          batch,
          tasks: [{ ...base.tasks[0], lambda: l1 }, { ...base.tasks[1], lambda: l2 }],
        },
      });
    }
  }
  return runs;
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
