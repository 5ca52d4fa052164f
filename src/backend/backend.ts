/**
 * The backend contract: memory (alloc/free/copyIn/copyOut/sync) plus the table of
 * kernels declared once in contract.ts (the same functions as native/include/fbp.h, which
 * is generated from it). Ops above call only this interface, so model code never
 * branches on the device.
 *
 * Kernels overwrite their outputs and take one object of named arguments, e.g.
 * `backend.conv2dForward({ out, inp, weight, bias, ...sizes })`. Sizes are validated by
 * the ops in src/ops before a kernel is called, and again by the kernel (the C library,
 * or checkKernelArgs in the reference backend).
 *
 * Legend: N batch, C input channels, K output channels or classes, H×W input spatial,
 * R×S kernel, I/O linear features, n element count.
 * @module
 */
import type { Kernels, PrecisionName, Storage } from "./contract.ts";

export type { KernelArgs, KernelName, Kernels, Shape4, Storage } from "./contract.ts";
export {
  BinaryOp,
  type BinaryOpName,
  Precision,
  type PrecisionName,
  UnaryOp,
  type UnaryOpName,
} from "./contract.ts";

/** How a backend's convolutions and matrix products compute (`fbp_set_math`). */
export interface MathSettings {
  /**
   * "fp32" float32 math; "tf32" (CUDA) tensor cores with TF32 inputs; "bf16" bfloat16
   * inputs with float32 accumulation. Tensors stay float32 in every case.
   */
  precision: PrecisionName;
  /** Every kernel gives bitwise the same result run to run (deterministic algorithms). */
  deterministic: boolean;
}

/** Sizes of a 2-D convolution. */
export interface ConvSizes {
  N: number;
  C: number;
  H: number;
  W: number;
  K: number;
  R: number;
  S: number;
  /** Groups: C and K are multiples of it; the weight is (K, C/G, R, S). */
  G: number;
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
  /** PyTorch's ceil_mode: the output size is rounded up. */
  ceil: boolean;
}

/** AdamW hyper-parameters, as passed to the `adamw_update` kernel (defaults: AdamWOptions). */
export interface AdamWHyper {
  /** Learning rate (step size). */
  lr: number;
  /** First-moment decay rate (e.g. 0.9). */
  beta1: number;
  /** Second-moment decay rate (e.g. 0.999). */
  beta2: number;
  /** Term added to the denominator for numerical stability. */
  eps: number;
  /** Decoupled weight decay: each step scales the weight by 1 - lr·weightDecay. */
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
  /** The math the kernels use now: fp32, not forced deterministic, until {@link setMath}. */
  readonly math: Readonly<MathSettings>;
  /**
   * Sets how the kernels compute from now on.
   * @throws {Error} when this backend or machine cannot (bf16 on a CPU without native bf16,
   * tf32 off CUDA); the settings are then unchanged
   */
  setMath(math: MathSettings): void;
}
