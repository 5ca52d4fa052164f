/**
 * The Table 11 backbones through the command-line tools: `predict --arch --weights` on a
 * torchvision-keyed weights file (class count read from it), `train --arch` as a baseline
 * and with AdaShare on a residual arch, the refusals (AdaShare on a plain arch, AFF off
 * ResNet, unknown names), and `compare --table 11` printing a complete table.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imagescript";
import { loadBackend } from "../../src/backend/load.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { classifierNetwork } from "../../src/models/classifier.ts";
import { importTorchvisionWeights, torchvisionKeys } from "../../src/models/torchvision_import.ts";
import { predictImages } from "../../src/train/predict.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { formulaTensor } from "../models/_formula_weights.ts";
import { runTask } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-cli-arch-" });
const lastLine = (s: string) => s.trimEnd().split("\n").at(-1)!;
const faces = `synthetic:dir=${root}/faces,count=48,size=36,seed=5,labels=beauty`;
/** A short run on tiny images: every flag that keeps a CLI test fast. */
const tiny = ["--image-size", "32", "--resize", "32", "--batch", "8", "--workers", "0"];

/** A 40×40 PNG of smooth colours. */
async function writeImage(path: string): Promise<void> {
  const img = new Image(40, 40);
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 40; x++) img.bitmap.set([x * 6, y * 6, (x + y) * 3, 255], (y * 40 + x) * 4);
  }
  await Deno.writeFile(path, await img.encode(0));
}

Deno.test("predict --arch --weights runs a torchvision classifier with the file's class count", async () => {
  const arch = "shufflenet_v2_x0_5";
  const backend = await loadBackend("cpu");
  setDefaultBackend(backend);
  // torchvision's keys and shapes for 7 classes, with formula values (a file torchvision
  // would load: the fixture test checks these keys against torchvision's own).
  const probe = classifierNetwork(arch, { classes: 7, backend });
  const state = probe.stateDict();
  const tensors = new Map(
    [...torchvisionKeys(probe, true)].map((
      [k, src],
    ) => [src, formulaTensor(src, state.get(k)!.shape)]),
  );
  const weights = join(root, `${arch}.safetensors`);
  await writeSafetensors(weights, tensors);
  const image = join(root, "image.png");
  await writeImage(image);
  importTorchvisionWeights(probe, tensors, { source: weights, bare: true });
  const want = await predictImages(probe, [image], { size: 40 });
  probe.dispose();

  const r = await runTask("predict", [
    "--arch",
    arch,
    "--weights",
    weights,
    "--image-size",
    "40",
    "--json",
    image,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const got = JSON.parse(lastLine(r.stdout));
  assert.equal(got.length, 1);
  assert.equal(got[0].image, image);
  const out = got[0].tasks.output;
  assert.equal(out.probabilities.length, 7, "classes read from the weights");
  assert.ok(Math.abs(out.probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);
  assert.equal(out.label, want[0].tasks.output.label);
  out.probabilities.forEach((p: number, i: number) =>
    assert.ok(Math.abs(p - want[0].tasks.output.probabilities[i]) < 1e-6, `class ${i}`)
  );

  // The wrong architecture for the file names a foreign tensor.
  const wrong = await runTask("predict", ["--arch", "mobilenet_v2", "--weights", weights, image]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /Cannot (import|predict).*mobilenet_v2/);
  const noArch = await runTask("predict", ["--weights", weights, image]);
  assert.match(noArch.stderr, /--weights needs --arch NAME/);
  const unknown = await runTask("predict", ["--arch", "resnet19", "--weights", weights, image]);
  assert.match(unknown.stderr, /Unknown architecture "resnet19": expected one of resnet18,/);
});

Deno.test("train --arch: a baseline, AdaShare on a residual arch, and the refusals", async () => {
  const out = join(root, "mbv3");
  const r = await runTask("train", [
    "--arch",
    "mobilenet_v3_small",
    "--policy",
    "none",
    "--db",
    `f=${faces}`,
    "--task",
    "beauty=f:beauty",
    "--epochs",
    "2",
    ...tiny,
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
  assert.equal(metrics.arch, "mobilenet_v3_small");
  assert.equal(metrics.aff, false, "AFF is off by default off ResNet");
  assert.ok(metrics.model.params > 1e6 && metrics.model.params < 2e6, `${metrics.model.params}`);
  assert.ok(metrics.model.gflops > 0 && metrics.trainImagesPerSecond > 0);
  // The checkpoint rebuilds the same arch; --arch must agree with it.
  const checkpoint = join(out, "checkpoint.safetensors");
  const image = join(root, "face.png");
  await writeImage(image);
  const p = await runTask("predict", ["--checkpoint", checkpoint, "--json", image]);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(JSON.parse(lastLine(p.stdout))[0].tasks.beauty.probabilities.length, 5);
  const mismatch = await runTask("predict", [
    "--checkpoint",
    checkpoint,
    "--arch",
    "resnet18",
    image,
  ]);
  assert.match(mismatch.stderr, /is a mobilenet_v3_small network, --arch says resnet18/);
  const evalArch = await runTask("eval", [
    "--checkpoint",
    checkpoint,
    "--arch",
    "resnet34",
    `f=${faces}`,
  ]);
  assert.notEqual(evalArch.code, 0);
  assert.match(
    evalArch.stderr,
    /Cannot evaluate: .* is a mobilenet_v3_small network, --arch says resnet34/,
  );
  const evalOk = await runTask("eval", [
    "--checkpoint",
    checkpoint,
    "--arch",
    "mobilenet_v3_small",
    `f=${faces}`,
  ]);
  assert.equal(evalOk.code, 0, evalOk.stderr);

  // AdaShare on MobileNetV2: one gate per inverted residual with a skip path.
  const ada = join(root, "mbv2-ada");
  const a = await runTask("train", [
    "--arch",
    "mobilenet_v2",
    "--db",
    `f=${faces}`,
    "--task",
    "beauty=f:beauty",
    "--warmup-epochs",
    "1",
    "--policy-epochs",
    "1",
    "--retrain-epochs",
    "1",
    ...tiny,
    "--out",
    ada,
  ]);
  assert.equal(a.code, 0, a.stderr);
  const am = JSON.parse(await Deno.readTextFile(join(ada, "metrics.json")));
  assert.equal(am.gates.length, 10, "MobileNetV2 has 10 inverted residuals with a skip path");
  assert.ok(am.gates.every((g: string) => /^features\.\d+$/.test(g)), am.gates.join(","));
  assert.equal(am.policy.beauty.length, am.gates.length);
  // One policy epoch opens only the last gate (curriculum): the nine blocks whose logits
  // never trained keep executing in the final policy instead of being drawn at 50 %.
  assert.deepEqual(am.policy.beauty.slice(0, 9), [1, 1, 1, 1, 1, 1, 1, 1, 1]);

  const plain = await runTask("train", [
    "--arch",
    "googlenet",
    "--db",
    `f=${faces}`,
    "--task",
    "beauty=f:beauty",
    ...tiny,
  ]);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /AdaShare gates residual blocks, and "googlenet" has none/);
  const aff = await runTask("train", [
    "--arch",
    "mobilenet_v2",
    "--aff",
    "--policy",
    "none",
    "--db",
    `f=${faces}`,
    "--task",
    "beauty=f:beauty",
  ]);
  assert.match(aff.stderr, /AFF replaces the addition at a ResNet block's skip connection/);
});

Deno.test("compare --table 11 prints every architecture and the method, with figures", async () => {
  const dir = join(root, "table11");
  const r = await runTask("compare", [
    "--table",
    "11",
    "--archs",
    "mobilenet_v3_small,shufflenet_v2_x0_5",
    "--db",
    `f=${faces}`,
    "--task",
    "beauty=f:beauty",
    "--epochs",
    "1",
    "--warmup-epochs",
    "1",
    "--policy-epochs",
    "1",
    "--retrain-epochs",
    "1",
    "--widths",
    "8,8,16,16",
    ...tiny,
    "--dir",
    dir,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| Model +\| +ACC \| +F1 \| Params \(M\) \| GFLOPs \| Train img\/s \|/);
  const rows = JSON.parse(lastLine(r.stdout));
  assert.deepEqual(rows.map((x: { model: string }) => x.model), [
    "mobilenet_v3_small",
    "shufflenet_v2_x0_5",
    "Ours (AdaShare + DAB + AFF, ResNet18)",
  ]);
  for (const row of rows) {
    for (const k of ["accuracy", "f1_weighted", "params_m", "gflops", "train_images_per_second"]) {
      assert.ok(Number.isFinite(row[k]), `${row.model}: ${k} = ${row[k]}`);
    }
  }
  const md = await Deno.readTextFile(join(dir, "table11.md"));
  assert.ok(!md.includes("—"), "no missing figure in the table");
});
