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
 *
 * Repeated runs (a cell run over cross-validation folds × seeds, runs sharing a label and
 * a `cell`): every figure is the mean over the cell's runs, shown as `mean ± std` with the
 * sample standard deviation (n − 1), which a footer line under the Markdown says; a cell of
 * one run shows its single number. CSV adds a `runs` column and a `<figure>_std` column per
 * figure (empty for a single run); JSON adds `n`, `std` (when n > 1) and `runs`, every
 * run's own figures with its fold and seed.
 * @module
 */
import { csvText, labelThenFigures, markdownTable } from "./markdown.ts";
import { isScoreMetrics, type RunResult } from "../train/result.ts";

/** A finished run with its row label (e.g. "ResNet18 + AFF", "1:0.6 (batch 32)"). */
export interface LabelledRun {
  /** The row label; runs with the same label and `cell` are averaged into one row. */
  label: string;
  /** The run's result (its `result.json`). */
  result: RunResult;
  /**
   * The table cell the run repeats: runs with the same label and cell are one row, their
   * figures averaged. Absent: the run is a row of its own.
   */
  cell?: string;
  /** Cross-validation fold of a repeated run. */
  fold?: number;
  /** Seed of a repeated run. */
  seed?: number;
}

/** Where one of a cell's runs came from, in the JSON's `runs`. */
export interface RunOrigin {
  /** Run name. */
  run: string;
  /** Run folder. */
  out: string;
  fold?: number;
  seed?: number;
}

/** The figures of a comparison row. */
export type ComparisonFigures = Pick<
  ComparisonRow,
  | "accuracy"
  | "f1_weighted"
  | "f1_macro"
  | "train_accuracy"
  | "test_accuracy"
  | "gap"
  | "train_seconds"
  | "pc"
  | "mae"
  | "rmse"
>;

/** Test metrics of one task in a sweep row. */
export interface SweepFigures {
  accuracy: number;
  f1_weighted: number;
  f1_macro: number;
  /** Score and dist tasks: PC, MAE and RMSE of the predicted score. */
  pc?: number;
  mae?: number;
  rmse?: number;
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
  /**
   * Score and dist tasks (every run of the row): Pearson correlation of the predicted score
   * with the raters' mean score; absent for a class task.
   */
  pc?: number;
  /** Score and dist tasks: mean absolute error of the predicted score (1–5 scale). */
  mae?: number;
  /** Score and dist tasks: root-mean-square error of the predicted score (1–5 scale). */
  rmse?: number;
  /** Runs averaged in the row: present when its runs repeat a cell (folds × seeds). */
  n?: number;
  /** Sample standard deviation (n − 1) of each figure, when n > 1. */
  std?: ComparisonFigures;
  /** Each run's own figures, when its runs repeat a cell. */
  runs?: (RunOrigin & ComparisonFigures)[];
}

/** One row of the weight-ratio sweep (Tables 9–10). */
export interface SweepRow {
  /** Row label. */
  label: string;
  /** λ per task joined with ":" in the table's task order, e.g. "1:0.6". */
  ratio: string;
  batch: number;
  /** Test metrics per task the run has. */
  tasks: Record<string, SweepFigures>;
  /** Runs averaged in the row: present when its runs repeat a cell (folds × seeds). */
  n?: number;
  /** Sample standard deviation (n − 1) of each metric, when n > 1. */
  std?: Record<string, SweepFigures>;
  /** Each run's own metrics, when its runs repeat a cell. */
  runs?: (RunOrigin & { tasks: Record<string, SweepFigures> })[];
}

const MISSING = "—";

/** Mean and sample standard deviation of a cell's values. */
export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n − 1); absent for a single value. */
  std?: number;
  n: number;
}

/**
 * The mean and sample standard deviation (n − 1) of values; a single value has no std.
 * @param values the figures of a cell's runs (at least one)
 * @returns mean, std (n > 1) and n
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { meanStd } from "./tables.ts";
 * assert.deepEqual(meanStd([1, 3]), { mean: 2, std: Math.SQRT2, n: 2 });
 * assert.deepEqual(meanStd([5]), { mean: 5, n: 1 });
 * ```
 */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, n };
  const ss = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** One row of a table: a run, or the runs repeating one cell. */
export interface Cell {
  label: string;
  /** The repeated cell's name; undefined for a run that is a row of its own. */
  cell?: string;
  runs: LabelledRun[];
}

/** Groups runs into rows: those sharing a label and a cell, in order of first appearance. */
export function cellsOf(runs: readonly LabelledRun[]): Cell[] {
  const out: Cell[] = [];
  const byKey = new Map<string, Cell>();
  for (const r of runs) {
    if (r.cell === undefined) {
      out.push({ label: r.label, runs: [r] });
      continue;
    }
    const key = JSON.stringify([r.label, r.cell]);
    let c = byKey.get(key);
    if (!c) {
      c = { label: r.label, cell: r.cell, runs: [] };
      byKey.set(key, c);
      out.push(c);
    }
    c.runs.push(r);
  }
  return out;
}

/** A run's origin for the JSON's `runs`. */
function origin(r: LabelledRun): RunOrigin {
  return {
    run: r.result.name,
    out: r.result.out,
    ...(r.fold === undefined ? {} : { fold: r.fold }),
    ...(r.seed === undefined ? {} : { seed: r.seed }),
  };
}

/** Per key, the mean over `items` and (more than one item) the std: `[means, stds]`. */
function aggregate<K extends string>(
  items: readonly Record<K, number>[],
  keys: readonly K[],
): [Record<K, number>, Record<K, number> | undefined] {
  const mean = {} as Record<K, number>, std = {} as Record<K, number>;
  for (const k of keys) {
    const s = meanStd(items.map((x) => x[k]));
    mean[k] = s.mean;
    if (s.std !== undefined) std[k] = s.std;
  }
  return [mean, items.length > 1 ? std : undefined];
}

/** `63.24 ± 1.05` (a single run: `63.24`) with the given formatter. */
export function withStd(
  format: (v: number | undefined) => string,
  mean: number | undefined,
  std: number | undefined,
): string {
  const m = format(mean);
  return std === undefined || m === MISSING ? m : `${m} ± ${format(std)}`;
}

/** "1–5", "1, 3", "2": sorted distinct numbers, runs of three or more as ranges. */
function numberList(values: Iterable<number>): string {
  const xs = [...new Set(values)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length; i++) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    if (j >= i + 2) parts.push(`${xs[i]}–${xs[j]}`);
    else for (let k = i; k <= j; k++) parts.push(String(xs[k]));
    i = j;
  }
  return parts.join(", ");
}

/**
 * The footer under a table whose rows average repeated runs: what ± means and over what;
 * "" when every row is a single run.
 */
export function repeatsFooter(cells: readonly Cell[]): string {
  if (!cells.some((c) => c.runs.length > 1)) return "";
  const runs = cells.flatMap((c) => c.runs);
  const folds = runs.flatMap((r) => (r.fold === undefined ? [] : [r.fold]));
  const seeds = runs.flatMap((r) => (r.seed === undefined ? [] : [r.seed]));
  const list = (what: string, xs: number[]) =>
    xs.length === 0 ? "" : `${what}${new Set(xs).size === 1 ? "" : "s"} ${numberList(xs)}`;
  const over = [list("fold", folds), list("seed", seeds)].filter((x) => x).join(" × ");
  const ns = cells.map((c) => c.runs.length);
  const [lo, hi] = [Math.min(...ns), Math.max(...ns)];
  const count = lo === hi ? `${lo}` : `${lo}–${hi}`;
  return `\n\nMean ± sample standard deviation (n − 1) over ${count} runs per row` +
    `${over ? ` (${over})` : ""}; a row of one run shows its value.`;
}

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
 * A score figure (PC, MAE, RMSE) with 4 decimals ("0.8123"); `—` when absent.
 * @param v the value
 * @returns the formatted value
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatScoreFigure } from "./tables.ts";
 * assert.equal(formatScoreFigure(0.81234), "0.8123");
 * assert.equal(formatScoreFigure(undefined), "—");
 * ```
 */
export function formatScoreFigure(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? MISSING : v.toFixed(4);
}

/** The score figures' columns, in order. */
const SCORE_FIGURES = ["pc", "mae", "rmse"] as const;
/** Their headers. */
const SCORE_HEADERS = ["PC", "MAE", "RMSE"];

/**
 * Table (a): one run, one row per task — ACC, F1 (weighted), macro-F1, train ACC, test
 * ACC, the gap and the run's training time; when a task predicts a score (kinds score and
 * dist) also PC, MAE and RMSE of the predicted score on the 1–5 scale (`—` for class
 * tasks), its accuracies being those of the grade the prediction implies.
 * @param result the run
 * @returns a Markdown table
 */
export function runTable(result: RunResult): string {
  const scored = Object.values(result.tasks).some((t) => isScoreMetrics(t.test));
  const rows = Object.entries(result.tasks).map(([task, t]) => {
    const test = t.test;
    return [
      task,
      formatPercent(test.accuracy),
      formatPercent(test.f1_weighted),
      formatPercent(test.f1_macro),
      formatPercent(t.train.accuracy),
      formatPercent(test.accuracy),
      formatPercent(t.gap),
      ...(scored
        ? SCORE_FIGURES.map((k) => formatScoreFigure(isScoreMetrics(test) ? test[k] : undefined))
        : []),
      formatDuration(result.trainSeconds),
    ];
  });
  const header = [
    "Task",
    "ACC",
    "F1 (weighted)",
    "macro-F1",
    "Train ACC",
    "Test ACC",
    "Gap",
    ...(scored ? SCORE_HEADERS : []),
    "Training time",
  ];
  return markdownTable(header, labelThenFigures(header), rows);
}

/**
 * The comparison's rows: one per run and task the run has, tasks in order of first
 * appearance, runs in input order within a task. Single-task baselines fill their task only.
 * A row whose runs all predict a score for the task (kinds score and dist) also has `pc`,
 * `mae` and `rmse`.
 * @param runs labelled runs
 * @returns the rows
 */
export function comparisonRows(runs: readonly LabelledRun[]): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  const cells = cellsOf(runs);
  for (const task of taskOrder(runs)) {
    for (const cell of cells) {
      const have = cell.runs.filter((r) => r.result.tasks[task]);
      if (have.length === 0) continue;
      const scored = have.every((r) => isScoreMetrics(r.result.tasks[task].test));
      const figures = have.map(({ result }): ComparisonFigures => {
        const t = result.tasks[task];
        const f: ComparisonFigures = {
          accuracy: t.test.accuracy,
          f1_weighted: t.test.f1_weighted,
          f1_macro: t.test.f1_macro,
          train_accuracy: t.train.accuracy,
          test_accuracy: t.test.accuracy,
          gap: t.gap,
          train_seconds: result.trainSeconds,
        };
        if (scored && isScoreMetrics(t.test)) {
          Object.assign(f, { pc: t.test.pc, mae: t.test.mae, rmse: t.test.rmse });
        }
        return f;
      });
      const [mean, std] = aggregate(
        figures as Required<ComparisonFigures>[],
        scored ? ALL_COMPARISON_FIGURES : COMPARISON_FIGURES,
      );
      const row: ComparisonRow = {
        method: cell.label,
        task,
        run: cell.cell ?? have[0].result.name,
        ...mean,
      };
      if (cell.cell !== undefined) {
        row.n = have.length;
        if (std) row.std = std;
        row.runs = have.map((r, i) => ({ ...origin(r), ...figures[i] }));
      }
      rows.push(row);
    }
  }
  return rows;
}

/** The figures of a comparison row, in CSV order. */
const COMPARISON_FIGURES = [
  "accuracy",
  "f1_weighted",
  "f1_macro",
  "train_accuracy",
  "test_accuracy",
  "gap",
  "train_seconds",
] as const;
/** …and a score task's PC, MAE and RMSE (CSV columns after them). */
const ALL_COMPARISON_FIGURES = [...COMPARISON_FIGURES, ...SCORE_FIGURES] as const;

/**
 * Table (b), Tables 3–8 of the paper: per task a bold caption line and a table with rows =
 * methods and columns ACC, F1, training time, training ACC, test ACC, difference; a task
 * that predicts a score (kinds score and dist) adds PC, MAE and RMSE (`—` for a row whose
 * runs do not all have them).
 * @param runs labelled runs
 * @returns Markdown: one captioned table per task, separated by blank lines
 */
export function comparisonTable(runs: readonly LabelledRun[]): string {
  const rows = comparisonRows(runs);
  const tables = taskOrder(runs).map((task) => {
    const taskRows = rows.filter((r) => r.task === task);
    const scored = taskRows.some((r) => r.pc !== undefined);
    const cells = taskRows.map((r) => [
      r.method,
      withStd(formatPercent, r.accuracy, r.std?.accuracy),
      withStd(formatPercent, r.f1_weighted, r.std?.f1_weighted),
      withStd(formatDuration, r.train_seconds, r.std?.train_seconds),
      withStd(formatPercent, r.train_accuracy, r.std?.train_accuracy),
      withStd(formatPercent, r.test_accuracy, r.std?.test_accuracy),
      withStd(formatPercent, r.gap, r.std?.gap),
      ...(scored ? SCORE_FIGURES.map((k) => withStd(formatScoreFigure, r[k], r.std?.[k])) : []),
    ]);
    const header = [
      "Method",
      "ACC",
      "F1",
      "Training time",
      "Training ACC",
      "Test ACC",
      "Difference",
      ...(scored ? SCORE_HEADERS : []),
    ];
    const table = markdownTable(header, labelThenFigures(header), cells);
    return `**${task}**\n\n${table}`;
  }).join("\n\n");
  return tables + repeatsFooter(cellsOf(runs));
}

/**
 * The comparison as CSV, one line per method and task; when a row has a score task's
 * figures, columns pc, mae and rmse follow train_seconds (empty for class tasks).
 * @param runs labelled runs
 * @returns CSV text with a header line
 */
export function comparisonCsv(runs: readonly LabelledRun[]): string {
  const rows = comparisonRows(runs);
  const figures = rows.some((r) => r.pc !== undefined)
    ? ALL_COMPARISON_FIGURES
    : COMPARISON_FIGURES;
  const keys = ["method", "task", "run", ...figures] as const;
  const repeated = rows.some((r) => r.n !== undefined);
  const header = repeated ? [...keys, "runs", ...figures.map((k) => `${k}_std`)] : [...keys];
  return csvText(
    header,
    rows.map((r) => [
      ...keys.map((k) => r[k]),
      ...(repeated ? [r.n ?? 1, ...figures.map((k) => r.std?.[k])] : []),
    ]),
  );
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
  const figures = (result: RunResult): Record<string, SweepFigures> =>
    Object.fromEntries(
      tasks.filter((t) => result.tasks[t]).map((t) => {
        const m = result.tasks[t].test;
        const f: SweepFigures = {
          accuracy: m.accuracy,
          f1_weighted: m.f1_weighted,
          f1_macro: m.f1_macro,
        };
        if (isScoreMetrics(m)) Object.assign(f, { pc: m.pc, mae: m.mae, rmse: m.rmse });
        return [t, f];
      }),
    );
  return cellsOf(runs).map((cell) => {
    const first = cell.runs[0].result;
    const each = cell.runs.map((r) => figures(r.result));
    const row: SweepRow = {
      label: cell.label,
      ratio: tasks.map((t) => (t in first.lambdas ? String(first.lambdas[t]) : MISSING)).join(
        ":",
      ),
      batch: first.batch,
      tasks: {},
    };
    const std: Record<string, SweepFigures> = {};
    for (const t of Object.keys(each[0])) {
      const metrics = "pc" in each[0][t] ? ALL_SWEEP_METRICS : SWEEP_METRICS;
      const [mean, s] = aggregate(each.map((f) => f[t] as Required<SweepFigures>), metrics);
      row.tasks[t] = mean;
      if (s) std[t] = s;
    }
    if (cell.cell !== undefined) {
      row.n = cell.runs.length;
      if (cell.runs.length > 1) row.std = std;
      row.runs = cell.runs.map((r, i) => ({ ...origin(r), tasks: each[i] }));
    }
    return row;
  });
}

/** The class figures of a sweep row's task. */
const SWEEP_METRICS = ["accuracy", "f1_weighted", "f1_macro"] as const;
/** …and with a score task's PC, MAE and RMSE. */
const ALL_SWEEP_METRICS = [...SWEEP_METRICS, ...SCORE_FIGURES] as const;

/** Tasks of the runs that predict a score (their test metrics carry PC). */
function scoreTasks(runs: readonly LabelledRun[]): Set<string> {
  return new Set(
    taskOrder(runs).filter((t) => runs.some((r) => isScoreMetrics(r.result.tasks[t]?.test))),
  );
}

/**
 * Bolds the cells that show the column's largest value (ties all bold); a cell's value is
 * its mean, before any " ± std".
 */
function boldBest(column: string[]): string[] {
  const values = column.map((c) => (c === MISSING ? -Infinity : Number(c.split(" ± ")[0])));
  const best = Math.max(...values);
  // Compare the shown, rounded values: two cells that read the same are both best.
  return column.map((c, i) => (values[i] === best && c !== MISSING ? `**${c}**` : c));
}

/**
 * Table (c), Tables 9–10 of the paper: rows = λ1:…:λT ratio and batch size, columns = test
 * ACC and F1 per task (and PC, MAE and RMSE for a task that predicts a score); the best
 * value of each ACC, F1 and PC column is bold (the largest; MAE and RMSE are errors, shown
 * as they are).
 * @param runs labelled runs
 * @returns a Markdown table
 */
export function sweepTable(runs: readonly LabelledRun[]): string {
  const tasks = taskOrder(runs);
  const scored = scoreTasks(runs);
  const rows = sweepRows(runs);
  const columns: string[][] = [];
  const headers: string[] = [];
  for (const t of tasks) {
    for (const m of ["accuracy", "f1_weighted"] as const) {
      columns.push(
        boldBest(rows.map((r) => withStd(formatPercent, r.tasks[t]?.[m], r.std?.[t]?.[m]))),
      );
    }
    headers.push(`${t} ACC`, `${t} F1`);
    if (scored.has(t)) {
      // PC is better higher (bold the best); MAE and RMSE are shown as they are.
      const score = (k: typeof SCORE_FIGURES[number]) =>
        rows.map((r) => withStd(formatScoreFigure, r.tasks[t]?.[k], r.std?.[t]?.[k]));
      columns.push(boldBest(score("pc")), score("mae"), score("rmse"));
      headers.push(`${t} PC`, `${t} MAE`, `${t} RMSE`);
    }
  }
  const ratioHeader = tasks.map((_, i) => `λ${i + 1}`).join(":");
  const header = [ratioHeader, "Batch", ...headers];
  return markdownTable(
    header,
    labelThenFigures(header),
    rows.map((r, i) => [r.ratio, String(r.batch), ...columns.map((c) => c[i])]),
  ) + repeatsFooter(cellsOf(runs));
}

/**
 * The sweep as CSV: label, ratio, batch, then accuracy, f1_weighted and f1_macro per task
 * (`<task>_accuracy`, …), and pc, mae, rmse for tasks that predict a score.
 * @param runs labelled runs
 * @returns CSV text with a header line
 */
export function sweepCsv(runs: readonly LabelledRun[]): string {
  const tasks = taskOrder(runs);
  const scored = scoreTasks(runs);
  const metricsOf = (t: string) => (scored.has(t) ? ALL_SWEEP_METRICS : SWEEP_METRICS);
  const rows = sweepRows(runs);
  const repeated = rows.some((r) => r.n !== undefined);
  const columns = tasks.flatMap((t) => metricsOf(t).map((m) => `${t}_${m}`));
  return csvText(
    [
      "label",
      "ratio",
      "batch",
      ...columns,
      ...(repeated ? ["runs", ...columns.map((c) => `${c}_std`)] : []),
    ],
    rows.map((r) => [
      r.label,
      r.ratio,
      r.batch,
      ...tasks.flatMap((t) => metricsOf(t).map((m) => r.tasks[t]?.[m])),
      ...(repeated
        ? [r.n ?? 1, ...tasks.flatMap((t) => metricsOf(t).map((m) => r.std?.[t]?.[m]))]
        : []),
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

/**
 * One run per row, whose test accuracy and F1 scores are the means of the row's runs (for
 * charts that draw one bar per row, e.g. sweepPlot); a row of one run is that run.
 * @param runs labelled runs, repeated cells included
 * @returns one labelled run per row, in row order
 */
export function cellMeans(runs: readonly LabelledRun[]): LabelledRun[] {
  return cellsOf(runs).map((cell) => {
    const first = cell.runs[0];
    if (cell.runs.length === 1) return first;
    const tasks = Object.fromEntries(
      Object.entries(first.result.tasks).map(([t, m]) => {
        const of = (k: "accuracy" | "f1_weighted" | "f1_macro") =>
          meanStd(cell.runs.map((r) => r.result.tasks[t].test[k])).mean;
        const test = {
          ...m.test,
          accuracy: of("accuracy"),
          f1_weighted: of("f1_weighted"),
          f1_macro: of("f1_macro"),
        };
        return [t, { ...m, test }];
      }),
    );
    return { label: cell.label, cell: cell.cell, result: { ...first.result, tasks } };
  });
}
