/**
 * Evaluation: every task of every database over a loader's epoch, in eval mode with a
 * given (hard) policy, into accuracy / F1 / confusion per task. Used by the trainer each
 * epoch and by `deno task eval`.
 * @module
 */
import type { Batch, BatchLoader } from "../data/loader.ts";
import { RATING_BINS } from "../data/grade.ts";
import type { Gate } from "../models/basic_block.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { classificationMetrics, scoreFigures } from "./metrics.ts";
import type { AnyTaskMetrics } from "./result.ts";
import { expectedRating } from "./task_kinds.ts";
import { predictBatch } from "./step.ts";

/**
 * An image's mean score in a batch: its score (the loader's is recordScore, the same the
 * training reads), else its histogram's expected rating (batches built without the loader).
 */
function batchScore(b: Batch, i: number): number {
  const s = b.scores?.[i] ?? NaN;
  if (Number.isFinite(s) || !b.histograms) return s;
  return expectedRating(b.histograms.subarray(i * RATING_BINS, (i + 1) * RATING_BINS));
}

/** One database to evaluate: its loader and the tasks (with label names) it serves. */
export interface EvalPart {
  /** The database the images belong to, as named in the network config. */
  database: string;
  /** The loader of the images to evaluate (one pass: its epoch 0). */
  loader: BatchLoader;
  /** The tasks to score: task name, and the label of the records that is its target. */
  tasks: readonly { name: string; label: string }[];
}

/**
 * Metrics per task. Images without a task's label are left out of that task. Score and
 * dist tasks (task_kinds.ts) get the classification figures of their implied grade and PC,
 * MAE and RMSE of their predicted score against the images' mean score.
 * @param classes class names per task
 */
export async function evaluateParts(
  net: MultiTaskNet,
  parts: readonly EvalPart[],
  classes: Readonly<Record<string, string[]>>,
  gates: ReadonlyMap<string, readonly Gate[]> = net.evalGates(),
): Promise<Record<string, AnyTaskMetrics>> {
  const out: Record<string, AnyTaskMetrics> = {};
  for (const part of parts) {
    const preds = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    const actual = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    // Score and dist tasks: predicted and mean scores of the images with the target.
    const predScores = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    const meanScores = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    for await (const b of part.loader.epoch(0)) {
      // Batches are (N, 3, S, S): S follows from the length.
      const side = Math.round(Math.sqrt(b.images.length / (3 * b.paths.length)));
      const res = predictBatch(net, b.images, side, part.database, {
        gates,
        tasks: part.tasks.map((t) => t.name),
      });
      for (const t of part.tasks) {
        const labels = b.labels[t.label], r = res.get(t.name)!, p = r.predictions;
        for (let i = 0; i < labels.length; i++) {
          if (labels[i] < 0) continue;
          preds.get(t.name)!.push(p[i]);
          actual.get(t.name)!.push(labels[i]);
          if (r.scores) {
            predScores.get(t.name)!.push(r.scores[i]);
            meanScores.get(t.name)!.push(batchScore(b, i));
          }
        }
      }
    }
    for (const t of part.tasks) {
      const m = classificationMetrics(preds.get(t.name)!, actual.get(t.name)!, classes[t.name]);
      const kind = net.task(t.name).kind ?? "class";
      out[t.name] = kind === "class"
        ? m
        : { ...m, kind, ...scoreFigures(predScores.get(t.name)!, meanScores.get(t.name)!) };
    }
  }
  return out;
}
