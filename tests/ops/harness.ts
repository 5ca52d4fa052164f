/**
 * Runs an op case on a backend: seeded inputs, forward, and the gradient of
 * Σ out ⊙ R (R a fixed random tensor, so every output element matters) for each input.
 */
import type { Backend } from "../../src/backend/backend.ts";
import { ReferenceBackend, type ReferenceStorage } from "../../src/backend/reference.ts";
import { backward } from "../../src/autograd/tape.ts";
import { mul, sum } from "../../src/ops/mod.ts";
import { scope, shapeSize, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { mulberry32 } from "../io/_helpers.ts";
import type { InputSpec, OpCase } from "./cases.ts";

/** A small seeded PRNG (mulberry32) for test data: the one the fuzz tests replay from. */
export const rng: (seed: number) => () => number = mulberry32;

/** Deterministic input values for a spec. */
export function inputValues(spec: InputSpec, seed: number): Float32Array {
  const r = rng(seed), n = shapeSize(spec.shape);
  const out = new Float32Array(n);
  const fill = spec.fill ?? "normal";
  for (let i = 0; i < n; i++) {
    if (fill === "positive") out[i] = 0.5 + r() * 1.5;
    else if (fill === "unit") out[i] = r();
    else if (typeof fill === "object") out[i] = Math.floor(r() * fill.classes);
    else out[i] = (r() * 2 - 1) * 1.5;
  }
  return out;
}

/** Output values and input gradients of one case on one backend. */
export interface CaseResult {
  out: Float32Array;
  grads: (Float32Array | null)[];
}

/** The projection R for an output of n values. */
export function projection(n: number): Float32Array {
  const r = rng(999);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/** Runs a case: returns the output and the gradient of Σ out ⊙ R for each input. */
export function runCase(backend: Backend, c: OpCase): CaseResult {
  return scope(() => {
    const inputs = c.inputs.map((spec, i) =>
      tensor(inputValues(spec, 17 + i), spec.shape, {
        backend,
        requiresGrad: spec.grad ?? true,
      })
    );
    const out = c.fn(inputs);
    const result: CaseResult = { out: out.toArray(), grads: [] };
    const r = tensor(projection(out.size), out.shape, { backend });
    backward(sum(mul(out, r)));
    result.grads = inputs.map((t) => (t.grad ? t.grad.toArray() : null));
    for (const t of inputs) t.grad?.dispose();
    return result;
  });
}

/**
 * Central finite differences of Σ out ⊙ R with respect to input `which`, in float64 on
 * the reference backend (perturbing the stored float64 values directly).
 */
export function finiteDifferences(c: OpCase, which: number, h = 1e-6): Float64Array {
  const backend = new ReferenceBackend({ precision: "f64" });
  return scope(() => {
    const inputs: Tensor[] = c.inputs.map((spec, i) =>
      tensor(inputValues(spec, 17 + i), spec.shape, { backend })
    );
    const data = (inputs[which].storage as ReferenceStorage).data;
    let r: Float64Array | null = null;
    const objective = () =>
      scope(() => {
        const out = c.fn(inputs);
        const y = backend.copyOut64(out.storage);
        r ??= Float64Array.from(projection(out.size));
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i] * r[i];
        return s;
      });
    const g = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const x0 = data[i];
      data[i] = x0 + h;
      const up = objective();
      data[i] = x0 - h;
      const down = objective();
      data[i] = x0;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  });
}

/**
 * Asserts |a − b| ≤ atol + rtol·|b| element-wise; the message names the case, the first
 * failing index and the largest difference.
 */
export function assertClose(
  what: string,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  atol: number,
  rtol: number,
): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} != ${b.length}`);
  let worst = 0, worstAt = -1, fails = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - b[i]);
    if (!(diff <= atol + rtol * Math.abs(b[i]))) {
      fails++;
      if (!(diff <= worst)) {
        worst = diff;
        worstAt = i;
      }
    }
  }
  if (fails > 0) {
    throw new Error(
      `${what}: ${fails}/${a.length} values differ; worst at ${worstAt}: ${a[worstAt]} vs ${
        b[worstAt]
      } (|diff| ${worst}, atol ${atol}, rtol ${rtol})`,
    );
  }
}
