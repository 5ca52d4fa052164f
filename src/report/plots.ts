/**
 * The run's plots as SVG strings, drawn with Vega-Lite and rendered headless by Vega:
 * loss and accuracy curves over epochs (stages marked), the policy heat-map (tasks ×
 * blocks), confusion matrices and the λ-sweep bar chart. No file I/O here: report.ts
 * writes the files. Accuracies and F1 are drawn as percentages like the tables.
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { blockName } from "../models/config.ts";
import { renderSvg } from "./plot_render.ts";
import type { HistoryEntry, TaskMetrics } from "../train/result.ts";
import type { LabelledRun } from "./tables.ts";

/** The stages that form one phase of the curves (policy learning alternates two stages). */
function phaseOf(stage: string): string {
  switch (stage) {
    case "warmup":
      return "warm-up";
    case "policy-weights":
    case "policy-logits":
      return "policy learning";
    case "retrain":
      return "re-training";
    case "baseline":
      return "training";
    default:
      return stage;
  }
}

/** Consecutive runs of history entries in one phase, on the 1-based "epoch (all stages)" axis. */
function phaseSpans(
  history: readonly HistoryEntry[],
): { phase: string; from: number; to: number }[] {
  const spans: { phase: string; from: number; to: number }[] = [];
  history.forEach((h, i) => {
    const phase = phaseOf(h.stage);
    const last = spans.at(-1);
    if (last && last.phase === phase) last.to = i + 1;
    else spans.push({ phase, from: i + 1, to: i + 1 });
  });
  return spans;
}

/** What a curve plot draws: its points, y channel, series colour and optional dash. */
interface CurveOptions {
  title: string;
  history: readonly HistoryEntry[];
  points: Record<string, string | number>[];
  y: { field: string; title: string; domain?: number[] };
  color: { field: string; title: string };
  dash?: { field: string; title: string; domain: string[] };
}

/**
 * Layers shared by the curves: a dashed rule where a phase begins and the phase's name above
 * its span, then a line per series and a point per epoch whose shape tells the stage.
 */
function curveSpec(o: CurveOptions): TopLevelSpec {
  const spans = phaseSpans(o.history);
  const stages = [...new Set(o.history.map((h) => h.stage))];
  const x = {
    field: "x",
    type: "quantitative" as const,
    title: "epoch (all stages)",
    axis: { tickMinStep: 1, format: "d" },
    scale: { domain: [0.5, Math.max(1, o.history.length) + 0.5], nice: false },
  };
  const y = {
    field: o.y.field,
    type: "quantitative" as const,
    title: o.y.title,
    ...(o.y.domain ? { scale: { domain: o.y.domain } } : {}),
  };
  const color = {
    field: o.color.field,
    type: "nominal" as const,
    title: o.color.title,
    sort: null,
  };
  const strokeDash = o.dash && {
    field: o.dash.field,
    type: "nominal" as const,
    title: o.dash.title,
    // Solid for the first value, dashed for the second.
    scale: { domain: o.dash.domain, range: [[1, 0], [5, 3]] },
  };
  return {
    title: { text: o.title, offset: 18 },
    width: 520,
    height: 280,
    layer: [
      {
        data: { values: spans.slice(1).map((s) => ({ x: s.from - 0.5 })) },
        mark: { type: "rule", color: "#999", strokeDash: [4, 3] },
        encoding: { x },
      },
      {
        data: { values: spans.map((s) => ({ x: (s.from + s.to) / 2, phase: s.phase })) },
        // Just above the plot area, under the title, so no curve hides a name.
        mark: { type: "text", baseline: "bottom", dy: -3, color: "#555", fontSize: 11 },
        encoding: { x, y: { value: 0 }, text: { field: "phase" } },
      },
      {
        data: { values: o.points },
        mark: { type: "line", strokeWidth: 1.5 },
        encoding: strokeDash ? { x, y, color, strokeDash } : { x, y, color },
      },
      {
        data: { values: o.points },
        mark: { type: "point", filled: true, size: 30 },
        encoding: {
          x,
          y,
          color,
          shape: { field: "stage", type: "nominal", title: "stage", sort: stages },
        },
      },
    ],
  };
}

/**
 * Training loss per epoch: the weighted total Σ λ·CE, and per task when the history has it.
 * @param history the run's per-epoch history
 * @returns SVG text
 */
export function lossPlot(history: readonly HistoryEntry[]): Promise<string> {
  const points: Record<string, string | number>[] = [];
  history.forEach((h, i) => {
    points.push({ x: i + 1, series: "total (Σ λ·CE)", loss: h.loss, stage: h.stage });
    for (const [task, t] of Object.entries(h.tasks)) {
      if (t.loss !== undefined) {
        points.push({ x: i + 1, series: task, loss: t.loss, stage: h.stage });
      }
    }
  });
  return renderSvg(curveSpec({
    title: "Training loss",
    history,
    points,
    y: { field: "loss", title: "loss" },
    color: { field: "series", title: "series" },
  }));
}

/**
 * Accuracy per epoch and task: training batches (solid) and the validation split (dashed).
 * @param history the run's per-epoch history
 * @returns SVG text
 */
export function accuracyPlot(history: readonly HistoryEntry[]): Promise<string> {
  const points: Record<string, string | number>[] = [];
  history.forEach((h, i) => {
    for (const [task, t] of Object.entries(h.tasks)) {
      for (const [split, v] of [["train", t.trainAccuracy], ["val", t.valAccuracy]] as const) {
        if (v !== undefined) {
          points.push({ x: i + 1, task, split, accuracy: v * 100, stage: h.stage });
        }
      }
    }
  });
  return renderSvg(curveSpec({
    title: "Accuracy",
    history,
    points,
    y: { field: "accuracy", title: "accuracy (%)", domain: [0, 100] },
    color: { field: "task", title: "task" },
    dash: { field: "split", title: "split", domain: ["train", "val"] },
  }));
}

/**
 * The path of adaptive task weights (`--task-weights` other than fixed): per task, the mean
 * weight the epoch's steps used, over all stages (re-training restarts the scheme).
 * @param history the run's per-epoch history
 * @returns SVG text, or null when no epoch recorded task weights (fixed λ)
 */
export function taskWeightsPlot(history: readonly HistoryEntry[]): Promise<string> | null {
  const points: Record<string, string | number>[] = [];
  history.forEach((h, i) => {
    for (const [task, weight] of Object.entries(h.taskWeights ?? {})) {
      points.push({ x: i + 1, task, weight, stage: h.stage });
    }
  });
  if (points.length === 0) return null;
  return renderSvg(curveSpec({
    title: "Task weights (mean over each epoch's steps)",
    history,
    points,
    y: { field: "weight", title: "weight" },
    color: { field: "task", title: "task" },
  }));
}

/** A nominal axis of a cell grid. */
interface GridAxis {
  field: string;
  sort: readonly string[];
  title: string;
  axis?: Record<string, string | number>;
}

/** What a cell grid draws: a rect per datum at (x, y), filled by a colour channel, labelled. */
interface GridOptions {
  title: string;
  values: Record<string, string | number>[];
  /** Cell width and height in pixels. */
  cell: [number, number];
  x: GridAxis;
  y: GridAxis;
  /** Width of the white lines between cells. */
  strokeWidth: number;
  /** The rects' colour channel. */
  fill: Record<string, unknown>;
  fontSize: number;
  /** The labels' text channel. */
  text: Record<string, string>;
  /** Vega expression true on dark cells, whose label is white; other labels are `ink`. */
  dark: string;
  ink: string;
}

/** A heat-map with a label in every cell (the policy, confusion matrices). */
function cellGridSpec(o: GridOptions): TopLevelSpec {
  const axis = ({ field, sort, title, axis }: GridAxis) => ({
    field,
    type: "nominal" as const,
    sort: [...sort],
    title,
    ...(axis ? { axis } : {}),
  });
  return {
    title: o.title,
    data: { values: o.values },
    width: { step: o.cell[0] },
    height: { step: o.cell[1] },
    encoding: { x: axis(o.x), y: axis(o.y) },
    layer: [
      {
        mark: { type: "rect", stroke: "white", strokeWidth: o.strokeWidth },
        encoding: { color: o.fill },
      },
      {
        mark: { type: "text", fontSize: o.fontSize },
        encoding: {
          text: o.text,
          color: { condition: { test: o.dark, value: "white" }, value: o.ink },
        },
      },
    ],
  } as TopLevelSpec;
}

/**
 * The policy as a tasks × blocks heat-map. With the learnt probabilities each cell is
 * shaded by p(execute) and labelled with it and the final decision; without them (a fixed
 * policy) a filled cell executes the block, a pale one skips.
 * @param policy task → 1 (execute) / 0 (skip) per block, blocks in network order
 * @param probabilities task → p(execute) per block, when the policy was learnt
 * @param gates the gated blocks' names (default: ResNet18's layer1.0 …)
 * @returns SVG text
 */
export function policyPlot(
  policy: Readonly<Record<string, readonly number[]>>,
  probabilities?: Readonly<Record<string, readonly number[]>>,
  gates?: readonly string[],
): Promise<string> {
  const tasks = Object.keys(policy);
  const blocks = Math.max(0, ...tasks.map((t) => policy[t].length));
  const names = Array.from({ length: blocks }, (_, b) => gates?.[b] ?? blockName(b));
  const values = tasks.flatMap((task) =>
    policy[task].map((v, b): Record<string, string | number> => {
      const state = v === 1 ? "execute" : "skip";
      const p = probabilities?.[task]?.[b];
      return p === undefined
        ? { task, block: names[b], state, label: state }
        : { task, block: names[b], state, p, label: `${state} ${p.toFixed(2)}` };
    })
  );
  const learnt = probabilities !== undefined;
  return renderSvg(cellGridSpec({
    title: learnt
      ? "Policy: p(execute) learnt per block, and the blocks each task executes"
      : "Policy (blocks each task executes)",
    values,
    cell: [learnt ? 76 : 64, 30],
    x: { field: "block", sort: names, title: "block", axis: { labelAngle: 0 } },
    y: { field: "task", sort: tasks, title: "task" },
    strokeWidth: 2,
    fill: learnt
      ? {
        field: "p",
        type: "quantitative",
        title: "p(execute)",
        scale: { scheme: "blues", domain: [0, 1] },
      }
      : {
        field: "state",
        type: "nominal",
        title: "block",
        scale: { domain: ["execute", "skip"], range: ["#3b6ea8", "#e5e7eb"] },
      },
    fontSize: 11,
    text: { field: "label" },
    dark: learnt ? "datum.p > 0.6" : "datum.state === 'execute'",
    ink: "#444",
  }));
}

/**
 * The path of p(execute) over the policy epochs: one line per block, one panel per task
 * (from the history's policy-logits entries).
 * @returns SVG text, or null when the history has no policy epochs
 */
export function policyPathPlot(
  history: readonly HistoryEntry[],
  gates?: readonly string[],
): Promise<string> | null {
  const epochs = history.filter((h) => h.stage === "policy-logits" && h.policyProbabilities);
  if (epochs.length === 0) return null;
  const blocks = Math.max(...Object.values(epochs[0].policyProbabilities!).map((p) => p.length));
  const names = Array.from({ length: blocks }, (_, b) => gates?.[b] ?? blockName(b));
  const values = epochs.flatMap((h) =>
    Object.entries(h.policyProbabilities!).flatMap(([task, ps]) =>
      ps.map((p, b) => ({ task, block: names[b], epoch: h.epoch, p }))
    )
  );
  return renderSvg({
    title: "p(execute) over the policy epochs",
    data: { values },
    facet: { row: { field: "task", type: "nominal", title: "task" } },
    spec: {
      width: 420,
      height: 150,
      layer: [
        {
          data: { values: [{ y: 0.5 }] },
          mark: { type: "rule", color: "#999", strokeDash: [4, 3] },
          encoding: { y: { field: "y", type: "quantitative" } },
        },
        {
          mark: { type: "line", point: true, strokeWidth: 1.5 },
          encoding: {
            x: {
              field: "epoch",
              type: "quantitative",
              title: "policy epoch",
              axis: { tickMinStep: 1, format: "d" },
            },
            y: {
              field: "p",
              type: "quantitative",
              title: "p(execute)",
              scale: { domain: [0, 1] },
            },
            color: { field: "block", type: "nominal", sort: names, title: "block" },
          },
        },
      ],
    },
  } as TopLevelSpec);
}

/**
 * A confusion matrix: counts in the cells, shaded by the fraction of the true class's row.
 * @param task task name for the title
 * @param metrics the task's metrics (confusion[true][predicted] and classes)
 * @returns SVG text
 */
export function confusionPlot(task: string, metrics: TaskMetrics): Promise<string> {
  const { classes, confusion } = metrics;
  const values = confusion.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({
      actual: classes[t],
      predicted: classes[p],
      count,
      rate: total === 0 ? 0 : count / total,
    }));
  });
  return renderSvg(cellGridSpec({
    title: `${task}: confusion matrix (n = ${metrics.count})`,
    values,
    cell: [44, 44],
    x: {
      field: "predicted",
      sort: classes,
      title: "predicted",
      axis: { orient: "top", labelAngle: 0 },
    },
    y: { field: "actual", sort: classes, title: "true" },
    strokeWidth: 1,
    fill: {
      field: "rate",
      type: "quantitative",
      title: "row share",
      scale: { scheme: "blues", domain: [0, 1] },
      legend: { format: ".0%" },
    },
    fontSize: 12,
    text: { field: "count", type: "quantitative" },
    dark: "datum.rate > 0.5",
    ink: "#222",
  }));
}

/**
 * The λ sweep as grouped bars: one panel per metric (test ACC, F1), one group per run, one
 * bar per task, the value printed above each bar.
 * @param runs labelled runs (e.g. "1:0.6 (batch 32)")
 * @returns SVG text
 */
export function sweepPlot(runs: readonly LabelledRun[]): Promise<string> {
  const labels = runs.map((r) => r.label);
  const tasks = [...new Set(runs.flatMap((r) => Object.keys(r.result.tasks)))];
  const values = runs.flatMap(({ label, result }) =>
    Object.entries(result.tasks).flatMap(([task, t]) => [
      { label, task, metric: "ACC", value: t.test.accuracy * 100 },
      { label, task, metric: "F1", value: t.test.f1_weighted * 100 },
    ])
  );
  const x = {
    field: "label",
    type: "nominal" as const,
    sort: labels,
    title: "λ ratio",
    axis: { labelAngle: -30 },
  };
  const offset = { field: "task", type: "nominal" as const, sort: tasks };
  const y = {
    field: "value",
    type: "quantitative" as const,
    title: "test (%)",
    scale: { domain: [0, 100] },
  };
  return renderSvg({
    title: "Task-weight sweep",
    data: { values },
    facet: {
      column: {
        field: "metric",
        type: "nominal",
        sort: ["ACC", "F1"],
        title: null,
        header: { labelFontSize: 12, labelFontWeight: "bold" },
      },
    },
    spec: {
      width: { step: 26 }, // per bar: a group is one bar per task
      height: 240,
      layer: [
        {
          mark: "bar",
          encoding: {
            x,
            xOffset: offset,
            y,
            color: { field: "task", type: "nominal", sort: tasks, title: "task" },
          },
        },
        {
          mark: { type: "text", baseline: "bottom", dy: -2, fontSize: 9 },
          encoding: {
            x,
            xOffset: offset,
            y,
            text: { field: "value", type: "quantitative", format: ".1f" },
          },
        },
      ],
    },
  });
}
