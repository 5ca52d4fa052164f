/** report.md text, the plots it links, and the atomic write of both into a run folder. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { classificationMetrics } from "../../src/train/metrics.ts";
import { renderReport, writeReport } from "../../src/report/report.ts";
import type { RunResult } from "../../src/train/result.ts";

const beauty = classificationMetrics([0, 1, 2, 2, 1], [0, 1, 2, 1, 1], ["1", "2", "3"]);
const gender = classificationMetrics([0, 1, 1, 0], [0, 1, 0, 0], ["F", "M"]);

const RESULT: RunResult = {
  name: "demo",
  out: "runs/demo",
  method: "adashare",
  aff: true,
  lambdas: { beauty: 1, gender: 0.6 },
  batch: 32,
  tasks: {
    beauty: { test: beauty, val: beauty, train: { accuracy: 0.9 }, gap: 0.9 - beauty.accuracy },
    gender: { test: gender, train: { accuracy: 0.8 }, gap: 0.8 - gender.accuracy },
  },
  policy: { beauty: [1, 1, 1, 0, 1, 0, 0, 1], gender: [1, 1, 0, 1, 1, 1, 0, 1] },
  stages: [
    { stage: "warmup", epochs: 2, seconds: 30 },
    { stage: "policy", epochs: 2, seconds: 50 },
    { stage: "retrain", epochs: 3, seconds: 45 },
  ],
  trainSeconds: 125,
  history: ["warmup", "warmup", "policy-weights", "policy-logits", "retrain"].map((stage, i) => ({
    stage,
    epoch: i + 1,
    loss: 1 / (i + 1),
    seconds: i,
    tasks: { beauty: { trainAccuracy: 0.5, valAccuracy: 0.4 }, gender: { valAccuracy: 0.7 } },
  })),
};

Deno.test("renderReport() writes the run table, the policy with sharing, and plot links", async () => {
  const { markdown, svgs } = await renderReport(RESULT);
  assert.deepEqual(Object.keys(svgs).sort(), [
    "accuracy.svg",
    "confusion-beauty.svg",
    "confusion-gender.svg",
    "loss.svg",
    "policy.svg",
  ]);
  for (const svg of Object.values(svgs)) {
    assert.ok(svg.startsWith("<svg") && svg.endsWith("</svg>"));
  }
  const lines = markdown.split("\n");
  const has = (line: string) => assert.ok(lines.includes(line), `missing line: ${line}`);
  has('# Run "demo"');
  has(
    "AdaShare multi-task ResNet18 with AFF · batch 32 · λ: beauty 1, gender 0.6 · training time 2m 05s",
  );
  has("| Task | ACC | F1 (weighted) | macro-F1 | Train ACC | Test ACC | Gap | Training time |");
  has("| beauty | 80.00 | 81.33 | 82.22 | 90.00 | 80.00 | 10.00 | 2m 05s |");
  has("| gender | 75.00 | 76.67 | 73.33 | 80.00 | 75.00 | 5.00 | 2m 05s |");
  has("| beauty | 80.00 | 81.33 | 82.22 |"); // validation: only the task that has it
  has("| total | 7 | 2m 05s | — |"); // a result from before validation was timed apart
  has("| beauty | ● | ● | ● | · | ● | · | · | ● | 5/8 |");
  has("- Shared by all tasks (beauty, gender): layer1.0, layer1.1, layer3.0, layer4.1");
  has("- beauty only: layer2.0");
  has("- gender only: layer2.1, layer3.1");
  has("- Skipped by every task: layer4.0");
  for (const file of Object.keys(svgs)) {
    assert.ok(markdown.includes(`](${file})`), `no link to ${file}`);
  }
  has("| true ↓ / predicted → | F | M |");
  has("| F | 2 | 1 |");
});

Deno.test("renderReport() shows the learnt p(execute), its path, the BN mode and validation time", async () => {
  const probs = { beauty: [0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.4, 0.55], gender: Array(8).fill(0.5) };
  const { markdown, svgs } = await renderReport({
    ...RESULT,
    bn: "per-task",
    policyProbabilities: probs,
    stages: RESULT.stages.map((s) => ({ ...s, validationSeconds: 5 })),
    validationSeconds: 15,
    history: RESULT.history.map((h) =>
      h.stage === "policy-logits" ? { ...h, policyProbabilities: probs } : h
    ),
  });
  const lines = markdown.split("\n");
  const has = (line: string) => assert.ok(lines.includes(line), `missing line: ${line}`);
  has(
    "AdaShare multi-task ResNet18 with AFF · batch 32 · λ: beauty 1, gender 0.6 · BN per-task · " +
      "training time 2m 05s (validation 15.0 s more)",
  );
  has("| warmup | 2 | 30.0 s | 5.0 s |");
  has("| total | 7 | 2m 05s | 15.0 s |");
  has(
    "| beauty | ● 0.90 | ● 0.80 | ● 0.70 | · 0.20 | ● 0.60 | · 0.30 | · 0.40 | ● 0.55 | 5/8 |",
  );
  assert.ok(markdown.includes("](policy-path.svg)"));
  assert.ok(svgs["policy-path.svg"].startsWith("<svg"));
  // The heat-map labels each cell with its decision and probability.
  assert.ok(svgs["policy.svg"].includes("execute 0.90"), "p(execute) in the heat-map");
  assert.ok(svgs["policy-path.svg"].includes("p(execute) over the policy epochs"));
});

Deno.test("renderReport() gives a score task's PC, MAE and RMSE in the validation table", async () => {
  const score = { ...beauty, kind: "score" as const, pc: 0.71234, mae: 0.3, rmse: 0.45 };
  const { markdown } = await renderReport({
    ...RESULT,
    tasks: {
      ...RESULT.tasks,
      score: { test: score, val: score, train: { accuracy: 0.9 }, gap: 0.1 },
    },
  });
  const lines = markdown.split("\n");
  const val = lines.indexOf("## Validation");
  assert.deepEqual(lines.slice(val + 2, val + 6), [
    "| Task | ACC | F1 (weighted) | macro-F1 | PC | MAE | RMSE |",
    "|---|--:|--:|--:|--:|--:|--:|",
    "| beauty | 80.00 | 81.33 | 82.22 | — | — | — |",
    "| score | 80.00 | 81.33 | 82.22 | 0.7123 | 0.3000 | 0.4500 |",
  ]);
});

Deno.test("renderReport() leaves out curves and policy a run does not have", async () => {
  const { markdown, svgs } = await renderReport({
    ...RESULT,
    method: "baseline",
    aff: false,
    tasks: { gender: RESULT.tasks.gender },
    policy: {},
    history: [],
    stages: [],
  });
  assert.deepEqual(Object.keys(svgs), ["confusion-gender.svg"]);
  assert.ok(markdown.includes("ResNet18 baseline without AFF"));
  assert.ok(!markdown.includes("## Policy") && !markdown.includes("## Curves"));
});

Deno.test("writeReport() writes report.md and every plot, with no temporary files left", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "runs", "demo"); // created on the way
    const written = await writeReport(dir, RESULT);
    assert.equal(written.at(-1), "report.md");
    const { markdown, svgs } = await renderReport(RESULT);
    assert.equal(await Deno.readTextFile(join(dir, "report.md")), markdown);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [...Object.keys(svgs), "report.md"].sort());
    assert.deepEqual([...written].sort(), names);
    const policy = await Deno.readTextFile(join(dir, "policy.svg"));
    assert.ok(policy.startsWith("<svg") && policy.includes("layer4.1"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
