/**
 * The paper's experiments on tiny runs: the ratio sweep and the comparison produce
 * complete tables, and a second invocation reuses the finished runs instead of training.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { planComparison, planSweep, runAll } from "../../src/train/experiments.ts";
import { comparisonTable, sweepTable } from "../../src/report/tables.ts";
import { tinyRun, twoTasks } from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-exp-" });
const base = tinyRun("base", join(root, "base"), {
  ...twoTasks(
    `synthetic:dir=${root}/faces,count=50,size=36,seed=7,genders=F,labels=beauty`,
    `synthetic:dir=${root}/people,count=50,size=36,seed=8,labels=gender`,
  ),
  batch: 8,
  epochs: { warmup: 1, policy: 1, retrain: 1, baseline: 1 },
});

Deno.test("sweep-ratios trains every ratio × batch and fills Tables 9–10", async () => {
  const runs = planSweep(base, [[1, 0.7], [1, 0.5]], [8, 4], join(root, "sweep"));
  assert.equal(runs.length, 4);
  const done = await runAll(runs, { backend });
  const table = sweepTable(done);
  for (const row of ["| 1:0.7 | 8 |", "| 1:0.5 | 8 |", "| 1:0.7 | 4 |", "| 1:0.5 | 4 |"]) {
    assert.ok(table.includes(row), `missing row ${row}\n${table}`);
  }
  assert.match(table, /beauty ACC \| beauty F1 \| gender ACC \| gender F1/);
  assert.doesNotMatch(table, /—/, "no missing cell");
  assert.equal(done[1].result.lambdas.gender, 0.5);
  assert.equal(done[2].result.batch, 4);
  // A second invocation reuses the finished runs (no training: it returns at once).
  const how: string[] = [];
  await runAll(runs, { backend, onRun: (_i, _r, h) => how.push(h) });
  assert.deepEqual(how, ["reused", "reused", "reused", "reused"]);
});

Deno.test("a sweep reuses only its own runs; one killed before its first epoch starts again", async () => {
  // The finished sweep's folders hold runs of lr 1e-3: a sweep of another lr is refused.
  const other = planSweep({ ...base, lr: 0.5 }, [[1, 0.7]], [8], join(root, "sweep"));
  await assert.rejects(
    runAll(other, { backend }),
    /^Error: Cannot reuse run ".*ratio-1-0\.7-batch-8": it was trained with other options \(lr\) than this experiment plans\. Hint: choose another --dir, or move that run away$/,
  );
  // A run of this sweep killed before its first epoch ended: config.json and a log only.
  const [run] = planSweep(base, [[1, 0.3]], [8], join(root, "killed"));
  await Deno.mkdir(run.config.out, { recursive: true });
  await Deno.writeTextFile(join(run.config.out, "config.json"), JSON.stringify(run.config));
  await Deno.writeTextFile(join(run.config.out, "log.jsonl"), '{"kind":"step"}\n');
  const how: string[] = [];
  const [done] = await runAll([run], { backend, onRun: (_i, _r, h) => how.push(h) });
  assert.deepEqual(how, ["new"]);
  assert.equal(done.result.lambdas.gender, 0.3);
});

Deno.test("compare trains baselines ± AFF and the method ± AFF and fills Tables 3–8", async () => {
  const runs = planComparison(base, join(root, "compare"));
  assert.deepEqual(runs.map((r) => r.config.name), [
    "baseline-beauty",
    "baseline-gender",
    "baseline-aff-beauty",
    "baseline-aff-gender",
    "adashare",
    "adashare-aff",
  ]);
  const done = await runAll(runs, { backend });
  const table = comparisonTable(done);
  for (
    const label of [
      "ResNet18",
      "ResNet18 + AFF",
      "AdaShare + DAB (no AFF)",
      "Ours (AdaShare + DAB + AFF)",
    ]
  ) {
    assert.ok(table.includes(`| ${label} |`), `missing row ${label}\n${table}`);
  }
  assert.equal(done[0].result.method, "baseline");
  assert.deepEqual(Object.keys(done[0].result.tasks), ["beauty"]);
  assert.equal(done[5].result.aff, true);
  assert.equal(done[4].result.aff, false);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
