/**
 * Resume in bf16 (issue 21): a run of the method trained with the CPU backend computing in
 * bf16, stopped inside and at the end of every kind of epoch and resumed each time (in
 * bf16), ends with the numbers of an uninterrupted bf16 run — bf16 math is as repeatable as
 * fp32 (oneDNN's bf16 kernels are deterministic for a fixed thread count) and nothing of it
 * lives outside the float32 checkpoint. The checkpoints it writes are float32 and record
 * the precision in the run result. Like tests/reliability/resume_test.ts, smaller.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { parseSafetensors } from "../../src/io/safetensors.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunResult } from "../../src/train/result.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { type ProgressEvent, train } from "../../src/train/trainer.ts";
import { resumeTestRun, resumeTestSources, trainStoppingAt } from "../_run_helpers.ts";

const backend = await loadBackend("cpu", { math: { precision: "bf16" } });
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-bf16-resume-" });
const data = await resumeTestSources(root, 40);

/** The method on both tasks: warm-up 1, policy 1 (weights + logits), re-train 1. */
function config(name: string): RunConfig {
  return resumeTestRun(name, join(root, name), data, {
    warmup: 1,
    policy: 1,
    retrain: 1,
    baseline: 1,
  });
}

function sameNumbers(got: RunResult, want: RunResult, where: string): void {
  for (const task of ["beauty", "gender"]) {
    assert.deepEqual(got.tasks[task].test, want.tasks[task].test, `${where}: test of ${task}`);
    assert.equal(got.tasks[task].train.accuracy, want.tasks[task].train.accuracy, where);
  }
  assert.deepEqual(got.policy, want.policy, `${where}: policy`);
  assert.deepEqual(got.policyProbabilities, want.policyProbabilities, `${where}: p(execute)`);
  assert.deepEqual(got.history.map((h) => h.loss), want.history.map((h) => h.loss), where);
}

Deno.test("a bf16 run stopped inside and after every kind of epoch resumes to the numbers of an uninterrupted bf16 run", async () => {
  const progress: ProgressEvent[] = [];
  const reference = await train(config("reference"), {
    backend,
    onProgress: (e) => progress.push(e),
  });
  assert.equal(reference.device?.precision, "bf16");
  // The first step of each epoch that has more (inside it) and the step that ends it.
  const stops: [number, string][] = [];
  progress.forEach((e, i) => {
    if (i + 1 === progress.length) return; // the run's last step: nothing left to resume
    if (e.step === e.steps) stops.push([i + 1, `end of ${e.kind} ${e.epoch}`]);
    else if (e.step === 1) stops.push([i + 1, `inside ${e.kind} ${e.epoch}`]);
  });
  for (const kind of ["warmup", "policy-weights", "policy-logits", "retrain"]) {
    assert.ok(stops.some(([, w]) => w.includes(kind)), `a stop in ${kind}`);
  }
  const c = config("stopped");
  await trainStoppingAt(c, backend, stops.map(([at]) => at));
  const resumed = await train(c, { backend, resume: true });
  sameNumbers(resumed, reference, "resumed at every stop");
  assert.equal(resumed.device?.precision, "bf16");

  // The checkpoints of a bf16 run hold float32 tensors, like any other run's.
  for (const name of ["checkpoint.safetensors", "last.safetensors"]) {
    const file = join(c.out, name);
    const header = parseSafetensors(await Deno.readFile(file), { source: file });
    assert.ok(header.tensors.size > 0, file);
    for (const [key, t] of header.tensors) {
      assert.ok(t.data instanceof Float32Array, `${name}: ${key} is not float32`);
    }
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
