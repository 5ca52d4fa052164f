/**
 * How a caller drives and watches train(): options, progress events, and the error an
 * interrupted run ends with. The trainer re-exports all three.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { HostTensor } from "../models/checkpoint.ts";
import type { PlannedEpoch } from "./plan.ts";
import type { HistoryEntry } from "./result.ts";
import type { StepBatch } from "./step.ts";

/** Progress of the running epoch, for progress bars. */
export interface ProgressEvent {
  /** The kind of epoch running (warm-up, policy weights or logits, re-training, baseline). */
  kind: PlannedEpoch["kind"];
  /** 1-based epoch within its kind. */
  epoch: number;
  /** Epochs of this kind in the plan. */
  of: number;
  /** 1-based step just finished within the epoch. */
  step: number;
  /** Steps in the epoch. */
  steps: number;
  /** Images processed in this epoch so far. */
  images: number;
  /** Seconds spent in this epoch so far. */
  seconds: number;
  /** Running mean loss of the epoch. */
  loss: number;
}

/** Options of train(). */
export interface TrainOptions {
  /** The backend the network and its optimisers live on. */
  backend: Backend;
  /**
   * Continue from `last.safetensors` in the run folder (`config.out`), whose config.json
   * must match `config` except in `out` and `workers` (recorded in `log.jsonl`).
   */
  resume?: boolean;
  /**
   * Replace the run in `config.out`: delete the files a run writes there (run_dir.ts
   * RUN_FILES) once every option and data source is checked. Without it a folder holding
   * a run is refused; a folder holding other files is refused either way.
   */
  force?: boolean;
  /** Called after `force` deletes each file of the old run (tests kill the process there). */
  onRemoved?: (name: string) => void;
  /** Called after every step. */
  onProgress?: (e: ProgressEvent) => void;
  /** Called after every epoch with its history entry. */
  onEpoch?: (e: HistoryEntry) => void;
  /** Messages for the user (data problems, stage changes). */
  onNote?: (message: string) => void;
  /** When aborted: finish the step, write `last.safetensors`, throw RunInterrupted. */
  signal?: AbortSignal;
  /**
   * The `--pretrained` tensors when the caller already read and checked them with
   * readPretrainedWeights (the CLI does, before loading a backend); read here otherwise.
   */
  pretrained?: ReadonlyMap<string, HostTensor>;
  /** Test hook: may alter a batch before its step (e.g. inject a NaN), by plan position and step. */
  transformBatch?: (position: number, step: number, batch: StepBatch) => void;
}

/** The run stopped on request; `last.safetensors` holds where it was. */
export class RunInterrupted extends Error {
  /**
   * Creates the error for a run stopped by its signal.
   * @param lastPath the `last.safetensors` written when the run stopped
   */
  constructor(readonly lastPath: string) {
    super(`Run interrupted: its state is in "${lastPath}". Hint: continue with --resume`);
    this.name = "RunInterrupted";
  }
}
