/**
 * Score and dist tasks through the command-line tools as a user runs them: a tiny `train
 * --json` with a score and a dist task (their LABELs left empty: the kind's), whose PC, MAE
 * and RMSE are recomputed here from `predict --json` and the images' mean scores; `eval`
 * on its checkpoint; `export` naming the dist head's histogram; `serve` refusing the score
 * head before it opens a device.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { recordScore } from "../../src/data/mean_score.ts";
import { runTask } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-cli-score-" });
const lastLine = (s: string) => s.trimEnd().split("\n").at(-1)!;
const faces = `synthetic:dir=${root}/faces,count=60,size=36,seed=5`;
const out = join(root, "run");
const checkpoint = join(out, "checkpoint.safetensors");

/** PC, MAE and RMSE of predictions against targets, written out from their definitions. */
function figures(pred: number[], target: number[]): { pc: number; mae: number; rmse: number } {
  const n = pred.length;
  const mp = pred.reduce((a, x) => a + x, 0) / n, mt = target.reduce((a, x) => a + x, 0) / n;
  let sxy = 0, sxx = 0, syy = 0, abs = 0, sq = 0;
  for (let i = 0; i < n; i++) {
    const [dx, dy, e] = [pred[i] - mp, target[i] - mt, pred[i] - target[i]];
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
    abs += Math.abs(e);
    sq += e * e;
  }
  return { pc: sxy / Math.sqrt(sxx * syy), mae: abs / n, rmse: Math.sqrt(sq / n) };
}

function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want)), `${what}: ${got} vs ${want}`);
}

Deno.test("train --json with score and dist tasks: PC, MAE and RMSE match predict's outputs", async () => {
  // --resize 32 = --image-size: the evaluation's centre crop is then the image predict
  // resizes, so both see the same pixels. A fixed policy: re-training only (fast).
  const r = await runTask("train", [
    "--db",
    `s=${faces}`,
    "--task",
    "score=s::1:score",
    "--task",
    "dist=s:::dist",
    "--fixed-policy",
    "score=11111111,dist=11111111",
    "--retrain-epochs",
    "2",
    "--widths",
    "4,4,8,8",
    "--image-size",
    "32",
    "--resize",
    "32",
    "--batch",
    "8",
    "--workers",
    "0",
    "--score-loss",
    "l1",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| Task \| ACC .* \| PC \| MAE \| RMSE \| Training time \|/);
  const summary = JSON.parse(lastLine(r.stdout));
  const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  const splits = JSON.parse(await Deno.readTextFile(join(out, "splits.json")));
  for (const task of ["score", "dist"]) {
    const test = metrics.tasks[task].test;
    assert.equal(test.kind, task);
    for (const k of ["pc", "mae", "rmse"]) {
      assert.equal(summary.tasks[task].test[k], test[k], `--json ${task}.test.${k}`);
    }
  }
  // The test images, their mean scores (the data's own), and predict's scores for them.
  const dataset = await readSource(faces);
  const byPath = new Map(dataset.records.map((rec) => [rec.path, rec]));
  const images: string[] = splits.s.test.map((f: string) => join(splits.s.root, f));
  const targets = images.map((p) => recordScore(byPath.get(p)!)!);
  assert.ok(targets.every(Number.isFinite) && images.length > 5, `${images.length} images`);
  const p = await runTask("predict", ["--checkpoint", checkpoint, "--json", ...images]);
  assert.equal(p.code, 0, p.stderr);
  const preds = JSON.parse(lastLine(p.stdout));
  for (const task of ["score", "dist"]) {
    const scores: number[] = preds.map((x: { tasks: Record<string, { score: number }> }) =>
      x.tasks[task].score
    );
    const want = figures(scores, targets);
    const got = metrics.tasks[task].test;
    for (const k of ["pc", "mae", "rmse"] as const) near(got[k], want[k], `${task} ${k}`);
  }
  // eval on the same split gives the run's test figures.
  const e = await runTask("eval", ["--checkpoint", checkpoint, "--json", `s=${faces}`]);
  assert.equal(e.code, 0, e.stderr);
  const evaluated = JSON.parse(lastLine(e.stdout));
  for (const task of ["score", "dist"]) {
    for (const k of ["pc", "mae", "rmse"]) {
      near(evaluated.tasks[task][k], metrics.tasks[task].test[k], `eval ${task} ${k}`);
    }
  }
  // export names a dist head's output a histogram, not classes.
  const x = await runTask("export", [
    "--checkpoint",
    checkpoint,
    "--onnx",
    join(root, "dist.onnx"),
    "--task",
    "dist",
  ]);
  assert.equal(x.code, 0, x.stderr);
  assert.match(x.stdout, /outputs dist \(histogram of 5 bins, ratings 1–5\)$/m);
  // serve refuses the score head from the checkpoint alone: before --device is even read.
  const s = await runTask("serve", ["--checkpoint", checkpoint, "--device", "nosuch"]);
  assert.equal(s.code, 1);
  assert.match(
    s.stderr,
    /Cannot serve ".*checkpoint\.safetensors": task "score" is a score task, .*expected class or dist tasks/,
  );
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
