/**
 * Seeded parameter initialisation, following torchvision's ResNet constructor: Kaiming
 * normal with fan-out for convolutions (He et al., arXiv:1502.01852), and PyTorch's
 * default uniform(±1/√fan_in) for linear layers.
 * @module
 */
import type { Rng } from "../random/rng.ts";
import { shapeSize, type Tensor, tensor, type TensorOptions } from "../tensor/tensor.ts";

/** Kaiming-normal (fan-out, ReLU gain) weights of a conv of shape (K, C, R, S). */
export function kaimingConv(shape: readonly number[], rng: Rng, opts?: TensorOptions): Tensor {
  const fanOut = shape[0] * shape[2] * shape[3];
  const std = Math.sqrt(2 / fanOut);
  const data = new Float32Array(shapeSize(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return tensor(data, shape, opts);
}

/** Uniform(−bound, bound) values. */
export function uniform(
  shape: readonly number[],
  bound: number,
  rng: Rng,
  opts?: TensorOptions,
): Tensor {
  const data = new Float32Array(shapeSize(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-bound, bound);
  return tensor(data, shape, opts);
}
