/**
 * What a trunk architecture gives the multi-task network: a stem, a sequence of blocks (the
 * units AdaShare may skip, where they have a residual path), and a tail that pools to one
 * feature vector per image. The task heads, the policy and DAB's BN selection stay in
 * {@link MultiTaskNet}; every architecture of src/models/archs/ implements this.
 *
 * Parameter names are torchvision's: a backbone's modules are registered at the network's
 * root, so `features.3.block.1.0.weight` in a torchvision file is the same key here (with
 * the BN copy's key inserted after each batch norm, `….1.<key>.weight`, for DAB).
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import type { Rng } from "../random/rng.ts";
import { add, mul } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module } from "../nn/module.ts";

/** A block's execute/skip decision: hard, or soft weights (shape [1]) from the policy. */
export type Gate = "execute" | "skip" | { exec: Tensor; skip: Tensor };

/** One forward pass's settings, shared by every layer it runs. */
export interface Pass {
  /** The BN copy (DAB) this path normalises with. */
  key: string;
  /** Training mode: batch statistics, stochastic depth and dropout on. */
  training: boolean;
  /** Seed of this step's random masks (stochastic depth), mixed with each block's index. */
  seed: number;
}

/** One block of the trunk. */
export interface BackboneBlock {
  /** Its dotted name, e.g. "layer2.1" or "features.4". */
  readonly name: string;
  /**
   * Whether AdaShare may skip it: only blocks with a residual path, whose skip keeps the
   * shapes valid (identity, or a ResNet block's projection shortcut).
   */
  readonly gateable: boolean;
  /** Runs the block; a non-gateable block is only ever called with "execute". */
  forward(x: Tensor, pass: Pass, gate: Gate): Tensor;
}

/** A trunk: stem → blocks → tail (N, features). */
export interface Backbone extends Module {
  /** The architecture name, e.g. "mobilenet_v3_small". */
  readonly arch: string;
  /** Width of the tail's output, the task heads' input. */
  readonly features: number;
  /** The blocks in order. */
  readonly blocks: readonly BackboneBlock[];
  /**
   * The torchvision name of the classifier's last Linear ("fc", "classifier.1", …): the
   * head that the task heads replace, and that a bare torchvision classifier loads into.
   */
  readonly classifier: string;
  /** Stem: images (N, 3, H, W) → the first block's input. */
  stem(images: Tensor, pass: Pass): Tensor;
  /** Tail: the last block's output → (N, features), everything before the classifier. */
  tail(x: Tensor, pass: Pass): Tensor;
}

/** What a builder needs besides its configuration. */
export interface BuildContext {
  /** The BN copies every batch norm holds (databases, tasks, or "shared"). */
  keys: readonly string[];
  /** Seeded initialisation. */
  rng: Rng;
  /** Backend of the parameters (default: the active one). */
  backend?: Backend;
}

/**
 * A residual block's output under a gate: `f()` when executed, `skip` when skipped, and
 * p_exec·f + p_skip·skip for a soft gate. `f` is not run for a skipped block.
 */
export function gated(skip: Tensor, gate: Gate, f: () => Tensor): Tensor {
  if (gate === "skip") return skip;
  const out = f();
  if (gate === "execute") return out;
  return add(mul(out, gate.exec), mul(skip, gate.skip));
}

/** The seed of block `index`'s random masks in a pass (a 32-bit mix of both). */
export function blockSeed(pass: Pass, index: number): number {
  return (Math.imul(pass.seed >>> 0, 0x9e3779b1) + index * 0x85ebca6b) >>> 0;
}

/**
 * A family of architectures built by one builder from a configuration table (torchvision's
 * tables), e.g. MobileNetV3 small/large. `C` is the builder's JSON-serialisable config:
 * the named variants' tables, or a small custom one (tests), stored in checkpoints.
 */
export interface ArchFamily<C> {
  /** The variants by torchvision's builder name, e.g. `{ mobilenet_v3_small: {...} }`. */
  readonly variants: Readonly<Record<string, C>>;
  /** The torchvision name of its classifier's last Linear (its backbones' `classifier`). */
  readonly classifier: string;
  /**
   * Whether its blocks have residual paths that AdaShare can gate (otherwise
   * `--policy adashare` is refused).
   */
  readonly gateable: boolean;
  /**
   * Validates a config read from JSON.
   * @throws {Error} starting "Cannot read <source>: " and naming the field
   */
  parse(raw: unknown, source: string): C;
  /** Builds the backbone of variant `arch` (a name of `variants`) with config `config`. */
  build(arch: string, config: C, ctx: BuildContext): Backbone;
  /**
   * Re-initialises a freshly built backbone for training from scratch as torchvision's
   * constructor does (its init loop over the modules), drawing from `rng`; absent: the
   * values `build` drew are kept. `buildBackbone` (archs/registry.ts) calls it after `build`; the
   * task heads are not part of the backbone and keep their own initialisation.
   */
  init?(backbone: Backbone, rng: Rng): void;
}
