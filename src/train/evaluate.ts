/**
 * Evaluation: every task of every database over a loader's epoch, in eval mode with a
 * given (hard) policy, into accuracy / F1 / confusion per task. Used by the trainer each
 * epoch and by `deno task eval`.
 * @module
 */
import type { BatchLoader } from "../data/loader.ts";
import type { Gate } from "../models/basic_block.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { classificationMetrics } from "./metrics.ts";
import type { TaskMetrics } from "./result.ts";
import { predictBatch } from "./step.ts";

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
 * Metrics per task. Images without a task's label are left out of that task.
 * @param classes class names per task
 */
export async function evaluateParts(
  net: MultiTaskNet,
  parts: readonly EvalPart[],
  classes: Readonly<Record<string, string[]>>,
  gates: ReadonlyMap<string, readonly Gate[]> = net.evalGates(),
): Promise<Record<string, TaskMetrics>> {
  const out: Record<string, TaskMetrics> = {};
  for (const part of parts) {
    const preds = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    const actual = new Map(part.tasks.map((t) => [t.name, [] as number[]]));
    for await (const b of part.loader.epoch(0)) {
      // Batches are (N, 3, S, S): S follows from the length.
      const side = Math.round(Math.sqrt(b.images.length / (3 * b.paths.length)));
      const res = predictBatch(net, b.images, side, part.database, {
        gates,
        tasks: part.tasks.map((t) => t.name),
      });
      for (const t of part.tasks) {
        const labels = b.labels[t.label], p = res.get(t.name)!.predictions;
        for (let i = 0; i < labels.length; i++) {
          if (labels[i] < 0) continue;
          preds.get(t.name)!.push(p[i]);
          actual.get(t.name)!.push(labels[i]);
        }
      }
    }
    for (const t of part.tasks) {
      out[t.name] = classificationMetrics(preds.get(t.name)!, actual.get(t.name)!, classes[t.name]);
    }
  }
  return out;
}
