/**
 * Linear layer with PyTorch's default initialisation (uniform ±1/√in for weight and
 * bias), torchvision names `weight` (O, I) and `bias` (O).
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { Rng } from "../random/rng.ts";
import { linear } from "../ops/linear.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { uniform } from "./init.ts";
import { Module } from "./module.ts";

/** A fully connected layer. */
export class Linear extends Module {
  /** (O, I) */
  readonly weight: Tensor;
  /** (O) */
  readonly bias: Tensor;

  /** Builds a layer with weight and bias drawn uniformly from ±1/√inFeatures. */
  constructor(inFeatures: number, outFeatures: number, rng: Rng, backend?: Backend) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", uniform([outFeatures, inFeatures], bound, rng, { backend }));
    this.bias = this.param("bias", uniform([outFeatures], bound, rng, { backend }));
  }

  /** (N, I) → (N, O). */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
