/**
 * AdaShare policies (Sun et al., NeurIPS 2020, arXiv:1911.12423): per task and block,
 * logits over (execute, skip). Training samples gates with Gumbel-Softmax (Jang et al.,
 * arXiv:1611.01144): p = softmax((logits + g)/τ), g = −log(−log u), soft by default or
 * straight-through hard; evaluation uses a fixed hard policy (argmax or a seeded sample).
 * Curriculum: only the last k blocks follow the policy; earlier ones execute.
 * @module
 */
import type { Rng } from "../random/rng.ts";
import { add, detach, mul, sub } from "../ops/elementwise.ts";
import { slice } from "../ops/shape.ts";
import { softmax } from "../ops/softmax.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Gate } from "./basic_block.ts";

/** Hard gates from a 0/1 policy (1 = execute). */
export function fixedGates(policy: readonly number[]): Gate[] {
  return policy.map((v) => (v === 1 ? "execute" : "skip"));
}

/** A policy as text: `beauty 11011010, gender 11110000` (1 = execute), for notes and tables. */
export function formatPolicy(policy: Readonly<Record<string, readonly number[]>>): string {
  return Object.entries(policy).map(([t, v]) => `${t} ${v.join("")}`).join(", ");
}

/** Every block executes. */
export function allExecute(blocks: number): Gate[] {
  return Array.from({ length: blocks }, () => "execute" as const);
}

/** Argmax policy per task from logits (T, B, 2); ties execute. */
export function argmaxPolicy(logits: Float32Array, tasks: number, blocks: number): number[][] {
  return Array.from({ length: tasks }, (_, t) =>
    Array.from({ length: blocks }, (_, b) => {
      const i = (t * blocks + b) * 2;
      return logits[i] >= logits[i + 1] ? 1 : 0;
    }));
}

/** p(execute) = softmax(logits)[t, b, 0] per task and block, from logits (T, B, 2). */
export function executeProbabilities(
  logits: Float32Array,
  tasks: number,
  blocks: number,
): number[][] {
  return Array.from({ length: tasks }, (_, t) =>
    Array.from({ length: blocks }, (_, b) => {
      const i = (t * blocks + b) * 2;
      return 1 / (1 + Math.exp(logits[i + 1] - logits[i]));
    }));
}

/** A policy sampled from softmax(logits) per task and block with a seeded generator. */
export function samplePolicy(
  logits: Float32Array,
  tasks: number,
  blocks: number,
  rng: Rng,
): number[][] {
  const p = executeProbabilities(logits, tasks, blocks);
  return Array.from({ length: tasks }, (_, t) =>
    Array.from({ length: blocks }, (_, b) => {
      return rng.next() < p[t][b] ? 1 : 0;
    }));
}

/**
 * A random policy with as many executed blocks per task as `like` (which blocks: drawn
 * uniformly with `rng`): the control a learnt policy must beat.
 */
export function randomPolicyLike(
  like: Readonly<Record<string, readonly number[]>>,
  rng: Rng,
): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(like).map(([task, bits]) => {
      const order = bits.map((_, b) => b);
      for (let i = order.length - 1; i > 0; i--) { // Fisher–Yates
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const executed = new Set(order.slice(0, bits.filter((v) => v === 1).length));
      return [task, bits.map((_, b) => (executed.has(b) ? 1 : 0))];
    }),
  );
}

/** Gumbel(0, 1) noise: −log(−log u), u uniform in (0, 1). */
export function gumbelNoise(n: number, rng: Rng): Float32Array {
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.min(Math.max(rng.next(), 1e-10), 1 - 1e-10);
    g[i] = -Math.log(-Math.log(u));
  }
  return g;
}

/** Options of gumbelGates. */
export interface GumbelOptions {
  /** Temperature τ > 0. */
  tau: number;
  /** Straight-through hard samples (forward one-hot, backward soft). */
  hard?: boolean;
  /** Only the last `window` blocks follow the policy (curriculum); default all. */
  window?: number;
}

/**
 * Differentiable gates for every task from policy logits (T, B, 2) and Gumbel noise of
 * the same size: gates[t][b] holds p[t,b,exec] and p[t,b,skip] as [1] tensors.
 * @throws {RangeError} when the noise size or the temperature is wrong
 */
export function gumbelGates(logits: Tensor, noise: Float32Array, opts: GumbelOptions): Gate[][] {
  const [T, B] = logits.shape;
  if (noise.length !== logits.size) {
    throw new RangeError(
      `Cannot sample Gumbel gates: noise has ${noise.length} values, logits have ${logits.size}`,
    );
  }
  if (!(opts.tau > 0)) {
    throw new RangeError(
      `Cannot sample Gumbel gates: temperature must be > 0: current value is ${opts.tau}`,
    );
  }
  const window = opts.window ?? B;
  let p = softmax(
    mul(add(logits, tensor(noise, logits.shape, { backend: logits.backend })), 1 / opts.tau),
  );
  if (opts.hard) {
    // Straight-through: forward the one-hot of p, backward through p.
    const soft = p.toArray(), hardValues = new Float32Array(soft.length);
    for (let i = 0; i < soft.length; i += 2) hardValues[soft[i] >= soft[i + 1] ? i : i + 1] = 1;
    const hard = tensor(hardValues, p.shape, { backend: p.backend });
    p = add(sub(hard, detach(p)), p);
  }
  return Array.from({ length: T }, (_, t) =>
    Array.from({ length: B }, (_, b): Gate => {
      if (b < B - window) return "execute";
      const at = (t * B + b) * 2;
      return { exec: slice(p, at, [1]), skip: slice(p, at + 1, [1]) };
    }));
}
