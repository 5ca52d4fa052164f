/**
 * What sets AdaShare's stages and the baseline apart; the rest of an epoch is the same for
 * all of them (epoch.ts):
 *   warm-up, baseline: the whole network (every block executed) learns its weights;
 *   policy learning: alternately the weights (on train-w) and the policy logits (on
 *     train-p), through soft Gumbel gates;
 *   re-training: the initial weights again, in a network that executes the fixed policy.
 * @module
 */
import { curriculumWindow } from "../optim/schedule.ts";
import type { MultiTaskNet } from "../models/network.ts";
import {
  argmaxPolicy,
  formatPolicy,
  gumbelGates,
  gumbelNoise,
  samplePolicy,
} from "../models/policy.ts";
import { learningRate } from "../optim/schedule.ts";
import { Rng } from "../random/rng.ts";
import type { EpochKind } from "./plan.ts";
import type { RunConfig } from "./run_config.ts";
import type { Gates, RunContext } from "./run_context.ts";
import { buildNet, policyOptimizer, type RunState, weightsOptimizer } from "./run_state.ts";

/** What a training step's gates may depend on. */
export interface GateDraw {
  /** The step's seed. */
  seed: number;
  /** Gumbel temperature and curriculum window of the epoch. */
  tau: number;
  window: number;
  config: RunConfig;
}

/** The rules of the epochs of one kind. */
export interface StageRules {
  /** The training split its steps draw from. */
  part: "train" | "trainW" | "trainP";
  /** Its steps update the policy logits (weights frozen) rather than the weights. */
  learnsLogits: boolean;
  /** Policy learning: soft gates at temperature τ (kept in the history). */
  policyPhase: boolean;
  /**
   * The weights' learning rate at step `at` of the `total` steps of this kind (set every
   * step, so a resumed run sets the same rate as one never stopped).
   */
  weightsLr(config: RunConfig, at: number, total: number): number;
  /** A training step's gates, built inside the step's scope since they hold tensors. */
  stepGates(net: MultiTaskNet, draw: GateDraw): () => Gates;
  /** The gates of its validation: the policy the network would run with. */
  evalGates(net: MultiTaskNet): Gates;
  /** Runs before each of its epochs. */
  enter?(ctx: RunContext, state: RunState): Promise<void>;
}

/** The stage's own schedule (cosine or constant) over all its epochs. */
const stageSchedule = (c: RunConfig, at: number, total: number): number =>
  learningRate(c.lrSchedule, c.lr, at, total);
/**
 * Policy learning keeps the base rate: AdaShare trains the weights at the normal rate
 * while the policy is learnt (its published code steps no scheduler in this phase), so the
 * weights keep up with the gates instead of freezing at the end of a warm-up cosine.
 */
const baseRate = (c: RunConfig): number => c.lr;

const wholeNetwork = (net: MultiTaskNet): Gates => net.allExecuteGates();
const hardPolicy = (net: MultiTaskNet): Gates => net.evalGates();

/** Gumbel-softmax gates over the logits, with the noise drawn from the step's seed. */
function softGates(net: MultiTaskNet, d: GateDraw): () => Gates {
  const noise = gumbelNoise(net.policy.logits.size, new Rng(d.seed, 0x6b));
  return () => {
    const perTask = gumbelGates(net.policy.logits, noise, {
      tau: d.tau,
      hard: d.config.hardGumbel,
      window: d.window,
    });
    return new Map(d.config.tasks.map((t, i) => [t.name, perTask[i]]));
  };
}

/**
 * Entering re-training: fixes the policy (argmax or a sample of the learnt logits) and
 * restarts from the initial weights in a network that executes it. The learnt logits are
 * copied over, so the network still reports them, and so is their optimiser's state: the
 * policy optimiser moves to the new network's logits (the resume file names its moments
 * by them), with the same moments and step count.
 */
async function fixPolicy(ctx: RunContext, state: RunState): Promise<void> {
  if (state.finalPolicy) return; // fixed before this run was resumed
  const { config } = ctx;
  const logits = state.net.policy.logits.toArray();
  const T = config.tasks.length;
  const B = state.net.gateCount;
  const p = config.finalPolicy === "argmax"
    ? argmaxPolicy(logits, T, B)
    : samplePolicy(logits, T, B, new Rng(config.seed, 0xf1a1));
  // Blocks the curriculum never opened (a trunk with more gates than policy epochs reach)
  // executed throughout (the window of the last policy epoch): their logits were never
  // trained, so they keep executing.
  const lastEpoch = Math.max(0, config.epochs.policy - 1);
  const window = curriculumWindow(B, config.curriculumSpeed, lastEpoch);
  for (const row of p) row.fill(1, 0, B - window);
  state.finalPolicy = Object.fromEntries(config.tasks.map((t, i) => [t.name, p[i]]));
  const fresh = await buildNet(ctx, state.finalPolicy);
  const carried = fresh.policy.logits;
  carried.backend.copyIn(carried.storage, logits);
  const policyOpt = policyOptimizer(config, fresh);
  const [from, to] = [state.policyOpt.moments, policyOpt.moments];
  for (const which of ["m", "v"] as const) {
    const dst = to[which][0];
    dst.backend.copyIn(dst.storage, from[which][0].toArray());
  }
  policyOpt.stepCount = state.policyOpt.stepCount;
  state.weightsOpt.dispose();
  state.policyOpt.dispose();
  state.net.dispose();
  state.net = fresh;
  state.weightsOpt = weightsOptimizer(config, fresh);
  state.policyOpt = policyOpt;
  // The weights start again, and so do adaptive task weights (task_weights.ts).
  state.taskWeights.restart();
  ctx.note(`policy fixed: ${formatPolicy(state.finalPolicy)}`);
}

const WHOLE_NETWORK: StageRules = {
  part: "train",
  learnsLogits: false,
  policyPhase: false,
  weightsLr: stageSchedule,
  stepGates: (net) => () => wholeNetwork(net),
  evalGates: wholeNetwork,
};

/** The rules of each epoch kind. */
export const STAGES: Readonly<Record<EpochKind, StageRules>> = {
  warmup: WHOLE_NETWORK,
  "policy-weights": {
    part: "trainW",
    learnsLogits: false,
    policyPhase: true,
    weightsLr: baseRate,
    stepGates: softGates,
    evalGates: hardPolicy,
  },
  "policy-logits": {
    part: "trainP",
    learnsLogits: true,
    policyPhase: true,
    weightsLr: baseRate, // unused: the weights are frozen
    stepGates: softGates,
    evalGates: hardPolicy,
  },
  retrain: {
    part: "train",
    learnsLogits: false,
    policyPhase: false,
    weightsLr: stageSchedule,
    stepGates: (net) => () => hardPolicy(net),
    evalGates: hardPolicy,
    enter: fixPolicy,
  },
  baseline: WHOLE_NETWORK,
};
