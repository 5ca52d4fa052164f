/**
 * The table of `deno task vary`: one row per variant of a run (one option changed), and
 * per task every test figure the variants' runs have — ACC and F1-macro for class tasks,
 * PC, MAE and RMSE where a task predicts a score — as mean ± sample std over the row's
 * repeats (folds × seeds), with the training time. Figures are read from the results as
 * they are, so a table mixes class and score variants of one task (e.g. beauty as grades,
 * as a score, as a rating distribution), a figure a variant lacks showing `—`.
 * @module
 */
import { csvText, labelThenFigures, markdownTable } from "./markdown.ts";
import { formatDuration, formatPercent, type LabelledRun, meanStd } from "./tables.ts";
import type { RunResult } from "../train/result.ts";

/** A figure of the table: its key in `tasks.<name>.test`, header, and how it prints. */
interface Figure {
  key: string;
  header: string;
  format: (v: number | undefined) => string;
}

const decimals = (d: number) => (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(d);

/** Figures in column order; a column appears when any run has the figure. */
const FIGURES: readonly Figure[] = [
  { key: "accuracy", header: "ACC", format: formatPercent },
  { key: "f1_macro", header: "F1-macro", format: formatPercent },
  { key: "f1_weighted", header: "F1", format: formatPercent },
  { key: "pc", header: "PC", format: decimals(4) },
  { key: "mae", header: "MAE", format: decimals(4) },
  { key: "rmse", header: "RMSE", format: decimals(4) },
];

/** A test figure of one task of a run, when it has it. */
function figureOf(result: RunResult, task: string, key: string): number | undefined {
  const test = result.tasks[task]?.test as unknown as Record<string, unknown> | undefined;
  const v = test?.[key];
  return typeof v === "number" ? v : undefined;
}

/** One row: a variant and the runs that repeat it. */
interface Row {
  label: string;
  runs: LabelledRun[];
}

function rowsOf(runs: readonly LabelledRun[]): Row[] {
  const rows = new Map<string, Row>();
  for (const r of runs) {
    const row = rows.get(r.label) ?? { label: r.label, runs: [] };
    row.runs.push(r);
    rows.set(r.label, row);
  }
  return [...rows.values()];
}

/** Every task of the runs, in order of first appearance. */
function tasksOf(runs: readonly LabelledRun[]): string[] {
  return [...new Set(runs.flatMap((r) => Object.keys(r.result.tasks)))];
}

/** The columns: [task, figure] pairs some run has. */
function columnsOf(runs: readonly LabelledRun[]): [string, Figure][] {
  return tasksOf(runs).flatMap((task) =>
    FIGURES.filter((f) => runs.some((r) => figureOf(r.result, task, f.key) !== undefined))
      .map((f): [string, Figure] => [task, f])
  );
}

/** Mean and std of the row's values of a figure; undefined when no run of the row has it. */
function cellStats(row: Row, values: (r: RunResult) => number | undefined) {
  const xs = row.runs.map((r) => values(r.result)).filter((v): v is number => v !== undefined);
  return xs.length === 0 ? undefined : meanStd(xs);
}

function formatCell(
  format: (v: number | undefined) => string,
  s: ReturnType<typeof cellStats>,
): string {
  if (!s) return "—";
  return s.std === undefined ? format(s.mean) : `${format(s.mean)} ± ${format(s.std)}`;
}

/**
 * The Markdown table: variant, runs, per task its figures (mean ± std), training time.
 * @param runs the finished runs, labelled by variant
 * @returns the table with a footer saying what ± means
 */
export function variantsTable(runs: readonly LabelledRun[]): string {
  const rows = rowsOf(runs);
  const columns = columnsOf(runs);
  const header = [
    "Variant",
    "Runs",
    ...columns.map(([task, f]) => `${task} ${f.header}`),
    "Train time",
  ];
  const body = rows.map((row) => [
    row.label,
    String(row.runs.length),
    ...columns.map(([task, f]) =>
      formatCell(f.format, cellStats(row, (r) => figureOf(r, task, f.key)))
    ),
    formatCell(formatDuration, cellStats(row, (r) => r.trainSeconds)),
  ]);
  const repeated = rows.some((r) => r.runs.length > 1);
  return markdownTable(header, labelThenFigures(header), body) +
    (repeated
      ? "\n\nMean ± sample standard deviation (n − 1) over each row's runs; ACC and F1 in %, " +
        "PC, MAE and RMSE on the rating scale."
      : "");
}

/** The same figures as CSV: unrounded, one `<figure>_std` column per figure. */
export function variantsCsv(runs: readonly LabelledRun[]): string {
  const rows = rowsOf(runs);
  const columns = columnsOf(runs);
  const names = columns.map(([task, f]) => `${task}_${f.key}`);
  const header = [
    "variant",
    "runs",
    ...names.flatMap((n) => [n, `${n}_std`]),
    "train_seconds",
    "train_seconds_std",
  ];
  const body = rows.map((row) => {
    const stats = [
      ...columns.map(([task, f]) => cellStats(row, (r) => figureOf(r, task, f.key))),
      cellStats(row, (r) => r.trainSeconds),
    ];
    return [
      row.label,
      String(row.runs.length),
      ...stats.flatMap((s) => [s?.mean, s?.std]),
    ];
  });
  return csvText(header, body);
}

/** The rows as JSON: per variant its runs' figures, their mean and std. */
export function variantsJson(runs: readonly LabelledRun[]): string {
  const rows = rowsOf(runs);
  const columns = columnsOf(runs);
  return JSON.stringify(
    rows.map((row) => ({
      variant: row.label,
      n: row.runs.length,
      tasks: Object.fromEntries(
        tasksOf(row.runs).map((task) => [
          task,
          Object.fromEntries(
            columns.filter(([t]) => t === task).flatMap(([, f]) => {
              const s = cellStats(row, (r) => figureOf(r, task, f.key));
              return s
                ? [[f.key, { mean: s.mean, ...(s.std === undefined ? {} : { std: s.std }) }]]
                : [];
            }),
          ),
        ]),
      ),
      runs: row.runs.map((r) => ({
        run: r.result.name,
        out: r.result.out,
        ...(r.fold === undefined ? {} : { fold: r.fold }),
        ...(r.seed === undefined ? {} : { seed: r.seed }),
      })),
    })),
    null,
    2,
  );
}
