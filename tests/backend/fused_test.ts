/**
 * Fused kernels (fbp.h `aff_fuse_*`): the native CPU kernels against the reference
 * backend, and the fused op against the same arithmetic composed from elementwise ops
 * (values and gradients), on awkward shapes (1×1 spatial, odd sizes, C not a multiple of 8).
 * @module
 */
import assert from "node:assert/strict";
import { loadCpuBackend } from "../../src/backend/cpu.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import type { Backend, NchwSizes, Storage } from "../../src/backend/backend.ts";
import { backward } from "../../src/autograd/tape.ts";
import { affFuse } from "../../src/ops/aff.ts";
import { add, mul, relu, sigmoid, sub, sum } from "../../src/ops/elementwise.ts";
import { type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { rand as uniform } from "./_kernel_cases.ts";

const cpu = await loadCpuBackend();
const ref = new ReferenceBackend();

/** Uniform values in [−scale, scale) from the kernel cases' seeded generator. */
function rand(n: number, seed: number, scale = 1): Float32Array {
  return uniform(n, seed, -scale, scale);
}

function store(b: Backend, a: Float32Array): Storage {
  const s = b.alloc(a.length);
  b.copyIn(s, a);
  return s;
}

function close(got: Float32Array, want: Float32Array, what: string, atol = 1e-5, rtol = 1e-4) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
    }
  }
}

const SHAPES: NchwSizes[] = [
  { N: 1, C: 1, H: 1, W: 1 },
  { N: 2, C: 3, H: 5, W: 7 },
  { N: 3, C: 13, H: 4, W: 1 },
  { N: 2, C: 64, H: 33, W: 33 }, // above the OpenMP threshold
];

for (const s of SHAPES) {
  for (const scale of [2, 1]) {
    Deno.test(`aff_fuse_forward/backward match the reference for ${JSON.stringify(s)} scale ${scale}`, () => {
      const n = s.N * s.C * s.H * s.W, nc = s.N * s.C;
      const host = [rand(n, 1, 2), rand(n, 2, 2), rand(n, 3, 3), rand(nc, 4, 1), rand(n, 5)];
      const outs: Float32Array[][] = [];
      for (const b of [ref, cpu] as Backend[]) {
        const [S, F, L, G, dy] = host.map((a) => store(b, a));
        const out = b.alloc(n), dS = b.alloc(n), dF = b.alloc(n), dL = b.alloc(n);
        const dG = b.alloc(nc);
        b.affFuseForward({ out, S, F, L, G, scale, ...s });
        b.affFuseBackward({ dS, dF, dL, dG, dout: dy, S, F, L, G, scale, ...s });
        outs.push([out, dS, dF, dL, dG].map((x) => b.copyOut(x)));
        for (const x of [S, F, L, G, dy, out, dS, dF, dL, dG]) b.free(x);
      }
      const names = ["out", "dS", "dF", "dL", "dG"];
      // dG sums H·W terms in float32 on cpu, float64 in the reference.
      for (let i = 0; i < 5; i++) close(outs[1][i], outs[0][i], names[i], i === 4 ? 1e-4 : 1e-5);
    });
  }
}

Deno.test("affFuse() matches the composed ops in value and gradient", () => {
  for (const b of [ref, cpu] as Backend[]) {
    const shape = [2, 3, 4, 5], n = 120;
    const make = (seed: number, sh: number[], scale: number) =>
      tensor(rand(sh.reduce((a, c) => a * c, 1), seed, scale), sh, {
        backend: b,
        requiresGrad: true,
      });
    const inputs = [
      make(1, shape, 2),
      make(2, shape, 2),
      make(3, shape, 3),
      make(4, [2, 3, 1, 1], 1),
    ];
    const weights = tensor(rand(n, 9), shape, { backend: b });
    const run = (f: (S: Tensor, F: Tensor, L: Tensor, G: Tensor) => Tensor) => {
      for (const t of inputs) t.grad = null;
      const out = f(inputs[0], inputs[1], inputs[2], inputs[3]);
      backward(sum(mul(out, weights)));
      return [out.toArray(), ...inputs.map((t) => t.grad!.toArray())];
    };
    const fused = run((S, F, L, G) => affFuse(S, F, L, G, 2));
    const composed = run((S, F, L, G) => relu(mul(add(F, mul(sigmoid(add(L, G)), sub(S, F))), 2)));
    const names = ["out", "dS", "dF", "dL", "dG"];
    for (let i = 0; i < 5; i++) close(fused[i], composed[i], `${b.name} ${names[i]}`, 1e-5, 1e-4);
  }
});

Deno.test("affFuse() rejects a global attention of the wrong shape", () => {
  const t = tensor(new Float32Array(8), [1, 2, 2, 2], { backend: ref });
  assert.throws(
    () => affFuse(t, t, t, tensor([0, 0, 0, 0], [1, 4, 1, 1], { backend: ref }), 2),
    RangeError,
    "global attention",
  );
});
