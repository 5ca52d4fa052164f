/**
 * Conv2d layer: a (K, C/groups, R, S) weight (Kaiming fan-out) and an optional bias
 * (zeros), torchvision names `weight` / `bias`.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { Rng } from "../random/rng.ts";
import { conv2d } from "../ops/conv.ts";
import { type Tensor, zeros } from "../tensor/tensor.ts";
import { kaimingConv } from "./init.ts";
import { Module } from "./module.ts";

/** Conv2d construction options. */
export interface Conv2dLayerOptions {
  /** Kernel size (square). */
  kernel: number;
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding (default 0). */
  padding?: number;
  /** Whether the layer has a bias (default false: a BatchNorm follows). */
  bias?: boolean;
  /**
   * Groups (default 1): inChannels and outChannels must be multiples of it; the weight is
   * (outChannels, inChannels/groups, kernel, kernel). groups = inChannels = outChannels is
   * a depthwise convolution.
   */
  groups?: number;
  /** Backend of the parameters (default: the active one). */
  backend?: Backend;
}

/** A 2-D convolution layer. */
export class Conv2d extends Module {
  /** (K, C/groups, R, S) */
  readonly weight: Tensor;
  /** (K) or null */
  readonly bias: Tensor | null;
  /** Stride, both dimensions. */
  readonly stride: number;
  /** Zero padding on every side. */
  readonly padding: number;
  /** Groups (1: a dense convolution). */
  readonly groups: number;

  /**
   * Builds a conv with a Kaiming fan-out weight drawn from `rng` (and a zero bias). The
   * fan-out is PyTorch's for any groups: outChannels·kernel².
   * @throws {RangeError} when the channel counts are not multiples of groups
   */
  constructor(inChannels: number, outChannels: number, rng: Rng, opts: Conv2dLayerOptions) {
    super();
    const { kernel, backend } = opts;
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const groups = opts.groups ?? 1;
    if (
      !(Number.isInteger(groups) && groups >= 1) || inChannels % groups !== 0 ||
      outChannels % groups !== 0
    ) {
      throw new RangeError(
        `Cannot build Conv2d ${inChannels} → ${outChannels}: groups ${groups} must be a whole ` +
          `number >= 1 that divides both channel counts`,
      );
    }
    this.groups = groups;
    this.weight = this.param(
      "weight",
      kaimingConv([outChannels, inChannels / groups, kernel, kernel], rng, { backend }),
    );
    this.bias = opts.bias ? this.param("bias", zeros([outChannels], { backend })) : null;
  }

  /** (N, C, H, W) → (N, K, P, Q). */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, {
      bias: this.bias,
      stride: this.stride,
      padding: this.padding,
      groups: this.groups,
    });
  }
}
