/**
 * Task kinds (class, score, dist): the composite losses against hand-computed values and
 * their gradients against finite differences (float64 reference backend), PC / MAE / RMSE
 * against hand-computed values, the implied grades, the --task syntax, checkpoint configs,
 * and tiny end-to-end runs of score and dist tasks (SCUT layout and a manifest).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { gradeFromHistogram, ratingHistogram } from "../../src/data/grade.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { networkToOnnx } from "../../src/export/onnx_graph.ts";
import { focalLoss, regressionLoss, softTargetKl } from "../../src/ops/losses.ts";
import { crossEntropy } from "../../src/ops/softmax.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { scoreFigures } from "../../src/train/metrics.ts";
import { isScoreMetrics } from "../../src/train/result.ts";
import { readRunConfig } from "../../src/train/resume.ts";
import { RUN_DEFAULTS, validateRunConfig } from "../../src/train/run_config.ts";
import { decodeScoreOutput, taskStep } from "../../src/train/task_kinds.ts";
import { trainStep } from "../../src/train/step.ts";
import { train } from "../../src/train/trainer.ts";
import { parseTaskFlag, runConfigFromArgs } from "../../tasks/_cli/run_args.ts";
import { assertClose, finiteDifferences, runCase } from "../ops/harness.ts";
import type { OpCase } from "../ops/cases.ts";
import { tinyRun } from "../_run_helpers.ts";

const f64 = new ReferenceBackend({ precision: "f64" });

function close(actual: number, expected: number, tol = 1e-6, what = "value"): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected}`);
}

/** Rows of `t` scaled to sum to 1 (target distributions for softTargetKl). */
function rowsToDistributions(t: Tensor, k: number): Tensor {
  const v = t.toArray();
  for (let i = 0; i < v.length; i += k) {
    let s = 0;
    for (let j = 0; j < k; j++) s += v[i + j];
    for (let j = 0; j < k; j++) v[i + j] /= s;
  }
  return tensor(v, t.shape, { backend: t.backend });
}

const cases: OpCase[] = [
  {
    name: "focalLoss γ=2",
    inputs: [{ shape: [5, 4] }, { shape: [5], fill: { classes: 4 }, grad: false }],
    fn: ([x, t]) => focalLoss(x, t, { gamma: 2 }),
  },
  {
    name: "focalLoss γ=0.5 weighted",
    inputs: [
      { shape: [3, 5] },
      { shape: [3], fill: { classes: 5 }, grad: false },
      { shape: [3], fill: "positive", grad: false },
    ],
    fn: ([x, t, w]) => focalLoss(x, t, { gamma: 0.5, weights: w }),
  },
  {
    name: "softTargetKl",
    inputs: [{ shape: [4, 5] }, { shape: [4, 5], fill: "positive", grad: false }],
    fn: ([x, p]) => softTargetKl(x, rowsToDistributions(p, 5)),
  },
  {
    name: "regressionLoss mse weighted",
    inputs: [
      { shape: [6, 1] },
      { shape: [6, 1], grad: false },
      { shape: [6], fill: "positive", grad: false },
    ],
    fn: ([x, y, w]) => regressionLoss(x, y, { kind: "mse", weights: w }),
  },
  {
    name: "regressionLoss l1",
    inputs: [{ shape: [6, 1] }, { shape: [6, 1], fill: "positive", grad: false }],
    fn: ([x, y]) => regressionLoss(x, y, { kind: "l1" }),
  },
];

for (const c of cases) {
  Deno.test(`${c.name}: gradients match finite differences`, () => {
    setDefaultBackend(f64);
    const result = runCase(f64, c);
    const numeric = finiteDifferences(c, 0);
    assertClose(`${c.name} d/logits`, result.grads[0]!, numeric, 1e-5, 1e-4);
  });
}

Deno.test("focalLoss() gives (1 − p_t)^γ·CE, and plain cross-entropy at γ = 0", () => {
  setDefaultBackend(f64);
  scope(() => {
    // Row 1: p_t = 3/4 (focal (1/4)²·ln(4/3)); row 2: logits equal, p_t = 1/2.
    const x = tensor([0, Math.log(3), 0, 0], [2, 2]);
    const t = tensor([1, 0], [2]);
    const expected = (Math.log(4 / 3) / 16 + 0.25 * Math.log(2)) / 2;
    close(focalLoss(x, t, { gamma: 2 }).item(), expected, 1e-9, "focal γ=2");
    close(
      focalLoss(x, t, { gamma: 0 }).item(),
      crossEntropy(x, t).item(),
      1e-9,
      "focal γ=0 vs CE",
    );
    // Weights: the second row weighs 0, the mean still divides by N = 2.
    close(
      focalLoss(x, t, { gamma: 2, weights: tensor([1, 0], [2]) }).item(),
      Math.log(4 / 3) / 32,
      1e-9,
      "weighted",
    );
    assert.throws(() => focalLoss(x, tensor([2, 0], [2]), { gamma: 2 }), /class in 0\.\.1/);
    assert.throws(() => focalLoss(x, t, { gamma: -1 }), /gamma must be a number ≥ 0/);
  });
});

Deno.test("softTargetKl() is KL(target ‖ softmax) with 0·log 0 = 0", () => {
  setDefaultBackend(f64);
  scope(() => {
    const uniform = tensor([0, 0, 0, 0, 0], [1, 5]);
    // KL([.5, .5, 0, 0, 0] ‖ 1/5 each) = ln(2.5).
    const half = tensor([0.5, 0.5, 0, 0, 0], [1, 5]);
    close(softTargetKl(uniform, half).item(), Math.log(2.5), 1e-6, "vs uniform");
    // A prediction equal to the target: 0.
    const target = [0.1, 0.2, 0.3, 0.25, 0.15];
    const same = tensor(target.map(Math.log), [1, 5]);
    close(softTargetKl(same, tensor(target, [1, 5])).item(), 0, 1e-6, "KL(t‖t)");
  });
});

Deno.test("regressionLoss() is the mean L1 / squared error over N", () => {
  setDefaultBackend(f64);
  scope(() => {
    const x = tensor([0.5, -1], [2, 1]), y = tensor([0, 0], [2, 1]);
    close(regressionLoss(x, y, { kind: "l1" }).item(), 0.75, 1e-12, "l1");
    close(regressionLoss(x, y, { kind: "mse" }).item(), 0.625, 1e-12, "mse");
    close(
      regressionLoss(x, y, { kind: "l1", weights: tensor([1, 0], [2]) }).item(),
      0.25,
      1e-12,
      "weighted l1",
    );
  });
});

Deno.test("scoreFigures() matches hand-computed PC, MAE and RMSE", () => {
  // x = [1, 2, 3], y = [1, 3, 2]: cov 1, var 2 and 2 → r = 0.5; errors 0, 1, 1.
  const m = scoreFigures([1, 2, 3, 99], [1, 3, 2, NaN]);
  close(m.pc, 0.5, 1e-12, "pc");
  close(m.mae, 2 / 3, 1e-12, "mae");
  close(m.rmse, Math.sqrt(2 / 3), 1e-12, "rmse");
  // Anti-correlated: r = −1; a constant prediction: PC 0 (undefined), errors as they are.
  close(scoreFigures([3, 2, 1], [1, 2, 3]).pc, -1, 1e-12, "anti");
  assert.deepEqual(scoreFigures([2, 2], [1, 3]), { pc: 0, mae: 1, rmse: 1 });
  assert.deepEqual(scoreFigures([], []), { pc: 0, mae: 0, rmse: 0 });
  assert.throws(() => scoreFigures([1], [1, 2]), /1 predictions for 2 scores/);
});

Deno.test("the implied grade: round(score) − 1, a histogram's most frequent rating − 1", () => {
  assert.deepEqual(ratingHistogram([4, 4, 3, 5]), [0, 0, 0.25, 0.5, 0.25]);
  assert.equal(gradeFromHistogram([0, 0, 0.25, 0.5, 0.25]), 3);
  // A tie between ratings 2 and 4 goes to the one nearer the mean, then to the lower.
  assert.equal(gradeFromHistogram([0, 0.5, 0, 0.5, 0], 3.4), 3);
  assert.equal(gradeFromHistogram([0, 0.5, 0, 0.5, 0], 3), 1);
  // Score head: 3 + 2z, clamped to 1–5.
  assert.deepEqual(decodeScoreOutput("score", [0.6], 0), { score: 4.2, grade: 3 });
  assert.deepEqual(decodeScoreOutput("score", [0, 5], 1), { score: 5, grade: 4 });
  const d = decodeScoreOutput("dist", [0, 0, 0, Math.log(2), 0], 0);
  // softmax: 1/6 each, 2/6 for rating 4; expected rating (1+2+3+8+5)/6.
  close(d.score, 19 / 6, 1e-12, "expected rating");
  assert.equal(d.grade, 3);
});

Deno.test("taskStep() masks images without a target and counts implied-grade hits", () => {
  setDefaultBackend(f64);
  scope(() => {
    // Score 4 → target z = 0.5; the head says 0 (score 3, grade 2); the second image has none.
    const logits = tensor([0, 0.7], [2, 1]);
    const r = taskStep(logits, {
      classes: Int32Array.from([2, -1]),
      values: Float32Array.from([4, NaN]),
    }, { kind: "score", loss: "mse" })!;
    close(r.loss.item(), 0.25, 1e-9, "masked mse");
    assert.deepEqual([r.correct, r.count], [1, 1]);
    const none = taskStep(logits, {
      classes: Int32Array.from([-1, -1]),
      values: Float32Array.from([NaN, NaN]),
    }, { kind: "score", loss: "l1" });
    assert.equal(none, null);
    // Class weights: (1/valid)·Σ w_y·CE (not Σ w·CE / Σ w). Row 1: logits (0, ln 3), class
    // 0, p = 1/4, CE = ln 4; row 2: (0, 0), class 1, CE = ln 2; row 3 unlabelled. Weights
    // 0.5 and 3: (0.5·ln 4 + 3·ln 2) / 2 = 2 ln 2, where Σ w·CE / Σ w would be 4 ln 2 / 3.5.
    const cls = taskStep(tensor([0, Math.log(3), 0, 0, 0, 0], [3, 2]), {
      classes: Int32Array.from([0, 1, -1]),
    }, { kind: "class", classWeights: [0.5, 3] })!;
    close(cls.loss.item(), 2 * Math.log(2), 1e-6, "weighted CE (fp32 weights)");
    assert.deepEqual([cls.correct, cls.count], [0, 2]); // argmax 1, then 0 (ties: the first)
  });
});

Deno.test("parseTaskFlag() reads KIND, K and classK; errors say what was expected", () => {
  assert.deepEqual(parseTaskFlag("s=db:score:1:score"), {
    name: "s",
    database: "db",
    label: "score",
    lambda: 1,
    kind: "score",
  });
  assert.equal(parseTaskFlag("d=db:ratings::dist").kind, "dist");
  assert.equal(parseTaskFlag("b=db:beauty::5").classes, 5);
  assert.equal(parseTaskFlag("b=db:beauty:1:class5").classes, 5);
  const plain = parseTaskFlag("b=db:beauty:1:class");
  assert.equal(plain.classes, undefined);
  assert.equal(plain.kind, undefined);
  assert.throws(
    () => parseTaskFlag("b=db:beauty:1:grade"),
    /KIND "grade" is not class, score, dist or a class count K \(5, class5\)/,
  );
  assert.throws(() => parseTaskFlag("b=db:beauty:1:class1"), /from 2 to 1000/);
  // An empty LABEL is the kind's; an absent one the task's name (class).
  assert.equal(parseTaskFlag("s=db::1:score").label, "score");
  assert.equal(parseTaskFlag("d=db:::dist").label, "ratings");
  assert.equal(parseTaskFlag("b=db").label, "b");
  assert.equal(parseTaskFlag("b=db::0.5").label, "b");
  // λ and K: the old K place, both spellings that keep working, a weight of 5 said so.
  assert.deepEqual(parseTaskFlag("beauty=db:beauty::5"), {
    name: "beauty",
    database: "db",
    label: "beauty",
    lambda: 1,
    classes: 5,
  });
  assert.equal(parseTaskFlag("beauty=db:beauty:1:5").classes, 5);
  const weight5 = parseTaskFlag("b=db:beauty:5:class");
  assert.deepEqual([weight5.lambda, weight5.classes, weight5.kind], [5, undefined, undefined]);
  assert.equal(parseTaskFlag("b=db:beauty:2.5").lambda, 2.5);
  assert.equal(parseTaskFlag("s=db:score:3:score").lambda, 3);
  const refusals: [string, string][] = [
    [
      "s=db:score:score",
      `λ "score" is a KIND: expected NAME=DB:LABEL::KIND (λ may be empty), e.g. s=db:score::score`,
    ],
    ["d=db:ratings:dist", `λ "dist" is a KIND: expected NAME=DB:LABEL::KIND`],
    ["b=db:beauty:class5", `λ "class5" is a KIND: expected NAME=DB:LABEL::KIND`],
    [
      "b=db:beauty:5",
      "λ 5 looks like a class count: write b=db:beauty::5 (or b=db:beauty:5:class to mean " +
      "the weight)",
    ],
    [
      "score=scut",
      `LABEL "score" is what score tasks learn, and no KIND was given (a class task would ` +
      `read it as classes): add ":score", e.g. score=scut:score::score`,
    ],
    ["r=db:ratings:0.5", `LABEL "ratings" is what dist tasks learn, and no KIND was given`],
  ];
  for (const [flag, why] of refusals) {
    assert.throws(
      () => parseTaskFlag(flag),
      (e: Error) => {
        assert.ok(e.message.startsWith(`Cannot parse --task "${flag}": ${why}`), e.message);
        return true;
      },
    );
  }
  const config = {
    ...RUN_DEFAULTS,
    name: "x",
    out: "runs/x",
    databases: [{ name: "db", source: "scut:x" }],
    tasks: [{ ...parseTaskFlag("s=db:beauty:1:score") }],
  };
  assert.throws(
    () => validateRunConfig(config),
    /task "s" of kind score learns the mean rating: its LABEL must be "score": current value is "beauty"/,
  );
  assert.throws(
    () =>
      validateRunConfig({
        ...config,
        tasks: [parseTaskFlag("s=db:score:1:score")],
        balance: "weights",
      }),
    /--balance weights balances class tasks: the run has none/,
  );
});

Deno.test("--score-loss needs a score task; --balance and --score-loss name the run", () => {
  assert.throws(
    () => runConfigFromArgs({ "score-loss": "l1" }),
    /^Error: Cannot parse --score-loss: it sets the loss of score tasks \(--task NAME=DB:score::score\): current tasks are "beauty" \(class\), "gender" \(class\)$/,
  );
  const tasks = { db: ["db=synthetic"], task: ["b=db:beauty", "s=db::1:score"] };
  assert.equal(runConfigFromArgs(tasks).name, "adashare-aff-b+s");
  assert.equal(
    runConfigFromArgs({ ...tasks, "score-loss": "l1", balance: "weights" }).name,
    "adashare-aff-b+s-balance-weights-score-l1",
  );
  assert.equal(
    runConfigFromArgs({ ...tasks, "score-loss": "mse", balance: "focal", "focal-gamma": "1" })
      .name,
    "adashare-aff-b+s-balance-focal1",
  );
  assert.equal(
    runConfigFromArgs({ balance: "focal", "task-weights": "dwa", seed: "2" }).name,
    "adashare-aff-default-balance-focal-dwa-seed2",
  );
  const config = { ...runConfigFromArgs(tasks), name: "x", out: "runs/x" };
  assert.throws(
    () => validateRunConfig({ ...config, scoreLoss: "huber" as "l1" }),
    /^Error: Cannot start the run: unknown score loss: expected one of l1, mse: current value is "huber"$/,
  );
  assert.throws(
    () => validateRunConfig({ ...config, focalGamma: -1 }),
    /^Error: Cannot start the run: focal gamma out of range: expected a number from 0 to 100: current value is -1$/,
  );
});

Deno.test("trainStep() takes n·5 target values for a dist task and n for a score task", () => {
  setDefaultBackend(f64);
  const net = new MultiTaskNet(parseNetworkConfig({
    tasks: [{ name: "d", kind: "dist", database: "db" }, {
      name: "s",
      kind: "score",
      database: "db",
    }],
    widths: [4, 4, 8, 8],
    imageSize: 32,
  }));
  const step = (values: Record<string, Float32Array>) =>
    trainStep(net, [{
      database: "db",
      images: new Float32Array(2 * 3 * 32 * 32),
      size: 32,
      targets: { d: Int32Array.from([0, 1]), s: Int32Array.from([0, 1]) },
      values,
    }], {
      lambdas: {},
      gates: () => new Map(),
      dropoutSeed: 0,
      losses: { d: { kind: "dist" }, s: { kind: "score", loss: "mse" } },
    });
  assert.throws(
    () => step({ d: new Float32Array(2), s: new Float32Array(2) }),
    /^BadBatchError: The batch of database "db" has 2 images but 2 target values of dist task "d": expected 10 \(5 rating bins an image\)$/,
  );
  assert.throws(
    () => step({ d: new Float32Array(10), s: new Float32Array(10) }),
    /^BadBatchError: The batch of database "db" has 2 images but 10 target values of score task "s": expected 2 \(one an image\)$/,
  );
  net.dispose();
});

Deno.test("parseNetworkConfig() sizes heads by kind and reads configs without kinds", () => {
  const c = parseNetworkConfig({
    tasks: [
      { name: "b", classes: 5, database: "s" },
      { name: "s", kind: "score", database: "s" },
      { name: "d", kind: "dist", database: "s" },
    ],
  });
  assert.deepEqual(c.tasks, [
    { name: "b", classes: 5, database: "s" },
    { name: "s", classes: 1, database: "s", kind: "score" },
    { name: "d", classes: 5, database: "s", kind: "dist" },
  ]);
  assert.throws(
    () => parseNetworkConfig({ tasks: [{ name: "s", kind: "score", classes: 3, database: "s" }] }),
    /classes of a score task must be 1: got 3/,
  );
  assert.throws(
    () => parseNetworkConfig({ tasks: [{ name: "s", kind: "rank", classes: 3, database: "s" }] }),
    /kind must be "class", "score" or "dist": got "rank"/,
  );
});

Deno.test("readRunConfig() gives a config from before task kinds their defaults", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-kinds-old-" });
  const { scoreLoss: _s, balance: _b, focalGamma: _f, ...old } = {
    ...RUN_DEFAULTS,
    name: "old",
    out: dir,
    databases: [{ name: "db", source: "scut:x" }],
    tasks: [{ name: "beauty", database: "db", label: "beauty", lambda: 1 }],
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(old));
  const c = await readRunConfig(dir);
  assert.deepEqual([c.scoreLoss, c.balance, c.focalGamma], ["mse", "none", 2]);
  validateRunConfig(c);
  await Deno.remove(dir, { recursive: true });
});

// --- End to end: tiny runs on the CPU backend ---

const cpu = await loadBackend("cpu");
const root = await Deno.makeTempDir({ prefix: "fbp-kinds-" });
const scut = `synthetic:dir=${root}/faces,count=120,size=40,seed=3`;

function scoreRun(name: string, tasks: string[], source = scut) {
  return tinyRun(name, join(root, "runs", name), {
    method: tasks.length === 1 ? "baseline" : "adashare",
    databases: [{ name: "s", source }],
    tasks: tasks.map(parseTaskFlag),
    batch: 16,
    epochs: { warmup: 1, policy: 1, retrain: 1, baseline: 2 },
  });
}

Deno.test("score and dist tasks train together with a class task and report PC/MAE/RMSE", async () => {
  setDefaultBackend(cpu);
  const result = await train(
    scoreRun("kinds", ["beauty=s:beauty", "score=s:score:1:score", "dist=s:ratings:1:dist"]),
    { backend: cpu },
  );
  assert.ok(!isScoreMetrics(result.tasks.beauty.test));
  for (const task of ["score", "dist"]) {
    const m = result.tasks[task].test;
    assert.ok(isScoreMetrics(m), `${task} has score metrics`);
    assert.equal(m.kind, task);
    // PC, MAE and RMSE are recomputed from predict's outputs in tests/cli/score_task_test.ts.
    // The implied grades are scored on the same test images as the class task.
    assert.equal(m.count, result.tasks.beauty.test.count);
    assert.deepEqual(m.classes, ["0", "1", "2", "3", "4"]);
    assert.ok(result.history.every((h) => typeof h.tasks[task].valPc === "number"));
  }
});

Deno.test("a manifest with a score column feeds a score task and refuses a dist task", async () => {
  setDefaultBackend(cpu);
  const faces = join(root, "faces");
  const lines = ["path,score,gender"];
  for (const e of Deno.readDirSync(join(faces, "Images"))) {
    const stem = e.name.replace(/\.\w+$/, "");
    lines.push(`${join(faces, "Images", e.name)},${(1 + (stem.length % 4)).toFixed(1)},${stem[1]}`);
  }
  const manifest = join(root, "faces.csv");
  await Deno.writeTextFile(manifest, lines.join("\n") + "\n");
  const result = await train(
    scoreRun("manifest", ["score=s:score:1:score"], `csv:${manifest}`),
    { backend: cpu },
  );
  assert.ok(isScoreMetrics(result.tasks.score.test));
  await assert.rejects(
    train(scoreRun("manifest-dist", ["d=s:ratings:1:dist"], `csv:${manifest}`), { backend: cpu }),
    /task "d" \(kind dist\) learns the raters' rating histogram, and database "s" \(csv:.*\) has none: expected a SCUT-FBP5500 folder with All_Ratings/,
  );
});

Deno.test("the ONNX export refuses a score head and writes a dist head's histogram", () => {
  setDefaultBackend(f64);
  const net = new MultiTaskNet(parseNetworkConfig({
    tasks: [
      { name: "s", kind: "score", database: "db" },
      { name: "d", kind: "dist", database: "db" },
    ],
    widths: [4, 4, 8, 8],
    imageSize: 32,
  }));
  assert.throws(
    () => networkToOnnx(net),
    /Cannot export task "s" to ONNX: it is a score task .*expected class or dist tasks/,
  );
  const model = networkToOnnx(net, { tasks: ["d"] });
  assert.deepEqual(model.graph.outputs.map((o) => [o.name, o.shape]), [["d", ["N", 5]]]);
  net.dispose();
});
