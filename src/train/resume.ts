/**
 * `last.safetensors`: everything needed to continue a run — the network's tensors, both
 * optimisers' moments (`optim.<name>.{m,v}.<param key>`), and the position and history as
 * JSON in the metadata key `resume`: a RunState (run_state.ts) on disk. Written atomically
 * after every epoch and on Ctrl-C.
 * @module
 */
import { parseSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { type HostTensor, loadState, stateToHost } from "../models/checkpoint.ts";
import type { RunConfig } from "./run_config.ts";
import type { RunProgress, RunState } from "./run_state.ts";

/** Where a run is and what it has done so far, as stored in the file. */
export interface ResumeState extends RunProgress {
  weightSteps: number;
  policySteps: number;
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
  };
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
      `Cannot resume run "${config.out}": "${path}" does not exist. Hint: start it without --resume`,
    );
  }
  const file = parseSafetensors(bytes, { source: path });
  if (!file.metadata.resume) {
    throw new Error(`Cannot resume from "${path}": it has no "resume" metadata entry`);
  }
  const state = JSON.parse(file.metadata.resume) as ResumeState;
  const weights = new Map<string, HostTensor>();
  const moments = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) (k.startsWith("optim.") ? moments : weights).set(k, t);
  return {
    state,
    weights,
    restoreInto(run) {
      const { weightSteps, policySteps, ...progress } = state;
      Object.assign(run, progress);
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
    },
  };
}
