/**
 * The paper's tables from run results, as Markdown (for report.md and the terminal), CSV
 * and JSON (for spreadsheets and scripts).
 *
 * Conventions: Markdown shows accuracies and F1 scores as percentages with 2 decimals
 * (`63.24`), the train − test gap in percentage points with a sign when negative, and
 * durations as `42.5 s`, `12m 05s` or `1h 02m` (seconds below a minute, minutes and seconds
 * below an hour, hours and minutes above). "F1" is the support-weighted F1 (the paper's F1);
 * "ACC" is test accuracy, which the comparison table repeats as "Test ACC" as the paper
 * does. A value a run does not have shows as `—`. CSV and JSON carry unrounded fractions
 * 0–1 and seconds, with snake_case keys like metrics.json's `f1_macro`.
 * @module
 */
import { csvText, markdownTable } from "./markdown.ts";
import type { RunResult } from "../train/result.ts";

/** A finished run with its row label (e.g. "ResNet18 + AFF", "1:0.6 (batch 32)"). */
export interface LabelledRun {
  label: string;
  result: RunResult;
}

/** One method × task row of the comparison (Tables 3–8). */
export interface ComparisonRow {
  /** Row label. */
  method: string;
  task: string;
  /** Run name. */
  run: string;
  /** Test accuracy (the paper's ACC). */
  accuracy: number;
  f1_weighted: number;
  f1_macro: number;
  train_accuracy: number;
  test_accuracy: number;
  /** train_accuracy − test_accuracy. */
  gap: number;
  /** The run's total training wall time. */
  train_seconds: number;
}

/** One row of the weight-ratio sweep (Tables 9–10). */
export interface SweepRow {
  /** Row label. */
  label: string;
  /** λ per task joined with ":" in the table's task order, e.g. "1:0.6". */
  ratio: string;
  batch: number;
  /** Test metrics per task the run has. */
  tasks: Record<string, { accuracy: number; f1_weighted: number; f1_macro: number }>;
}

const MISSING = "—";

/**
 * A fraction as a percentage with 2 decimals ("0.63241" → "63.24"); `—` when absent.
 * @param fraction a value 0–1 (a gap may be negative)
 * @returns the formatted percentage, without a % sign
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPercent } from "./tables.ts";
 * assert.equal(formatPercent(0.632412), "63.24");
 * ```
 */
export function formatPercent(fraction: number | undefined): string {
  if (fraction === undefined || !Number.isFinite(fraction)) return MISSING;
  const s = (fraction * 100).toFixed(2);
  return s === "-0.00" ? "0.00" : s;
}

/**
 * A duration: "42.5 s" below a minute, "12m 05s" below an hour, "1h 02m" above.
 * @param seconds wall time in seconds
 * @returns the formatted duration; `—` when absent
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatDuration } from "./tables.ts";
 * assert.equal(formatDuration(3725), "1h 02m");
 * ```
 */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return MISSING;
  if (Math.round(seconds * 10) < 600) return `${(Math.round(seconds * 10) / 10).toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) {
    return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
  }
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** Task names over all runs, in order of first appearance. */
function taskOrder(runs: readonly LabelledRun[]): string[] {
  const seen = new Set<string>();
  for (const r of runs) for (const t of Object.keys(r.result.tasks)) seen.add(t);
  return [...seen];
}

/**
 * Table (a): one run, one row per task — ACC, F1 (weighted), macro-F1, train ACC, test
 * ACC, the gap and the run's training time.
 * @param result the run
 * @returns a Markdown table
 */
export function runTable(result: RunResult): string {
  const rows = Object.entries(result.tasks).map(([task, t]) => [
    task,
    formatPercent(t.test.accuracy),
    formatPercent(t.test.f1_weighted),
    formatPercent(t.test.f1_macro),
    formatPercent(t.train.accuracy),
    formatPercent(t.test.accuracy),
    formatPercent(t.gap),
    formatDuration(result.trainSeconds),
  ]);
  return markdownTable(
    ["Task", "ACC", "F1 (weighted)", "macro-F1", "Train ACC", "Test ACC", "Gap", "Training time"],
    ["left", "right", "right", "right", "right", "right", "right", "right"],
    rows,
  );
}

/**
 * The comparison's rows: one per run and task the run has, tasks in order of first
 * appearance, runs in input order within a task. Single-task baselines fill their task only.
 * @param runs labelled runs
 * @returns the rows
 */
export function comparisonRows(runs: readonly LabelledRun[]): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  for (const task of taskOrder(runs)) {
    for (const { label, result } of runs) {
      const t = result.tasks[task];
      if (!t) continue;
      rows.push({
        method: label,
        task,
        run: result.name,
        accuracy: t.test.accuracy,
        f1_weighted: t.test.f1_weighted,
        f1_macro: t.test.f1_macro,
        train_accuracy: t.train.accuracy,
        test_accuracy: t.test.accuracy,
        gap: t.gap,
        train_seconds: result.trainSeconds,
      });
    }
  }
  return rows;
}

/**
 * Table (b), Tables 3–8 of the paper: per task a bold caption line and a table with rows =
 * methods and columns ACC, F1, training time, training ACC, test ACC, difference.
 * @param runs labelled runs
 * @returns Markdown: one captioned table per task, separated by blank lines
 */
export function comparisonTable(runs: readonly LabelledRun[]): string {
  const rows = comparisonRows(runs);
  return taskOrder(runs).map((task) => {
    const cells = rows.filter((r) => r.task === task).map((r) => [
      r.method,
      formatPercent(r.accuracy),
      formatPercent(r.f1_weighted),
      formatDuration(r.train_seconds),
      formatPercent(r.train_accuracy),
      formatPercent(r.test_accuracy),
      formatPercent(r.gap),
    ]);
    const table = markdownTable(
      ["Method", "ACC", "F1", "Training time", "Training ACC", "Test ACC", "Difference"],
      ["left", "right", "right", "right", "right", "right", "right"],
      cells,
    );
    return `**${task}**\n\n${table}`;
  }).join("\n\n");
}

/**
 * The comparison as CSV, one line per method and task.
 * @param runs labelled runs
 * @returns CSV text with a header line
 */
export function comparisonCsv(runs: readonly LabelledRun[]): string {
  const keys = [
    "method",
    "task",
    "run",
    "accuracy",
    "f1_weighted",
    "f1_macro",
    "train_accuracy",
    "test_accuracy",
    "gap",
    "train_seconds",
  ] as const;
  return csvText(keys, comparisonRows(runs).map((r) => keys.map((k) => r[k])));
}

/**
 * The comparison as JSON: an array of ComparisonRow.
 * @param runs labelled runs
 * @returns indented JSON text
 */
export function comparisonJson(runs: readonly LabelledRun[]): string {
  return JSON.stringify(comparisonRows(runs), null, 2);
}

/**
 * The sweep's rows in input order; the ratio lists each run's λ in the order of the tasks.
 * @param runs labelled runs (e.g. from planSweep)
 * @returns the rows
 */
export function sweepRows(runs: readonly LabelledRun[]): SweepRow[] {
  const tasks = taskOrder(runs);
  return runs.map(({ label, result }) => ({
    label,
    ratio: tasks.map((t) => (t in result.lambdas ? String(result.lambdas[t]) : MISSING)).join(":"),
    batch: result.batch,
    tasks: Object.fromEntries(
      tasks.filter((t) => result.tasks[t]).map((t) => {
        const m = result.tasks[t].test;
        return [t, { accuracy: m.accuracy, f1_weighted: m.f1_weighted, f1_macro: m.f1_macro }];
      }),
    ),
  }));
}

/** Bolds the cells that show the column's largest value (ties all bold). */
function boldBest(column: string[]): string[] {
  const values = column.map((c) => (c === MISSING ? -Infinity : Number(c)));
  const best = Math.max(...values);
  // Compare the shown, rounded values: two cells that read the same are both best.
  return column.map((c, i) => (values[i] === best && c !== MISSING ? `**${c}**` : c));
}

/**
 * Table (c), Tables 9–10 of the paper: rows = λ1:λ2 ratio and batch size, columns = test
 * ACC and F1 per task; the best value of each metric column is bold.
 * @param runs labelled runs
 * @returns a Markdown table
 */
export function sweepTable(runs: readonly LabelledRun[]): string {
  const tasks = taskOrder(runs);
  const rows = sweepRows(runs);
  const columns: string[][] = [];
  for (const t of tasks) {
    columns.push(boldBest(rows.map((r) => formatPercent(r.tasks[t]?.accuracy))));
    columns.push(boldBest(rows.map((r) => formatPercent(r.tasks[t]?.f1_weighted))));
  }
  const ratioHeader = tasks.map((_, i) => `λ${i + 1}`).join(":");
  return markdownTable(
    [ratioHeader, "Batch", ...tasks.flatMap((t) => [`${t} ACC`, `${t} F1`])],
    ["left", "right", ...tasks.flatMap(() => ["right", "right"] as const)],
    rows.map((r, i) => [r.ratio, String(r.batch), ...columns.map((c) => c[i])]),
  );
}

/**
 * The sweep as CSV: label, ratio, batch, then accuracy, f1_weighted and f1_macro per task
 * (`<task>_accuracy`, …).
 * @param runs labelled runs
 * @returns CSV text with a header line
 */
export function sweepCsv(runs: readonly LabelledRun[]): string {
  const tasks = taskOrder(runs);
  const metrics = ["accuracy", "f1_weighted", "f1_macro"] as const;
  return csvText(
    ["label", "ratio", "batch", ...tasks.flatMap((t) => metrics.map((m) => `${t}_${m}`))],
    sweepRows(runs).map((r) => [
      r.label,
      r.ratio,
      r.batch,
      ...tasks.flatMap((t) => metrics.map((m) => r.tasks[t]?.[m])),
    ]),
  );
}

/**
 * The sweep as JSON: an array of SweepRow.
 * @param runs labelled runs
 * @returns indented JSON text
 */
export function sweepJson(runs: readonly LabelledRun[]): string {
  return JSON.stringify(sweepRows(runs), null, 2);
}
