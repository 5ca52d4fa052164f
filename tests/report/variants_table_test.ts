/** `deno task vary`'s table: its figures per variant, mean ± std, and the folder plan. */
import assert from "node:assert/strict";
import type { RunResult } from "../../src/train/result.ts";
import type { LabelledRun } from "../../src/report/tables.ts";
import { variantsCsv, variantsJson, variantsTable } from "../../src/report/variants_table.ts";
import { planVariants } from "../../src/train/experiments.ts";
import { presetConfig } from "../../src/train/presets.ts";

/** A run whose task "beauty" has the given test figures. */
function run(name: string, test: Record<string, number>, seconds: number): RunResult {
  return {
    name,
    out: `runs/${name}`,
    method: "adashare",
    aff: true,
    lambdas: { beauty: 1 },
    batch: 32,
    tasks: {
      beauty: {
        // Only the figures the table reads; class tasks would also carry a confusion matrix.
        test: test as unknown as RunResult["tasks"][string]["test"],
        train: { accuracy: 0.5 },
        gap: 0,
      },
    },
    policy: {},
    stages: [],
    trainSeconds: seconds,
    history: [],
  };
}

const runs: LabelledRun[] = [
  {
    label: "class",
    cell: "class",
    seed: 0,
    result: run("c0", { accuracy: 0.6, f1_macro: 0.4 }, 10),
  },
  {
    label: "class",
    cell: "class",
    seed: 1,
    result: run("c1", { accuracy: 0.7, f1_macro: 0.5 }, 20),
  },
  {
    label: "score",
    cell: "score",
    seed: 0,
    result: run("s0", { accuracy: 0.5, pc: 0.8, mae: 0.3, rmse: 0.4 }, 30),
  },
];

Deno.test("variantsTable() shows each variant's figures as mean ± std, — where it lacks one", () => {
  const table = variantsTable(runs);
  const lines = table.split("\n");
  assert.equal(
    lines[0],
    "| Variant | Runs | beauty ACC | beauty F1-macro | beauty PC | beauty MAE | beauty RMSE | Train time |",
  );
  // mean 65 %, sample std of 0.6 and 0.7 = 0.0707… → 7.07; time 15 ± 7.1 s.
  assert.equal(
    lines[2],
    "| class | 2 | 65.00 ± 7.07 | 45.00 ± 7.07 | — | — | — | 15.0 s ± 7.1 s |",
  );
  assert.equal(lines[3], "| score | 1 | 50.00 | — | 0.8000 | 0.3000 | 0.4000 | 30.0 s |");
  assert.match(table, /Mean ± sample standard deviation \(n − 1\)/);
});

Deno.test("variantsCsv() and variantsJson() carry unrounded means and stds", () => {
  const csv = variantsCsv(runs).trim().split("\n");
  assert.equal(csv[0].split(",")[2], "beauty_accuracy");
  const classRow = csv[1].split(",");
  assert.equal(classRow[0], "class");
  assert.ok(Math.abs(Number(classRow[2]) - 0.65) < 1e-12);
  assert.ok(Math.abs(Number(classRow[3]) - Math.sqrt(0.005)) < 1e-12);
  const json = JSON.parse(variantsJson(runs));
  assert.equal(json[1].variant, "score");
  assert.deepEqual(json[1].tasks.beauty.pc, { mean: 0.8 });
  assert.equal(json[0].runs.length, 2);
});

Deno.test("planVariants() gives each variant its folder and refuses two with one name", () => {
  const config = presetConfig("default");
  const planned = planVariants([
    { label: "balance=focal", config },
    { label: "balance=none", config },
  ], "runs/study");
  assert.deepEqual(planned.map((p) => p.config.out), [
    "runs/study/balance-focal",
    "runs/study/balance-none",
  ]);
  assert.throws(
    () => planVariants([{ label: "a b", config }, { label: "a/b", config }], "runs/x"),
    /Cannot plan variants "a b" and "a\/b": both would be run folder "a-b"/,
  );
});
