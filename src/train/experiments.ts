/**
 * The paper's experiments as groups of independent runs under one folder: the λ1:λ2
 * sweep (Tables 9–10) and the comparison of baselines and the method with and without AFF
 * (Tables 3–8). A run whose `metrics.json` exists is reused; one with a `last.safetensors`
 * is resumed; so a killed sweep continues where it stopped.
 * @module
 */
import { join } from "node:path";
import type { RunResult } from "./result.ts";
import type { RunConfig } from "./run_config.ts";
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
    const metrics = join(run.config.out, "metrics.json");
    if (await exists(metrics)) {
      opts.onRun?.(i, run, "reused");
      out.push({ label: run.label, result: JSON.parse(await Deno.readTextFile(metrics)) });
      continue;
    }
    const resume = await exists(join(run.config.out, "last.safetensors"));
    opts.onRun?.(i, run, resume ? "resumed" : "new");
    out.push({ label: run.label, result: await train(run.config, { ...opts, resume }) });
  }
  return out;
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
