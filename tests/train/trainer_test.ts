/**
 * End-to-end training on tiny synthetic data with a narrow network on the CPU backend:
 * the method learns both tasks, a resumed run equals an uninterrupted one, the NaN guard
 * stops a run with the task named, and configs that cannot work are refused up front.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { RunInterrupted, train } from "../../src/train/trainer.ts";
import type { RunResult } from "../../src/train/result.ts";
import { tinyRun, twoTasks } from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-train-" });
const beautyDb =
  `synthetic:dir=${root}/faces,count=400,size=40,seed=3,genders=F,style=1,labels=beauty,labelNoise=0`;
const genderDb = `synthetic:dir=${root}/people,count=400,size=40,seed=4,labels=gender,labelNoise=0`;

function tinyConfig(name: string, over: Partial<RunConfig> = {}): RunConfig {
  return tinyRun(name, join(root, "runs", name), {
    ...twoTasks(beautyDb, genderDb),
    widths: [8, 8, 16, 16],
    batch: 16,
    lr: 3e-3,
    epochs: { warmup: 3, policy: 3, retrain: 10, baseline: 4 },
    dropout: 0.1,
    ...over,
  });
}

let full: RunResult | null = null;

Deno.test("the full method trains both tasks above chance on held-out data", async () => {
  full = await train(tinyConfig("full"), { backend });
  const { beauty, gender } = full.tasks;
  // Chance: gender 50%; beauty at best the majority grade's share of the test split.
  const majority = Math.max(...beauty.test.confusion.map((row) => row.reduce((a, b) => a + b, 0))) /
    beauty.test.count;
  assert.ok(gender.test.accuracy > 0.7, `gender test accuracy ${gender.test.accuracy}`);
  assert.ok(
    beauty.test.accuracy > majority,
    `beauty test accuracy ${beauty.test.accuracy} vs majority ${majority}`,
  );
  const losses = full.history.filter((h) => h.stage === "retrain").map((h) => h.loss);
  assert.ok(losses.at(-1)! < losses[0], `re-training loss went ${losses[0]} → ${losses.at(-1)}`);
  assert.equal(full.policy.beauty.length, 8);
  assert.deepEqual(full.stages.map((s) => s.stage), ["warmup", "policy", "retrain"]);
  for (
    const f of [
      "checkpoint.safetensors",
      "last.safetensors",
      "metrics.json",
      "log.jsonl",
      "config.json",
    ]
  ) {
    await Deno.stat(join(full.out, f));
  }
});

Deno.test("a run interrupted mid-epoch and resumed ends with the same numbers", async () => {
  assert.ok(full, "needs the full run of the previous test");
  const config = tinyConfig("resumed");
  const controller = new AbortController();
  let steps = 0;
  await assert.rejects(
    train(config, {
      backend,
      signal: controller.signal,
      // Interrupt inside the policy stage (after warm-up), mid-epoch.
      onProgress: () => {
        if (++steps === 23) controller.abort();
      },
    }),
    RunInterrupted,
  );
  const resumed = await train(config, { backend, resume: true });
  for (const task of ["beauty", "gender"]) {
    assert.deepEqual(resumed.tasks[task].test, full!.tasks[task].test, `test metrics of ${task}`);
    assert.equal(resumed.tasks[task].train.accuracy, full!.tasks[task].train.accuracy);
  }
  assert.deepEqual(resumed.policy, full!.policy);
  assert.deepEqual(resumed.history.map((h) => h.loss), full!.history.map((h) => h.loss));
});

Deno.test("a NaN input stops the run naming the step and the image", async () => {
  const config = tinyConfig("nan", { epochs: { warmup: 1, policy: 0, retrain: 1, baseline: 1 } });
  await assert.rejects(
    train(config, {
      backend,
      transformBatch: (position, step, batch) => {
        if (position === 1 && step === 2 && batch.database === "people") batch.images[0] = NaN;
      },
    }),
    /Training stopped: non-finite input: Image 0 \(".*"\) of the batch of database "people" holds NaN at retrain epoch 1, step 3\. Last good checkpoint: none yet/,
  );
});

Deno.test("configs that cannot work are refused before any training", async () => {
  const refuse = async (over: Partial<RunConfig>, message: RegExp) => {
    await assert.rejects(train(tinyConfig("refused", over), { backend }), message);
  };
  await refuse(
    { tasks: [{ name: "beauty", database: "faces", label: "beauty", lambda: -1 }] },
    /λ of task "beauty" must be from 0 to 1000: current value is -1/,
  );
  await refuse(
    { tasks: [{ name: "beauty", database: "nowhere", label: "beauty", lambda: 1 }] },
    /task "beauty" uses unknown database "nowhere"/,
  );
  await refuse(
    {
      tasks: [
        { name: "beauty", database: "faces", label: "beauty", lambda: 1 },
        { name: "gender", database: "faces", label: "gender", lambda: 1 },
      ],
      databases: [{ name: "faces", source: beautyDb }],
    },
    /database "faces" .* has no "gender" labels for task "gender": its labels are "beauty"/,
  );
  await refuse(
    { batch: 500 },
    /training split of database "faces" has \d+ images, fewer than the batch of 500/,
  );
  await refuse({ method: "baseline" }, /the baseline trains a single task: 2 tasks given/);
});

Deno.test("two runs cannot write the same folder", async () => {
  const config = tinyConfig("locked");
  await Deno.mkdir(config.out, { recursive: true });
  // A live process (this one's parent: the test runner's own pid differs) holds the lock.
  const holder = new Deno.Command("sleep", { args: ["30"] }).spawn();
  await Deno.writeTextFile(join(config.out, ".lock"), `${holder.pid}\n`);
  try {
    await assert.rejects(train(config, { backend }), /process \d+ is writing it/);
  } finally {
    holder.kill();
    await holder.status;
  }
});

Deno.test({
  name: "cleanup of the temporary folder",
  fn: async () => {
    await Deno.remove(root, { recursive: true });
  },
});
