/**
 * Why training stopped, in words the user can act on: bad numbers or a bad batch, where
 * (stage, epoch, step), the last good checkpoint, and a hint.
 * @module
 */
import type { MultiTaskNet } from "../models/network.ts";
import type { PlannedEpoch } from "./plan.ts";
import { BadBatchError, NonFiniteInputError, NonFiniteLossError } from "./step.ts";

/** The best checkpoint in quotes, or "none yet". */
function lastGood(bestPath: string): Promise<string> {
  return Deno.stat(bestPath).then(() => `"${bestPath}"`, () => "none yet");
}

/**
 * The error to throw for a failed step (`step` counted from 0) at learning rate `lr`:
 * bad numbers or a bad batch stop training with an explanation; other errors pass as they are.
 */
export async function stepFailure(
  e: unknown,
  ep: PlannedEpoch,
  step: number,
  lr: number,
  bestPath: string,
): Promise<unknown> {
  const why = e instanceof NonFiniteLossError
    ? `the loss diverged: ${e.message} with finite inputs (learning rate ${lr})`
    : e instanceof NonFiniteInputError
    ? `non-finite input: ${e.message}`
    : e instanceof BadBatchError
    ? `bad batch: ${e.message}`
    : undefined;
  if (!why) return e;
  const hint = e instanceof NonFiniteLossError
    ? `lower ${ep.kind === "policy-logits" ? "--policy-lr" : "--lr"}`
    : "check the data and any batch transform";
  return new Error(
    `Training stopped: ${why} at ${ep.kind} epoch ${ep.epoch}, step ${step + 1}. ` +
      `Last good checkpoint: ${await lastGood(bestPath)}. Hint: ${hint}`,
    { cause: e },
  );
}

/** Key of the first network tensor holding NaN or ±Infinity, or undefined. */
function firstNonFiniteTensor(net: MultiTaskNet): string | undefined {
  for (const [key, t] of net.stateDict()) {
    const a = t.toArray();
    for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return key;
  }
  return undefined;
}

/**
 * Throws when an epoch's last update (at learning rate `lr`) blew a network tensor up to
 * NaN or ±Infinity: such weights are never saved or validated.
 */
export async function checkWeightsFinite(
  net: MultiTaskNet,
  ep: PlannedEpoch,
  lr: number,
  bestPath: string,
): Promise<void> {
  const bad = firstNonFiniteTensor(net);
  if (bad) {
    throw new Error(
      `Training stopped: the loss diverged: tensor "${bad}" holds NaN or Infinity after ` +
        `${ep.kind} epoch ${ep.epoch} (learning rate ${lr}). ` +
        `Last good checkpoint: ${await lastGood(bestPath)}. Hint: lower --lr`,
    );
  }
}
