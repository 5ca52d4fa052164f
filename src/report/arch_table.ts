/**
 * The paper's Table 11: backbones trained as single-task baselines on the same data and
 * seeds, beside the method — test ACC and F1 (weighted) of one task, parameters, GFLOPs
 * (multiply-adds per image) and training throughput, mean ± std over repeats.
 * @module
 */
import { csvText, labelThenFigures, markdownTable } from "./markdown.ts";
import {
  cellsOf,
  formatPercent,
  type LabelledRun,
  meanStd,
  repeatsFooter,
  withStd,
} from "./tables.ts";

/** One row of Table 11. */
export interface ArchRow {
  /** The row's label: the architecture, or the method. */
  model: string;
  /** The task whose test figures the row shows. */
  task: string;
  /** Runs averaged. */
  n: number;
  accuracy: number;
  f1_weighted: number;
  /** Trained parameters, millions. */
  params_m?: number;
  /** Multiply-adds per image, billions. */
  gflops?: number;
  /** Training images per second. */
  train_images_per_second?: number;
  /** Standard deviations over the runs (more than one). */
  std?: { accuracy: number; f1_weighted: number; train_images_per_second?: number };
}

/** Table 11's rows for `task` (cells without that task are left out). */
export function archRows(runs: readonly LabelledRun[], task: string): ArchRow[] {
  const rows: ArchRow[] = [];
  for (const cell of cellsOf(runs)) {
    const have = cell.runs.filter((r) => r.result.tasks[task]);
    if (have.length === 0) continue;
    const acc = meanStd(have.map((r) => r.result.tasks[task].test.accuracy));
    const f1 = meanStd(have.map((r) => r.result.tasks[task].test.f1_weighted));
    const speed = have.flatMap((r) =>
      r.result.trainImagesPerSecond === undefined ? [] : [r.result.trainImagesPerSecond]
    );
    const ips = speed.length ? meanStd(speed) : undefined;
    const model = have[0].result.model;
    rows.push({
      model: cell.label,
      task,
      n: have.length,
      accuracy: acc.mean,
      f1_weighted: f1.mean,
      ...(model ? { params_m: model.params / 1e6, gflops: model.gflops } : {}),
      ...(ips ? { train_images_per_second: ips.mean } : {}),
      ...(acc.std !== undefined
        ? {
          std: {
            accuracy: acc.std,
            f1_weighted: f1.std!,
            ...(ips?.std !== undefined ? { train_images_per_second: ips.std } : {}),
          },
        }
        : {}),
    });
  }
  return rows;
}

const fixed = (digits: number) => (v: number | undefined) =>
  v === undefined ? "—" : v.toFixed(digits);

/** Table 11 as markdown, for `task`. */
export function archTable(runs: readonly LabelledRun[], task: string): string {
  const rows = archRows(runs, task);
  const header = ["Model", "ACC", "F1", "Params (M)", "GFLOPs", "Train img/s"];
  const cells = rows.map((r) => [
    r.model,
    withStd(formatPercent, r.accuracy, r.std?.accuracy),
    withStd(formatPercent, r.f1_weighted, r.std?.f1_weighted),
    fixed(2)(r.params_m),
    fixed(2)(r.gflops),
    withStd(fixed(1), r.train_images_per_second, r.std?.train_images_per_second),
  ]);
  return `**${task}**\n\n${markdownTable(header, labelThenFigures(header), cells)}` +
    repeatsFooter(cellsOf(runs).filter((c) => c.runs.some((r) => r.result.tasks[task])));
}

/** Table 11 as CSV. */
export function archCsv(runs: readonly LabelledRun[], task: string): string {
  const header = [
    "model",
    "task",
    "n",
    "accuracy",
    "f1_weighted",
    "params_m",
    "gflops",
    "train_images_per_second",
    "accuracy_std",
    "f1_weighted_std",
  ];
  return csvText(
    header,
    archRows(runs, task).map((r) => [
      r.model,
      r.task,
      r.n,
      r.accuracy,
      r.f1_weighted,
      r.params_m,
      r.gflops,
      r.train_images_per_second,
      r.std?.accuracy,
      r.std?.f1_weighted,
    ]),
  );
}

/** Table 11 as JSON (an array of ArchRow). */
export function archJson(runs: readonly LabelledRun[], task: string): string {
  return JSON.stringify(archRows(runs, task), null, 2);
}
