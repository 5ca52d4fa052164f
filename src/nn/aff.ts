/**
 * Attentional feature fusion (Dai et al., "Attentional Feature Fusion", WACV 2021,
 * arXiv:2009.14082) with its multi-scale channel attention (MS-CAM), as the paper uses it
 * at each BasicBlock's short skip connection:
 *   u = S + F,  w = sigmoid(L(u) + G(u)),  f = s·w⊙S + s·(1−w)⊙F
 *   L(u) = bn(pw(relu(bn(pw(u)))))             point-wise, full resolution
 *   G(u) = bn(pw(relu(bn(pw(avgpool(u))))))    global, broadcast over H×W
 * s = 2 by default (the AFF authors' code: the two weights then sum to 2 like plain
 * addition, so ImageNet weights keep their meaning at w ≈ 0.5); s = 1 is the formula as
 * printed in the paper. BNs are per database (DAB); the 1×1 convs are shared.
 * Keys follow the authors' nn.Sequential layout: local.{0,1,3,4}, global.{1,2,4,5}.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { Rng } from "../random/rng.ts";
import { affFuse } from "../ops/aff.ts";
import { add, relu } from "../ops/elementwise.ts";
import { globalAvgPool } from "../ops/pool.ts";
import { reshape } from "../ops/shape.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { DatasetBatchNorm } from "./batch_norm.ts";
import { Conv2d } from "./conv2d.ts";
import { Module } from "./module.ts";

/** AFF options. */
export interface AffOptions {
  /** Channel reduction r of the attention bottleneck (default 4). */
  reduction?: number;
  /** Fusion scale s (default 2; 1 = the paper's printed formula). */
  scale?: number;
  /** Backend of the parameters. */
  backend?: Backend;
}

class Branch extends Module {
  readonly pw1: Conv2d;
  readonly bn1: DatasetBatchNorm;
  readonly pw2: Conv2d;
  readonly bn2: DatasetBatchNorm;
  constructor(
    channels: number,
    inner: number,
    keys: readonly string[],
    rng: Rng,
    first: number,
    backend?: Backend,
  ) {
    super();
    const pw = { kernel: 1, bias: true, backend };
    this.pw1 = this.child(`${first}`, new Conv2d(channels, inner, rng, pw));
    this.bn1 = this.child(`${first + 1}`, new DatasetBatchNorm(inner, keys, backend));
    this.pw2 = this.child(`${first + 3}`, new Conv2d(inner, channels, rng, pw));
    this.bn2 = this.child(`${first + 4}`, new DatasetBatchNorm(channels, keys, backend));
  }
  forward(x: Tensor, key: string, training: boolean): Tensor {
    const h = relu(this.bn1.forward(this.pw1.forward(x), key, training));
    return this.bn2.forward(this.pw2.forward(h), key, training);
  }
}

/** AFF fusion of a block's shortcut S and residual F. */
export class Aff extends Module {
  /** Fusion scale s (2 = the authors' code, 1 = the paper's printed formula). */
  readonly scale: number;
  readonly #local: Branch;
  readonly #global: Branch;

  /**
   * Builds the local and global attention branches, freshly initialised from `rng`.
   * @param channels C of S and F
   * @param keys the BN copies every batch norm holds (databases, tasks, or "shared")
   */
  constructor(channels: number, keys: readonly string[], rng: Rng, opts: AffOptions = {}) {
    super();
    const r = opts.reduction ?? 4;
    this.scale = opts.scale ?? 2;
    const inner = Math.max(1, Math.floor(channels / r));
    this.#local = this.child("local", new Branch(channels, inner, keys, rng, 0, opts.backend));
    this.#global = this.child("global", new Branch(channels, inner, keys, rng, 1, opts.backend));
  }

  /**
   * Fuses shortcut `s` and residual `f` (both (N, C, H, W)) and applies the block's ReLU:
   * returns relu(s·(F + w⊙(S − F))) = relu(s·w⊙S + s·(1−w)⊙F), the last step as one
   * native kernel (ops/aff.ts).
   */
  forward(shortcut: Tensor, residual: Tensor, key: string, training: boolean): Tensor {
    const u = add(shortcut, residual);
    const [N, C] = u.shape;
    const pooled = reshape(globalAvgPool(u), [N, C, 1, 1]);
    const local = this.#local.forward(u, key, training);
    const global = this.#global.forward(pooled, key, training);
    return affFuse(shortcut, residual, local, global, this.scale);
  }
}
