/**
 * Adaptive task weights (src/train/task_weights.ts) against independent references: the
 * fixed scheme's step bit for bit against numbers recorded before the option existed;
 * gradientAt's per-task gradients against separate graphs; DWA's formula, uncertainty's
 * gradients and Adam step, and GradNorm's norms, gradient and update against values worked
 * out by hand or by finite differences; the flags and config checks.
 */
import type { ResNetBackbone } from "../../src/models/archs/resnet.ts";
import type { BasicBlock } from "../../src/models/basic_block.ts";
import assert from "node:assert/strict";
import { backward, gradientAt } from "../../src/autograd/tape.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { liveCounting } from "../counting_backend.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { add, mul, sum } from "../../src/ops/elementwise.ts";
import { crossEntropy } from "../../src/ops/softmax.ts";
import { Rng } from "../../src/random/rng.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { taskWeightsPlot } from "../../src/report/plots.ts";
import type { HistoryEntry } from "../../src/train/result.ts";
import { readRunConfig } from "../../src/train/resume.ts";
import { RUN_DEFAULTS, type RunConfig, validateRunConfig } from "../../src/train/run_config.ts";
import {
  createTaskWeighting,
  dwaWeights,
  gradNormGradient,
  sharedLayer,
} from "../../src/train/task_weights.ts";
import { runConfigFromArgs } from "../../tasks/_cli/run_args.ts";
import { fixedStepNumbers } from "./_fixed_step_golden.ts";

const backend = new ReferenceBackend();
setDefaultBackend(backend);

Deno.test("fixed task weights: the step's numbers are bit for bit those before the option", async () => {
  // Recorded by tests/train/_fixed_step_golden.ts on the code before task weights existed.
  const want = JSON.parse(
    await Deno.readTextFile(new URL("../testdata/fixed_step_golden.json", import.meta.url)),
  );
  const fixed = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: [], taskWeights: "fixed" },
    backend,
  );
  assert.equal(fixed.forStep({} as MultiTaskNet, true), undefined, "fixed: the step's own path");
  assert.deepEqual(fixedStepNumbers(backend), want);
});

/** Two tasks on ONE database through a shared BN: their paths share the whole trunk. */
function sharedTrunkNet(b: Backend): MultiTaskNet {
  return new MultiTaskNet(
    parseNetworkConfig({
      tasks: [
        { name: "beauty", classes: 5, database: "a" },
        { name: "gender", classes: 2, database: "a" },
      ],
      databases: ["a"],
      bn: "per-database",
      widths: [4, 4, 8, 8],
      dropout: 0,
    }),
    { seed: 3, backend: b },
  );
}

function taskLosses(net: MultiTaskNet, b: Backend, only?: string): Tensor[] {
  const rng = new Rng(9);
  const x = tensor(Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rng.normal()), [
    4,
    3,
    32,
    32,
  ], { backend: b });
  const out = net.forward(x, "a", { training: true, tasks: only ? [only] : undefined });
  return [...out].map(([task, logits]) =>
    crossEntropy(
      logits,
      tensor(task === "beauty" ? [0, 1, 4, 2] : [0, 1, 1, 0], [4], { backend: b }),
    )
  );
}

const gradsOf = (net: MultiTaskNet) =>
  new Map(net.namedParameters().flatMap(([k, p]) => p.grad ? [[k, p.grad.toArray()]] : []));

function clearGrads(net: MultiTaskNet): void {
  for (const p of net.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

Deno.test("gradientAt() over a shared trunk: each task's gradient at W, the graph kept for backward", () => {
  const { backend: b, live } = liveCounting(new ReferenceBackend());
  const net = sharedTrunkNet(b);
  const W = sharedLayer(net);
  const key = net.namedParameters().find(([, p]) => p === W)![0];
  assert.equal(key, "layer4.0.downsample.0.weight");
  // Independent reference: each task's loss on a graph of its own, one plain backward.
  const alone = ["beauty", "gender"].map((task) => {
    scope(() => backward(taskLosses(net, b, task)[0]));
    const g = gradsOf(net);
    clearGrads(net);
    return g;
  });
  const before = live();
  const atW: Float32Array[] = [];
  scope(() => {
    const losses = taskLosses(net, b);
    for (const l of losses) {
      const g = gradientAt(l, W)!;
      atW.push(g.toArray());
      g.dispose();
    }
    assert.ok(net.parameters().every((p) => p.grad === null), "no .grad written");
    assert.equal(gradientAt(losses[0], net.heads.byTask.get("gender")!.weight), null);
    backward(add(losses[0], losses[1]));
  });
  const grads = net.parameters().filter((p) => p.grad).length;
  assert.equal(live() - before, grads, "only the parameters' gradients outlive the step");
  assert.deepEqual(atW[0], alone[0].get(key), "beauty's gradient at W");
  assert.deepEqual(atW[1], alone[1].get(key), "gender's gradient at W");
  // The backward after it is the full one: every parameter's gradient is the tasks' sum.
  for (const [k, g] of gradsOf(net)) {
    const a = alone[0].get(k), c = alone[1].get(k);
    g.forEach((v, i) => {
      const want = (a?.[i] ?? 0) + (c?.[i] ?? 0);
      assert.ok(Math.abs(v - want) <= 1e-5 * (1 + Math.abs(want)), `${k}[${i}]: ${v} vs ${want}`);
    });
  }
  net.dispose();
});

Deno.test("gradientAt() is null when no gradient reaches `at` (a constant the loss uses)", () => {
  scope(() => {
    const w = tensor([1, 2], [2], { requiresGrad: true });
    const c = tensor([3, 4], [2]); // no requiresGrad: the rule computes no gradient for it
    const loss = sum(mul(w, c));
    assert.equal(gradientAt(loss, c), null);
    assert.deepEqual([...gradientAt(loss, w)!.toArray()], [3, 4]);
  });
});

Deno.test("dwaWeights() matches Liu et al.'s formula on hand-computed values", () => {
  // r = (0.8, 1), τ = 2: weights 2·e^0.4 / (e^0.4 + e^0.5) = 2 / (1 + e^0.1), and 2 − that.
  const w = dwaWeights({ a: 0.8, b: 0.9 }, { a: 1, b: 0.9 }, 2);
  assert.ok(Math.abs(w.a - 0.95004162504212) < 1e-15, `a: ${w.a}`);
  assert.ok(Math.abs(w.b - 1.04995837495788) < 1e-15, `b: ${w.b}`);
  // Three tasks, τ = 1: exponents r = (2, 1, 0.5); weights 3·e^r / Σ e^r.
  const three = dwaWeights({ x: 2, y: 1, z: 0.5 }, { x: 1, y: 1, z: 1 }, 1);
  const z = Math.exp(2) + Math.exp(1) + Math.exp(0.5);
  assert.ok(Math.abs(three.x - 3 * Math.exp(2) / z) < 1e-14);
  assert.ok(Math.abs(three.z - 3 * Math.exp(0.5) / z) < 1e-14);
  // Huge ratios stay finite (the softmax is shifted).
  assert.deepEqual(dwaWeights({ a: 1e6, b: 1 }, { a: 1e-3, b: 1 }, 2), { a: 2, b: 0 });
  assert.throws(
    () => dwaWeights({ a: 1 }, { a: 0 }, 2),
    /^RangeError: Cannot compute DWA weights: task "a" needs a loss ≥ 0 and one > 0 in the two epochs before: current values are 1 and 0$/,
  );
});

Deno.test("DWA: the start weights for two weight epochs, then the formula; logit epochs and re-training", () => {
  const dwa = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: tasks([1, 0.6]), taskWeights: "dwa", dwaTemperature: 2 },
    backend,
  );
  const start = dwa.current();
  near(start, { beauty: 1.25, gender: 0.75 }, 1e-15, "2·λ/Σλ");
  dwa.endEpoch({ beauty: 1.5, gender: 0.7 }, true);
  dwa.endEpoch({ beauty: 9, gender: 9 }, false); // a logit epoch: not counted
  assert.deepEqual(dwa.current(), start);
  dwa.endEpoch({ beauty: 1.2, gender: 0.7 }, true);
  // r = (0.8, 1), τ = 2 (the values of the test above).
  assert.ok(Math.abs(dwa.current().beauty - 0.95004162504212) < 1e-15);
  const saved = dwa.save()!;
  dwa.endEpoch({ beauty: 1.2, gender: 0.35 }, true); // r = (1, 0.5)
  assert.ok(dwa.current().gender < 1);
  dwa.restore(JSON.parse(JSON.stringify(saved)));
  assert.ok(Math.abs(dwa.current().beauty - 0.95004162504212) < 1e-15, "restored");
  assert.throws(
    () => dwa.restore({ scheme: "dwa", weights: saved.weights }),
    /^Error: Cannot restore task weights: the resume file's DWA state has no "epochLosses": expected the current weights and the last epochs' losses$/,
  );
  dwa.restart();
  assert.deepEqual(dwa.current(), start);
  dwa.endEpoch({ beauty: 1, gender: 1 }, true);
  assert.deepEqual(dwa.current(), start, "one epoch after a restart: still the start");
});

/** Asserts every weight within `tol` of `want`'s. */
function near(
  got: Record<string, number>,
  want: Record<string, number>,
  tol: number,
  what: string,
): void {
  assert.deepEqual(Object.keys(got), Object.keys(want), what);
  for (const k of Object.keys(want)) {
    assert.ok(Math.abs(got[k] - want[k]) <= tol, `${what}: ${k} is ${got[k]}, expected ${want[k]}`);
  }
}

function tasks(lambdas: number[]): RunConfig["tasks"] {
  return ["beauty", "gender"].slice(0, lambdas.length).map((name, i) => ({
    name,
    database: name === "beauty" ? "a" : "b",
    label: name,
    lambda: lambdas[i],
  }));
}

Deno.test("uncertainty: exp(−s)·L + s with s = −ln λ at the start; its gradients and first Adam step", () => {
  const u = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: tasks([1, 0.5]), taskWeights: "uncertainty", taskWeightsLr: 0.01 },
    backend,
  );
  near(u.current(), { beauty: 1, gender: 0.5 }, 1e-7, "exp(−s) = λ (s in fp32)");
  const la = tensor([2], [1], { requiresGrad: true }),
    lb = tensor([0.5], [1], { requiresGrad: true });
  scope(() =>
    u.forStep({} as MultiTaskNet, true)!.backward([["beauty", la], ["gender", lb]], null)
  );
  // ∂/∂L_t = exp(−s_t) = λ_t.
  near({ a: la.grad!.toArray()[0], b: lb.grad!.toArray()[0] }, { a: 1, b: 0.5 }, 1e-7, "∂/∂L");
  // ∂/∂s_t = 1 − exp(−s_t)·L_t: 1 − 2 = −1 and 1 − 0.25 = 0.75; Adam's first step moves each
  // s by lr·g/(|g| + ε): +0.01 and −0.01.
  u.afterStep(true);
  const w = u.current();
  assert.ok(Math.abs(w.beauty - Math.exp(-0.01)) < 1e-6, `beauty ${w.beauty}`);
  assert.ok(Math.abs(w.gender - 0.5 * Math.exp(0.01)) < 1e-6, `gender ${w.gender}`);
  // A logit step: the weights multiply the losses but do not move.
  la.grad = null;
  scope(() => u.forStep({} as MultiTaskNet, false)!.backward([["beauty", la]], null));
  assert.ok(Math.abs(la.grad!.toArray()[0] - w.beauty) < 1e-7);
  u.afterStep(false);
  assert.deepEqual(u.current(), w);
  const saved = JSON.parse(JSON.stringify(u.save()));
  u.restart();
  near(u.current(), { beauty: 1, gender: 0.5 }, 1e-7, "restarted");
  u.restore(saved);
  assert.deepEqual(u.current(), w, "restored exactly (fp32 values through JSON)");
  u.dispose();
});

Deno.test("uncertainty: s_t clamped to ±5 (widened to its start), Adam stepped only after a backward", () => {
  const three: RunConfig["tasks"] = [
    { name: "big", database: "a", label: "big", lambda: 1 },
    { name: "small", database: "a", label: "small", lambda: 1 },
    { name: "light", database: "a", label: "light", lambda: 0.001 }, // s(0) = ln 1000 ≈ 6.9
  ];
  const u = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: three, taskWeights: "uncertainty", taskWeightsLr: 10 },
    backend,
  );
  // A step whose batch trained no task: no backward, so no Adam step (its count stays 0).
  u.forStep({} as MultiTaskNet, true);
  u.afterStep(true);
  assert.equal(u.save()!.steps, 0, "no Adam step without a backward");
  near(u.current(), { big: 1, small: 1, light: 0.001 }, 1e-7, "unchanged");
  // ∂/∂s = 1 − exp(−s)·L: big (L 100) pushes s up, small (L 0.001) down, light (L 10⁶,
  // weight 0.001) up; Adam's first step moves each s by lr = 10: +10, −10, +10, then the clamp.
  const ls = [100, 0.001, 1e6].map((v) => tensor([v], [1], { requiresGrad: true }));
  scope(() =>
    u.forStep({} as MultiTaskNet, true)!.backward(
      [["big", ls[0]], ["small", ls[1]], ["light", ls[2]]],
      null,
    )
  );
  u.afterStep(true);
  assert.equal(u.save()!.steps, 1, "one Adam step, with bias correction of step 1");
  const s = u.save()!.params!;
  assert.equal(s.big, 5);
  assert.equal(s.small, -5);
  assert.ok(
    Math.abs(s.light - Math.log(1000)) < 1e-5,
    `light's range reaches its start: ${s.light}`,
  );
  near(u.current(), { big: Math.exp(-5), small: Math.exp(5), light: 0.001 }, 1e-4, "clamped");
  u.dispose();
});

Deno.test("GradNorm: a step with non-finite figures (every loss 0: targets 0/0) moves nothing", () => {
  const { net, W, losses } = gradNormProblem();
  const g = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: tasks([3, 1]), taskWeights: "gradnorm", taskWeightsLr: 0.05 },
    backend,
  );
  scope(() => {
    const [a, b] = losses(1);
    g.forStep(net, true)!.backward([["beauty", a], ["gender", b]], null);
  });
  W.grad = null;
  g.afterStep(true);
  const before = g.save()!;
  assert.equal(before.steps, 1);
  // Both losses exactly 0: r = 0/L(0) = 0 for each, mean r = 0, every target NaN.
  scope(() => {
    const [a, b] = losses(1);
    g.forStep(net, true)!.backward([["beauty", mul(a, 0)], ["gender", mul(b, 0)]], null);
  });
  W.grad = null;
  g.afterStep(true);
  const after = g.save()!;
  assert.deepEqual(after, before, "weights, Adam moments and step count as they were");
  assert.ok(Object.values(g.current()).every(Number.isFinite));
  g.dispose();
  net.dispose();
});

Deno.test("gradNormGradient() is the derivative of Σ|G − target| (finite differences)", () => {
  const raw = [0.7, 2.3, 1.1]; // ‖∇_W L_t‖
  const weights = [0.5, 1.2, 1.3];
  const losses = [1.0, 0.4, 0.9], initialLosses = [1.6, 0.5, 1.2], alpha = 1.5;
  const norms = raw.map((n, t) => weights[t] * n);
  const { gradient, targets } = gradNormGradient({
    norms,
    weights,
    losses,
    initialLosses,
    alpha,
  });
  // Targets by hand: Ḡ·(L̃_t / mean L̃)^α.
  const meanG = norms.reduce((a, x) => a + x) / 3;
  const rel = losses.map((l, t) => l / initialLosses[t]);
  const meanRel = rel.reduce((a, x) => a + x) / 3;
  rel.forEach((r, t) => assert.ok(Math.abs(targets[t] - meanG * (r / meanRel) ** alpha) < 1e-12));
  // L_grad(w) with the targets held constant, differentiated numerically.
  const lGrad = (w: number[]) => w.reduce((a, wt, t) => a + Math.abs(wt * raw[t] - targets[t]), 0);
  for (let t = 0; t < 3; t++) {
    const h = 1e-6;
    const up = [...weights], down = [...weights];
    up[t] += h;
    down[t] -= h;
    const numeric = (lGrad(up) - lGrad(down)) / (2 * h);
    assert.ok(Math.abs(gradient[t] - numeric) < 1e-6, `task ${t}: ${gradient[t]} vs ${numeric}`);
  }
});

/** A tiny GradNorm problem on the network's shared layer W: L_a = Σ A∘W, L_b = ½ Σ W∘W. */
function gradNormProblem() {
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks: [{ name: "beauty", classes: 2, database: "a" }, {
        name: "gender",
        classes: 2,
        database: "b",
      }],
      databases: ["a", "b"],
      widths: [2, 2, 2, 3],
    }),
    { seed: 1, backend },
  );
  const W = sharedLayer(net);
  const layer4 = (net.backbone as ResNetBackbone).units[6] as BasicBlock;
  assert.equal(W, layer4.downsample!.conv.weight, "layer4.0's downsample conv");
  const wv = W.toArray();
  const A = Float32Array.from(wv, (_, i) => (i % 3) - 1);
  const norm = (xs: Float32Array) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
  const losses = (scale: number) => [
    mul(sum(mul(W, tensor(A, W.shape))), scale),
    mul(sum(mul(W, W)), 0.5),
  ];
  return { net, W, wv, normA: norm(A), normW: norm(wv), losses };
}

Deno.test("GradNorm: per-task norms at W, the update towards Ḡ·r^α, the floor and the sum", () => {
  const { net, W, wv, normA, normW, losses } = gradNormProblem();
  const lr = 0.05;
  const g = createTaskWeighting(
    {
      ...RUN_DEFAULTS,
      tasks: tasks([3, 1]),
      taskWeights: "gradnorm",
      taskWeightsLr: lr,
      gradnormAlpha: 1,
    },
    backend,
  );
  near(g.current(), { beauty: 1.5, gender: 0.5 }, 1e-7, "2·λ/Σλ");
  // Step 1: L(0) = these losses, so r = 1 and every target is Ḡ.
  scope(() => {
    const [a, b] = losses(1);
    g.forStep(net, true)!.backward([["beauty", a], ["gender", b]], null);
  });
  // W.grad holds Σ w_t ∇L_t = 1.5·A + 0.5·W: one backward of the weighted sum.
  const want = Float32Array.from(wv, (w, i) => 1.5 * ((i % 3) - 1) + 0.5 * w);
  W.grad!.toArray().forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
  W.grad = null;
  const G = [1.5 * normA, 0.5 * normW];
  const meanG = (G[0] + G[1]) / 2;
  g.afterStep(true);
  // Adam's first step: w_t −= lr·sign(∂L_grad/∂w_t); ∂ = sign(G_t − Ḡ)·‖∇L_t‖.
  const step1 = [1.5 - lr * Math.sign(G[0] - meanG), 0.5 - lr * Math.sign(G[1] - meanG)];
  const s1 = step1[0] + step1[1];
  const w1 = g.current();
  assert.ok(Math.abs(w1.beauty - 2 * step1[0] / s1) < 1e-6, `beauty ${w1.beauty}`);
  assert.ok(Math.abs(w1.gender - 2 * step1[1] / s1) < 1e-6, `gender ${w1.gender}`);
  assert.ok(Math.abs(w1.beauty + w1.gender - 2) < 1e-6);
  // Step 2: beauty's loss doubled (r_beauty = 2/1.5, r_gender = 1/1.5); α = 1.
  scope(() => {
    const [a, b] = losses(2);
    g.forStep(net, true)!.backward([["beauty", a], ["gender", b]], null);
  });
  W.grad = null;
  const G2 = [w1.beauty * 2 * normA, w1.gender * normW];
  const meanG2 = (G2[0] + G2[1]) / 2;
  const r = [2 / 1.5, 1 / 1.5];
  const grad2 = [0, 1].map((t) =>
    Math.sign(G2[t] - meanG2 * r[t]) * G2[t] / [w1.beauty, w1.gender][t]
  );
  const grad1 = [0, 1].map((t) => Math.sign(G[t] - meanG) * G[t] / [1.5, 0.5][t]);
  // Adam step 2 (β1 0.9, β2 0.999, bias-corrected), on the pre-renormalisation values.
  const adam = (t: number) => {
    const m = 0.1 * 0.9 * grad1[t] + 0.1 * grad2[t];
    const v = 0.001 * 0.999 * grad1[t] ** 2 + 0.001 * grad2[t] ** 2;
    return lr * (m / (1 - 0.9 ** 2)) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
  };
  const step2 = [w1.beauty - adam(0), w1.gender - adam(1)];
  const s2 = step2[0] + step2[1];
  g.afterStep(true);
  const w2 = g.current();
  assert.ok(
    Math.abs(w2.beauty - 2 * step2[0] / s2) < 1e-5,
    `beauty ${w2.beauty} vs ${2 * step2[0] / s2}`,
  );
  // The floor: a weight pushed below 10⁻³ is lifted before renormalising.
  const tiny = createTaskWeighting(
    { ...RUN_DEFAULTS, tasks: tasks([1, 1e-6]), taskWeights: "gradnorm", taskWeightsLr: lr },
    backend,
  );
  scope(() => {
    const [a, b] = losses(1);
    tiny.forStep(net, true)!.backward([["beauty", a], ["gender", b]], null);
  });
  W.grad = null;
  tiny.afterStep(true);
  assert.ok(tiny.current().gender >= 1e-3 * 2 / (2 + 1e-3) - 1e-7, `${tiny.current().gender}`);
  // A logit step uses the weights and moves nothing.
  const before = g.current();
  scope(() => {
    const [a, b] = losses(1);
    g.forStep(net, false)!.backward([["beauty", a], ["gender", add(b, 0)]], null);
  });
  W.grad = null;
  g.afterStep(false);
  assert.deepEqual(g.current(), before);
  g.dispose();
  tiny.dispose();
  net.dispose();
});

Deno.test("--task-weights and its options: parsed, named in errors, checked against the scheme", () => {
  const c = runConfigFromArgs({ "task-weights": "gradnorm", "gradnorm-alpha": "0.5" });
  assert.equal(c.taskWeights, "gradnorm");
  assert.equal(c.gradnormAlpha, 0.5);
  assert.equal(c.name, "adashare-aff-default-gradnorm");
  assert.equal(runConfigFromArgs({}).taskWeights, "fixed");
  assert.equal(
    runConfigFromArgs({ "task-weights": "dwa", "dwa-temperature": "4" }).dwaTemperature,
    4,
  );
  assert.throws(
    () => runConfigFromArgs({ "task-weights": "softmax" }),
    /^Error: Cannot parse --task-weights: expected one of fixed, uncertainty, gradnorm, dwa: current value is "softmax"$/,
  );
  assert.throws(
    () => runConfigFromArgs({ "task-weights": "dwa", "gradnorm-alpha": "1" }),
    /^Error: Cannot parse --gradnorm-alpha: it sets --task-weights gradnorm: current task weights are "dwa"$/,
  );
  const zero = runConfigFromArgs({
    "task-weights": "uncertainty",
    task: ["beauty=faces:beauty:1", "gender=people:gender:0"],
  });
  assert.throws(
    () => validateRunConfig(zero),
    /^Error: Cannot start the run: task weights uncertainty start from each task's λ and need λ > 0: task "gender" has λ 0$/,
  );
  assert.throws(
    () => validateRunConfig({ ...runConfigFromArgs({ "task-weights": "dwa" }), dwaTemperature: 0 }),
    /^Error: Cannot start the run: DWA temperature must be > 0 and at most 1000: current value is 0$/,
  );
});

Deno.test("a run folder whose config.json predates task weights reads as fixed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-tw-old-" });
  const old: Record<string, unknown> = { ...runConfigFromArgs({}), out: dir };
  for (const k of ["taskWeights", "taskWeightsLr", "gradnormAlpha", "dwaTemperature"]) {
    delete old[k];
  }
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(old));
  const c = await readRunConfig(dir);
  assert.equal(c.taskWeights, "fixed");
  validateRunConfig(c);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("taskWeightsPlot() draws each task's weights over the epochs; null for fixed λ", async () => {
  const entry = (stage: string, epoch: number, w?: Record<string, number>): HistoryEntry => ({
    stage,
    epoch,
    loss: 1,
    tasks: {},
    seconds: epoch,
    ...(w ? { taskWeights: w } : {}),
  });
  assert.equal(taskWeightsPlot([entry("warmup", 1), entry("retrain", 1)]), null);
  const svg = await taskWeightsPlot([
    entry("warmup", 1, { beauty: 1.25, gender: 0.75 }),
    entry("retrain", 1, { beauty: 0.9, gender: 1.1 }),
  ])!;
  assert.match(svg, /^<svg/);
  for (const text of ["beauty", "gender", "weight", "re-training"]) {
    assert.ok(svg.includes(text), text);
  }
});
