/**
 * A run as a flat list of epochs, each tagged with its stage. Resume positions are an
 * index into this list plus a step, so "where was I" is two integers.
 *   adashare: warmup × W, then (policy-weights, policy-logits) × P, then retrain × R
 *   baseline: baseline × E
 * @module
 */
import type { RunConfig } from "./run_config.ts";

/** Stage of one epoch. */
export type EpochKind = "warmup" | "policy-weights" | "policy-logits" | "retrain" | "baseline";

/** One planned epoch. */
export interface PlannedEpoch {
  /** What the epoch trains, by the rules of its stage (stages.ts). */
  kind: EpochKind;
  /** Stage group for wall times: "warmup" | "policy" | "retrain" | "baseline". */
  stage: string;
  /** 1-based epoch within its kind. */
  epoch: number;
  /** Epochs of its kind in the plan. */
  of: number;
  /** Policy (logit) epochs completed before this one: drives τ and the curriculum. */
  policyEpochsBefore: number;
  /**
   * The plan position its random draws (batches, crops, flips, dropout, Gumbel noise) are
   * keyed by: its own, except in a fixed policy's re-training, which takes the positions of a
   * full run's re-training, so a fixed policy is re-trained on exactly the draws of the learnt
   * run it is compared with.
   */
  draws: number;
}

/** The epochs of a run, in order. */
export function planEpochs(c: RunConfig): PlannedEpoch[] {
  const planned = epochsOf(c);
  const skipped = c.method === "adashare" && c.fixedPolicy
    ? c.epochs.warmup + 2 * c.epochs.policy
    : 0;
  return planned.map((ep, i) => ({ ...ep, draws: skipped + i }));
}

function epochsOf(c: RunConfig): Omit<PlannedEpoch, "draws">[] {
  const out: Omit<PlannedEpoch, "draws">[] = [];
  if (c.method === "baseline") {
    for (let e = 1; e <= c.epochs.baseline; e++) {
      out.push({
        kind: "baseline",
        stage: "baseline",
        epoch: e,
        of: c.epochs.baseline,
        policyEpochsBefore: 0,
      });
    }
    return out;
  }
  // A fixed policy is only re-trained.
  const warmup = c.fixedPolicy ? 0 : c.epochs.warmup;
  const policy = c.fixedPolicy ? 0 : c.epochs.policy;
  for (let e = 1; e <= warmup; e++) {
    out.push({
      kind: "warmup",
      stage: "warmup",
      epoch: e,
      of: warmup,
      policyEpochsBefore: 0,
    });
  }
  for (let e = 1; e <= policy; e++) {
    const before = e - 1;
    out.push({
      kind: "policy-weights",
      stage: "policy",
      epoch: e,
      of: policy,
      policyEpochsBefore: before,
    });
    out.push({
      kind: "policy-logits",
      stage: "policy",
      epoch: e,
      of: policy,
      policyEpochsBefore: before,
    });
  }
  for (let e = 1; e <= c.epochs.retrain; e++) {
    out.push({
      kind: "retrain",
      stage: "retrain",
      epoch: e,
      of: c.epochs.retrain,
      policyEpochsBefore: policy,
    });
  }
  return out;
}

/** Whether an epoch trains the final model (validation picks the best checkpoint there). */
export function isFinalStage(kind: EpochKind): boolean {
  return kind === "retrain" || kind === "baseline";
}
