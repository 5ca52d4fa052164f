/**
 * N tasks: beauty, gender and race from one SCUT-layout database train together through
 * AdaShare (a policy row per task), and the report, its plots, the sweep's plan (weight
 * vectors of three λ) and its tables handle three tasks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { renderReport } from "../../src/report/report.ts";
import { sweepCsv, sweepTable } from "../../src/report/tables.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { planSweep } from "../../src/train/experiments.ts";
import { train } from "../../src/train/trainer.ts";
import { tinyRun } from "../_run_helpers.ts";
import { parseRatios } from "../../tasks/_cli/sweep_args.ts";

const cpu = await loadBackend("cpu");
setDefaultBackend(cpu);
const root = await Deno.makeTempDir({ prefix: "fbp-three-" });
const source = `synthetic:dir=${root}/faces,count=120,size=40,seed=6`;
const TASKS = ["beauty", "gender", "race"];

const base = tinyRun("three", join(root, "runs", "three"), {
  databases: [{ name: "s", source }],
  tasks: TASKS.map((t, i) => ({ name: t, database: "s", label: t, lambda: [1, 0.6, 0.3][i] })),
  batch: 16,
  epochs: { warmup: 1, policy: 2, retrain: 1, baseline: 1 },
});

Deno.test("three tasks of one database train together, each with its own policy", async () => {
  const result = await train(base, { backend: cpu });
  assert.deepEqual(Object.keys(result.tasks), TASKS);
  assert.deepEqual(Object.keys(result.policy), TASKS);
  assert.deepEqual(Object.keys(result.policyProbabilities!), TASKS);
  for (const t of TASKS) {
    assert.equal(result.policy[t].length, 8);
    assert.ok(result.tasks[t].test.count > 0);
  }
  assert.equal(result.bn, "per-task"); // three tasks on one database: a BN copy per task
  // The policy epochs moved each task's probabilities, not only the first's.
  for (const t of TASKS) {
    assert.ok(
      result.policyProbabilities![t].some((p) => Math.abs(p - 0.5) > 1e-4),
      `p(execute) of ${t} left 0.5`,
    );
  }
  const { markdown, svgs } = await renderReport(result);
  for (const t of TASKS) {
    assert.match(markdown, new RegExp(`^\\| ${t} `, "m"), `run table row of ${t}`);
    assert.ok(svgs[`confusion-${t}.svg`], `confusion plot of ${t}`);
    assert.ok(svgs["policy.svg"].includes(t), `policy heat-map row of ${t}`);
  }
  assert.match(markdown, /λ: beauty 1, gender 0.6, race 0.3/);

  // The sweep over weight vectors of three λ: its plan and its tables.
  const runs = planSweep(base, [[1, 0.6, 0.3], [1, 1, 1]], [16], join(root, "sweep"));
  assert.deepEqual(runs.map((r) => r.config.name), [
    "ratio-1-0.6-0.3-batch-16",
    "ratio-1-1-1-batch-16",
  ]);
  assert.deepEqual(runs[1].config.tasks.map((t) => t.lambda), [1, 1, 1]);
  assert.throws(
    () => planSweep(base, [[1, 0.6]], [16], root),
    /weight vector 1:0.6 has 2 weights, expected one per task \(3: beauty, gender, race\)/,
  );
  const done = runs.map((r, i) => ({
    label: r.label,
    result: {
      ...result,
      lambdas: Object.fromEntries(r.config.tasks.map((t) => [t.name, t.lambda])),
    },
    seed: i,
  }));
  const table = sweepTable(done);
  assert.match(table, /^\| λ1:λ2:λ3 \| Batch \| beauty ACC \| beauty F1 \| gender ACC/m);
  assert.match(table, /^\| 1:0.6:0.3 \| 16 \|/m);
  assert.match(sweepCsv(done), /^label,ratio,batch,beauty_accuracy,.*race_f1_macro$/m);
});

Deno.test("parseRatios() reads vectors of three λ; planSweep() refuses multiples under gradnorm/dwa", () => {
  assert.deepEqual(parseRatios("1:0.6:0.3,1:1:1, 0.5 : 2 : 1e-1", 3), [
    [1, 0.6, 0.3],
    [1, 1, 1],
    [0.5, 2, 0.1],
  ]);
  const refusals: [string, RegExp][] = [
    [
      "1:0.6",
      /^Cannot parse --ratios: "1:0\.6" has 2 weights, expected λ1:λ2:λ3 \(one per task: the run has 3\)$/,
    ],
    ["1:0.6:x", /^Cannot parse --ratios: "1:0\.6:x" is not of the form λ1:λ2:λ3$/],
    ["1:1:1,1:1:1", /^Cannot parse --ratios: 1:1:1 is given twice$/],
    ["0:0:0", /each weight must be from 0 to 1000, and not all 0/],
    ["1:2000:1", /each weight must be from 0 to 1000/],
  ];
  for (const [text, message] of refusals) {
    assert.throws(() => parseRatios(text, 3), (e: Error) => {
      assert.match(e.message, message);
      return true;
    });
  }
  // GradNorm and DWA start from T·λ/Σλ: 1:0.5:0.25 and 4:2:1 would be one run twice.
  const multiples = [[1, 0.5, 0.25], [1, 1, 1], [4, 2, 1]];
  assert.equal(planSweep(base, multiples, [16], root).length, 3, "fixed λ: three runs");
  assert.equal(
    planSweep({ ...base, taskWeights: "uncertainty" }, multiples, [16], root).length,
    3,
    "uncertainty starts from −ln λ: not normalised",
  );
  for (const scheme of ["gradnorm", "dwa"] as const) {
    assert.throws(
      () => planSweep({ ...base, taskWeights: scheme }, multiples, [16], root),
      new RegExp(
        `^Error: Cannot plan the ratio sweep: with task weights ${scheme} λ only sets the ` +
          `start weights T·λ/Σλ, so 1:0\\.5:0\\.25 and 4:2:1 would train the same run: ` +
          `expected ratios that are not multiples of each other$`,
      ),
    );
  }
});
