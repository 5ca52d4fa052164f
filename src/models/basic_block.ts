/**
 * ResNet BasicBlock (He et al., arXiv:1512.03385) with per-database batch norm (DAB),
 * optional AFF at the skip connection, and an AdaShare gate:
 *   F = bn2(conv2(relu(bn1(conv1(x)))));  S = x or downsample(x)
 *   f = relu(S + F)  or, with AFF,  relu(AFF(S, F))
 *   out = execute: f | skip: S | soft: p_exec·f + p_skip·S
 * A skipped block still applies its downsample so shapes stay valid, and computes nothing
 * else.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { Rng } from "../random/rng.ts";
import { add, mul, relu } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Aff, type AffOptions } from "../nn/aff.ts";
import { DatasetBatchNorm } from "../nn/batch_norm.ts";
import { Conv2d } from "../nn/conv2d.ts";
import { Module } from "../nn/module.ts";

import type { Gate } from "./backbone.ts";
export type { Gate } from "./backbone.ts";

/** The shortcut's 1×1 conv and batch norm, named as torchvision's `downsample.0` / `.1`. */
export class Downsample extends Module {
  /** The 1×1 convolution (`downsample.0`), with the block's stride. */
  readonly conv: Conv2d;
  /** Its batch norm (`downsample.1`), one copy per BN key. */
  readonly bn: DatasetBatchNorm;
  /** Registers `conv` and `bn` as children "0" and "1". */
  constructor(conv: Conv2d, bn: DatasetBatchNorm) {
    super();
    this.conv = this.child("0", conv);
    this.bn = this.child("1", bn);
  }
  /**
   * A ResNet block's projection shortcut (1×1 conv with the block's stride, then BN) when the
   * stride or the width changes, else null (the shortcut is the identity).
   */
  static projection(
    cin: number,
    cout: number,
    stride: number,
    keys: readonly string[],
    rng: Rng,
    backend?: Backend,
  ): Downsample | null {
    if (stride === 1 && cin === cout) return null;
    return new Downsample(
      new Conv2d(cin, cout, rng, { kernel: 1, stride, backend }),
      new DatasetBatchNorm(cout, keys, backend),
    );
  }
  /** bn(conv(x)) with BN copy `key` (batch statistics when `training`). */
  forward(x: Tensor, key: string, training: boolean): Tensor {
    return this.bn.forward(this.conv.forward(x), key, training);
  }
}

/** Options of a BasicBlock. */
export interface BasicBlockOptions {
  /** AFF options, or null for plain addition. */
  aff: AffOptions | null;
  /** Backend of the parameters (default: the active one). */
  backend?: Backend;
}

/** One residual block. */
export class BasicBlock extends Module {
  /** First 3×3 convolution, cin → cout, with the block's stride. */
  readonly conv1: Conv2d;
  /** Batch norm after conv1, one copy per BN key. */
  readonly bn1: DatasetBatchNorm;
  /** Second 3×3 convolution, cout → cout, stride 1. */
  readonly conv2: Conv2d;
  /** Batch norm after conv2, one copy per BN key. */
  readonly bn2: DatasetBatchNorm;
  /** The shortcut's projection when the stride or width changes, else null. */
  readonly downsample: Downsample | null;
  /** AFF fusing the shortcut and the residual, or null for plain addition. */
  readonly aff: Aff | null;

  /**
   * Builds a block with freshly initialised weights drawn from `rng`.
   * @param cin input channels
   * @param cout output channels
   * @param stride stride of conv1 and the downsample (1 or 2 in ResNet18)
   * @param keys the BN copies every batch norm holds (databases, tasks, or "shared")
   */
  constructor(
    cin: number,
    cout: number,
    stride: number,
    keys: readonly string[],
    rng: Rng,
    opts: BasicBlockOptions,
  ) {
    super();
    const backend = opts.backend;
    this.conv1 = this.child(
      "conv1",
      new Conv2d(cin, cout, rng, { kernel: 3, stride, padding: 1, backend }),
    );
    this.bn1 = this.child("bn1", new DatasetBatchNorm(cout, keys, backend));
    this.conv2 = this.child(
      "conv2",
      new Conv2d(cout, cout, rng, { kernel: 3, padding: 1, backend }),
    );
    this.bn2 = this.child("bn2", new DatasetBatchNorm(cout, keys, backend));
    const projection = Downsample.projection(cin, cout, stride, keys, rng, backend);
    this.downsample = projection ? this.child("downsample", projection) : null;
    this.aff = opts.aff
      ? this.child("aff", new Aff(cout, keys, rng, { ...opts.aff, backend }))
      : null;
  }

  /** The shortcut S: x, or the downsampled x. */
  shortcut(x: Tensor, key: string, training: boolean): Tensor {
    return this.downsample ? this.downsample.forward(x, key, training) : x;
  }

  /** Runs the block with BN copy `key` under `gate`. */
  forward(x: Tensor, key: string, training: boolean, gate: Gate = "execute"): Tensor {
    const s = this.shortcut(x, key, training);
    if (gate === "skip") return s;
    const h = relu(this.bn1.forward(this.conv1.forward(x), key, training));
    const f = this.bn2.forward(this.conv2.forward(h), key, training);
    const fused = this.aff ? this.aff.forward(s, f, key, training) : relu(add(s, f));
    if (gate === "execute") return fused;
    return add(mul(fused, gate.exec), mul(s, gate.skip));
  }
}
