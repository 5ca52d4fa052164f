/**
 * Inverted dropout with a seeded, counter-based mask (the hash in fbp.h), so a seed gives
 * the same mask on every backend.
 * @module
 */
import { empty, type Tensor } from "../tensor/tensor.ts";
import { record, sameBackend } from "./op.ts";

/**
 * Zeroes each element with probability `p` and scales the rest by 1/(1−p).
 * @param seed a 32-bit seed; one per call site and step keeps masks independent
 * @throws {RangeError} when p is outside [0, 1)
 */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  const op = "dropout";
  const be = sameBackend(op, x);
  if (!(p >= 0 && p < 1)) {
    throw new RangeError(
      `Cannot run dropout: probability must be in [0, 1): current value is ${p}`,
    );
  }
  if (p === 0) return x;
  const out = empty(x.shape, { backend: be });
  const mask = empty(x.shape, { backend: be });
  be.dropoutForward({
    out: out.storage,
    mask: mask.storage,
    inp: x.storage,
    n: x.size,
    p,
    seed: seed >>> 0,
  });
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    const s = [1, 1, 1, x.size] as const;
    be.binaryForward({
      out: dx.storage,
      a: g.storage,
      b: mask.storage,
      aShape: s,
      bShape: s,
      op: "mul",
    });
    return [dx];
  });
}
