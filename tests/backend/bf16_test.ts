/**
 * The CPU backend's bf16 math (`setMath({precision: "bf16"})`, issue 21) against the fp32
 * reference backend, forward and backward, for convolution (every shared case, blocked and
 * plain layouts) and linear.
 *
 * What bf16 means here, and so what each test pins:
 * 1. Semantics: a bf16 kernel rounds each float32 input it multiplies (x, weight, dout) to
 *    bfloat16 with round-to-nearest-even and computes the rest in float32: it equals the
 *    float32 kernel on the rounded inputs, within the float32 tolerance of direct
 *    convolution (2e-5 + 1e-4·|ref|; no Winograd in bf16). Outputs (out, dinp, dweight,
 *    dbias) stay float32 — a bf16-rounded output would miss this by up to 2⁻⁹·|ref|.
 * 2. Error against the fp32 result: each product a·b of rounded inputs is off by at most
 *    (2u + u²)·|a·b| with u = 2⁻⁸ (bfloat16 keeps 8 significant bits), so per element
 *    |bf16 − fp32| <= 2⁻⁷·Σ|a·b| (+ the float32 term above), where Σ|a·b| is the same
 *    kernel on |a| and |b|. Over a whole output that is a relative L2 error of ~1e-3 on
 *    these random cases; the test asserts <= 1e-2 and >= 1e-5 (above 1e-5 only bf16
 *    rounding can reach: a backend that ignored the precision would fail it).
 * 3. Gradients: the three convolution kernels (and the two products of linear) are
 *    adjoints, ⟨fwd(x, w), dy⟩ = ⟨x, bwd_data(dy, w)⟩ = ⟨w, bwd_weights(dy, x)⟩; in bf16
 *    each rounds a different pair of operands, so they agree within 2·2⁻⁷·Σ|x·w·dy|.
 * 4. The primitive cache is keyed by precision: fp32 after bf16 on one shape is bitwise
 *    fp32 again.
 * 5. In a whole training step of a small multi-task net (AFF, DAB, Gumbel gates), every
 *    conv/linear call is check 1 on the tensors the step really passes, and the loss is
 *    within 1e-2 of fp32's. The step's gradients are not compared with fp32's: at random
 *    initialisation a BN ResNet's gradients amplify any perturbation (fp32 Winograd vs
 *    direct already moves them 1e-5–1e-4 relative; bf16 moves them 0.2–0.6 relative, and
 *    PyTorch's CPU autocast moves a ResNet18's by 0.35 at 64 px, batch 16), so a per-call
 *    check is the one that can tell a kernel bug from that amplification.
 * @module
 */
import assert from "node:assert/strict";
import type { Backend, ConvSizes, Storage } from "../../src/backend/backend.ts";
import { loadCpuBackend } from "../../src/backend/cpu.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../../src/models/policy.ts";
import { Rng } from "../../src/random/rng.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { type StepBatch, trainStep } from "../../src/train/step.ts";
import { assertClose, type Case, convCases, rand, runOn } from "./_kernel_cases.ts";

const cpu = await loadCpuBackend();
const ref = new ReferenceBackend();

/** Float32 tolerance of a direct (non-Winograd) kernel against the float64 reference. */
const FP32 = { atol: 2e-5, rtol: 1e-4 };
/** Per-element bound factor of bf16 products: 2u + u² with u = 2⁻⁸, rounded up. */
const BF16_PRODUCT = 2 ** -7;

/** Rounds float32 values to bfloat16 (round to nearest, ties to even), kept as float32. */
function toBf16(a: Float32Array): Float32Array {
  const out = Float32Array.from(a);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    if ((x & 0x7f800000) === 0x7f800000) continue; // inf and NaN stay
    bits[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return out;
}

function abs(a: Float32Array): Float32Array {
  return a.map(Math.abs);
}

/** Runs `fn` with the CPU backend computing in bf16, restoring fp32 after. */
function inBf16<T>(fn: () => T): T {
  cpu.setMath({ precision: "bf16", deterministic: false });
  try {
    return fn();
  } finally {
    cpu.setMath({ precision: "fp32", deterministic: false });
  }
}

/** Runs `fn` with FBP_CONV_LAYOUT set (or unset), restoring it after. */
function withLayout<T>(layout: string | undefined, fn: () => T): T {
  const before = Deno.env.get("FBP_CONV_LAYOUT");
  if (layout === undefined) Deno.env.delete("FBP_CONV_LAYOUT");
  else Deno.env.set("FBP_CONV_LAYOUT", layout);
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("FBP_CONV_LAYOUT");
    else Deno.env.set("FBP_CONV_LAYOUT", before);
  }
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function relativeL2(got: Float32Array, want: Float32Array): number {
  let d = 0, n = 0;
  for (let i = 0; i < got.length; i++) {
    d += (got[i] - want[i]) ** 2;
    n += want[i] ** 2;
  }
  return Math.sqrt(d / n);
}

/** One multiply-accumulate kernel: how to run it on inputs (a, b), and its output's name. */
interface Product {
  label: string;
  a: Float32Array;
  b: Float32Array;
  /** A float32 input that is added, not multiplied (a bias), or none. */
  bias?: Float32Array;
  outputs: Record<string, number>;
  run(be: Backend, t: Record<string, Storage>): void;
}

function productCase(p: Product, a: Float32Array, b: Float32Array, bias?: Float32Array): Case {
  return {
    inputs: { a, b, ...(p.bias ? { bias: bias ?? p.bias } : {}) },
    outputs: p.outputs,
    run: p.run,
  };
}

/** Checks 1 and 2 of the module note for one product. */
function checkProduct(p: Product): void {
  const got = inBf16(() => runOn(cpu, productCase(p, p.a, p.b)));
  const onRounded = runOn(ref, productCase(p, toBf16(p.a), toBf16(p.b)));
  const exact = runOn(ref, productCase(p, p.a, p.b));
  const bound = runOn(ref, productCase(p, abs(p.a), abs(p.b), p.bias && abs(p.bias)));
  for (const k of Object.keys(p.outputs)) {
    const label = `${p.label} ${k}`;
    assertClose(
      `${label} (vs fp32 on bf16-rounded inputs)`,
      got[k],
      onRounded[k],
      FP32.atol,
      FP32.rtol,
      "cpu bf16",
    );
    for (let i = 0; i < got[k].length; i++) {
      const tol = BF16_PRODUCT * bound[k][i] + FP32.atol + FP32.rtol * Math.abs(exact[k][i]);
      const diff = Math.abs(got[k][i] - exact[k][i]);
      assert.ok(
        diff <= tol,
        `${label}[${i}]: bf16 ${got[k][i]} vs fp32 ${exact[k][i]}: |diff| ${diff} > ${tol}`,
      );
    }
    const rel = relativeL2(got[k], exact[k]);
    assert.ok(rel <= 1e-2, `${label}: relative L2 error ${rel} > 1e-2`);
    assert.ok(rel >= 1e-5, `${label}: relative L2 error ${rel} < 1e-5: not computed in bf16?`);
  }
}

function outSize(x: number, k: number, stride: number, pad: number): number {
  return Math.floor((x + 2 * pad - k) / stride) + 1;
}

/** The three convolution kernels of one case as products, with their inputs. */
function convProducts(s: ConvSizes, bias: boolean, seed: number) {
  const P = outSize(s.H, s.R, s.stride, s.pad), Q = outSize(s.W, s.S, s.stride, s.pad);
  const nx = s.N * s.C * s.H * s.W, nw = s.K * (s.C / s.G) * s.R * s.S, ny = s.N * s.K * P * Q;
  const x = rand(nx, seed), w = rand(nw, seed + 1), dy = rand(ny, seed + 2);
  const b = bias ? rand(s.K, seed + 3) : undefined;
  const forward: Product = {
    label: "conv2d_forward",
    a: x,
    b: w,
    bias: b,
    outputs: { y: ny },
    run: (be, t) =>
      be.conv2dForward({ out: t.y, inp: t.a, weight: t.b, bias: bias ? t.bias : null, ...s }),
  };
  const backwardData: Product = {
    label: "conv2d_backward_data",
    a: dy,
    b: w,
    outputs: { dx: nx },
    run: (be, t) => be.conv2dBackwardData({ dinp: t.dx, dout: t.a, weight: t.b, ...s }),
  };
  // dbias is a plain sum of dout (no product): rounded, it is within 2⁻⁸·Σ|dout|.
  const backwardWeights: Product = {
    label: "conv2d_backward_weights",
    a: dy,
    b: x,
    outputs: bias ? { dw: nw, db: s.K } : { dw: nw },
    run: (be, t) =>
      be.conv2dBackwardWeights({
        dweight: t.dw,
        dbias: bias ? t.db : null,
        dout: t.a,
        inp: t.b,
        ...s,
      }),
  };
  return { x, w, dy, forward, backwardData, backwardWeights };
}

for (const layout of [undefined, "plain"]) {
  const how = layout ? ` with FBP_CONV_LAYOUT=${layout}` : "";
  convCases.forEach(([name, s, bias], i) => {
    Deno.test(`conv2d kernels in bf16 round their inputs to bf16 and stay within bf16 error of fp32 for ${name}${how}`, () => {
      withLayout(layout, () => {
        const c = convProducts(s, bias, 40 + i);
        checkProduct(c.forward);
        checkProduct(c.backwardData);
        checkProduct(c.backwardWeights);
      });
    });
  });
}

Deno.test("conv2d kernels in bf16 are adjoints within bf16 error (gradient check)", () => {
  for (const [name, s] of convCases) {
    const c = convProducts(s, false, 7);
    const y = inBf16(() => runOn(cpu, productCase(c.forward, c.x, c.w))).y;
    const dx = inBf16(() => runOn(cpu, productCase(c.backwardData, c.dy, c.w))).dx;
    const dw = inBf16(() => runOn(cpu, productCase(c.backwardWeights, c.dy, c.x))).dw;
    const absY = runOn(ref, productCase(c.forward, abs(c.x), abs(c.w))).y;
    const scale = dot(absY, abs(c.dy)); // Σ|x·w·dy| over every term of the three sums
    const [a, b, d] = [dot(y, c.dy), dot(c.x, dx), dot(c.w, dw)];
    const tol = 2 * BF16_PRODUCT * scale + 1e-4;
    assert.ok(Math.abs(a - b) <= tol, `${name}: ⟨y, dy⟩ ${a} vs ⟨x, dx⟩ ${b} (tol ${tol})`);
    assert.ok(Math.abs(a - d) <= tol, `${name}: ⟨y, dy⟩ ${a} vs ⟨w, dw⟩ ${d} (tol ${tol})`);
  }
});

const linearCases: [string, number, number, number, boolean][] = [
  ["1x1x1", 1, 1, 1, true],
  ["odd sizes without bias", 5, 7, 3, false],
  ["head 33x512 -> 5", 33, 512, 5, true],
  ["wide output", 4, 17, 300, true],
];

function linearProducts(N: number, I: number, O: number, bias: boolean, seed: number) {
  const x = rand(N * I, seed), w = rand(O * I, seed + 1), dy = rand(N * O, seed + 2);
  const forward: Product = {
    label: "linear_forward",
    a: x,
    b: w,
    bias: bias ? rand(O, seed + 3) : undefined,
    outputs: { y: N * O },
    run: (be, t) =>
      be.linearForward({ out: t.y, inp: t.a, weight: t.b, bias: bias ? t.bias : null, N, I, O }),
  };
  const backwardData: Product = {
    label: "linear_backward dinp",
    a: dy,
    b: w,
    outputs: { dx: N * I },
    run: (be, t) => {
      const inp = be.alloc(N * I), dw = be.alloc(O * I);
      be.copyIn(inp, x);
      be.linearBackward({
        dinp: t.dx,
        dweight: dw,
        dbias: null,
        dout: t.a,
        inp,
        weight: t.b,
        N,
        I,
        O,
      });
      be.free(inp);
      be.free(dw);
    },
  };
  // dbias is summed from the float32 dout (no product, no rounding): checked against fp32.
  const backwardWeights: Product = {
    label: "linear_backward dweight",
    a: dy,
    b: x,
    outputs: { dw: O * I },
    run: (be, t) => {
      const weight = be.alloc(O * I);
      be.copyIn(weight, w);
      be.linearBackward({
        dinp: null,
        dweight: t.dw,
        dbias: null,
        dout: t.a,
        inp: t.b,
        weight,
        N,
        I,
        O,
      });
      be.free(weight);
    },
  };
  const dbias: Case = {
    inputs: { x, w, dy },
    outputs: { dw: O * I, db: O },
    run: (be, t) =>
      be.linearBackward({
        dinp: null,
        dweight: t.dw,
        dbias: t.db,
        dout: t.dy,
        inp: t.x,
        weight: t.w,
        N,
        I,
        O,
      }),
  };
  return { x, w, dy, forward, backwardData, backwardWeights, dbias };
}

linearCases.forEach(([name, N, I, O, bias], i) => {
  Deno.test(`linear kernels in bf16 round their inputs to bf16 and stay within bf16 error of fp32 for ${name}`, () => {
    const l = linearProducts(N, I, O, bias, 70 + i);
    checkProduct(l.forward);
    if (N * I > 1) checkProduct(l.backwardData); // 1×1×1: one product, too few for the L2 floor
    checkProduct(l.backwardWeights);
    if (bias) {
      const got = inBf16(() => runOn(cpu, l.dbias)).db, want = runOn(ref, l.dbias).db;
      assertClose("linear_backward dbias", got, want, FP32.atol, FP32.rtol, "cpu bf16");
    }
  });
});

Deno.test("linear kernels in bf16 are adjoints within bf16 error (gradient check)", () => {
  for (const [name, N, I, O] of linearCases) {
    const l = linearProducts(N, I, O, false, 9);
    const y = inBf16(() => runOn(cpu, productCase(l.forward, l.x, l.w))).y;
    const dx = inBf16(() => runOn(cpu, productCase(l.backwardData, l.dy, l.w))).dx;
    const dw = inBf16(() => runOn(cpu, productCase(l.backwardWeights, l.dy, l.x))).dw;
    const absY = runOn(ref, productCase(l.forward, abs(l.x), abs(l.w))).y;
    const scale = dot(absY, abs(l.dy));
    const [a, b, d] = [dot(y, l.dy), dot(l.x, dx), dot(l.w, dw)];
    const tol = 2 * BF16_PRODUCT * scale + 1e-4;
    assert.ok(Math.abs(a - b) <= tol, `${name}: ⟨y, dy⟩ ${a} vs ⟨x, dx⟩ ${b} (tol ${tol})`);
    assert.ok(Math.abs(a - d) <= tol, `${name}: ⟨y, dy⟩ ${a} vs ⟨w, dw⟩ ${d} (tol ${tol})`);
  }
});

Deno.test("the primitive cache is keyed by precision: fp32 after bf16 is fp32 again", () => {
  const [, s, bias] = convCases.find(([name]) => name === "64 channels 3x3")!;
  const conv = convProducts(s, bias, 3).backwardWeights;
  const lin = linearProducts(33, 512, 5, true, 3).forward;
  for (const p of [conv, lin]) {
    const c = productCase(p, p.a, p.b);
    const first = runOn(cpu, c);
    const half = inBf16(() => runOn(cpu, c));
    const again = runOn(cpu, c);
    for (const k of Object.keys(p.outputs)) {
      assert.deepEqual(again[k], first[k], `${p.label} ${k}: fp32 before and after bf16`);
      assert.notDeepEqual(half[k], first[k], `${p.label} ${k}: bf16 differs from fp32`);
    }
  }
});

/** The multiplied inputs and the outputs of each conv/linear kernel. */
const PRODUCT_KERNELS: Record<string, { inputs: string[]; outputs: string[] }> = {
  conv2dForward: { inputs: ["inp", "weight"], outputs: ["out"] },
  conv2dBackwardData: { inputs: ["dout", "weight"], outputs: ["dinp"] },
  conv2dBackwardWeights: { inputs: ["dout", "inp"], outputs: ["dweight", "dbias"] },
  linearForward: { inputs: ["inp", "weight"], outputs: ["out"] },
  linearBackward: { inputs: ["dout", "inp", "weight"], outputs: ["dinp", "dweight"] },
};

/** The worst call of a kernel seen by {@link checkedBf16}. */
interface Worst {
  calls: number;
  /** max |bf16 − by hand| / max |by hand| over an output, the largest over the calls. */
  worst: number;
  where: string;
}

/**
 * `cpu` in bf16, wrapped so that every conv/linear call also runs in fp32 on its
 * bf16-rounded inputs (direct convolution, as bf16 runs; linear's dbias left out: the bf16
 * kernel sums the unrounded dout) and records how far the two outputs are apart.
 */
function checkedBf16(worst: Map<string, Worst>): Backend {
  const kernels = PRODUCT_KERNELS;
  return new Proxy(cpu, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      const k = typeof prop === "string" ? kernels[prop] : undefined;
      if (!k) return typeof v === "function" ? v.bind(target) : v;
      return (a: Record<string, unknown>) => {
        const temps: Storage[] = [];
        const temp = (data: Float32Array) => {
          const t = cpu.alloc(data.length);
          cpu.copyIn(t, data);
          temps.push(t);
          return t;
        };
        const byHand: Record<string, unknown> = { ...a, dbias: a.dbias && null };
        for (const name of k.inputs) byHand[name] = temp(toBf16(cpu.copyOut(a[name] as Storage)));
        for (const name of k.outputs) {
          if (a[name]) byHand[name] = temp(cpu.copyOut(a[name] as Storage));
        }
        if (prop === "conv2dBackwardWeights") {
          byHand.dbias = a.dbias && temp(cpu.copyOut(a.dbias as Storage));
        }
        const call = (args: Record<string, unknown>) =>
          (cpu as unknown as Record<string, (x: unknown) => void>)[prop as string](args);
        direct(() => call(byHand));
        inBf16(() => call(a));
        const w = worst.get(prop as string) ?? { calls: 0, worst: 0, where: "" };
        w.calls++;
        for (const name of k.outputs) {
          if (!a[name] || !byHand[name]) continue;
          const got = cpu.copyOut(a[name] as Storage), want = cpu.copyOut(byHand[name] as Storage);
          let diff = 0, max = 0;
          for (let i = 0; i < got.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - want[i]));
            max = Math.max(max, Math.abs(want[i]));
          }
          const rel = diff / (max || 1);
          if (rel > w.worst) {
            const s = a as Record<string, number>;
            w.worst = rel;
            w.where = `${name} of N ${s.N} C ${s.C ?? s.I} K ${s.K ?? s.O} H ${s.H ?? 1}`;
          }
        }
        worst.set(prop as string, w);
        for (const t of temps) cpu.free(t);
      };
    },
  }) as Backend;
}

/** Runs `fn` with FBP_CONV_ALGO=direct (no Winograd), restoring it after. */
function direct<T>(fn: () => T): T {
  const before = Deno.env.get("FBP_CONV_ALGO");
  Deno.env.set("FBP_CONV_ALGO", "direct");
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("FBP_CONV_ALGO");
    else Deno.env.set("FBP_CONV_ALGO", before);
  }
}

/** Loss and every parameter's gradient of one training step of a small multi-task net. */
function netStep(be: Backend): { loss: number; grads: Float32Array } {
  setDefaultBackend(be);
  const config = parseNetworkConfig({
    tasks: [{ name: "beauty", classes: 5, database: "a" }, {
      name: "gender",
      classes: 2,
      database: "b",
    }],
    widths: [16, 32, 64, 128],
    aff: true,
    bn: "per-database",
    dropout: 0,
  });
  const net = new MultiTaskNet(config, { seed: 5, backend: be });
  const side = 64, n = 16;
  const rng = new Rng(2);
  const images = Float32Array.from({ length: n * 3 * side * side }, () => rng.normal());
  const labels = (k: number) => Int32Array.from({ length: n }, (_, i) => i % k);
  const batches: StepBatch[] = [
    { database: "a", images, size: side, targets: { beauty: labels(5) } },
    { database: "b", images, size: side, targets: { gender: labels(2) } },
  ];
  const noise = gumbelNoise(net.policy.logits.size, rng);
  try {
    const stats = trainStep(net, batches, {
      lambdas: { beauty: 1, gender: 0.6 },
      dropoutSeed: 1,
      gates: () => {
        const g = gumbelGates(net.policy.logits, noise, { tau: 5 });
        return new Map([["beauty", g[0]], ["gender", g[1]]]);
      },
    });
    const grads = net.parameters().flatMap((p) => [...(p.grad?.toArray() ?? [])]);
    return { loss: stats.loss, grads: Float32Array.from(grads) };
  } finally {
    net.dispose();
    setDefaultBackend(cpu);
  }
}

Deno.test("every conv/linear call of a bf16 training step is fp32 on bf16-rounded inputs; the loss stays within 1e-2", () => {
  const fp32 = netStep(cpu);
  const worst = new Map<string, Worst>();
  const bf16 = netStep(checkedBf16(worst));
  for (const kernel of Object.keys(PRODUCT_KERNELS)) {
    const w = worst.get(kernel);
    assert.ok(w && w.calls > 0, `${kernel}: not called`);
    // float32 accumulation in another order over up to N·P·Q = 4096 terms
    assert.ok(w.worst <= 1e-4, `${kernel}: ${w.where} is off by ${w.worst} of its largest value`);
  }
  assert.ok(
    Math.abs(bf16.loss - fp32.loss) <= 1e-2 * fp32.loss,
    `loss: bf16 ${bf16.loss} vs fp32 ${fp32.loss}`,
  );
});

Deno.test("Backend.math is the library's: a second object over it reports what the first set", async () => {
  const [a, b] = [await loadCpuBackend(), await loadCpuBackend()];
  try {
    a.setMath({ precision: "bf16", deterministic: false });
    assert.equal(b.math.precision, "bf16");
    // And it computes in bf16: 1.0001² rounds to 1 with bf16 inputs (8 significant bits).
    const x = b.alloc(1), w = b.alloc(1), y = b.alloc(1);
    b.copyIn(x, Float32Array.of(1.0001));
    b.copyIn(w, Float32Array.of(1.0001));
    b.linearForward({ out: y, inp: x, weight: w, bias: null, N: 1, I: 1, O: 1 });
    assert.equal(b.copyOut(y)[0], 1);
    for (const s of [x, w, y]) b.free(s);
  } finally {
    a.setMath({ precision: "fp32", deterministic: false });
  }
  assert.equal(b.math.precision, "fp32");
});
