/**
 * Training-from-scratch initialisation of the torchvision backbones (`ArchFamily.init`, run by
 * `buildBackbone`): each family's named tensors against the rule of torchvision 0.14's init
 * loop (std within 5 % for tensors of ≥ 10k elements, bounds, zero biases), batch norms left
 * at 1/0, and the same seed giving the same weights.
 */
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { Rng } from "../../src/random/rng.ts";
import { DatasetBatchNorm } from "../../src/nn/batch_norm.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import type { Backbone } from "../../src/models/backbone.ts";
import { archTable, buildBackbone } from "../../src/models/archs/registry.ts";

const backend = new ReferenceBackend();

function build(arch: string, seed = 1): Backbone {
  return buildBackbone(arch, archTable(arch, undefined, "t"), {
    keys: ["shared"],
    rng: new Rng(seed),
    backend,
  });
}

function param(b: Backbone, key: string): Tensor {
  const t = new Map(b.namedParameters()).get(key);
  assert.ok(t, `no parameter "${key}" in ${b.arch}`);
  return t;
}

interface Stats {
  n: number;
  mean: number;
  std: number;
  maxAbs: number;
}

function stats(t: Tensor): Stats {
  const v = t.toArray();
  let s = 0, s2 = 0, m = 0;
  for (const x of v) {
    s += x;
    s2 += x * x;
    m = Math.max(m, Math.abs(x));
  }
  const mean = s / v.length;
  return { n: v.length, mean, std: Math.sqrt(s2 / v.length - mean * mean), maxAbs: m };
}

/** Zero-mean values with std within 5 % of `std` (≥ 10k samples: the sampling error is < 1 %). */
function assertStd(b: Backbone, key: string, std: number): Stats {
  const s = stats(param(b, key));
  assert.ok(s.n >= 10_000, `${key}: ${s.n} elements, too few for a 5 % tolerance`);
  assert.ok(Math.abs(s.std / std - 1) < 0.05, `${key}: std ${s.std}, expected ${std}`);
  assert.ok(Math.abs(s.mean) < 0.05 * std, `${key}: mean ${s.mean}`);
  return s;
}

function assertAll(b: Backbone, key: string, value: number): void {
  const v = param(b, key).toArray();
  assert.ok(v.every((x) => x === value), `${key}: expected every value to be ${value}`);
}

/** Every batch-norm copy is weight 1, bias 0 (as built; no init touches it). */
function assertBatchNorms(b: Backbone): void {
  let n = 0;
  for (const [name, m] of b.namedModules()) {
    if (!(m instanceof DatasetBatchNorm)) continue;
    for (const [k, t] of m.namedParameters(`${name}.`)) {
      const want = k.endsWith(".weight") ? 1 : 0;
      assert.ok(t.toArray().every((x) => x === want), `${k}: expected all ${want}`);
      n++;
    }
  }
  assert.ok(n > 0, `${b.arch}: no batch norm found`);
}

Deno.test("ConvNeXt: trunc_normal(std 0.02, bounds ±2) conv and Linear weights, zero biases", () => {
  const b = build("convnext_tiny");
  // torchvision passes no a/b: trunc_normal_'s defaults ±2 are absolute, 100 std here, so
  // the std is the full 0.02 (a ±2σ truncation would give 0.88 · 0.02) and values beyond 2σ occur.
  for (
    const key of [
      "features.1.0.block.3.weight", // Linear (384, 96)
      "features.1.0.block.5.weight", // Linear (96, 384)
      "features.5.1.block.0.weight", // depthwise 7×7 conv (384, 1, 7, 7)
      "features.6.1.weight", // downsampling conv (768, 384, 2, 2)
    ]
  ) {
    const s = assertStd(b, key, 0.02);
    assert.ok(s.maxAbs <= 2, key);
    assert.ok(s.maxAbs > 2 * 0.02, `${key}: values truncated at 2 std`);
  }
  for (
    const key of [
      "features.0.0.bias",
      "features.1.0.block.0.bias",
      "features.1.0.block.3.bias",
      "features.1.0.block.5.bias",
      "features.2.1.bias",
    ]
  ) assertAll(b, key, 0);
  assertAll(b, "features.1.0.layer_scale", Math.fround(1e-6));
  assertAll(b, "features.0.1.weight", 1); // LayerNorm2d keeps 1/0
  assertAll(b, "features.0.1.bias", 0);
  assert.equal(b.namedModules().some(([, m]) => m instanceof DatasetBatchNorm), false);
});

Deno.test("GoogLeNet: trunc_normal(0, 0.01, a −2, b 2) conv weights, BN 1/0", () => {
  const b = build("googlenet");
  for (
    const key of [
      "inception4a.branch2.1.conv.weight",
      "inception4e.branch2.1.conv.weight",
      "inception5b.branch1.conv.weight",
    ]
  ) {
    const s = assertStd(b, key, 0.01);
    assert.ok(s.maxAbs <= 2 && s.maxAbs > 0.02, key);
  }
  assertBatchNorms(b);
});

Deno.test("DenseNet: kaiming_normal (fan-in, ReLU gain) convs, BN 1/0", () => {
  const b = build("densenet121");
  assertStd(b, "features.denseblock2.denselayer1.conv1.weight", Math.sqrt(2 / 128));
  assertStd(b, "features.denseblock3.denselayer1.conv2.weight", Math.sqrt(2 / (128 * 9)));
  assertStd(b, "features.denseblock4.denselayer16.conv1.weight", Math.sqrt(2 / 992));
  assertBatchNorms(b);
});

Deno.test("ShuffleNetV2: PyTorch's default uniform(±1/√fan_in) conv weights", () => {
  const b = build("shufflenet_v2_x0_5");
  const bound = 1 / Math.sqrt(192);
  const s = assertStd(b, "conv5.0.weight", bound / Math.sqrt(3)); // (1024, 192, 1, 1)
  assert.ok(s.maxAbs <= bound && s.maxAbs > 0.99 * bound);
  assertBatchNorms(b);
});

Deno.test("MobileNetV3: Kaiming fan-out convs, zero conv biases, classifier.0 Normal(0, 0.01) with zero bias", () => {
  const b = build("mobilenet_v3_small");
  assertStd(b, "features.10.block.1.0.weight", Math.sqrt(2 / (576 * 25))); // depthwise 5×5
  assertStd(b, "features.12.0.weight", Math.sqrt(2 / 576));
  assertStd(b, "features.10.block.2.fc1.weight", Math.sqrt(2 / 144)); // SE conv
  assertAll(b, "features.10.block.2.fc1.bias", 0);
  assertAll(b, "features.10.block.2.fc2.bias", 0);
  assertStd(b, "classifier.0.weight", 0.01);
  assertAll(b, "classifier.0.bias", 0);
  assertBatchNorms(b);
});

Deno.test("MobileNetV2: Kaiming fan-out convs", () => {
  const b = build("mobilenet_v2");
  assertStd(b, "features.18.0.weight", Math.sqrt(2 / 1280)); // (1280, 320, 1, 1)
  assertBatchNorms(b);
});

Deno.test("RegNet: conv Normal(0, √(2/fan_out)), SE conv biases PyTorch default, BN 1/0", () => {
  const b = build("regnet_y_400mf");
  assertStd(b, "trunk_output.block4.block4-0.f.a.0.weight", Math.sqrt(2 / 440));
  assertStd(b, "trunk_output.block3.block3-1.f.b.0.weight", Math.sqrt(2 / (208 * 9))); // grouped
  const bias = param(b, "trunk_output.block4.block4-0.f.se.fc1.bias").toArray();
  const bound = 1 / Math.sqrt(440);
  assert.ok(bias.every((x) => Math.abs(x) <= bound) && bias.some((x) => x !== 0));
  assertBatchNorms(b);
});

Deno.test("EfficientNet: Kaiming fan-out convs, zero conv biases, no Linear in the trunk", () => {
  const b = build("efficientnet_b0");
  assertStd(b, "features.6.1.block.1.0.weight", Math.sqrt(2 / (1152 * 25))); // depthwise 5×5
  assertStd(b, "features.6.1.block.0.0.weight", Math.sqrt(2 / 1152));
  assertStd(b, "features.8.0.weight", Math.sqrt(2 / 1280));
  assertAll(b, "features.6.1.block.2.fc1.bias", 0);
  assertAll(b, "features.6.1.block.2.fc2.bias", 0);
  assert.deepEqual(b.namedParameters().filter(([, t]) => t.shape.length === 2), []);
  assertBatchNorms(b);
});

Deno.test("init is deterministic: the same seed gives the same weights, another seed others", () => {
  const a = build("mobilenet_v3_small", 7).stateDict();
  const same = build("mobilenet_v3_small", 7).stateDict();
  const other = build("mobilenet_v3_small", 8).stateDict();
  for (const [k, t] of a) assert.deepEqual(same.get(k)!.toArray(), t.toArray(), k);
  const key = "classifier.0.weight";
  assert.notDeepEqual(other.get(key)!.toArray(), a.get(key)!.toArray());
});
