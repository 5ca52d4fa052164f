/**
 * Training-from-scratch initialisation of a backbone as torchvision's constructors do it (the
 * `for m in self.modules()` loop at the end of each family's `__init__`): the fillers
 * (normal, truncated normal, Kaiming normal, uniform, zeros) and {@link initBackbone}, which
 * walks a backbone's parameters and picks a rule by shape and key. A 4-D `weight` is a
 * convolution's, a 2-D `weight` a Linear's, and `<layer>.bias` belongs to the layer of
 * `<layer>.weight`. Batch norms (the DAB copies, built as weight 1, bias 0), LayerNorms,
 * ConvNeXt's layer_scale and every parameter without a rule keep their built values.
 * @module
 */
import type { Rng } from "../../random/rng.ts";
import { DatasetBatchNorm } from "../../nn/batch_norm.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { Backbone } from "../backbone.ts";

/**
 * New values of a parameter of `size` elements. `layer` is the shape of its layer's
 * weight (the parameter's own shape for a weight; the weight's for a bias), from which the
 * fans are computed.
 */
export type Fill = (size: number, layer: readonly number[], rng: Rng) => Float32Array;

/** A value that may depend on the layer's weight shape (e.g. a std from its fan). */
export type ByLayer = number | ((layer: readonly number[]) => number);

function at(v: ByLayer, layer: readonly number[]): number {
  return typeof v === "number" ? v : v(layer);
}

/** Product of a weight's dimensions after the first two (a conv's kernel area; 1 for Linear). */
function receptive(layer: readonly number[]): number {
  let r = 1;
  for (let i = 2; i < layer.length; i++) r *= layer[i];
  return r;
}

/** PyTorch's fan-in of a weight (O, I/groups, …): I/groups · kernel area. */
export function fanIn(layer: readonly number[]): number {
  return layer[1] * receptive(layer);
}

/** PyTorch's fan-out of a weight (O, I/groups, …): O · kernel area (groups not divided out). */
export function fanOut(layer: readonly number[]): number {
  return layer[0] * receptive(layer);
}

/** Normal(mean, std). */
export function normal(std: ByLayer, mean = 0): Fill {
  return (size, layer, rng) => {
    const s = at(std, layer);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = mean + s * rng.normal();
    return out;
  };
}

/**
 * Normal(mean, std) truncated to [a, b] (absolute bounds, as `nn.init.trunc_normal_`),
 * by redrawing the samples that fall outside.
 * @throws {Error} when [a, b] is empty
 */
export function truncNormal(std: ByLayer, mean = 0, a = -2, b = 2): Fill {
  if (!(a < b)) throw new Error(`Cannot draw a truncated normal: empty range [${a}, ${b}]`);
  return (size, layer, rng) => {
    const s = at(std, layer);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      let v: number;
      do v = mean + s * rng.normal(); while (v < a || v > b);
      out[i] = v;
    }
    return out;
  };
}

/** `nn.init.kaiming_normal_` with the ReLU gain: Normal(0, √(2 / fan)). */
export function kaimingNormal(mode: "fan_in" | "fan_out"): Fill {
  return normal((l) => Math.sqrt(2 / (mode === "fan_in" ? fanIn(l) : fanOut(l))));
}

/** Uniform(−bound, bound). */
export function uniform(bound: ByLayer): Fill {
  return (size, layer, rng) => {
    const b = at(bound, layer);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = rng.uniform(-b, b);
    return out;
  };
}

/**
 * PyTorch's default for a Conv2d/Linear weight and bias (kaiming_uniform with a = √5):
 * Uniform(±1/√fan_in) of the layer.
 */
export const pytorchDefault: Fill = uniform((l) => 1 / Math.sqrt(fanIn(l)));

/** All zeros. */
export const zeros: Fill = (size) => new Float32Array(size);

/** The fills of one family; a missing entry keeps the built values. */
export interface InitRules {
  /** 4-D weights (Conv2d). */
  convWeight?: Fill;
  /** Biases of convolutions. */
  convBias?: Fill;
  /** 2-D weights (Linear, including ConvNeXt's pointwise Linears). */
  linearWeight?: Fill;
  /** Biases of Linear layers. */
  linearBias?: Fill;
}

/** Overwrites a parameter's values. */
function write(t: Tensor, data: Float32Array): void {
  t.backend.copyIn(t.storage, data);
}

/**
 * Re-initialises the convolutions and Linear layers of `backbone` by `rules`, drawing from
 * `rng` in parameter order (the same seed gives the same weights). Batch-norm parameters
 * (those of DatasetBatchNorm modules) are never touched.
 */
export function initBackbone(backbone: Backbone, rng: Rng, rules: InitRules): void {
  const bnPrefixes = backbone.namedModules()
    .filter(([, m]) => m instanceof DatasetBatchNorm)
    .map(([name]) => name === "" ? "" : `${name}.`);
  const params = backbone.namedParameters()
    .filter(([key]) => !bnPrefixes.some((p) => key.startsWith(p)));
  const byKey = new Map(params);
  for (const [key, t] of params) {
    const dot = key.lastIndexOf(".");
    const leaf = key.slice(dot + 1);
    let layer: readonly number[];
    let fill: Fill | undefined;
    if (leaf === "weight") {
      layer = t.shape;
      fill = t.shape.length === 4
        ? rules.convWeight
        : t.shape.length === 2
        ? rules.linearWeight
        : undefined;
    } else if (leaf === "bias" && t.shape.length === 1) {
      const w = byKey.get(`${key.slice(0, dot + 1)}weight`);
      if (!w) continue;
      layer = w.shape;
      fill = w.shape.length === 4
        ? rules.convBias
        : w.shape.length === 2
        ? rules.linearBias
        : undefined;
    } else {
      continue;
    }
    if (fill) write(t, fill(t.size, layer, rng));
  }
}
