/** The plots render well-formed SVG with the expected labels and one mark per data point. */
import assert from "node:assert/strict";
import { classificationMetrics } from "../../src/train/metrics.ts";
import {
  accuracyPlot,
  confusionPlot,
  lossPlot,
  policyPlot,
  sweepPlot,
} from "../../src/report/plots.ts";
import type { HistoryEntry, RunResult } from "../../src/train/result.ts";

/**
 * Checks that `svg` is one balanced XML element tree rooted at <svg> with no stray `<` or
 * unescaped `&` in text.
 */
function assertWellFormedSvg(svg: string): void {
  assert.ok(svg.startsWith("<svg"), `SVG starts with ${JSON.stringify(svg.slice(0, 20))}`);
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (const m of svg.matchAll(tag)) {
    const text = svg.slice(last, m.index);
    assert.ok(
      !/[<>]|&(?![a-z]+;|#\d+;|#x[\da-f]+;)/i.test(text),
      `bad text ${JSON.stringify(text)}`,
    );
    last = m.index + m[0].length;
    const [, closing, name, , selfClosing] = m;
    if (closing) assert.equal(stack.pop(), name, `closing </${name}> at ${m.index}`);
    else if (!selfClosing) stack.push(name);
    if (stack.length === 0) assert.equal(last, svg.length, "content after the root element");
  }
  assert.equal(last, svg.length, "unparsed content at the end");
  assert.deepEqual(stack, [], "unclosed elements");
}

/** Marks of one kind (Vega's aria-roledescription, e.g. "rect mark", "point", "bar"). */
function countMarks(svg: string, role: string): number {
  return svg.split(`aria-roledescription="${role}"`).length - 1;
}

/** The texts of all <text> elements. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

const STAGES = ["warmup", "warmup", "policy-weights", "policy-logits", "retrain", "retrain"];
const HISTORY: HistoryEntry[] = STAGES.map((stage, i) => ({
  stage,
  epoch: i + 1,
  loss: 2 - i * 0.2,
  seconds: i * 10,
  tasks: {
    beauty: { trainAccuracy: 0.3 + i * 0.05, valAccuracy: 0.3 + i * 0.04, loss: 1.4 - i * 0.1 },
    // No training accuracy in the logit epoch, no per-task loss: those points are left out.
    gender: { trainAccuracy: stage === "policy-logits" ? undefined : 0.6, valAccuracy: 0.55 },
  },
}));

Deno.test("lossPlot() draws the total and per-task losses with stage markers", async () => {
  const svg = await lossPlot(HISTORY);
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "point"), 6 * 2); // total + beauty per epoch
  assert.equal(countMarks(svg, "line mark"), 2);
  assert.equal(countMarks(svg, "rule mark"), 2); // phase starts: policy learning, re-training
  const t = texts(svg);
  for (const label of ["beauty", "warm-up", "policy learning", "re-training", "retrain"]) {
    assert.ok(t.includes(label), `missing label ${label}`);
  }
  assert.ok(!t.includes("gender"), "gender has no loss and must not be in the legend");
});

Deno.test("accuracyPlot() draws train and val accuracy per task", async () => {
  const svg = await accuracyPlot(HISTORY);
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "point"), 6 * 4 - 1);
  assert.equal(countMarks(svg, "line mark"), 4);
  const t = texts(svg);
  for (const label of ["beauty", "gender", "train", "val", "accuracy (%)"]) {
    assert.ok(t.includes(label), `missing label ${label}`);
  }
});

Deno.test("policyPlot() draws a tasks × 8 heat-map with block names", async () => {
  const svg = await policyPlot({
    beauty: [1, 1, 0, 1, 1, 0, 1, 1],
    gender: [1, 1, 1, 0, 1, 1, 0, 0],
  });
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "rect mark"), 2 * 8);
  const t = texts(svg);
  for (let i = 1; i <= 4; i++) {
    for (const j of [0, 1]) assert.ok(t.includes(`layer${i}.${j}`), `missing layer${i}.${j}`);
  }
  assert.ok(t.includes("beauty") && t.includes("gender"));
  assert.equal(t.filter((x) => x === "skip").length, 2 + 3 + 1); // cells + legend
});

Deno.test("confusionPlot() draws K × K cells with counts and class names", async () => {
  const m = classificationMetrics([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ["low", "mid", "high"]);
  const svg = await confusionPlot("beauty", m);
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "rect mark"), 9);
  assert.equal(countMarks(svg, "text mark"), 9);
  const t = texts(svg);
  assert.ok(t.includes("beauty: confusion matrix (n = 6)"));
  for (const c of ["low", "mid", "high"]) assert.ok(t.includes(c), `missing class ${c}`);
});

Deno.test("sweepPlot() draws one bar per run, task and metric", async () => {
  const base = classificationMetrics([0, 1], [0, 1], ["a", "b"]);
  const result = (l2: number): RunResult => ({
    name: `r${l2}`,
    out: `runs/r${l2}`,
    method: "adashare",
    aff: true,
    lambdas: { beauty: 1, gender: l2 },
    batch: 32,
    tasks: {
      beauty: { test: { ...base, accuracy: 0.6 + l2 / 10 }, train: { accuracy: 1 }, gap: 0 },
      gender: { test: base, train: { accuracy: 1 }, gap: 0 },
    },
    policy: {},
    stages: [],
    trainSeconds: 1,
    history: [],
  });
  const svg = await sweepPlot(
    [0.7, 0.6, 0.5].map((l2) => ({ label: `1:${l2}`, result: result(l2) })),
  );
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "bar"), 3 * 2 * 2);
  const t = texts(svg);
  for (const label of ["1:0.7", "1:0.6", "1:0.5", "ACC", "F1", "beauty", "gender", "67.0"]) {
    assert.ok(t.includes(label), `missing label ${label}`);
  }
});

Deno.test("policyPlot() escapes markup in names", async () => {
  const svg = await policyPlot({ 'a<b&"c"': [1, 0] });
  assertWellFormedSvg(svg);
  assert.equal(countMarks(svg, "rect mark"), 2);
});

Deno.test("lossPlot() renders an empty history without failing", async () => {
  assertWellFormedSvg(await lossPlot([]));
});
