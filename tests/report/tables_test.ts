/** The paper-style tables render exact Markdown, CSV and JSON for small fixed runs. */
import assert from "node:assert/strict";
import type { RunResult, TaskMetrics } from "../../src/train/result.ts";
import {
  comparisonCsv,
  comparisonJson,
  comparisonTable,
  formatDuration,
  formatPercent,
  type LabelledRun,
  runTable,
  sweepCsv,
  sweepJson,
  sweepTable,
} from "../../src/report/tables.ts";

function metrics(accuracy: number, f1Weighted: number, f1Macro: number): TaskMetrics {
  return {
    accuracy,
    f1_weighted: f1Weighted,
    f1_macro: f1Macro,
    confusion: [[1, 0], [0, 1]],
    classes: ["a", "b"],
    count: 2,
  };
}

/** A run with the given tasks: [test accuracy, weighted F1, macro F1, train accuracy]. */
function run(
  name: string,
  tasks: Record<string, [number, number, number, number]>,
  opts: { lambdas?: Record<string, number>; batch?: number; seconds?: number } = {},
): RunResult {
  return {
    name,
    out: `runs/${name}`,
    method: Object.keys(tasks).length > 1 ? "adashare" : "baseline",
    aff: true,
    lambdas: opts.lambdas ?? Object.fromEntries(Object.keys(tasks).map((t) => [t, 1])),
    batch: opts.batch ?? 32,
    tasks: Object.fromEntries(
      Object.entries(tasks).map(([t, [acc, f1w, f1m, train]]) => [t, {
        test: metrics(acc, f1w, f1m),
        train: { accuracy: train },
        gap: train - acc,
      }]),
    ),
    policy: {},
    stages: [],
    trainSeconds: opts.seconds ?? 0,
    history: [],
  };
}

Deno.test("formatPercent() and formatDuration() follow the documented conventions", () => {
  assert.equal(formatPercent(0.632412), "63.24");
  assert.equal(formatPercent(1), "100.00");
  assert.equal(formatPercent(-0.0123), "-1.23");
  assert.equal(formatPercent(-0.00001), "0.00");
  assert.equal(formatPercent(undefined), "—");
  assert.equal(formatDuration(42.46), "42.5 s");
  assert.equal(formatDuration(59.96), "1m 00s");
  assert.equal(formatDuration(725), "12m 05s");
  assert.equal(formatDuration(3725), "1h 02m");
  assert.equal(formatDuration(3599.7), "1h 00m");
  assert.equal(formatDuration(NaN), "—");
});

Deno.test("runTable() renders one row per task", () => {
  const r = run("one", {
    beauty: [0.6324, 0.6101, 0.5555, 0.8],
    gender: [0.9, 0.8999, 0.8998, 0.95],
  }, {
    seconds: 3725,
  });
  assert.equal(
    runTable(r),
    [
      "| Task | ACC | F1 (weighted) | macro-F1 | Train ACC | Test ACC | Gap | Training time |",
      "|---|--:|--:|--:|--:|--:|--:|--:|",
      "| beauty | 63.24 | 61.01 | 55.55 | 80.00 | 63.24 | 16.76 | 1h 02m |",
      "| gender | 90.00 | 89.99 | 89.98 | 95.00 | 90.00 | 5.00 | 1h 02m |",
    ].join("\n"),
  );
});

const COMPARISON: LabelledRun[] = [
  {
    label: "ResNet18",
    result: run("baseline-beauty", { beauty: [0.6, 0.58, 0.5, 0.9] }, { seconds: 100 }),
  },
  {
    label: "ResNet18",
    result: run("baseline-gender", { gender: [0.85, 0.85, 0.84, 0.97] }, { seconds: 90 }),
  },
  {
    label: "Ours (AdaShare + AFF)",
    result: run("adashare-aff", {
      beauty: [0.64, 0.63, 0.55, 0.7],
      gender: [0.88, 0.88, 0.87, 0.9],
    }, {
      seconds: 725,
    }),
  },
];

Deno.test("comparisonTable() renders one captioned table per task, methods as rows", () => {
  assert.equal(
    comparisonTable(COMPARISON),
    [
      "**beauty**",
      "",
      "| Method | ACC | F1 | Training time | Training ACC | Test ACC | Difference |",
      "|---|--:|--:|--:|--:|--:|--:|",
      "| ResNet18 | 60.00 | 58.00 | 1m 40s | 90.00 | 60.00 | 30.00 |",
      "| Ours (AdaShare + AFF) | 64.00 | 63.00 | 12m 05s | 70.00 | 64.00 | 6.00 |",
      "",
      "**gender**",
      "",
      "| Method | ACC | F1 | Training time | Training ACC | Test ACC | Difference |",
      "|---|--:|--:|--:|--:|--:|--:|",
      "| ResNet18 | 85.00 | 85.00 | 1m 30s | 97.00 | 85.00 | 12.00 |",
      "| Ours (AdaShare + AFF) | 88.00 | 88.00 | 12m 05s | 90.00 | 88.00 | 2.00 |",
    ].join("\n"),
  );
});

Deno.test("comparisonCsv() and comparisonJson() carry unrounded fractions and seconds", () => {
  const lines = comparisonCsv(COMPARISON).split("\n");
  assert.equal(
    lines[0],
    "method,task,run,accuracy,f1_weighted,f1_macro,train_accuracy,test_accuracy,gap,train_seconds",
  );
  assert.equal(lines[1], `ResNet18,beauty,baseline-beauty,0.6,0.58,0.5,0.9,0.6,${0.9 - 0.6},100`);
  assert.equal(lines.length, 6); // header, 4 rows, trailing newline
  const json = JSON.parse(comparisonJson(COMPARISON));
  assert.equal(json.length, 4);
  assert.deepEqual(json[3], {
    method: "Ours (AdaShare + AFF)",
    task: "gender",
    run: "adashare-aff",
    accuracy: 0.88,
    f1_weighted: 0.88,
    f1_macro: 0.87,
    train_accuracy: 0.9,
    test_accuracy: 0.88,
    gap: 0.9 - 0.88,
    train_seconds: 725,
  });
});

const SWEEP: LabelledRun[] = [
  [1, 0.7, 0.61, 0.60, 0.88, 0.87],
  [1, 0.6, 0.6324, 0.61, 0.87, 0.87],
  [1, 0.5, 0.62, 0.62, 0.8801, 0.86],
].map(([l1, l2, bAcc, bF1, gAcc, gF1]) => ({
  label: `${l1}:${l2} (batch 32)`,
  result: run(`ratio-${l1}-${l2}`, { beauty: [bAcc, bF1, 0, 1], gender: [gAcc, gF1, 0, 1] }, {
    lambdas: { beauty: l1, gender: l2 },
  }),
}));

Deno.test("sweepTable() bolds the best value of each column, ties included", () => {
  assert.equal(
    sweepTable(SWEEP),
    [
      "| λ1:λ2 | Batch | beauty ACC | beauty F1 | gender ACC | gender F1 |",
      "|---|--:|--:|--:|--:|--:|",
      "| 1:0.7 | 32 | 61.00 | 60.00 | 88.00 | **87.00** |",
      "| 1:0.6 | 32 | **63.24** | 61.00 | 87.00 | **87.00** |",
      "| 1:0.5 | 32 | 62.00 | **62.00** | **88.01** | 86.00 |",
    ].join("\n"),
  );
});

Deno.test("sweepTable() shows a task a run lacks as a dash and never bolds it", () => {
  const runs = [...SWEEP.slice(0, 1), {
    label: "beauty only",
    result: run("single", { beauty: [0.5, 0.5, 0, 1] }, { lambdas: { beauty: 1 }, batch: 16 }),
  }];
  const lines = sweepTable(runs).split("\n");
  assert.equal(lines[3], "| 1:— | 16 | 50.00 | 50.00 | — | — |");
  assert.equal(lines[2], "| 1:0.7 | 32 | **61.00** | **60.00** | **88.00** | **87.00** |");
});

Deno.test("sweepCsv() and sweepJson() list every run with per-task columns", () => {
  const csv = sweepCsv(SWEEP).split("\n");
  assert.equal(
    csv[0],
    "label,ratio,batch,beauty_accuracy,beauty_f1_weighted,beauty_f1_macro,gender_accuracy," +
      "gender_f1_weighted,gender_f1_macro",
  );
  assert.equal(csv[2], "1:0.6 (batch 32),1:0.6,32,0.6324,0.61,0,0.87,0.87,0");
  const json = JSON.parse(sweepJson(SWEEP));
  assert.deepEqual(json[0], {
    label: "1:0.7 (batch 32)",
    ratio: "1:0.7",
    batch: 32,
    tasks: {
      beauty: { accuracy: 0.61, f1_weighted: 0.6, f1_macro: 0 },
      gender: { accuracy: 0.88, f1_weighted: 0.87, f1_macro: 0 },
    },
  });
});

/** `run()`'s result with task `t`'s test metrics made a score task's (PC, MAE, RMSE). */
function scored(
  r: RunResult,
  t: string,
  [pc, mae, rmse]: [number, number, number],
): RunResult {
  const test = { ...r.tasks[t].test, kind: "score" as const, pc, mae, rmse };
  return { ...r, tasks: { ...r.tasks, [t]: { ...r.tasks[t], test } } };
}

Deno.test("runTable() adds PC, MAE and RMSE columns when a task predicts a score", () => {
  const r = scored(
    run("s", { beauty: [0.6, 0.5, 0.4, 0.7], score: [0.5, 0.4, 0.3, 0.6] }, { seconds: 42 }),
    "score",
    [0.81234, 0.30006, 0.41],
  );
  assert.equal(
    runTable(r),
    [
      "| Task | ACC | F1 (weighted) | macro-F1 | Train ACC | Test ACC | Gap | PC | MAE | RMSE | Training time |",
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
      "| beauty | 60.00 | 50.00 | 40.00 | 70.00 | 60.00 | 10.00 | — | — | — | 42.0 s |",
      "| score | 50.00 | 40.00 | 30.00 | 60.00 | 50.00 | 10.00 | 0.8123 | 0.3001 | 0.4100 | 42.0 s |",
    ].join("\n"),
  );
});

/** The comparison with a score task: a baseline and the method each predict "score". */
const SCORED: LabelledRun[] = [
  {
    label: "ResNet18",
    result: scored(
      run("baseline-score", { score: [0.5, 0.4, 0.3, 0.6] }, { seconds: 10 }),
      "score",
      [0.8, 0.3, 0.4],
    ),
  },
  {
    label: "Ours",
    result: scored(
      run("adashare", { beauty: [0.6, 0.5, 0.4, 0.7], score: [0.55, 0.45, 0.35, 0.6] }, {
        seconds: 20,
      }),
      "score",
      [0.85, 0.25, 0.35],
    ),
  },
];

Deno.test("comparisonTable/Csv/Json() carry PC, MAE and RMSE for a score task only", () => {
  assert.equal(
    comparisonTable(SCORED),
    [
      "**score**",
      "",
      "| Method | ACC | F1 | Training time | Training ACC | Test ACC | Difference | PC | MAE | RMSE |",
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
      "| ResNet18 | 50.00 | 40.00 | 10.0 s | 60.00 | 50.00 | 10.00 | 0.8000 | 0.3000 | 0.4000 |",
      "| Ours | 55.00 | 45.00 | 20.0 s | 60.00 | 55.00 | 5.00 | 0.8500 | 0.2500 | 0.3500 |",
      "",
      "**beauty**",
      "",
      "| Method | ACC | F1 | Training time | Training ACC | Test ACC | Difference |",
      "|---|--:|--:|--:|--:|--:|--:|",
      "| Ours | 60.00 | 50.00 | 20.0 s | 70.00 | 60.00 | 10.00 |",
    ].join("\n"),
  );
  const csv = comparisonCsv(SCORED).split("\n");
  assert.equal(
    csv[0],
    "method,task,run,accuracy,f1_weighted,f1_macro,train_accuracy,test_accuracy,gap," +
      "train_seconds,pc,mae,rmse",
  );
  assert.equal(
    csv[1],
    `ResNet18,score,baseline-score,0.5,0.4,0.3,0.6,0.5,${0.6 - 0.5},10,0.8,0.3,0.4`,
  );
  assert.equal(csv[3], `Ours,beauty,adashare,0.6,0.5,0.4,0.7,0.6,${0.7 - 0.6},20,,,`);
  const json = JSON.parse(comparisonJson(SCORED));
  assert.deepEqual(
    json.map((r: { pc?: number; mae?: number; rmse?: number }) => [r.pc, r.mae, r.rmse]),
    [[0.8, 0.3, 0.4], [0.85, 0.25, 0.35], [undefined, undefined, undefined]],
  );
  assert.ok(!("pc" in json[2]), "a class task's row has no pc key");
  // A repeated cell: the score figures are averaged with their std, like the others.
  const repeated = comparisonJson([
    { ...SCORED[0], cell: "c", seed: 0 },
    {
      ...SCORED[0],
      cell: "c",
      seed: 1,
      result: scored(SCORED[0].result, "score", [0.6, 0.5, 0.6]),
    },
  ]);
  const row = JSON.parse(repeated)[0];
  assert.ok(Math.abs(row.pc - 0.7) < 1e-12 && Math.abs(row.mae - 0.4) < 1e-12);
  assert.ok(Math.abs(row.std.pc - Math.sqrt(0.02)) < 1e-12, `${row.std.pc}`);
  assert.deepEqual(row.runs.map((r: { pc: number }) => r.pc), [0.8, 0.6]);
});

Deno.test("sweepTable() shows a score task's PC (bold best), MAE and RMSE", () => {
  const runs: LabelledRun[] = [[1, 0.5, 0.8, 0.3, 0.4], [1, 1, 0.7, 0.2, 0.3]].map(
    ([l1, l2, pc, mae, rmse]) => ({
      label: `${l1}:${l2}`,
      result: scored(
        run(`r-${l2}`, { beauty: [0.6, 0.5, 0, 1], score: [0.5, 0.4, 0, 1] }, {
          lambdas: { beauty: l1, score: l2 },
        }),
        "score",
        [pc, mae, rmse],
      ),
    }),
  );
  assert.equal(
    sweepTable(runs),
    [
      "| λ1:λ2 | Batch | beauty ACC | beauty F1 | score ACC | score F1 | score PC | score MAE | score RMSE |",
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
      "| 1:0.5 | 32 | **60.00** | **50.00** | **50.00** | **40.00** | **0.8000** | 0.3000 | 0.4000 |",
      "| 1:1 | 32 | **60.00** | **50.00** | **50.00** | **40.00** | 0.7000 | 0.2000 | 0.3000 |",
    ].join("\n"),
  );
});
