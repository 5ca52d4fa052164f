/**
 * `--precision` as a user meets it (issue 21): `train --precision auto` resolves to bf16 on
 * a CPU with native bf16 (else fp32) and records it in metrics.json; the float32
 * checkpoint of a bf16 run evaluates and predicts in bf16 and in fp32; a precision the CPU
 * cannot compute in fails in one line; `bench --precision bf16` runs its sections in bf16.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { autoPrecision } from "../../src/backend/load.ts";
import { runTask } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-precision-" });
const lastLine = (s: string) => s.trimEnd().split("\n").at(-1)!;
const people = `synthetic:dir=${root}/people,count=60,size=36,seed=6,labels=gender`;
const tiny = [
  ...["--db", `people=${people}`, "--task", "gender=people:gender:1", "--policy", "none"],
  ...["--widths", "4,4,8,8", "--image-size", "32", "--batch", "8", "--workers", "0"],
  ...["--epochs", "1"],
];
/** What "auto" is on this machine's CPU backend: bf16 where it has native bf16. */
const auto = autoPrecision(await loadBackend("cpu"));

Deno.test("train --precision auto records the precision it resolved to; eval and predict read the checkpoint in bf16 and fp32", async () => {
  const out = join(root, "run");
  const r = await runTask("train", [...tiny, "--out", out, "--precision", "auto", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  assert.equal(metrics.device.precision, auto);
  assert.equal(metrics.device.backend, "cpu");
  const checkpoint = join(out, "checkpoint.safetensors");
  for (const precision of ["bf16", "fp32"]) {
    if (precision === "bf16" && auto !== "bf16") continue; // no native bf16 here
    const e = await runTask("eval", [
      ...["--checkpoint", checkpoint, "--device", "cpu", "--precision", precision, "--json"],
      people,
    ]);
    assert.equal(e.code, 0, e.stderr);
    const m = JSON.parse(lastLine(e.stdout));
    assert.ok(m.tasks.gender.count > 0);
    // Evaluated in the precision it was trained in, the test split scores as in training.
    if (precision === auto) {
      assert.deepEqual(m.tasks.gender.confusion, metrics.tasks.gender.test.confusion);
    }
    const image = [...Deno.readDirSync(join(root, "people", "Images"))].map((x) => x.name)
      .sort()[0];
    const p = await runTask("predict", [
      ...["--checkpoint", checkpoint, "--device", "cpu", "--precision", precision, "--json"],
      join(root, "people", "Images", image),
    ]);
    assert.equal(p.code, 0, p.stderr);
    const probs = JSON.parse(lastLine(p.stdout))[0].tasks.gender.probabilities as number[];
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  }
});

Deno.test("--precision tf32 on the CPU fails in one line naming the precision", async () => {
  const r = await runTask("train", [
    ...tiny,
    "--out",
    join(root, "tf32"),
    "--device",
    "cpu",
    "--precision",
    "tf32",
  ]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /tf32/);
});

Deno.test({
  name: "bench --precision bf16 runs the conv section in bf16",
  ignore: auto !== "bf16",
}, async () => {
  const r = await runTask("bench", ["--only", "conv", "--reps", "1", "--precision", "bf16"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /conv 3x3 64->64 on 32x64x56x56 \(cpu: oneDNN [^,]*, bf16, /);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
