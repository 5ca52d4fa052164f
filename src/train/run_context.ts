/**
 * What a run reads but never changes — config, data, plan, paths, caller's hooks — and the
 * resources it holds open while training: the decode pool, one batch loader per database
 * and split, and the log. What changes as the run goes is in RunState (run_state.ts).
 * @module
 */
import { BatchLoader } from "../data/loader.ts";
import type { ImageRecord } from "../data/records.ts";
import { DecodePool } from "../data/worker_pool.ts";
import type { Gate } from "../models/basic_block.ts";
import type { HostTensor } from "../models/checkpoint.ts";
import type { MultiTaskNet } from "../models/network.ts";
import type { PreparedDatabase, TaskClasses } from "./data_setup.ts";
import { evaluateParts } from "./evaluate.ts";
import type { PlannedEpoch } from "./plan.ts";
import type { AnyTaskMetrics, HistoryEntry } from "./result.ts";
import type { RunConfig } from "./run_config.ts";
import { RunLog } from "./run_dir.ts";
import type { TrainOptions } from "./train_options.ts";
import { samplerLabel } from "./class_balance.ts";
import type { TaskLoss } from "./task_kinds.ts";

/** A split of a database: the three training ones, and those evaluated. */
export type DataPart = "train" | "trainW" | "trainP" | "val" | "test" | "trainEval";

/** Gates per task name. */
export type Gates = ReadonlyMap<string, readonly Gate[]>;

/** The fixed inputs of a run. */
export interface RunInputs {
  config: RunConfig;
  opts: TrainOptions;
  note: (message: string) => void;
  /** The `--pretrained` tensors: re-training rebuilds the network from them too. */
  pretrained: ReadonlyMap<string, HostTensor> | undefined;
  databases: PreparedDatabase[];
  classes: TaskClasses;
  plan: PlannedEpoch[];
  /** Task weights λ by task name. */
  lambdas: Record<string, number>;
  /** How each task's loss is computed: its kind and class balance (class_balance.ts). */
  taskLosses: Record<string, TaskLoss>;
  /** `last.safetensors` (resume state) and `checkpoint.safetensors` (best weights). */
  lastPath: string;
  bestPath: string;
}

/** The inputs plus the resources open while the run trains. */
export interface RunContext extends RunInputs {
  log: RunLog;
  /** performance.now() of the start of a run that never stopped: history seconds count from it. */
  runStart: number;
  /** The loader of a database's split, made on first use. */
  loader(db: PreparedDatabase, part: DataPart): BatchLoader;
  /** Metrics per task of every database's split, with the given gates. */
  evaluate(
    net: MultiTaskNet,
    part: "val" | "test" | "trainEval",
    gates: Gates,
  ): Promise<Record<string, AnyTaskMetrics>>;
  /** Closes the log, the loaders and the pool. */
  close(): void;
}

/** Opens the resources of a run; `history` is what the run has done before (resumed). */
export async function openRunContext(
  inputs: RunInputs,
  history: readonly HistoryEntry[],
): Promise<RunContext> {
  const { config, databases } = inputs;
  const pool = new DecodePool({ workers: config.workers });
  const loaders = new Map<string, BatchLoader>();
  const loader = (db: PreparedDatabase, part: DataPart) => {
    const key = `${db.name}/${part}`;
    let l = loaders.get(key);
    if (!l) {
      const records: ImageRecord[] = part === "trainEval" ? db.train : db[part];
      l = new BatchLoader(records, {
        batchSize: config.batch,
        train: part === "train" || part === "trainW" || part === "trainP",
        size: config.imageSize,
        resize: config.resize,
        seed: config.seed,
        pool,
        cacheDir: config.cacheDir || undefined,
        onBadImage: config.onBadImage,
        flip: config.flip,
        crop: config.crop,
        labels: [...new Set(config.tasks.map((t) => t.label))],
        // --balance sampler: class-balanced draws of the training parts.
        balanceLabel: samplerLabel(config, db.name),
      });
      loaders.set(key, l);
    }
    return l;
  };
  const log = await RunLog.open(config.out, !inputs.opts.resume);
  return {
    ...inputs,
    log,
    runStart: performance.now() - (history.at(-1)?.seconds ?? 0) * 1000,
    loader,
    evaluate: (net, part, gates) =>
      evaluateParts(
        net,
        databases.map((db) => ({ database: db.name, loader: loader(db, part), tasks: db.tasks })),
        inputs.classes,
        gates,
      ),
    close() {
      log.close();
      for (const l of loaders.values()) l.close();
      pool.close();
    },
  };
}
