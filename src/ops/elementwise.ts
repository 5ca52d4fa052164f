/**
 * Elementwise ops with numpy-style broadcasting (rank ≤ 4) and their gradients.
 * Broadcast gradients are summed back to the operand's shape with `sumTo`.
 * @module
 */
import { empty, Tensor } from "../tensor/tensor.ts";
import type { BinaryOpName, UnaryOpName } from "../backend/backend.ts";
import { broadcastShape, record, sameBackend, toShape4 } from "./op.ts";

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/**
 * Sums `x` down to `shape`, which must broadcast to `x.shape` (the adjoint of
 * broadcasting). Returns `x` itself when the shapes already match.
 */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const op = "sumTo";
  const b = sameBackend(op, x);
  const target = broadcastShape(op, shape, x.shape);
  if (!sameShape(target, x.shape)) {
    throw new RangeError(
      `Cannot run sumTo: shape [${shape.join(", ")}] does not broadcast to [${x.shape.join(", ")}]`,
    );
  }
  const out = empty(shape, { backend: b });
  const inShape = toShape4(op, x.shape), outShape = toShape4(op, shape);
  b.sumToForward({ out: out.storage, inp: x.storage, inShape, outShape });
  return record(out, op, [x], (g) => [broadcastTo(g, x.shape)], []);
}

/** Repeats `x` along its size-1 dimensions up to `shape` (the adjoint of sumTo). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const op = "broadcastTo";
  const b = sameBackend(op, x);
  const target = broadcastShape(op, x.shape, shape);
  if (!sameShape(target, shape)) {
    throw new RangeError(
      `Cannot run broadcastTo: shape [${x.shape.join(", ")}] does not broadcast to [${
        shape.join(", ")
      }]`,
    );
  }
  const out = empty(shape, { backend: b });
  b.broadcastForward({
    out: out.storage,
    inp: x.storage,
    inShape: toShape4(op, x.shape),
    outShape: toShape4(op, shape),
  });
  return record(out, op, [x], (g) => [sumTo(g, x.shape)], []);
}

function binary(op: BinaryOpName, a: Tensor, b: Tensor): Tensor {
  const be = sameBackend(op, a, b);
  const shape = broadcastShape(op, a.shape, b.shape);
  const out = empty(shape, { backend: be });
  be.binaryForward({
    out: out.storage,
    a: a.storage,
    b: b.storage,
    aShape: toShape4(op, a.shape),
    bShape: toShape4(op, b.shape),
    op,
  });
  return out;
}

function scaleOp(x: Tensor, alpha: number, beta: number): Tensor {
  const out = empty(x.shape, { backend: x.backend });
  x.backend.scaleForward({ out: out.storage, inp: x.storage, alpha, beta, n: x.size });
  return out;
}

/** `a + b` with broadcasting; `b` may be a number. */
export function add(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === "number") {
    sameBackend("add", a);
    return record(scaleOp(a, 1, b), "add", [a], (g) => [g], []);
  }
  const out = binary("add", a, b);
  return record(out, "add", [a, b], (g, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? sumTo(g, b.shape) : null,
  ], []);
}

/** `a − b` with broadcasting; `b` may be a number. */
export function sub(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === "number") return add(a, -b);
  const out = binary("sub", a, b);
  return record(out, "sub", [a, b], (g, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? neg(sumTo(g, b.shape)) : null,
  ], []);
}

/** `a ⊙ b` with broadcasting; `b` may be a number. */
export function mul(a: Tensor, b: Tensor | number): Tensor {
  if (typeof b === "number") {
    sameBackend("mul", a);
    return record(scaleOp(a, b, 0), "mul", [a], (g) => [mul(g, b)], []);
  }
  const out = binary("mul", a, b);
  return record(out, "mul", [a, b], (g, needs) => [
    needs[0] ? sumTo(binary("mul", g, b), a.shape) : null,
    needs[1] ? sumTo(binary("mul", g, a), b.shape) : null,
  ], [a, b]);
}

/** `a / b` with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binary("div", a, b);
  return record(out, "div", [a, b], (g, needs) => [
    needs[0] ? sumTo(binary("div", g, b), a.shape) : null,
    // d(a/b)/db = −a/b² = −out/b
    needs[1] ? neg(sumTo(binary("div", binary("mul", g, out), b), b.shape)) : null,
  ]);
}

/** `alpha·x + beta`. */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  sameBackend("affine", x);
  return record(scaleOp(x, alpha, beta), "affine", [x], (g) => [mul(g, alpha)], []);
}

/** `−x`. */
export function neg(x: Tensor): Tensor {
  return affine(x, -1, 0);
}

// Ops whose gradient is a function of the output alone. relu is one: out > 0 exactly
// where x > 0 (NaN in both), so its backward needs only out and x can be freed.
const FROM_OUTPUT: ReadonlySet<UnaryOpName> = new Set(["relu", "sigmoid", "exp"]);

function unary(op: UnaryOpName, x: Tensor): Tensor {
  const be = sameBackend(op, x);
  const out = empty(x.shape, { backend: be });
  be.unaryForward({ out: out.storage, inp: x.storage, n: x.size, op });
  const fromOutput = FROM_OUTPUT.has(op);
  return record(out, op, [x], (g) => {
    const dx = empty(x.shape, { backend: be });
    // Only the saved tensor is read (the other may be freed): each kernel reads either
    // its `inp` (relu, log, abs, silu, hardswish, hardsigmoid, gelu, relu6) or its `out`
    // (sigmoid, exp) argument, never both.
    const src = fromOutput ? out.storage : x.storage;
    be.unaryBackward({ dinp: dx.storage, dout: g.storage, inp: src, out: src, n: x.size, op });
    return [dx];
  }, fromOutput ? [out] : [x]);
}

/** `max(x, 0)`. */
export function relu(x: Tensor): Tensor {
  return unary("relu", x);
}

/** `1 / (1 + e^−x)`. */
export function sigmoid(x: Tensor): Tensor {
  return unary("sigmoid", x);
}

/** Natural logarithm. */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}

/** `e^x`. */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}

/** `|x|` (gradient 0 at 0). */
export function abs(x: Tensor): Tensor {
  return unary("abs", x);
}

/** SiLU (swish): `x·sigmoid(x)`, PyTorch's `F.silu`. */
export function silu(x: Tensor): Tensor {
  return unary("silu", x);
}

/**
 * Hard swish: `x·min(max(x + 3, 0), 6)/6`, PyTorch's `F.hardswish` (MobileNetV3). The
 * gradient is (2x + 3)/6 on [−3, 3), 0 below −3 and 1 from 3 (PyTorch 1.13 takes 1.5 at
 * exactly 3).
 */
export function hardswish(x: Tensor): Tensor {
  return unary("hardswish", x);
}

/** Hard sigmoid: `min(max(x + 3, 0), 6)/6`, PyTorch's `F.hardsigmoid` (gradient 0 at ±3). */
export function hardsigmoid(x: Tensor): Tensor {
  return unary("hardsigmoid", x);
}

/**
 * GELU in its exact form `x·Φ(x)` = `x·(1 + erf(x/√2))/2`, PyTorch's default `F.gelu`
 * (not the tanh approximation).
 */
export function gelu(x: Tensor): Tensor {
  return unary("gelu", x);
}

/** `min(max(x, 0), 6)`, PyTorch's `F.relu6` (gradient 0 at 0 and 6; NaN propagates). */
export function relu6(x: Tensor): Tensor {
  return unary("relu6", x);
}

/** Sum of all elements, as a tensor of shape [1]. */
export function sum(x: Tensor): Tensor {
  const s = sumTo(x, x.shape.map(() => 1));
  return s.rank === 1 ? s : reshape1(s);
}

/** Mean of all elements, as a tensor of shape [1]. */
export function mean(x: Tensor): Tensor {
  return mul(sum(x), 1 / x.size);
}

function reshape1(x: Tensor): Tensor {
  // A [1,1,…] tensor viewed as [1]: copy one value (cheap) to keep ownership simple.
  const out = empty([1], { backend: x.backend });
  x.backend.copyForward({
    out: out.storage,
    out_off: 0,
    inp: x.storage,
    in_off: 0,
    n: 1,
    accumulate: false,
  });
  return record(out, "reshape", [x], (g) => {
    const dx = empty(x.shape, { backend: x.backend });
    x.backend.copyForward({
      out: dx.storage,
      out_off: 0,
      inp: g.storage,
      in_off: 0,
      n: 1,
      accumulate: false,
    });
    return [dx];
  });
}

/** A detached copy of `x` (no graph). */
export function detach(x: Tensor): Tensor {
  sameBackend("detach", x);
  return new Tensor(copyStorage(x), x.shape, x.backend);
}

function copyStorage(x: Tensor) {
  const s = x.backend.alloc(x.size);
  x.backend.copyForward({
    out: s,
    out_off: 0,
    inp: x.storage,
    in_off: 0,
    n: x.size,
    accumulate: false,
  });
  return s;
}
