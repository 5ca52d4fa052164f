/**
 * The layers torchvision's classifiers are built from, with torchvision's parameter names
 * and DAB batch norm: Conv2dNormActivation (`0` conv, `1` BN), SqueezeExcitation (`fc1`,
 * `fc2`), LayerNorm2d, and Seq, an nn.Sequential whose steps may be parameterless functions
 * (an activation, a pool) that keep their index, as in torchvision, without a module.
 * @module
 */
import {
  gelu,
  hardsigmoid,
  hardswish,
  mul,
  relu,
  relu6,
  sigmoid,
  silu,
} from "../../ops/elementwise.ts";
import { layerNormChannels } from "../../ops/channels.ts";
import { globalAvgPool } from "../../ops/pool.ts";
import { reshape } from "../../ops/shape.ts";
import { ones, type Tensor, zeros } from "../../tensor/tensor.ts";
import { DatasetBatchNorm } from "../../nn/batch_norm.ts";
import { Conv2d } from "../../nn/conv2d.ts";
import { Linear } from "../../nn/linear.ts";
import { Module } from "../../nn/module.ts";
import type { BuildContext, Pass } from "../backbone.ts";

/** An activation by its torchvision name ("none": identity). */
export type Activation =
  | "relu"
  | "relu6"
  | "silu"
  | "hardswish"
  | "hardsigmoid"
  | "gelu"
  | "sigmoid"
  | "none";

/** Applies activation `act` to `x`. */
export function activate(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case "relu":
      return relu(x);
    case "relu6":
      return relu6(x);
    case "silu":
      return silu(x);
    case "hardswish":
      return hardswish(x);
    case "hardsigmoid":
      return hardsigmoid(x);
    case "gelu":
      return gelu(x);
    case "sigmoid":
      return sigmoid(x);
    case "none":
      return x;
  }
}

/** A layer of a torchvision Sequential: runs on a pass. */
export interface Layer {
  run(x: Tensor, pass: Pass): Tensor;
}

/** BatchNorm2d settings torchvision varies per family (MobileNetV3, EfficientNet-B5+: 1e-3). */
export interface NormOptions {
  /** Added to the variance (default 1e-5): part of the eval-mode function, torchvision's. */
  eps?: number;
}

/**
 * A DAB batch norm (one copy per key of `ctx`) with torchvision's eps. The running-statistics
 * momentum is PyTorch's default 0.1 in every family: torchvision's 0.01 (MobileNetV3,
 * EfficientNet-B5–B7) suits ImageNet's long schedules, and over this toolkit's short ones
 * the running statistics lag the weights (mobilenet_v3_small on the default data: test
 * ACC 37.2 % with 0.01, always the largest grade; 65.4 % with 0.1).
 */
export function dabNorm(channels: number, ctx: BuildContext, opts: NormOptions = {}) {
  const bn = new DatasetBatchNorm(channels, ctx.keys, ctx.backend);
  for (const k of ctx.keys) bn.get(k).eps = opts.eps ?? 1e-5;
  return bn;
}

/** A batch norm as a Sequential step. */
export class Norm extends Module implements Layer {
  readonly bn: DatasetBatchNorm;
  /** Registers the DAB copies of a `channels`-channel batch norm. */
  constructor(channels: number, ctx: BuildContext, opts: NormOptions = {}) {
    super();
    this.bn = this.adopt(dabNorm(channels, ctx, opts));
  }
  run(x: Tensor, pass: Pass): Tensor {
    return this.bn.forward(x, pass.key, pass.training);
  }
}

/** Options of a convolution layer. */
export interface ConvOptions {
  kernel: number;
  stride?: number;
  /** Default (kernel − 1)/2, torchvision's "same" padding at stride 1. */
  padding?: number;
  groups?: number;
  bias?: boolean;
}

/** A bare convolution as a Sequential step (`weight`, `bias`). */
export class Conv extends Module implements Layer {
  readonly conv: Conv2d;
  /** A `cin` → `cout` convolution initialised from `ctx.rng`. */
  constructor(cin: number, cout: number, ctx: BuildContext, opts: ConvOptions) {
    super();
    this.conv = this.adopt(
      new Conv2d(cin, cout, ctx.rng, {
        kernel: opts.kernel,
        stride: opts.stride ?? 1,
        padding: opts.padding ?? (opts.kernel - 1) >> 1,
        groups: opts.groups ?? 1,
        bias: opts.bias ?? false,
        backend: ctx.backend,
      }),
    );
  }
  run(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** torchvision's Conv2dNormActivation: conv (`0`, no bias) → BN (`1`) → activation. */
export class ConvNormAct extends Module implements Layer {
  readonly conv: Conv;
  readonly norm: Norm;
  readonly act: Activation;
  /** `cin` → `cout` with the given conv, norm and activation. */
  constructor(
    cin: number,
    cout: number,
    ctx: BuildContext,
    opts: ConvOptions & NormOptions & { act: Activation },
  ) {
    super();
    this.conv = this.child("0", new Conv(cin, cout, ctx, { ...opts, bias: false }));
    this.norm = this.child("1", new Norm(cout, ctx, opts));
    this.act = opts.act;
  }
  run(x: Tensor, pass: Pass): Tensor {
    return activate(this.norm.run(this.conv.run(x), pass), this.act);
  }
}

/**
 * torchvision.ops.SqueezeExcitation: x · gate(fc2(act(fc1(avgpool(x))))), fc1 and fc2 1×1
 * convolutions with bias.
 */
export class SqueezeExcitation extends Module implements Layer {
  readonly fc1: Conv;
  readonly fc2: Conv;
  readonly act: Activation;
  readonly gate: Activation;
  /** `channels` → `squeeze` → `channels`. */
  constructor(
    channels: number,
    squeeze: number,
    ctx: BuildContext,
    opts: { act: Activation; gate: Activation },
  ) {
    super();
    this.fc1 = this.child("fc1", new Conv(channels, squeeze, ctx, { kernel: 1, bias: true }));
    this.fc2 = this.child("fc2", new Conv(squeeze, channels, ctx, { kernel: 1, bias: true }));
    this.act = opts.act;
    this.gate = opts.gate;
  }
  run(x: Tensor): Tensor {
    const [N, C] = x.shape;
    const s = reshape(globalAvgPool(x), [N, C, 1, 1]);
    const g = activate(this.fc2.run(activate(this.fc1.run(s), this.act)), this.gate);
    return mul(x, g);
  }
}

/** ConvNeXt's LayerNorm2d: LayerNorm over channels at every position (`weight`, `bias`). */
export class LayerNorm2d extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly eps: number;
  /** γ = 1, β = 0 over `channels`; torchvision's ConvNeXt uses eps 1e-6. */
  constructor(channels: number, ctx: BuildContext, eps = 1e-6) {
    super();
    this.weight = this.param("weight", ones([channels], { backend: ctx.backend }));
    this.bias = this.param("bias", zeros([channels], { backend: ctx.backend }));
    this.eps = eps;
  }
  run(x: Tensor): Tensor {
    return layerNormChannels(x, this.weight, this.bias, this.eps);
  }
}

/** A Linear layer as a step on (N, I) features. */
export class Dense extends Module implements Layer {
  readonly linear: Linear;
  /** `cin` → `cout`, PyTorch's default initialisation. */
  constructor(cin: number, cout: number, ctx: BuildContext) {
    super();
    this.linear = this.adopt(new Linear(cin, cout, ctx.rng, ctx.backend));
  }
  run(x: Tensor): Tensor {
    return this.linear.forward(x);
  }
}

/**
 * torchvision's nn.Sequential: steps run in order; a module step is registered under its
 * index, a function step (activation, pooling) only takes an index, as its parameterless
 * module does in torchvision.
 */
export class Seq extends Module implements Layer {
  readonly #steps: ((x: Tensor, pass: Pass) => Tensor)[] = [];
  /** Appends a layer under the next index and returns it. */
  add<L extends Module & Layer>(layer: L): L {
    this.child(String(this.#steps.length), layer);
    this.#steps.push((x, pass) => layer.run(x, pass));
    return layer;
  }
  /** Appends a parameterless step (it takes an index, as in torchvision). */
  fn(step: (x: Tensor, pass: Pass) => Tensor): this {
    this.#steps.push(step);
    return this;
  }
  /** Number of steps so far (the next index). */
  get length(): number {
    return this.#steps.length;
  }
  run(x: Tensor, pass: Pass): Tensor {
    for (const step of this.#steps) x = step(x, pass);
    return x;
  }
}

/**
 * torchvision's `_make_divisible`: rounds `v` to the nearest multiple of `divisor` (at
 * least `minValue`), never more than 10 % below `v` (MobileNet and EfficientNet widths).
 */
export function makeDivisible(v: number, divisor: number, minValue?: number): number {
  const min = minValue ?? divisor;
  let n = Math.max(min, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  if (n < 0.9 * v) n += divisor;
  return n;
}
