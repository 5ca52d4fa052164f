/**
 * Everything a run changes as it goes, in one object: the network, its two optimisers,
 * where the run is in its epoch plan, and what it has recorded so far. `last.safetensors`
 * saves all of it (resume.ts), so a run stopped anywhere goes on with the same numbers.
 * There is no random-generator state to keep: every draw is a function of the seed, the
 * plan position and the step.
 * @module
 */
import type { NetworkConfig } from "../models/config.ts";
import { importTorchvisionResnet18, readTorchvisionFile } from "../models/checkpoint.ts";
import { MultiTaskNet } from "../models/network.ts";
import { importTorchvisionWeights } from "../models/torchvision_import.ts";
import { AdamW } from "../optim/adamw.ts";
import type { HistoryEntry, StageTime } from "./result.ts";
import { resolveBnMode, type RunConfig } from "./run_config.ts";
import type { RunInputs } from "./run_context.ts";
import { createTaskWeighting, type TaskWeighting } from "./task_weights.ts";
import { headOutputs } from "./task_kinds.ts";

/** Partial figures of an interrupted epoch. */
export interface EpochAccumulator {
  loss: number;
  steps: number;
  images: number;
  correct: Record<string, number>;
  count: Record<string, number>;
  /** Sum of per-step cross-entropy and number of steps, per task. */
  taskLoss: Record<string, number>;
  taskSteps: Record<string, number>;
  /** Sum over the steps of the task weights each used (adaptive task weights only). */
  taskWeights?: Record<string, number>;
}

/** Where a run is and what it has done so far (what `last.safetensors` stores as JSON). */
export interface RunProgress {
  /** Index into the plan of the epoch running, or next to run; its entry names the stage. */
  position: number;
  /** Steps of that epoch already done, and their figures (when resumed mid-epoch). */
  step: number;
  partial: EpochAccumulator | null;
  /** The policy fixed on entering re-training; null before. */
  finalPolicy: Record<string, number[]> | null;
  /**
   * First task's best validation accuracy in the final stage (PC for a score or dist
   * task), kept in checkpoint.safetensors.
   */
  bestVal: number;
  bestEpoch: number;
  history: HistoryEntry[];
  /** Wall time and epochs per stage. */
  stages: StageTime[];
}

/** The mutable state of a run: its progress, the network and the optimisers. */
export interface RunState extends RunProgress {
  net: MultiTaskNet;
  /** AdamW over the network weights; re-training replaces it along with the network. */
  weightsOpt: AdamW;
  /** AdamW over the policy logits (the policy being learnt). */
  policyOpt: AdamW;
  /** The task weights (fixed λ, or a scheme that adapts them; task_weights.ts). */
  taskWeights: TaskWeighting;
}

/** Task config of the network, from the run's tasks and the data's classes. */
function networkConfig(inputs: RunInputs, policy?: Record<string, number[]>): NetworkConfig {
  const c = inputs.config;
  return {
    arch: c.arch,
    tasks: c.tasks.map((t) => ({
      name: t.name,
      // A score head has 1 output, a dist head 5; a class head one per class.
      classes: headOutputs(t.kind, inputs.classes[t.name].length),
      database: t.database,
      ...(t.kind && t.kind !== "class" ? { kind: t.kind } : {}),
    })),
    databases: c.databases.map((d) => d.name),
    aff: c.aff,
    affScale: c.affScale,
    affReduction: c.affReduction,
    bn: resolveBnMode(c),
    policy,
    dropout: c.dropout,
    widths: c.widths,
    imageSize: c.imageSize,
  };
}

/** The initial network (seeded, then `--pretrained` weights), executing `policy` if given. */
export async function buildNet(
  inputs: RunInputs,
  policy?: Record<string, number[]>,
): Promise<MultiTaskNet> {
  const c = inputs.config;
  const net = new MultiTaskNet(networkConfig(inputs, policy), {
    seed: c.seed,
    backend: inputs.opts.backend,
  });
  if (c.pretrained && c.arch === "resnet18") {
    await importTorchvisionResnet18(net, c.pretrained, inputs.pretrained);
  } else if (c.pretrained) {
    const tensors = inputs.pretrained ?? await readTorchvisionFile(c.pretrained);
    importTorchvisionWeights(net, tensors, { source: c.pretrained });
  }
  return net;
}

/** A fresh optimiser over the network weights. */
export function weightsOptimizer(c: RunConfig, net: MultiTaskNet): AdamW {
  return new AdamW(net.weightParameters(), { lr: c.lr, weightDecay: c.weightDecay });
}

/** A fresh optimiser over the network's policy logits. */
export function policyOptimizer(c: RunConfig, net: MultiTaskNet): AdamW {
  return new AdamW([net.policy.logits], { lr: c.policyLr, weightDecay: c.policyWeightDecay });
}

/**
 * The state at the start of a run (a resume file then restores its progress into it).
 * @param finalPolicy the fixed policy of a run resumed in re-training, built into the network
 */
export async function createRunState(
  inputs: RunInputs,
  finalPolicy?: Record<string, number[]>,
): Promise<RunState> {
  const c = inputs.config;
  const net = await buildNet(inputs, finalPolicy);
  const state: RunState = {
    net,
    weightsOpt: weightsOptimizer(c, net),
    policyOpt: policyOptimizer(c, net),
    taskWeights: createTaskWeighting(c, inputs.opts.backend),
    position: 0,
    step: 0,
    partial: null,
    finalPolicy: finalPolicy ?? null,
    bestVal: -1,
    bestEpoch: 0,
    history: [],
    stages: [],
  };
  return state;
}

/** The wall-time entry of a stage, added on its first use. */
export function stageTime(state: RunState, stage: string): StageTime {
  let s = state.stages.find((x) => x.stage === stage);
  if (!s) {
    s = { stage, epochs: 0, seconds: 0, validationSeconds: 0 };
    state.stages.push(s);
  }
  return s;
}

/** Frees the tensors of the network and optimisers. */
export function disposeRunState(state: RunState): void {
  state.weightsOpt.dispose();
  state.policyOpt.dispose();
  state.taskWeights.dispose();
  state.net.dispose();
}
