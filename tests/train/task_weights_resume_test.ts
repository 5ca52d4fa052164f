/**
 * Adaptive task weights end to end (CPU backend, tiny runs of the method: warm-up, two
 * policy rounds, re-training): each scheme trains, logs its weights per epoch, restarts at
 * re-training, records them in metrics.json and the report, and a run stopped inside and
 * between epochs of every kind and resumed ends with the numbers — weights included — of
 * one never stopped. A fixed-λ run's resume file has no task-weight entry (as before).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { parseSafetensors } from "../../src/io/safetensors.ts";
import { writeReport } from "../../src/report/report.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunResult } from "../../src/train/result.ts";
import type { RunConfig, TaskWeightScheme } from "../../src/train/run_config.ts";
import { type ProgressEvent, train } from "../../src/train/trainer.ts";
import { resumeTestRun, resumeTestSources, trainStoppingAt } from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-task-weights-" });
const data = await resumeTestSources(root, 60);

function config(name: string, scheme: TaskWeightScheme): RunConfig {
  return resumeTestRun(name, join(root, name), data, {
    warmup: 1,
    policy: 2,
    retrain: 3,
    baseline: 1,
  }, {
    taskWeights: scheme,
    taskWeightsLr: 0.05,
  });
}

/** The same numbers: metrics, losses, and the weights' path and end. */
function sameRun(got: RunResult, want: RunResult, where: string): void {
  for (const task of ["beauty", "gender"]) {
    assert.deepEqual(got.tasks[task].test, want.tasks[task].test, `${where}: test of ${task}`);
  }
  assert.deepEqual(got.history.map((h) => h.loss), want.history.map((h) => h.loss), where);
  assert.deepEqual(
    got.history.map((h) => h.taskWeights),
    want.history.map((h) => h.taskWeights),
    `${where}: the weights' path`,
  );
  assert.deepEqual(got.taskWeights, want.taskWeights, `${where}: final weights`);
  assert.deepEqual(got.policy, want.policy, `${where}: policy`);
}

for (const scheme of ["uncertainty", "gradnorm", "dwa"] as const) {
  Deno.test(`--task-weights ${scheme}: logged per epoch, restarted at re-training, resumed exactly`, async () => {
    const progress: ProgressEvent[] = [];
    const reference = await train(config(`${scheme}-reference`, scheme), {
      backend,
      onProgress: (e) => progress.push(e),
    });
    // Every epoch logs the weights its steps used; the scheme moved them.
    assert.ok(reference.history.every((h) => h.taskWeights), "every epoch has its weights");
    const start = reference.history[0].taskWeights!;
    const retrain = reference.history.filter((h) => h.stage === "retrain");
    const moved = reference.history.some((h) =>
      Math.abs(h.taskWeights!.beauty - start.beauty) > 1e-3
    );
    assert.ok(moved, `${scheme} never moved the weights from ${JSON.stringify(start)}`);
    if (scheme === "dwa") {
      // The start (2·λ/Σλ) for the first two weight epochs of the run and of re-training.
      for (const h of [reference.history[0], reference.history[1], retrain[0], retrain[1]]) {
        assert.deepEqual(h.taskWeights, start, `${h.stage} ${h.epoch}`);
      }
      assert.ok(Math.abs(start.beauty - 1.25) < 1e-12 && Math.abs(start.gender - 0.75) < 1e-12);
      assert.notDeepEqual(retrain[2].taskWeights, start, "the third re-training epoch adapts");
    }
    assert.equal(reference.taskWeights?.scheme, scheme);
    // The final weights keep the scheme's invariant: GradNorm and DWA sum to T = 2;
    // uncertainty's exp(−s) stay within the clamp on s (±5: λ 1 and 0.6 start inside it).
    const final = reference.taskWeights!.final;
    assert.deepEqual(Object.keys(final), ["beauty", "gender"]);
    if (scheme === "uncertainty") {
      for (const w of Object.values(final)) {
        assert.ok(w >= Math.exp(-5) * (1 - 1e-6) && w <= Math.exp(5) * (1 + 1e-6), `${w}`);
      }
    } else {
      assert.ok(Math.abs(final.beauty + final.gender - 2) < 1e-5, JSON.stringify(final));
    }
    // Stops: inside and at the end of the first epoch of every kind, resumed each time.
    const stops = new Set<number>();
    for (const kind of ["warmup", "policy-weights", "policy-logits", "retrain"]) {
      const inside = progress.findIndex((e) => e.kind === kind && e.step === 1 && e.steps > 1);
      const end = progress.findIndex((e) => e.kind === kind && e.step === e.steps);
      assert.ok(inside >= 0 && end >= 0, kind);
      stops.add(inside + 1).add(end + 1);
    }
    const c = config(`${scheme}-stopped`, scheme);
    await trainStoppingAt(c, backend, [...stops].sort((a, b) => a - b));
    const last = join(c.out, "last.safetensors");
    const saved = JSON.parse(
      parseSafetensors(await Deno.readFile(last), { source: last }).metadata.resume,
    );
    assert.equal(saved.taskWeights.scheme, scheme, "the resume file holds the scheme's state");
    sameRun(await train(c, { backend, resume: true }), reference, `${scheme} resumed`);
    if (scheme === "gradnorm") {
      const written = await writeReport(c.out, reference);
      assert.ok(written.includes("task-weights.svg"));
      const md = await Deno.readTextFile(join(c.out, "report.md"));
      assert.match(
        md,
        /task weights: gradnorm \(α 1\.5\), final beauty \d\.\d{3}, gender \d\.\d{3} · /,
      );
      assert.match(md, /!\[task weights\]\(task-weights\.svg\)/);
    }
  });
}

Deno.test("--task-weights fixed: no weights in the history or the resume file, λ as the final weights", async () => {
  const c = config("fixed", "fixed");
  const result = await train(c, { backend });
  assert.ok(result.history.every((h) => h.taskWeights === undefined));
  assert.deepEqual(result.taskWeights, { scheme: "fixed", final: { beauty: 1, gender: 0.6 } });
  const last = join(c.out, "last.safetensors");
  const saved = JSON.parse(
    parseSafetensors(await Deno.readFile(last), { source: last }).metadata.resume,
  );
  assert.equal("taskWeights" in saved, false);
  const written = await writeReport(c.out, result);
  assert.equal(written.includes("task-weights.svg"), false);
});
