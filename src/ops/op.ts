/**
 * Shared plumbing of differentiable ops: argument checks that name the op and the
 * shapes, and `record`, which attaches a backward rule to an op's output when gradients
 * are being recorded.
 * @module
 */
import { formatShape, type GradNode, type Tensor } from "../tensor/tensor.ts";
import { isGradEnabled } from "../tensor/grad_mode.ts";
import type { Backend, Shape4 } from "../backend/backend.ts";

/**
 * Attaches `backward` to `out` when grad is on and an input requires grad; returns out.
 * `saved` lists every tensor whose values `backward` reads (default: the inputs and the
 * output); a `graphScope` frees the others right after the forward pass.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  backward: GradNode["backward"],
  saved?: readonly Tensor[],
): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    const reads = saved ?? [...inputs, out]; // built only when a node is recorded
    out.requiresGrad = true;
    out.node = { op, inputs, backward, saved: reads };
    for (const t of reads) t.retainForBackward();
  }
  return out;
}

/**
 * Checks that every tensor lives on the same backend and returns it.
 * @throws {Error} naming the op and both backends otherwise
 */
export function sameBackend(op: string, ...ts: Tensor[]): Backend {
  const b = ts[0].backend;
  for (const t of ts) {
    if (t.backend !== b) {
      throw new Error(
        `Cannot run ${op}: tensors live on different backends ("${b.name}" and "${t.backend.name}")`,
      );
    }
    // Touch the storage so a disposed input fails here with its description.
    void t.storage;
  }
  return b;
}

/**
 * Checks a tensor's rank.
 * @throws {RangeError} `Cannot run conv2d: input must be rank 4: current rank is 3`
 */
export function checkRank(op: string, what: string, t: Tensor, rank: number): void {
  if (t.rank !== rank) {
    throw new RangeError(
      `Cannot run ${op}: ${what} must be rank ${rank}: current rank is ${t.rank} (shape ${
        formatShape(t.shape)
      })`,
    );
  }
}

/**
 * Checks a tensor's exact shape.
 * @throws {RangeError} naming the op, the tensor role, and both shapes
 */
export function checkShape(op: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (t.rank !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(
      `Cannot run ${op}: ${what} must have shape ${formatShape(shape)}: current shape is ${
        formatShape(t.shape)
      }`,
    );
  }
}

/** Pads a shape of rank ≤ 4 with leading ones to rank 4 (numpy alignment). */
export function toShape4(op: string, shape: readonly number[]): Shape4 {
  if (shape.length > 4) {
    throw new RangeError(
      `Cannot run ${op}: broadcasting supports rank ≤ 4: current shape is ${formatShape(shape)}`,
    );
  }
  const s = [1, 1, 1, 1];
  for (let i = 0; i < shape.length; i++) s[4 - shape.length + i] = shape[i];
  return s as unknown as Shape4;
}

/**
 * The broadcast shape of two shapes (numpy rules, rank ≤ 4).
 * @throws {RangeError} when a dimension pair differs and neither is 1
 */
export function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1, y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new RangeError(
        `Cannot run ${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`,
      );
    }
    out.push(Math.max(x, y));
  }
  return out;
}
