/**
 * Experiments repeated over folds × seeds: planRepeats() plans the right runs and folders,
 * the tables show mean ± sample std per cell (a single run keeps its number) and keep
 * every run in the JSON, and runPlanned() runs several at once, reuses finished runs and
 * stops the others when one fails — with a fake executor, so nothing trains here.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RunResult, TaskMetrics } from "../../src/train/result.ts";
import { RUN_DEFAULTS, type RunConfig } from "../../src/train/run_config.ts";
import {
  ExperimentInterrupted,
  planComparison,
  type PlannedRun,
  planRepeats,
  planSweep,
  repeatName,
  runPlanned,
} from "../../src/train/experiments.ts";
import {
  cellMeans,
  comparisonCsv,
  comparisonJson,
  comparisonTable,
  type LabelledRun,
  meanStd,
  sweepCsv,
  sweepJson,
  sweepTable,
} from "../../src/report/tables.ts";

const base: RunConfig = {
  ...RUN_DEFAULTS,
  name: "base",
  out: "exp/base",
  databases: [
    { name: "scut", source: "scut:data/scut", split: "official", valFraction: 0.2 },
    { name: "faces", source: "csv:faces.csv" },
  ],
  tasks: [
    { name: "beauty", database: "faces", label: "beauty", lambda: 1 },
    { name: "gender", database: "scut", label: "gender", lambda: 0.6 },
  ],
  seed: 10,
};

Deno.test("planRepeats() plans folds × seeds per cell, fold k setting cvK where folds ship", () => {
  const runs = planSweep(base, [[1, 0.6], [1, 0.5]], [16], "exp");
  const planned = planRepeats(runs, {
    folds: [1, 3],
    foldSources: new Set(["scut:data/scut"]),
    seeds: [10, 11],
  });
  assert.equal(planned.length, 2 * 2 * 2);
  assert.deepEqual(
    planned.map((r) => [r.config.out, r.cell, r.fold, r.seed, r.config.seed]),
    [
      [join("exp", "ratio-1-0.6-batch-16", "fold1-seed10"), "ratio-1-0.6-batch-16", 1, 10, 10],
      [join("exp", "ratio-1-0.5-batch-16", "fold1-seed10"), "ratio-1-0.5-batch-16", 1, 10, 10],
      [join("exp", "ratio-1-0.6-batch-16", "fold1-seed11"), "ratio-1-0.6-batch-16", 1, 11, 11],
      [join("exp", "ratio-1-0.5-batch-16", "fold1-seed11"), "ratio-1-0.5-batch-16", 1, 11, 11],
      [join("exp", "ratio-1-0.6-batch-16", "fold3-seed10"), "ratio-1-0.6-batch-16", 3, 10, 10],
      [join("exp", "ratio-1-0.5-batch-16", "fold3-seed10"), "ratio-1-0.5-batch-16", 3, 10, 10],
      [join("exp", "ratio-1-0.6-batch-16", "fold3-seed11"), "ratio-1-0.6-batch-16", 3, 11, 11],
      [join("exp", "ratio-1-0.5-batch-16", "fold3-seed11"), "ratio-1-0.5-batch-16", 3, 11, 11],
    ],
  );
  const last = planned[7].config;
  assert.equal(last.name, "ratio-1-0.5-batch-16-fold3-seed11");
  assert.deepEqual(last.databases, [
    { name: "scut", source: "scut:data/scut", split: "cv3", valFraction: 0.2 },
    { name: "faces", source: "csv:faces.csv" },
  ]);
  assert.equal(last.tasks[1].lambda, 0.5);
  // Seeds alone: <run>/seed<s>, splits untouched.
  const seeds = planRepeats(runs.slice(0, 1), { seeds: [0, 1, 2] });
  assert.deepEqual(
    seeds.map((r) => r.config.out),
    [0, 1, 2].map((s) => join("exp", "ratio-1-0.6-batch-16", `seed${s}`)),
  );
  assert.equal(seeds[2].fold, undefined);
  assert.deepEqual(seeds[2].config.databases, base.databases);
  assert.throws(
    () => planRepeats(runs, { folds: [1], foldSources: new Set(), seeds: [0] }),
    /^Error: Cannot plan folds: no database of the experiment ships cross-validation folds \(scut:data\/scut, csv:faces\.csv\)$/,
  );
});

Deno.test("planRepeats() repeats a run without fold databases over the seeds only", () => {
  const compare = planComparison(base, "exp");
  const planned = planRepeats(compare, {
    folds: [1, 2],
    foldSources: new Set(["scut:data/scut"]),
    seeds: [0, 1],
  });
  const beauty = planned.filter((r) => r.cell === "baseline-beauty");
  assert.deepEqual(beauty.map((r) => [r.fold, r.config.out]), [
    [undefined, join("exp", "baseline-beauty", "seed0")],
    [undefined, join("exp", "baseline-beauty", "seed1")],
  ]);
  assert.deepEqual(beauty[0].config.databases, [{ name: "faces", source: "csv:faces.csv" }]);
  const gender = planned.filter((r) => r.cell === "baseline-gender");
  assert.deepEqual(gender.map((r) => repeatName(r.fold, r.seed!)), [
    "fold1-seed0",
    "fold1-seed1",
    "fold2-seed0",
    "fold2-seed1",
  ]);
  assert.equal(gender[3].config.databases[0].split, "cv2");
  // 2 baselines × 2 AFF settings + 2 methods; those on scut run 4 times, on faces twice.
  assert.equal(planned.length, 2 * 2 + 2 * 4 + 2 * 4);
});

function metrics(accuracy: number): TaskMetrics {
  return {
    accuracy,
    f1_weighted: accuracy / 2,
    f1_macro: accuracy / 4,
    confusion: [[1]],
    classes: ["a"],
    count: 1,
  };
}

/** A run of one task whose test accuracy is `acc` (train accuracy 0.9, `seconds` long). */
function result(name: string, acc: number, seconds: number, lambda = 1): RunResult {
  return {
    name,
    out: `exp/${name}`,
    method: "adashare",
    aff: true,
    lambdas: { beauty: lambda },
    batch: 16,
    tasks: { beauty: { test: metrics(acc), train: { accuracy: 0.9 }, gap: 0.9 - acc } },
    policy: {},
    stages: [],
    trainSeconds: seconds,
    history: [],
  };
}

/** Cell "a" over folds 1–2 × seeds 0–1 (accuracies 0.5, 0.6, 0.7, 0.8), cell "b" run once. */
const RUNS: LabelledRun[] = [
  ...[[1, 0, 0.5], [1, 1, 0.6], [2, 0, 0.7], [2, 1, 0.8]].map(([fold, seed, acc]) => ({
    label: "A",
    cell: "a",
    fold,
    seed,
    result: result(`a-fold${fold}-seed${seed}`, acc, 60 + 10 * seed, 1),
  })),
  { label: "B", cell: "b", fold: 1, seed: 0, result: result("b-fold1-seed0", 0.55, 30, 0.5) },
];

Deno.test("meanStd() is the mean and the sample standard deviation (n − 1)", () => {
  const s = meanStd([0.5, 0.6, 0.7, 0.8]);
  assert.ok(Math.abs(s.mean - 0.65) < 1e-12);
  assert.ok(Math.abs(s.std! - Math.sqrt(0.05 / 3)) < 1e-12);
  assert.equal(s.n, 4);
  assert.deepEqual(meanStd([0.3]), { mean: 0.3, n: 1 });
});

Deno.test("comparisonTable() shows mean ± std per cell, a single run as its number, and says so", () => {
  const std = (100 * Math.sqrt(0.05 / 3)).toFixed(2); // 12.91
  assert.equal(
    comparisonTable(RUNS),
    [
      "**beauty**",
      "",
      "| Method | ACC | F1 | Training time | Training ACC | Test ACC | Difference |",
      "|---|--:|--:|--:|--:|--:|--:|",
      `| A | 65.00 ± ${std} | 32.50 ± 6.45 | 1m 05s ± 5.8 s | 90.00 ± 0.00 | 65.00 ± ${std} | ` +
      `25.00 ± ${std} |`,
      "| B | 55.00 | 27.50 | 30.0 s | 90.00 | 55.00 | 35.00 |",
      "",
      "Mean ± sample standard deviation (n − 1) over 1–4 runs per row (folds 1, 2 × seeds 0, 1); " +
      "a row of one run shows its value.",
    ].join("\n"),
  );
  const csv = comparisonCsv(RUNS).split("\n");
  assert.equal(
    csv[0],
    "method,task,run,accuracy,f1_weighted,f1_macro,train_accuracy,test_accuracy,gap," +
      "train_seconds,runs,accuracy_std,f1_weighted_std,f1_macro_std,train_accuracy_std," +
      "test_accuracy_std,gap_std,train_seconds_std",
  );
  assert.match(csv[1], /^A,beauty,a,0\.65\d*,0\.325\d*,.*,65,4,0\.129\d+,/);
  assert.equal(csv[2], `B,beauty,b,0.55,0.275,0.1375,0.9,0.55,${0.9 - 0.55},30,1,,,,,,,`);
  const json = JSON.parse(comparisonJson(RUNS));
  assert.equal(json[0].n, 4);
  assert.ok(Math.abs(json[0].std.accuracy - Math.sqrt(0.05 / 3)) < 1e-12);
  assert.deepEqual(
    json[0].runs.map((r: { fold: number; seed: number; accuracy: number }) => [
      r.fold,
      r.seed,
      r.accuracy,
    ]),
    [[1, 0, 0.5], [1, 1, 0.6], [2, 0, 0.7], [2, 1, 0.8]],
  );
  assert.equal(json[0].runs[3].run, "a-fold2-seed1");
  assert.equal(json[1].n, 1);
  assert.equal(json[1].std, undefined);
});

Deno.test("sweepTable() bolds the best mean and the CSV and JSON carry std and every run", () => {
  const lines = sweepTable(RUNS).split("\n");
  assert.equal(lines[2], "| 1 | 16 | **65.00 ± 12.91** | **32.50 ± 6.45** |");
  assert.equal(lines[3], "| 0.5 | 16 | 55.00 | 27.50 |");
  assert.match(lines.at(-1)!, /^Mean ± sample standard deviation \(n − 1\)/);
  const csv = sweepCsv(RUNS).split("\n");
  assert.equal(
    csv[0],
    "label,ratio,batch,beauty_accuracy,beauty_f1_weighted,beauty_f1_macro,runs," +
      "beauty_accuracy_std,beauty_f1_weighted_std,beauty_f1_macro_std",
  );
  assert.equal(csv[2], "B,0.5,16,0.55,0.275,0.1375,1,,,");
  const json = JSON.parse(sweepJson(RUNS));
  assert.equal(json[0].runs.length, 4);
  assert.deepEqual(json[0].runs[2].tasks.beauty, {
    accuracy: 0.7,
    f1_weighted: 0.35,
    f1_macro: 0.175,
  });
  // One bar per row for the chart: the cell's means.
  const means = cellMeans(RUNS);
  assert.equal(means.length, 2);
  assert.ok(Math.abs(means[0].result.tasks.beauty.test.accuracy - 0.65) < 1e-12);
  // Runs without a cell stay one row each, without ± or footer.
  const plain = RUNS.map(({ label, result }) => ({ label, result }));
  assert.equal(sweepTable(plain).split("\n").length, 2 + 5);
  assert.doesNotMatch(comparisonTable(plain), /±/);
});

/** Planned runs in a temporary folder, none trained yet. */
function plan(dir: string, n: number): PlannedRun[] {
  return Array.from({ length: n }, (_, i) => ({
    label: `run ${i}`,
    config: { ...base, name: `r${i}`, out: join(dir, `r${i}`) },
  }));
}

Deno.test("runPlanned() runs `jobs` at once in plan order and reuses finished runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-repeats-" });
  try {
    const runs = plan(dir, 5);
    // Run 1 finished earlier: its folder holds its config and metrics.
    await Deno.mkdir(runs[1].config.out);
    await Deno.writeTextFile(
      join(runs[1].config.out, "config.json"),
      JSON.stringify(runs[1].config),
    );
    await Deno.writeTextFile(
      join(runs[1].config.out, "metrics.json"),
      JSON.stringify(result("r1", 0.4, 1)),
    );
    let running = 0, most = 0;
    const started: string[] = [];
    const done = await runPlanned(runs, async (run) => {
      started.push(run.config.name);
      most = Math.max(most, ++running);
      // Later runs finish first: results still come back in plan order.
      await new Promise((r) => setTimeout(r, 40 - 8 * Number(run.config.name.slice(1))));
      running--;
      return result(run.config.name, 0.5, 1);
    }, { jobs: 2 });
    assert.equal(most, 2);
    assert.deepEqual(started, ["r0", "r2", "r3", "r4"]);
    assert.deepEqual(done.map((d) => d.result.name), ["r0", "r1", "r2", "r3", "r4"]);
    assert.equal(done[1].result.tasks.beauty.test.accuracy, 0.4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runPlanned() stops the other runs when one fails and throws its error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-repeats-" });
  try {
    const stopped: string[] = [];
    const started: string[] = [];
    const failing = runPlanned(plan(dir, 4), (run, _start, signal) => {
      started.push(run.config.name);
      if (run.config.name === "r1") return Promise.reject(new Error("r1 broke"));
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          stopped.push(run.config.name);
          reject(new Error("stopped"));
        })
      );
    }, { jobs: 2 });
    await assert.rejects(failing, /^Error: r1 broke$/);
    assert.deepEqual(started, ["r0", "r1"], "no run starts after a failure");
    assert.deepEqual(stopped, ["r0"]);
    // A stop request interrupts the experiment, and nothing new starts.
    const controller = new AbortController();
    const interrupted = runPlanned(
      plan(dir, 3),
      (_run, _start, signal) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () => reject(new Error("killed")));
          controller.abort();
        }),
      { jobs: 1, signal: controller.signal },
    );
    await assert.rejects(interrupted, ExperimentInterrupted);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runPlanned() stops the other runs when onDone throws and throws its error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-repeats-" });
  try {
    const started: string[] = [];
    const stopped: string[] = [];
    /** r0 finishes at once; every other run waits until it is asked to stop. */
    const execute = (run: PlannedRun, _start: unknown, signal: AbortSignal) => {
      started.push(run.config.name);
      if (run.config.name === "r0") return Promise.resolve(result("r0", 0.5, 1));
      return new Promise<RunResult>((_, reject) =>
        signal.addEventListener("abort", () => {
          stopped.push(run.config.name);
          reject(new Error("stopped"));
        })
      );
    };
    const onDone = (i: number) => {
      if (i === 0) throw new Error("cannot print r0");
    };
    await assert.rejects(
      runPlanned(plan(dir, 4), execute, { jobs: 2, onDone }),
      /^Error: cannot print r0$/,
    );
    assert.deepEqual(started, ["r0", "r1"], "no run starts after onDone threw");
    assert.deepEqual(stopped, ["r1"]);
    // The same for a reused run: r1 finished earlier, and its onDone throws as r0 runs.
    const runs = plan(join(dir, "reused"), 3);
    await Deno.mkdir(runs[1].config.out, { recursive: true });
    await Deno.writeTextFile(
      join(runs[1].config.out, "config.json"),
      JSON.stringify(runs[1].config),
    );
    await Deno.writeTextFile(
      join(runs[1].config.out, "metrics.json"),
      JSON.stringify(result("r1", 0.4, 1)),
    );
    started.length = stopped.length = 0;
    const waits = (run: PlannedRun, start: unknown, signal: AbortSignal) =>
      execute(
        { ...run, config: { ...run.config, name: `${run.config.name}-waits` } },
        start,
        signal,
      );
    await assert.rejects(
      runPlanned(runs, waits, {
        jobs: 2,
        onDone: (i, _done, how) => {
          if (how === "reused") throw new Error(`cannot print r${i}`);
        },
      }),
      /^Error: cannot print r1$/,
    );
    assert.deepEqual(started, ["r0-waits"], "no run starts after a reused run's onDone threw");
    assert.deepEqual(stopped, ["r0-waits"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
