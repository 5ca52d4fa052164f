/**
 * The run config's `arch`: older run folders read as ResNet18, fixed policies take one
 * bit per gated block of the arch, and the per-arch defaults (AFF off, torchvision's
 * dropout).
 */
import assert from "node:assert/strict";
import { runConfigFromArgs } from "../../tasks/_cli/run_args.ts";
import { readRunConfig } from "../../src/train/resume.ts";
import { validateRunConfig } from "../../src/train/run_config.ts";

Deno.test("a run folder whose config.json predates --arch reads as resnet18", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fbp-arch-old-" });
  const old: Record<string, unknown> = { ...runConfigFromArgs({}), out: dir };
  delete old.arch;
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(old));
  const c = await readRunConfig(dir);
  assert.equal(c.arch, "resnet18");
  validateRunConfig(c);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--fixed-policy takes one bit per gated block of the arch", () => {
  const ok = runConfigFromArgs({
    arch: "resnet34",
    "fixed-policy": "beauty=1111111111111111,gender=1111111100000000",
  });
  validateRunConfig(ok);
  assert.throws(
    () =>
      validateRunConfig(
        runConfigFromArgs({ arch: "resnet34", "fixed-policy": "beauty=11111111,gender=11111111" }),
      ),
    /the fixed policy of task "beauty" must be 16 values 0 or 1 \(one per resnet34 block/,
  );
  // Other trunks: any length here; the network checks it against its gates when built.
  validateRunConfig(
    runConfigFromArgs({ arch: "mobilenet_v2", "fixed-policy": "beauty=1111111111,gender=0" }),
  );
});

Deno.test("--arch defaults: AFF off and torchvision's dropout off ResNet; flags still win", () => {
  const m = runConfigFromArgs({ arch: "mobilenet_v3_small", policy: "none" });
  assert.equal(m.aff, false);
  assert.equal(m.dropout, 0.2);
  assert.equal(runConfigFromArgs({ arch: "efficientnet_b4", policy: "none" }).dropout, 0.4);
  assert.equal(runConfigFromArgs({ arch: "regnet_x_400mf", policy: "none" }).dropout, 0);
  assert.equal(runConfigFromArgs({ arch: "resnet50" }).dropout, 0.5, "the paper's head dropout");
  assert.equal(runConfigFromArgs({ arch: "densenet121", dropout: "0.3" }).dropout, 0.3);
  assert.equal(runConfigFromArgs({ arch: "resnet34" }).aff, true, "AFF stays on ResNets");
  assert.throws(() => runConfigFromArgs({ arch: "vgg16" }), /Unknown architecture "vgg16"/);
});
