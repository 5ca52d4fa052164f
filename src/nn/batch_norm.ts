/**
 * BatchNorm2d, and DatasetBatchNorm — the paper's DAB: one BatchNorm2d per database (or
 * per task, or one shared, for ablations), selected by key at each call, while the
 * convolutions around it are shared. Keys: `<name>.<key>.{weight,bias,running_mean,
 * running_var}`.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import { batchNorm } from "../ops/batch_norm.ts";
import { ones, type Tensor, zeros } from "../tensor/tensor.ts";
import { Module } from "./module.ts";

/** Batch normalisation over channels with running statistics. */
export class BatchNorm2d extends Module {
  /** (C) scale γ */
  readonly weight: Tensor;
  /** (C) shift β */
  readonly bias: Tensor;
  /** (C) running mean, used in eval mode (buffer `running_mean`, starts at 0) */
  readonly runningMean: Tensor;
  /** (C) running unbiased variance, used in eval mode (buffer `running_var`, starts at 1) */
  readonly runningVar: Tensor;
  /** Weight of the batch statistic in each running update (PyTorch's default 0.1). */
  momentum = 0.1;
  /** Term added to the variance before the square root. */
  eps = 1e-5;

  /** Builds a BN over `channels` channels: γ = 1, β = 0, running mean 0 and variance 1. */
  constructor(channels: number, backend?: Backend) {
    super();
    this.weight = this.param("weight", ones([channels], { backend }));
    this.bias = this.param("bias", zeros([channels], { backend }));
    this.runningMean = this.buffer("running_mean", zeros([channels], { backend }));
    this.runningVar = this.buffer("running_var", ones([channels], { backend }));
  }

  /** Normalises with batch statistics (training) or running statistics. */
  forward(x: Tensor, training: boolean): Tensor {
    return batchNorm(x, this.weight, this.bias, {
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

/** Which BN copy a path uses: per database (DAB, default), per task, or one shared. */
export type BnMode = "per-database" | "per-task" | "shared";

/** One BatchNorm2d per key (database, task, or "shared"). */
export class DatasetBatchNorm extends Module {
  readonly #byKey = new Map<string, BatchNorm2d>();

  /**
   * Builds one BatchNorm2d over `channels` channels per key.
   * @param keys the BN copies to create (names go into the parameter keys)
   * @throws {Error} when keys are empty or repeated
   */
  constructor(channels: number, keys: readonly string[], backend?: Backend) {
    super();
    if (keys.length === 0 || new Set(keys).size !== keys.length) {
      throw new Error(
        `Cannot create DatasetBatchNorm: keys must be distinct and non-empty: [${keys}]`,
      );
    }
    for (const k of keys) this.#byKey.set(k, this.child(k, new BatchNorm2d(channels, backend)));
  }

  /** The BN copy for a key. */
  get(key: string): BatchNorm2d {
    const bn = this.#byKey.get(key);
    if (!bn) {
      throw new Error(
        `Cannot select batch norm "${key}": known keys are ${
          [...this.#byKey.keys()].map((k) => `"${k}"`).join(", ")
        }`,
      );
    }
    return bn;
  }

  /** Normalises `x` with the copy selected by `key`. */
  forward(x: Tensor, key: string, training: boolean): Tensor {
    return this.get(key).forward(x, training);
  }
}
