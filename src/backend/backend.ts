/**
 * The backend contract: memory (alloc/free/copyIn/copyOut/sync) plus a table of kernels
 * that mirrors native/include/fbp.h one to one. Ops above call only this interface, so
 * model code never branches on the device.
 *
 * Kernels overwrite their outputs. Sizes are validated by the ops in src/ops before a
 * kernel is called; kernels may assume consistent sizes.
 *
 * Legend: N batch, C input channels, K output channels or classes, H×W input spatial,
 * R×S kernel, I/O linear features, n element count.
 * @module
 */

/** Backend-owned memory holding `size` float32 values. */
export interface Storage {
  /** Number of floats. */
  readonly size: number;
}

/** Elementwise unary functions (codes match `enum fbp_unary_op`). */
export const UnaryOp = { relu: 0, sigmoid: 1, log: 2, abs: 3, exp: 4 } as const;
/** A unary function name. */
export type UnaryOpName = keyof typeof UnaryOp;

/** Broadcasting binary functions (codes match `enum fbp_binary_op`). */
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3 } as const;
/** A binary function name. */
export type BinaryOpName = keyof typeof BinaryOp;

/** A 4-D shape used by the broadcasting kernels. */
export type Shape4 = readonly [number, number, number, number];

/** Sizes of a 2-D convolution. */
export interface ConvSizes {
  N: number;
  C: number;
  H: number;
  W: number;
  K: number;
  R: number;
  S: number;
  stride: number;
  pad: number;
}

/** Sizes of an NCHW tensor. */
export interface NchwSizes {
  N: number;
  C: number;
  H: number;
  W: number;
}

/** Sizes of a square-window pooling. */
export interface PoolSizes extends NchwSizes {
  kernel: number;
  stride: number;
  pad: number;
}

/** The kernel table: one method per function of native/include/fbp.h. */
export interface Kernels {
  fill(out: Storage, value: number, n: number): void;
  copy(
    out: Storage,
    outOffset: number,
    inp: Storage,
    inOffset: number,
    n: number,
    accumulate: boolean,
  ): void;

  conv2dForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    s: ConvSizes,
  ): void;
  conv2dBackwardData(dinp: Storage, dout: Storage, weight: Storage, s: ConvSizes): void;
  conv2dBackwardWeights(
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    s: ConvSizes,
  ): void;

  batchnormForwardTrain(
    out: Storage,
    mean: Storage,
    variance: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    s: NchwSizes,
    eps: number,
  ): void;
  batchnormForwardInfer(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    mean: Storage,
    variance: Storage,
    s: NchwSizes,
    eps: number,
  ): void;
  batchnormBackward(
    dinp: Storage,
    dweight: Storage,
    dbias: Storage,
    dout: Storage,
    inp: Storage,
    mean: Storage,
    variance: Storage,
    weight: Storage,
    s: NchwSizes,
    eps: number,
  ): void;

  maxpool2dForward(out: Storage, inp: Storage, s: PoolSizes): void;
  maxpool2dBackward(dinp: Storage, dout: Storage, inp: Storage, s: PoolSizes): void;
  avgpoolGlobalForward(out: Storage, inp: Storage, s: NchwSizes): void;
  avgpoolGlobalBackward(dinp: Storage, dout: Storage, s: NchwSizes): void;

  linearForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    N: number,
    I: number,
    O: number,
  ): void;
  linearBackward(
    dinp: Storage | null,
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    weight: Storage,
    N: number,
    I: number,
    O: number,
  ): void;

  unaryForward(out: Storage, inp: Storage, n: number, op: UnaryOpName): void;
  unaryBackward(
    dinp: Storage,
    dout: Storage,
    inp: Storage,
    out: Storage,
    n: number,
    op: UnaryOpName,
  ): void;
  scale(out: Storage, inp: Storage, alpha: number, beta: number, n: number): void;
  binaryForward(
    out: Storage,
    a: Storage,
    b: Storage,
    aShape: Shape4,
    bShape: Shape4,
    op: BinaryOpName,
  ): void;
  sumTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void;
  broadcastTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void;
  softmaxForward(out: Storage, inp: Storage, rows: number, cols: number): void;
  softmaxBackward(
    dinp: Storage,
    dout: Storage,
    out: Storage,
    rows: number,
    cols: number,
  ): void;

  /** out = relu(scale·(F + w⊙(S − F))), w = sigmoid(L + G), G (N, C) broadcast (fbp.h). */
  affFuseForward(
    out: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void;
  /** Gradients of affFuseForward for S, F, L (N, C, H, W) and G (N, C) (fbp.h). */
  affFuseBackward(
    dS: Storage,
    dF: Storage,
    dL: Storage,
    dG: Storage,
    dout: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void;

  crossEntropyForward(
    loss: Storage,
    probs: Storage,
    logits: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void;
  crossEntropyBackward(
    dlogits: Storage,
    dloss: Storage,
    probs: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void;

  dropoutForward(
    out: Storage,
    mask: Storage,
    inp: Storage,
    n: number,
    p: number,
    seed: number,
  ): void;

  adamwUpdate(
    param: Storage,
    m: Storage,
    v: Storage,
    grad: Storage,
    n: number,
    h: AdamWHyper,
    step: number,
  ): void;
}

/** AdamW hyper-parameters. */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** A backend: memory management plus kernels. */
export interface Backend extends Kernels {
  /** Short name: "cpu", "cuda", "reference". */
  readonly name: string;
  /** Allocates `n` floats (contents undefined). */
  alloc(n: number): Storage;
  /** Frees a storage; using it afterwards is an error caught by the Tensor layer. */
  free(s: Storage): void;
  /** Copies host floats into a storage (lengths must match). */
  copyIn(dst: Storage, src: Float32Array): void;
  /** Copies a storage out to a new host array. */
  copyOut(src: Storage): Float32Array;
  /** Waits for queued work. */
  sync(): void;
  /**
   * Gives the freed blocks the backend's allocator keeps for reuse back to the system
   * (e.g. between training and evaluation, or before measuring a phase's peak memory).
   */
  releaseCache(): void;
}
