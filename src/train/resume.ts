/**
 * `last.safetensors`: everything needed to continue a run — the network's tensors, both
 * optimisers' moments (`optim.<name>.{m,v}.<param key>`), and the position and history as
 * JSON in the metadata key `resume`: a RunState (run_state.ts) on disk. Written atomically
 * after every epoch and on Ctrl-C.
 * @module
 */
import { join } from "node:path";
import { parseSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { type HostTensor, loadState, stateToHost } from "../models/checkpoint.ts";
import { planEpochs } from "./plan.ts";
import type { RunResult } from "./result.ts";
import {
  configDifferences,
  isRunConfig,
  PRE_TASK_WEIGHT_FIELDS,
  type RunConfig,
} from "./run_config.ts";
import type { RunProgress, RunState } from "./run_state.ts";
import type { TaskWeightsState } from "./task_weights.ts";

/** Where a run is and what it has done so far, as stored in the file. */
export interface ResumeState extends RunProgress {
  weightSteps: number;
  policySteps: number;
  /**
   * The weight optimiser's learning rate when the run stopped. Every step sets the rate
   * again from its stage (stages.ts weightsLr), so this is a record; absent in older files.
   */
  weightsLr?: number;
  /** The adaptive task weights' state (task_weights.ts); absent for fixed λ and in older files. */
  taskWeights?: TaskWeightsState;
}

/** The JSON part of the resume file, in its on-disk key order. */
function savedState(s: RunState): ResumeState {
  return {
    position: s.position,
    step: s.step,
    partial: s.partial,
    finalPolicy: s.finalPolicy,
    bestVal: s.bestVal,
    bestEpoch: s.bestEpoch,
    history: s.history,
    stages: s.stages,
    weightSteps: s.weightsOpt.stepCount,
    policySteps: s.policyOpt.stepCount,
    weightsLr: s.weightsOpt.hyper.lr,
    ...taskWeightsEntry(s),
  };
}

/** The task weights' entry of the resume state: none for fixed λ (files as before). */
function taskWeightsEntry(s: RunState): { taskWeights?: TaskWeightsState } {
  const taskWeights = s.taskWeights.save();
  return taskWeights ? { taskWeights } : {};
}

/** The optimisers of a run by the name their moments are saved under. */
const optimizers = (s: RunState) => [["weights", s.weightsOpt], ["policy", s.policyOpt]] as const;

/** Writes the resume file of a run's state. */
export async function writeResume(path: string, state: RunState): Promise<void> {
  const { net } = state;
  const tensors = stateToHost(net);
  const keyOf = new Map(net.namedParameters().map(([k, t]) => [t, k]));
  for (const [name, opt] of optimizers(state)) {
    const { m, v } = opt.moments;
    opt.params.forEach((p, i) => {
      const key = keyOf.get(p)!;
      tensors.set(`optim.${name}.m.${key}`, { shape: [...p.shape], data: m[i].toArray() });
      tensors.set(`optim.${name}.v.${key}`, { shape: [...p.shape], data: v[i].toArray() });
    });
  }
  await writeSafetensors(path, tensors, {
    metadata: { fbp: JSON.stringify(net.config), resume: JSON.stringify(savedState(state)) },
  });
}

/** A parsed resume file. */
export interface Resume {
  state: ResumeState;
  /** Network tensors by key (optimiser entries removed). */
  weights: Map<string, HostTensor>;
  /**
   * Puts the saved position, records, network tensors and optimiser moments and step
   * counts into a state built for this run (its network already has the saved policy).
   */
  restoreInto(run: RunState): void;
}

/**
 * Reads `last.safetensors` of a run folder.
 * @throws {Error} when it is missing or not a resume file of this config
 */
export async function readResume(path: string, config: RunConfig): Promise<Resume> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    throw new Error(
      `Cannot resume run "${config.out}": "${path}" does not exist (the run stopped before ` +
        `its first epoch ended). Hint: start it again with --out ${config.out} --force`,
    );
  }
  const file = parseSafetensors(bytes, { source: path });
  if (!file.metadata.resume) {
    throw new Error(`Cannot resume from "${path}": it has no "resume" metadata entry`);
  }
  const state = JSON.parse(file.metadata.resume) as ResumeState;
  const weights = new Map<string, HostTensor>();
  const moments = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) {
    checkFinite(path, k, t);
    (k.startsWith("optim.") ? moments : weights).set(k, t);
  }
  return {
    state,
    weights,
    restoreInto(run) {
      const { weightSteps, policySteps, weightsLr, taskWeights, ...progress } = state;
      Object.assign(run, progress);
      if (taskWeights) run.taskWeights.restore(taskWeights);
      loadState(run.net, weights, path);
      const keyOf = new Map(run.net.namedParameters().map(([k, t]) => [t, k]));
      for (const [name, opt] of optimizers(run)) {
        const { m, v } = opt.moments;
        opt.params.forEach((p, i) => {
          for (const [which, dst] of [["m", m[i]], ["v", v[i]]] as const) {
            const src = moments.get(`optim.${name}.${which}.${keyOf.get(p)}`);
            if (!src) {
              throw new Error(
                `Cannot resume from "${path}": optimiser entry for "${keyOf.get(p)}" is missing`,
              );
            }
            dst.backend.copyIn(dst.storage, src.data);
          }
        });
      }
      run.weightsOpt.stepCount = weightSteps;
      run.policyOpt.stepCount = policySteps;
      if (weightsLr !== undefined) run.weightsOpt.hyper.lr = weightsLr;
    },
  };
}

/**
 * Refuses a resume-file tensor holding NaN or ±Infinity: the run never saves such weights
 * (each epoch checks them first), so the file was damaged after it was written.
 */
function checkFinite(path: string, key: string, t: HostTensor): void {
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i];
    if (v - v !== 0) {
      throw new Error(
        `Cannot resume from "${path}": the checkpoint is damaged: tensor "${key}" holds ${v} ` +
          `(element ${i}), which training never saves. Hint: restore the file from a copy, or ` +
          `start the run again with --force`,
      );
    }
  }
}

/** Options that a resumed run may change: they do not change its numbers. */
export const RESUME_MAY_CHANGE: readonly (keyof RunConfig)[] = ["workers"];

/**
 * Reads the config.json of a run folder.
 * @throws {Error} naming the folder when there is none or it is not a run config
 */
export async function readRunConfig(dir: string): Promise<RunConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "it has no config.json" : (e as Error).message;
    throw new Error(`Cannot resume run "${dir}": ${why}. Hint: give the folder of a stopped run`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot resume run "${dir}": "${path}" is not JSON: ${(e as Error).message}`);
  }
  if (!isRunConfig(config)) {
    throw new Error(`Cannot resume run "${dir}": "${path}" is not the config of a run`);
  }
  // Fields added since a run's config.json was written take the value the run had then.
  return {
    ...PRE_RECIPE_FIELDS,
    ...PRE_TASK_KIND_FIELDS,
    ...PRE_TASK_WEIGHT_FIELDS,
    ...PRE_ARCH_FIELDS,
    ...config,
  };
}

/** What a run whose config.json predates `--arch` trained: the paper's ResNet18. */
const PRE_ARCH_FIELDS: Pick<RunConfig, "arch"> = { arch: "resnet18" };

/**
 * What a run whose config.json predates the recipe options did: it always flipped and
 * cropped at random (its `bn` is always written out).
 */
const PRE_RECIPE_FIELDS: Pick<RunConfig, "flip" | "crop"> = { flip: true, crop: "random" };

/**
 * What a run whose config.json predates task kinds and class balance did: class tasks only
 * (a task without `kind` is a class task), no balancing; the score loss and focal γ are
 * unused by such a run and take their defaults.
 */
const PRE_TASK_KIND_FIELDS: Pick<RunConfig, "scoreLoss" | "balance" | "focalGamma"> = {
  scoreLoss: "mse",
  balance: "none",
  focalGamma: 2,
};

/**
 * Compares a resumed run's config with the one in its folder: `out` is the folder itself,
 * RESUME_MAY_CHANGE may differ; any other difference is refused.
 * @returns the fields that changed, as `{field: [stored, now]}`
 * @throws {Error} naming every other field that differs
 */
export function resumeChanges(
  stored: RunConfig,
  config: RunConfig,
): Record<string, [unknown, unknown]> {
  const differ = configDifferences(stored, config, ["out", ...RESUME_MAY_CHANGE]);
  if (differ.length > 0) {
    throw new Error(
      `Cannot resume run "${config.out}": these options differ from its config.json: ` +
        `${differ.join(", ")} (a resumed run keeps its options; only ${
          RESUME_MAY_CHANGE.join(", ")
        } and the device may change). Hint: resume it with its own options, or start a new ` +
        `run with another --out`,
    );
  }
  const changed: Record<string, [unknown, unknown]> = {};
  for (const k of RESUME_MAY_CHANGE) {
    if (stored[k] !== config[k]) changed[k] = [stored[k], config[k]];
  }
  return changed;
}

/** A run that has nothing left to do: every planned epoch done, metrics written. */
export interface FinishedRun {
  /** Epochs done and planned (equal). */
  done: number;
  of: number;
  /** Its metrics.json. */
  result: RunResult;
}

/**
 * The finished run in `config.out`, or null when it has epochs or its metrics left to do
 * (or no resume file). Reads only.
 */
export async function finishedRun(config: RunConfig): Promise<FinishedRun | null> {
  const of = planEpochs(config).length;
  let state: ResumeState;
  try {
    const path = join(config.out, "last.safetensors");
    const file = parseSafetensors(await Deno.readFile(path), { source: path });
    state = JSON.parse(file.metadata.resume ?? "null");
  } catch {
    return null;
  }
  if (!state || !(state.position >= of)) return null;
  try {
    const result = JSON.parse(await Deno.readTextFile(join(config.out, "metrics.json")));
    return { done: state.position, of, result };
  } catch {
    return null;
  }
}
