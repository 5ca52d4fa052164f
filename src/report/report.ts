/**
 * A run's report: `report.md` (the run table, validation scores, time per stage, the policy
 * and which blocks the tasks share, confusion matrices) next to the SVG plots it links by
 * relative name: `loss.svg`, `accuracy.svg`, `policy.svg`, `policy-path.svg`,
 * `task-weights.svg` (adaptive task weights), `confusion-<task>.svg`.
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { blockName } from "../models/config.ts";
import {
  accuracyPlot,
  confusionPlot,
  lossPlot,
  policyPathPlot,
  policyPlot,
  taskWeightsPlot,
} from "./plots.ts";
import { markdownTable } from "./markdown.ts";
import { isScoreMetrics, type RunResult, type TaskMetrics } from "../train/result.ts";
import { formatDuration, formatPercent, formatScoreFigure, runTable } from "./tables.ts";

/** A rendered report: Markdown text and SVG documents by file name. */
export interface RenderedReport {
  /** The text of report.md. */
  markdown: string;
  /** File name (e.g. "policy.svg") → SVG text. */
  svgs: Record<string, string>;
}

/** A file-name-safe form of a task name (config names are already [A-Za-z0-9_-]). */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

/**
 * The SVG file name of a task's confusion matrix.
 * @param task task name
 * @returns e.g. "confusion-beauty.svg"
 */
export function confusionFileName(task: string): string {
  return `confusion-${safeName(task)}.svg`;
}

/** "AdaShare multi-task ResNet18 with AFF", "ResNet18 baseline without AFF". */
function methodName(result: RunResult): string {
  const base = result.method === "adashare" ? "AdaShare multi-task ResNet18" : "ResNet18 baseline";
  return `${base} ${result.aff ? "with" : "without"} AFF`;
}

/**
 * Which tasks execute each block, as lines: blocks grouped by the set of tasks that run them.
 * @param policy task → 1/0 per block
 * @returns Markdown list lines
 */
function sharingLines(
  policy: Readonly<Record<string, readonly number[]>>,
  gates?: readonly string[],
): string[] {
  const tasks = Object.keys(policy);
  const blocks = Math.max(0, ...tasks.map((t) => policy[t].length));
  const groups = new Map<string, { users: string[]; blocks: string[] }>();
  for (let b = 0; b < blocks; b++) {
    const users = tasks.filter((t) => policy[t][b] === 1);
    const key = users.join("\u0000");
    if (!groups.has(key)) groups.set(key, { users, blocks: [] });
    groups.get(key)!.blocks.push(gates?.[b] ?? blockName(b));
  }
  const describe = (users: string[]): string => {
    if (users.length === 0) return "Skipped by every task";
    if (tasks.length === 1) return `Executed by ${users[0]}`;
    if (users.length === tasks.length) return `Shared by all tasks (${users.join(", ")})`;
    if (users.length === 1) return `${users[0]} only`;
    return `Shared by ${users.join(", ")}`;
  };
  // All tasks first, then smaller groups by size, skipped blocks last.
  const ordered = [...groups.values()].sort((a, b) =>
    (b.users.length || -1) - (a.users.length || -1)
  );
  return ordered.map((g) => `- ${describe(g.users)}: ${g.blocks.join(", ")}`);
}

/**
 * The policy section: a tasks × blocks table (with the learnt p(execute) when there is
 * one), the sharing summary, the heat-map and the probabilities' path.
 */
function policySection(result: RunResult, hasPath: boolean): string {
  const { policy, policyProbabilities: probs } = result;
  const tasks = Object.keys(policy);
  const blocks = Math.max(0, ...tasks.map((t) => policy[t].length));
  const names = Array.from({ length: blocks }, (_, b) => result.gates?.[b] ?? blockName(b));
  const table = markdownTable(
    ["Task", ...names, "Executed"],
    ["left", ...names.map(() => "center" as const), "right"],
    tasks.map((t) => [
      t,
      ...policy[t].map((v, b) =>
        `${v === 1 ? "●" : "·"}${probs?.[t] ? ` ${probs[t][b].toFixed(2)}` : ""}`
      ),
      `${policy[t].filter((v) => v === 1).length}/${policy[t].length}`,
    ]),
  );
  return [
    "## Policy",
    "",
    table,
    "",
    "● executes the block, · skips it (the block passes its shortcut)" +
    (probs ? "; the number is the learnt p(execute) the policy was drawn from." : "."),
    "",
    ...sharingLines(policy, result.gates),
    "",
    "![policy heat-map](policy.svg)",
    ...(hasPath ? ["", "![p(execute) over the policy epochs](policy-path.svg)"] : []),
  ].join("\n");
}

/** A confusion matrix as a Markdown table: rows = true class, columns = predicted class. */
function confusionTable(m: TaskMetrics): string {
  return markdownTable(
    ["true ↓ / predicted →", ...m.classes],
    ["left", ...m.classes.map(() => "right" as const)],
    m.confusion.map((row, t) => [m.classes[t], ...row.map(String)]),
  );
}

/** "task weights: gradnorm (α 1.5), final beauty 0.91, gender 1.09 · " for adaptive schemes. */
function taskWeightsNote(result: RunResult): string {
  const w = result.taskWeights;
  if (!w || w.scheme === "fixed") return "";
  const option = w.alpha !== undefined
    ? ` (α ${w.alpha})`
    : w.temperature !== undefined
    ? ` (τ ${w.temperature})`
    : "";
  const final = Object.entries(w.final).map(([t, v]) => `${t} ${v.toFixed(3)}`).join(", ");
  return `task weights: ${w.scheme}${option}, final ${final} · `;
}

/**
 * What the figures of score and dist tasks mean, when the run has one ("" otherwise).
 */
function scoreTasksNote(result: RunResult): string {
  const scored = Object.entries(result.tasks).filter(([, t]) => isScoreMetrics(t.test));
  if (scored.length === 0) return "";
  return ` ${scored.map(([task]) => task).join(", ")} predict${
    scored.length === 1 ? "s" : ""
  } a score (1–5; a dist task its expected rating): PC is its Pearson correlation with the ` +
    "raters' mean score, MAE and RMSE its errors on the 1–5 scale; its ACC, F1 and confusion " +
    "matrix are of the grade the prediction implies (round(score) − 1, or a dist task's most " +
    "probable rating − 1) against the image's own grade.";
}

/** The report's Markdown text. */
function reportMarkdown(
  result: RunResult,
  hasCurves: boolean,
  hasPolicy: boolean,
  hasPath: boolean,
): string {
  const tasks = Object.entries(result.tasks);
  const lambdas = Object.entries(result.lambdas).map(([t, l]) => `${t} ${l}`).join(", ");
  const parts: string[] = [
    `# Run "${result.name}"`,
    "",
    `${methodName(result)} · batch ${result.batch} · λ: ${lambdas} · ` +
    taskWeightsNote(result) +
    (result.bn ? `BN ${result.bn} · ` : "") +
    `training time ${formatDuration(result.trainSeconds)}` +
    (result.validationSeconds !== undefined
      ? ` (validation ${formatDuration(result.validationSeconds)} more)`
      : ""),
    "",
    "## Test results",
    "",
    runTable(result),
    "",
    "Percentages on the test split. F1 (weighted) weights each class's F1 by its support (the " +
    "paper's F1); macro-F1 is the plain mean over classes. Gap = train ACC − test ACC in " +
    "percentage points." + scoreTasksNote(result),
  ];
  const withVal = tasks.filter(([, t]) => t.val);
  if (withVal.length > 0) {
    // Score and dist tasks add their PC, MAE and RMSE, as in the test table.
    const scored = withVal.some(([, t]) => isScoreMetrics(t.val));
    const scoreHeaders = scored ? ["PC", "MAE", "RMSE"] : [];
    parts.push(
      "",
      "## Validation",
      "",
      markdownTable(
        ["Task", "ACC", "F1 (weighted)", "macro-F1", ...scoreHeaders],
        ["left", "right", "right", "right", ...scoreHeaders.map(() => "right" as const)],
        withVal.map(([task, t]) => {
          const val = t.val!;
          const score = isScoreMetrics(val) ? val : undefined;
          return [
            task,
            formatPercent(val.accuracy),
            formatPercent(val.f1_weighted),
            formatPercent(val.f1_macro),
            ...(scored
              ? [score?.pc, score?.mae, score?.rmse].map((v) => formatScoreFigure(v))
              : []),
          ];
        }),
      ),
    );
  }
  if (result.stages.length > 0) {
    parts.push(
      "",
      "## Stages",
      "",
      markdownTable(
        ["Stage", "Epochs", "Training", "Validation"],
        ["left", "right", "right", "right"],
        [
          ...result.stages.map((s) => [
            s.stage,
            String(s.epochs),
            formatDuration(s.seconds),
            formatDuration(s.validationSeconds),
          ]),
          [
            "total",
            String(result.stages.reduce((a, s) => a + s.epochs, 0)),
            formatDuration(result.trainSeconds),
            formatDuration(result.validationSeconds),
          ],
        ],
      ),
    );
  }
  if (hasPolicy) parts.push("", policySection(result, hasPath));
  if (hasCurves) {
    parts.push("", "## Curves", "", "![training loss](loss.svg)", "", "![accuracy](accuracy.svg)");
    if (result.history.some((h) => h.taskWeights)) {
      parts.push(
        "",
        "![task weights](task-weights.svg)",
        "",
        "The training loss is Σ λ·L with the fixed λ whatever the scheme, so runs compare; " +
          "the plot above shows the weights each epoch's steps used (their mean).",
      );
    }
  }
  parts.push("", "## Confusion matrices (test)");
  for (const [task, t] of tasks) {
    parts.push(
      "",
      `### ${task}`,
      "",
      `![${task} confusion matrix](${confusionFileName(task)})`,
      "",
      confusionTable(t.test),
    );
  }
  return parts.join("\n") + "\n";
}

/**
 * Renders a run's report: the Markdown and its plots. Curves are left out when the run has
 * no history, the policy when it has none.
 * @param result the run
 * @returns report.md text and SVG text by file name
 */
export async function renderReport(result: RunResult): Promise<RenderedReport> {
  const hasCurves = result.history.length > 0;
  const hasPolicy = Object.keys(result.policy).length > 0;
  const svgs: Record<string, string> = {};
  if (hasCurves) {
    svgs["loss.svg"] = await lossPlot(result.history);
    svgs["accuracy.svg"] = await accuracyPlot(result.history);
  }
  if (hasPolicy) {
    svgs["policy.svg"] = await policyPlot(result.policy, result.policyProbabilities, result.gates);
  }
  const path = hasPolicy ? policyPathPlot(result.history, result.gates) : null;
  if (path) svgs["policy-path.svg"] = await path;
  const weights = taskWeightsPlot(result.history);
  if (weights) svgs["task-weights.svg"] = await weights;
  for (const [task, t] of Object.entries(result.tasks)) {
    svgs[confusionFileName(task)] = await confusionPlot(task, t.test);
  }
  return { markdown: reportMarkdown(result, hasCurves, hasPolicy, path !== null), svgs };
}

/**
 * Renders the report and writes report.md and the SVG files into `dir` (created if needed),
 * each atomically; report.md goes last, so it never links a plot that is not there yet.
 * @param dir the run folder
 * @param result the run
 * @returns the file names written, report.md last
 */
export async function writeReport(dir: string, result: RunResult): Promise<string[]> {
  const { markdown, svgs } = await renderReport(result);
  await Deno.mkdir(dir, { recursive: true });
  const encoder = new TextEncoder();
  const written: string[] = [];
  for (const [name, svg] of Object.entries(svgs)) {
    await writeFileAtomic(join(dir, name), encoder.encode(svg));
    written.push(name);
  }
  await writeFileAtomic(join(dir, "report.md"), encoder.encode(markdown));
  written.push("report.md");
  return written;
}
