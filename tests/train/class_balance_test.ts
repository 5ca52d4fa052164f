/**
 * Class balance (`--balance none|weights|sampler|focal`): the inverse-frequency weights
 * against hand-computed values, the balanced sampler's draws (seeded, equal per class,
 * natural share of unlabelled images), the flags, and tiny runs of every option that,
 * stopped mid-epoch and resumed, end with the numbers of an uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { balancedOrder } from "../../src/data/balanced_order.ts";
import { Rng } from "../../src/random/rng.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import {
  inverseFrequencyWeights,
  samplerLabel,
  taskLosses,
} from "../../src/train/class_balance.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { RunInterrupted, train } from "../../src/train/trainer.ts";
import { runConfigFromArgs } from "../../tasks/_cli/run_args.ts";
import { tinyRun } from "../_run_helpers.ts";

Deno.test("inverseFrequencyWeights() is N / (K′·n_c), mean 1 over the labelled images", () => {
  // 6 of class 0, 3 of class 1, 1 of class 2, class 3 absent: N 10, K′ 3.
  const labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2, -1];
  const w = inverseFrequencyWeights(labels, 4);
  assert.deepEqual(w, [10 / 18, 10 / 9, 10 / 3, 1]);
  const mean = labels.filter((c) => c >= 0).reduce((a, c) => a + w[c], 0) / 10;
  assert.ok(Math.abs(mean - 1) < 1e-12, `mean weight ${mean}`);
  assert.throws(() => inverseFrequencyWeights([0, 5], 3), /class in 0\.\.2: current value is 5/);
});

Deno.test("balancedOrder() draws every class equally, seeded, unlabelled at their share", () => {
  // 900 images of class 0, 100 of class 1, 250 without the label (20 % of 1250).
  const groups = Int32Array.from({ length: 1250 }, (_, i) => (i < 900 ? 0 : i < 1000 ? 1 : -1));
  const usable = Array.from({ length: 1250 }, (_, i) => i);
  const order = balancedOrder(usable, groups, new Rng(7, 3, 2));
  assert.equal(order.length, 1250);
  assert.deepEqual(order, balancedOrder(usable, groups, new Rng(7, 3, 2)), "seeded");
  assert.notDeepEqual(order, balancedOrder(usable, groups, new Rng(7, 4, 2)), "per epoch");
  const count = (g: number) => order.filter((i) => groups[i] === g).length;
  // Expected: 250 unlabelled, 500 of each class (binomial std ≈ 14–16).
  assert.ok(Math.abs(count(-1) - 250) < 60, `unlabelled ${count(-1)}`);
  assert.ok(Math.abs(count(0) - 500) < 70, `class 0 ${count(0)}`);
  assert.ok(Math.abs(count(1) - 500) < 70, `class 1 ${count(1)}`);
  // Only usable images are drawn.
  const some = balancedOrder([0, 1, 950], groups, new Rng(1));
  assert.ok(some.every((i) => [0, 1, 950].includes(i)));
});

Deno.test("--balance, --focal-gamma and --score-loss set the config; bad values are named", () => {
  const c = runConfigFromArgs({
    db: ["s=synthetic"],
    task: ["beauty=s:beauty", "score=s::1:score"],
    balance: "focal",
    "focal-gamma": "1.5",
    "score-loss": "l1",
  });
  assert.deepEqual([c.balance, c.focalGamma, c.scoreLoss], ["focal", 1.5, "l1"]);
  const d = runConfigFromArgs({});
  assert.deepEqual([d.balance, d.focalGamma, d.scoreLoss], ["none", 2, "mse"]);
  assert.throws(
    () => runConfigFromArgs({ balance: "oversample" }),
    /Cannot parse --balance: expected one of none, weights, sampler, focal: current value is "oversample"/,
  );
  assert.throws(
    () => runConfigFromArgs({ "focal-gamma": "3" }),
    /Cannot parse --focal-gamma: it sets the focal loss of --balance focal: current balance is "none"/,
  );
  assert.throws(() => runConfigFromArgs({ "score-loss": "huber" }), /expected one of l1, mse/);
});

Deno.test("taskLosses() and samplerLabel() follow the balance option and the task kinds", () => {
  const base = runConfigFromArgs({
    db: ["s=scut:x"],
    task: ["beauty=s:beauty", "gender=s:gender", "score=s:score::score"],
  });
  const train = { s: [0, 0, 0, 1].map((b) => ({ path: "", labels: { beauty: b, gender: 1 } })) };
  const classes = { beauty: ["0", "1"], gender: ["F", "M"], score: ["0", "1", "2", "3", "4"] };
  const w = taskLosses({ ...base, balance: "weights" }, train, classes);
  assert.deepEqual(w.beauty, { kind: "class", classWeights: [4 / 6, 2] });
  assert.deepEqual(w.gender, { kind: "class", classWeights: [1, 1] });
  assert.deepEqual(w.score, { kind: "score", loss: "mse" });
  const f = taskLosses({ ...base, balance: "focal", focalGamma: 1 }, train, classes);
  assert.deepEqual(f.beauty, { kind: "class", focalGamma: 1 });
  assert.equal(samplerLabel({ ...base, balance: "sampler" }, "s"), "beauty");
  assert.equal(samplerLabel(base, "s"), undefined);
});

const cpu = await loadBackend("cpu");
setDefaultBackend(cpu);
const root = await Deno.makeTempDir({ prefix: "fbp-balance-" });
const faces = `synthetic:dir=${root}/faces,count=120,size=40,seed=5`;

function balanceRun(name: string, over: Partial<RunConfig>): RunConfig {
  return tinyRun(name, join(root, "runs", name), {
    databases: [{ name: "s", source: faces }],
    tasks: [
      { name: "beauty", database: "s", label: "beauty", lambda: 1 },
      { name: "gender", database: "s", label: "gender", lambda: 0.6 },
    ],
    batch: 16,
    epochs: { warmup: 1, policy: 1, retrain: 2, baseline: 3 },
    ...over,
  });
}

for (
  const [balance, method] of [
    ["weights", "baseline"],
    ["sampler", "adashare"],
    ["focal", "baseline"],
  ] as const
) {
  Deno.test(`--balance ${balance} trains end to end and resumes to the same numbers`, async () => {
    const over: Partial<RunConfig> = method === "baseline"
      ? { balance, method, tasks: [{ name: "beauty", database: "s", label: "beauty", lambda: 1 }] }
      : { balance, method };
    const full = await train(balanceRun(`${balance}-full`, over), { backend: cpu });
    const config = balanceRun(`${balance}-resumed`, over);
    const controller = new AbortController();
    let steps = 0;
    await assert.rejects(
      train(config, {
        backend: cpu,
        signal: controller.signal,
        onProgress: () => {
          if (++steps === 6) controller.abort(); // mid-epoch (6 steps an epoch, or 3)
        },
      }),
      RunInterrupted,
    );
    const resumed = await train(config, { backend: cpu, resume: true });
    assert.deepEqual(resumed.history.map((h) => h.loss), full.history.map((h) => h.loss));
    for (const task of Object.keys(full.tasks)) {
      assert.deepEqual(resumed.tasks[task].test, full.tasks[task].test, `test of ${task}`);
    }
    // Plain runs differ: the option changes training.
    const plain = await train(balanceRun(`${balance}-none`, { ...over, balance: "none" }), {
      backend: cpu,
    });
    assert.notDeepEqual(plain.history.map((h) => h.loss), full.history.map((h) => h.loss));
  });
}
