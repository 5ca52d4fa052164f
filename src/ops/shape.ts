/**
 * Shape ops. Tensors own their storage, so a reshape or a slice copies (these tensors are
 * small in this toolkit: policy logits, head outputs); the copy keeps ownership simple.
 * @module
 */
import { empty, formatShape, shapeSize, type Tensor } from "../tensor/tensor.ts";
import { record, sameBackend } from "./op.ts";

/**
 * The same values with a new shape of equal size.
 * @throws {RangeError} when the sizes differ
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const be = sameBackend("reshape", x);
  if (shapeSize(shape) !== x.size) {
    throw new RangeError(
      `Cannot run reshape: shape ${formatShape(x.shape)} has ${x.size} values, target ${
        formatShape(shape)
      } has ${shapeSize(shape)}`,
    );
  }
  const out = empty(shape, { backend: be });
  be.copyForward({
    out: out.storage,
    out_off: 0,
    inp: x.storage,
    in_off: 0,
    n: x.size,
    accumulate: false,
  });
  return record(out, "reshape", [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.copyForward({
      out: dx.storage,
      out_off: 0,
      inp: g.storage,
      in_off: 0,
      n: x.size,
      accumulate: false,
    });
    return [dx];
  }, []);
}

/**
 * The row-major contiguous range `[offset, offset + size(shape))` of `x` as a tensor of
 * `shape`; e.g. `slice(logits, 2 * t, [2])` is the t-th row of a (T, 2) tensor.
 * @throws {RangeError} when the range leaves the tensor
 */
export function slice(x: Tensor, offset: number, shape: readonly number[]): Tensor {
  const be = sameBackend("slice", x);
  const n = shapeSize(shape);
  if (!Number.isInteger(offset) || offset < 0 || offset + n > x.size) {
    throw new RangeError(
      `Cannot run slice: range ${offset}..${offset + n} is outside tensor ${x.describe()}`,
    );
  }
  const out = empty(shape, { backend: be });
  be.copyForward({
    out: out.storage,
    out_off: 0,
    inp: x.storage,
    in_off: offset,
    n: n,
    accumulate: false,
  });
  return record(out, "slice", [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    be.fillForward({ out: dx.storage, value: 0, n: x.size });
    be.copyForward({
      out: dx.storage,
      out_off: offset,
      inp: g.storage,
      in_off: 0,
      n: n,
      accumulate: false,
    });
    return [dx];
  });
}

/**
 * Joins tensors of equal trailing shape along the first dimension.
 * @throws {RangeError} when trailing shapes differ
 */
export function concat(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new RangeError("Cannot run concat: no tensors given");
  const be = sameBackend("concat", ...xs);
  const tail = xs[0].shape.slice(1);
  for (const x of xs) {
    if (x.rank !== tail.length + 1 || x.shape.slice(1).some((s, i) => s !== tail[i])) {
      throw new RangeError(
        `Cannot run concat: shapes ${formatShape(xs[0].shape)} and ${
          formatShape(x.shape)
        } differ after the first dimension`,
      );
    }
  }
  const rows = xs.reduce((a, x) => a + x.shape[0], 0);
  const out = empty([rows, ...tail], { backend: be });
  let offset = 0;
  for (const x of xs) {
    be.copyForward({
      out: out.storage,
      out_off: offset,
      inp: x.storage,
      in_off: 0,
      n: x.size,
      accumulate: false,
    });
    offset += x.size;
  }
  return record(out, "concat", xs, (g, needs) => {
    let at = 0;
    return xs.map((x, i) => {
      const start = at;
      at += x.size;
      if (!needs[i]) return null;
      const dx = empty(x.shape, { backend: be });
      be.copyForward({
        out: dx.storage,
        out_off: 0,
        inp: g.storage,
        in_off: start,
        n: x.size,
        accumulate: false,
      });
      return dx;
    });
  });
}
