/**
 * The training recipe's rules that are not a whole run: the stages' learning rates, the
 * curriculum, a fixed policy's plan, `--bn auto`, the augmentation switches, the paper
 * presets' refusal without ImageNet weights, and default run names.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BatchLoader } from "../../src/data/loader.ts";
import { readSource } from "../../src/data/source.ts";
import { curriculumWindow, learningRate } from "../../src/optim/schedule.ts";
import { planEpochs } from "../../src/train/plan.ts";
import { readRunConfig } from "../../src/train/resume.ts";
import { presetConfig } from "../../src/train/presets.ts";
import { resolveBnMode, RUN_DEFAULTS, validateRunConfig } from "../../src/train/run_config.ts";
import { STAGES } from "../../src/train/stages.ts";
import { parseFixedPolicy, runConfigFromArgs } from "../../tasks/_cli/run_args.ts";
import { twoTasks } from "../_run_helpers.ts";

const base = {
  ...presetConfig("default"),
  name: "t",
  out: "unused",
};

Deno.test("policy-weight epochs train at the base rate; warm-up and re-training follow the schedule", () => {
  const c = { ...base, lr: 2e-3, lrSchedule: "cosine" as const };
  for (const at of [0, 5, 9]) {
    assert.equal(STAGES["policy-weights"].weightsLr(c, at, 10), 2e-3);
  }
  // The end of a cosine stage is 1% of the base: what policy learning used to inherit.
  assert.ok(Math.abs(STAGES.warmup.weightsLr(c, 9, 10) - 2e-5) < 1e-12);
  for (const kind of ["warmup", "retrain", "baseline"] as const) {
    assert.equal(STAGES[kind].weightsLr(c, 3, 10), learningRate("cosine", 2e-3, 3, 10));
  }
});

Deno.test("the curriculum opens several blocks an epoch below speed 1, and all 8 in the default", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map((e) => curriculumWindow(8, 0.5, e)), [1, 3, 5, 7, 8]);
  assert.deepEqual([0, 1, 2, 3].map((e) => curriculumWindow(8, 3, e * 3)), [1, 2, 3, 4]);
  assert.equal(curriculumWindow(8, 0.1, 0), 1);
  assert.equal(curriculumWindow(40, 0.1, 3), 31); // 3 / 0.1 is 29.999… in floating point
  const d = presetConfig("default");
  const last = d.epochs.policy - 1;
  assert.equal(curriculumWindow(8, d.curriculumSpeed, last), 8, "default opens every block");
  assert.doesNotThrow(() => validateRunConfig({ ...base, curriculumSpeed: 0.5 }));
  assert.throws(
    () => validateRunConfig({ ...base, curriculumSpeed: 0 }),
    /curriculum speed must be > 0: current value is 0/,
  );
});

Deno.test("a fixed policy is only re-trained, and must give ResNet18 8 bits for every task", () => {
  const fixedPolicy = { beauty: [1, 1, 0, 1, 0, 1, 1, 0], gender: [1, 0, 0, 0, 1, 1, 1, 1] };
  const plan = planEpochs({ ...base, fixedPolicy });
  assert.deepEqual(new Set(plan.map((e) => e.kind)), new Set(["retrain"]));
  assert.equal(plan.length, base.epochs.retrain);
  // Its re-training draws what a full run's re-training draws (batches, crops, dropout).
  const full = planEpochs(base).filter((e) => e.kind === "retrain").map((e) => e.draws);
  assert.deepEqual(plan.map((e) => e.draws), full);
  assert.deepEqual(planEpochs(base).map((e) => e.draws), planEpochs(base).map((_, i) => i));
  assert.doesNotThrow(() => validateRunConfig({ ...base, fixedPolicy }));
  assert.throws(
    () => validateRunConfig({ ...base, fixedPolicy: { beauty: fixedPolicy.beauty } }),
    /fixed policy must give every task's blocks: missing gender/,
  );
  assert.throws(
    () => validateRunConfig({ ...base, fixedPolicy: { ...fixedPolicy, gender: [1, 2] } }),
    /fixed policy of task "gender" must be 8 values 0 or 1/,
  );
  assert.deepEqual(parseFixedPolicy("beauty=11010110, gender=00001111"), {
    beauty: [1, 1, 0, 1, 0, 1, 1, 0],
    gender: [0, 0, 0, 0, 1, 1, 1, 1],
  });
  assert.throws(() => parseFixedPolicy("beauty=11x1"), /bits 0\/1 per task.*"beauty=11x1"/);
  // Any number of bits parses; the run config wants one per gated block (ResNet18: 8).
  assert.throws(
    () => validateRunConfig({ ...base, fixedPolicy: { ...fixedPolicy, beauty: [1, 1, 0, 1] } }),
    /fixed policy of task "beauty" must be 8 values 0 or 1/,
  );
  assert.throws(() => parseFixedPolicy("a=11111111,a=00000000"), /task "a" twice/);
});

Deno.test("a config.json from before the recipe options resumes as it ran: flips, random crops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-recipe-" });
  try {
    const { flip: _f, crop: _c, ...old } = { ...base, bn: "per-database" as const };
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(old));
    const c = await readRunConfig(dir);
    assert.equal(c.flip, true);
    assert.equal(c.crop, "random");
    assert.doesNotThrow(() => validateRunConfig(c));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--bn auto: per task where tasks share a database, else per database", () => {
  assert.equal(resolveBnMode(base), "per-database");
  const scut = presetConfig("paper-scut", { scut: "some/dir" });
  assert.equal(resolveBnMode(scut), "per-task");
  assert.equal(resolveBnMode({ ...scut, bn: "shared" }), "shared");
  assert.equal(RUN_DEFAULTS.bn, "auto");
  assert.throws(
    () => validateRunConfig({ ...base, bn: "per-batch" as never }),
    /bn must be one of auto, per-database, per-task, shared: current value is "per-batch"/,
  );
});

Deno.test("paper presets refuse to start without ImageNet weights unless --from-scratch", () => {
  for (const preset of ["paper-scut", "paper-lsafbd"]) {
    assert.throws(
      () => runConfigFromArgs({ preset, scut: "d", lsafbd: "list:t.txt" }),
      (e: Error) =>
        e.message.includes(`preset "${preset}" without ImageNet weights`) &&
        e.message.includes("--pretrained FILE") && e.message.includes("resnet18") &&
        e.message.includes("--from-scratch"),
    );
  }
  // --scut alone means the paper-scut preset, so it is refused the same way.
  assert.throws(() => runConfigFromArgs({ scut: "d" }), /without ImageNet weights/);
  const c = runConfigFromArgs({ preset: "paper-scut", scut: "d", "from-scratch": true });
  assert.equal(c.pretrained, undefined);
  assert.equal(
    runConfigFromArgs({ preset: "paper-scut", scut: "d", pretrained: "w.pth" }).pretrained,
    "w.pth",
  );
});

Deno.test("a run's default name comes from its config", () => {
  assert.equal(runConfigFromArgs({}).name, "adashare-aff-default");
  assert.equal(runConfigFromArgs({ "no-aff": true, seed: "3" }).name, "adashare-default-seed3");
  assert.equal(runConfigFromArgs({ policy: "none" }).name, "baseline-aff-beauty");
  const custom = runConfigFromArgs({
    db: ["d=synthetic:count=10"],
    task: ["gender=d:gender"],
    policy: "none",
  });
  assert.equal(custom.name, "baseline-aff-gender");
  assert.equal(runConfigFromArgs({ name: "mine" }).name, "mine");
});

Deno.test("--no-flip and --crop center reach the config; both of --flip/--no-flip is refused", () => {
  assert.equal(runConfigFromArgs({}).flip, true);
  assert.equal(runConfigFromArgs({}).crop, "random");
  const c = runConfigFromArgs({ "no-flip": true, crop: "center" });
  assert.equal(c.flip, false);
  assert.equal(c.crop, "center");
  assert.throws(() => runConfigFromArgs({ flip: true, "no-flip": true }), /--flip and --no-flip/);
  assert.throws(() => runConfigFromArgs({ crop: "middle" }), /--crop: expected one of random/);
});

Deno.test("training batches: no flip and a centre crop give the same images every epoch", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-recipe-" });
  try {
    const source = `synthetic:dir=${join(dir, "faces")},count=8,size=40,seed=3,labels=beauty`;
    const { databases } = twoTasks(source, source);
    const data = await readSource(databases[0].source);
    const images = async (opts: { flip: boolean; crop: "random" | "center" }) => {
      const loader = new BatchLoader(data.records, {
        batchSize: 8,
        train: true,
        shuffle: false,
        size: 32,
        resize: 40,
        workers: 0,
        seed: 5,
        ...opts,
      });
      const epochs: Float32Array[] = [];
      for (const e of [0, 1]) for await (const b of loader.epoch(e)) epochs.push(b.images);
      loader.close();
      return epochs;
    };
    const fixed = await images({ flip: false, crop: "center" });
    assert.deepEqual(fixed[0], fixed[1], "same crop and no flip in both epochs");
    const random = await images({ flip: true, crop: "random" });
    assert.notDeepEqual(random[0], random[1], "random crops and flips differ between epochs");
    assert.notDeepEqual(random[0], fixed[0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
