/**
 * Fully connected layer: (N, I) · (O, I)ᵀ + (O).
 * @module
 */
import { empty, formatShape, type Tensor } from "../tensor/tensor.ts";
import { addMacs } from "./mac_meter.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";

/**
 * `x · weightᵀ + bias` for `x` (N, I), `weight` (O, I), `bias` (O).
 * @throws {RangeError} on wrong ranks or a feature-count mismatch
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = "linear";
  const be = sameBackend(op, x, weight, ...(bias ? [bias] : []));
  checkRank(op, "input", x, 2);
  checkRank(op, "weight", weight, 2);
  const [N, I] = x.shape, [O, Iw] = weight.shape;
  if (I !== Iw) {
    throw new RangeError(
      `Cannot run linear: weight ${formatShape(weight.shape)} expects ${Iw} input features, input ${
        formatShape(x.shape)
      } has ${I}`,
    );
  }
  if (bias) checkShape(op, "bias", bias, [O]);
  const out = empty([N, O], { backend: be });
  addMacs(N * I * O);
  be.linearForward({
    out: out.storage,
    inp: x.storage,
    weight: weight.storage,
    bias: bias?.storage ?? null,
    N,
    I,
    O,
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, op, inputs, (g, needs) => {
    const dx = needs[0] ? empty(x.shape, { backend: be }) : null;
    const dw = empty(weight.shape, { backend: be });
    const db = bias ? empty([O], { backend: be }) : null;
    be.linearBackward({
      dinp: dx?.storage ?? null,
      dweight: dw.storage,
      dbias: db?.storage ?? null,
      dout: g.storage,
      inp: x.storage,
      weight: weight.storage,
      N,
      I,
      O,
    });
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
