/**
 * ConvNeXt, ShuffleNetV2, DenseNet and GoogLeNet beyond the torchvision fixtures: the named
 * variants' tables, which blocks AdaShare may gate, torchvision's state-dict keys of the
 * small fixture configurations, config validation, GoogLeNet's transform_input switch,
 * ConvNeXt's skipped block (identity), stochastic-depth schedule and gradients.
 */
import assert from "node:assert/strict";
import { backward } from "../../src/autograd/tape.ts";
import { add, mul, sum } from "../../src/ops/elementwise.ts";
import { Rng } from "../../src/random/rng.ts";
import { scope, tensor } from "../../src/tensor/tensor.ts";
import type { ArchFamily, Backbone, Pass } from "../../src/models/backbone.ts";
import { CNBlock, CONVNEXT, type ConvNeXtConfig } from "../../src/models/archs/convnext.ts";
import { SHUFFLENET_V2 } from "../../src/models/archs/shufflenet.ts";
import { DENSENET } from "../../src/models/archs/densenet.ts";
import { GOOGLENET } from "../../src/models/archs/googlenet.ts";
import { assertTorchvisionKeys, build, EVAL, maxAbsDiff, randomImages } from "./_arch_helpers.ts";

const FAMILIES = [CONVNEXT, SHUFFLENET_V2, DENSENET, GOOGLENET] as ArchFamily<unknown>[];

const SMALL_CONVNEXT: ConvNeXtConfig = {
  stages: [[16, 32, 1], [32, 64, 1], [64, 128, 2], [128, null, 1]],
  stochasticDepthProb: 0.1,
  layerScale: 1e-6,
};

Deno.test("named variants hold torchvision's tables", () => {
  const d = DENSENET.variants;
  assert.deepEqual(d.densenet161, {
    growthRate: 48,
    blockConfig: [6, 12, 36, 24],
    numInitFeatures: 96,
    bnSize: 4,
  });
  assert.deepEqual(d.densenet121.blockConfig, [6, 12, 24, 16]);
  assert.deepEqual(d.densenet169.blockConfig, [6, 12, 32, 32]);
  assert.deepEqual(d.densenet201.blockConfig, [6, 12, 48, 32]);
  const s = SHUFFLENET_V2.variants;
  assert.deepEqual(s.shufflenet_v2_x2_0.stagesOutChannels, [24, 244, 488, 976, 2048]);
  assert.deepEqual(s.shufflenet_v2_x0_5.stagesOutChannels, [24, 48, 96, 192, 1024]);
  assert.deepEqual(s.shufflenet_v2_x1_5.stagesRepeats, [4, 8, 4]);
  const c = CONVNEXT.variants;
  assert.deepEqual(c.convnext_base.stages.map((st) => st[0]), [128, 256, 512, 1024]);
  assert.deepEqual(c.convnext_base.stages.map((st) => st[2]), [3, 3, 27, 3]);
  assert.deepEqual(c.convnext_tiny.stages.map((st) => st[2]), [3, 3, 9, 3]);
  assert.deepEqual(c.convnext_large.stages.map((st) => st[1]), [384, 768, 1536, null]);
  assert.deepEqual(
    Object.values(c).map((v) => v.stochasticDepthProb),
    [0.1, 0.4, 0.5, 0.5],
  );
  assert.ok(Object.values(c).every((v) => v.layerScale === 1e-6));
  assert.deepEqual(GOOGLENET.variants, { googlenet: { transformInput: true } });
  for (const f of FAMILIES) {
    for (const [name, table] of Object.entries(f.variants)) {
      assert.deepEqual(f.parse(JSON.parse(JSON.stringify(table)), name), table, name);
    }
  }
});

Deno.test("only ConvNeXt's CNBlocks are gateable", () => {
  assert.equal(CONVNEXT.gateable, true);
  assert.equal(SHUFFLENET_V2.gateable, false);
  assert.equal(DENSENET.gateable, false);
  assert.equal(GOOGLENET.gateable, false);
  const cnx = build(CONVNEXT, "convnext_tiny", SMALL_CONVNEXT);
  assert.deepEqual(cnx.blocks.map((b) => [b.name, b.gateable]), [
    ["features.1.0", true],
    ["features.2", false],
    ["features.3.0", true],
    ["features.4", false],
    ["features.5.0", true],
    ["features.5.1", true],
    ["features.6", false],
    ["features.7.0", true],
  ]);
  assert.equal(cnx.classifier, "classifier.2");
  assert.equal(cnx.features, 128);
  cnx.dispose();
  const sh = build(SHUFFLENET_V2, "shufflenet_v2_x1_0", {
    stagesRepeats: [1, 2, 1],
    stagesOutChannels: [8, 16, 32, 64, 96],
  });
  assert.deepEqual(sh.blocks.map((b) => b.name), [
    "stage2.0",
    "stage3.0",
    "stage3.1",
    "stage4.0",
  ]);
  assert.ok(sh.blocks.every((b) => !b.gateable));
  assert.equal(sh.features, 96);
  sh.dispose();
  const dn = build(DENSENET, "densenet121", {
    growthRate: 8,
    blockConfig: [2, 2],
    numInitFeatures: 16,
    bnSize: 2,
  });
  assert.deepEqual(dn.blocks.map((b) => b.name), [
    "features.denseblock1.denselayer1",
    "features.denseblock1.denselayer2",
    "features.transition1",
    "features.denseblock2.denselayer1",
    "features.denseblock2.denselayer2",
  ]);
  assert.ok(dn.blocks.every((b) => !b.gateable));
  assert.equal(dn.features, (16 + 16) / 2 + 16);
  dn.dispose();
});

// The fixtures' key lists are torchvision's state dicts: every fbp key (less the BN copy's
// segment) is one of them, and each of them is fbp's, except the last Linear and aux heads.
for (
  const cas of [
    "convnext_small_custom",
    "convnext_lastdown_custom",
    "shufflenet_v2_custom",
    "densenet_custom",
  ]
) {
  Deno.test(`${cas}: torchvision's state-dict keys and shapes`, () =>
    assertTorchvisionKeys(cas, FAMILIES));
}

Deno.test("GoogLeNet: transform_input maps ImageNet normalisation to [-1, 1]", () => {
  const on = build(GOOGLENET, "googlenet", { transformInput: true }, 3);
  const off = build(GOOGLENET, "googlenet", { transformInput: false }, 3);
  try {
    assert.equal(on.features, 1024);
    assert.equal(on.blocks.length, 9);
    assert.equal(on.blocks[2].name, "inception4a");
    assert.ok(!("aux1" in Object.fromEntries(on.namedModules())));
    scope(() => {
      const x = randomImages(2, 17, 5);
      const a = on.stem(x, EVAL).toArray();
      const b = off.stem(x, EVAL).toArray();
      assert.ok(maxAbsDiff(a, b) > 1e-2, "the switch changes the output");
      // off, fed the transformed images by hand, equals on.
      const scale = tensor([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5], [1, 3, 1, 1]);
      const shift = tensor([-0.03, -0.088, -0.188], [1, 3, 1, 1]);
      const c = off.stem(add(mul(x, scale), shift), EVAL).toArray();
      assert.ok(maxAbsDiff(a, c) < 1e-5);
    });
  } finally {
    on.dispose();
    off.dispose();
  }
});

Deno.test("ConvNeXt: a skipped CNBlock is the identity, a soft gate mixes", () => {
  const bb = build(CONVNEXT, "convnext_tiny", SMALL_CONVNEXT);
  try {
    scope(() => {
      const x = bb.stem(randomImages(2, 16, 9), EVAL);
      const block = bb.blocks[0];
      assert.equal(block.forward(x, EVAL, "skip"), x);
      const f = block.forward(x, EVAL, "execute");
      assert.ok(maxAbsDiff(f.toArray(), x.toArray()) > 0, "executing changes x");
      const g = {
        exec: tensor([0.25], [1]),
        skip: tensor([0.75], [1]),
      };
      const soft = block.forward(x, EVAL, g).toArray();
      const want = add(mul(f, 0.25), mul(x, 0.75)).toArray();
      assert.ok(maxAbsDiff(soft, want) < 1e-6);
    });
  } finally {
    bb.dispose();
  }
});

Deno.test("ConvNeXt: stochastic depth grows linearly over the blocks, trains end to end", () => {
  const bb = build(CONVNEXT, "convnext_tiny", {
    ...SMALL_CONVNEXT,
    stochasticDepthProb: 0.8,
    layerScale: 0.5,
  });
  try {
    const probs = bb.namedModules().filter(([, m]) => m instanceof CNBlock)
      .map(([, m]) => (m as CNBlock).sdProb);
    assert.deepEqual(probs.map((p) => +p.toFixed(6)), [0, 0.2, 0.4, 0.6, 0.8]);
    const params = new Map(bb.namedParameters());
    const w = params.get("features.5.0.block.3.weight")!;
    assert.deepEqual(w.shape, [256, 64]);
    assert.deepEqual(params.get("features.5.1.layer_scale")!.shape, [64, 1, 1]);
    scope(() => {
      const run = (seed: number) => {
        const train: Pass = { key: "b", training: true, seed };
        let x = bb.stem(randomImages(4, 32, 2), train);
        for (const b of bb.blocks) x = b.forward(x, train, "execute");
        return bb.tail(x, train);
      };
      const a = run(11), b = run(11), c = run(12);
      assert.deepEqual(a.shape, [4, 128]);
      assert.deepEqual(a.toArray(), b.toArray(), "same seed, same masks");
      assert.ok(maxAbsDiff(a.toArray(), c.toArray()) > 1e-4, "another seed, other masks");
      // (a plain sum of a LayerNorm's output with weight 1 does not depend on its input)
      const r = new Rng(4);
      backward(
        sum(mul(a, tensor(Float32Array.from({ length: a.size }, () => r.normal()), a.shape))),
      );
      assert.ok(w.grad && w.grad.toArray().some((v) => v !== 0), "the Linear weight learns");
      const ls = params.get("features.1.0.layer_scale")!;
      assert.ok(ls.grad && ls.grad.toArray().some((v) => v !== 0), "layer_scale learns");
    });
  } finally {
    bb.dispose();
  }
});

Deno.test("parse names the source and the field", () => {
  const bad: [ArchFamily<unknown>, unknown, RegExp][] = [
    [CONVNEXT, { stages: [], stochasticDepthProb: 0, layerScale: 1e-6 }, /"stages" must be/],
    [
      CONVNEXT,
      { stages: [[8, 16, 1], [8, null, 1]], stochasticDepthProb: 0, layerScale: 1e-6 },
      /"stages" must chain/,
    ],
    [
      CONVNEXT,
      { stages: [[8, null, 1]], stochasticDepthProb: 1.5, layerScale: 1e-6 },
      /"stochasticDepthProb" must be a number in \[0, 1\): got 1.5/,
    ],
    [
      SHUFFLENET_V2,
      { stagesRepeats: [4, 8], stagesOutChannels: [24, 48, 96, 192, 1024] },
      /"stagesRepeats" must be 3 positive integers: got \[4,8\]/,
    ],
    [
      SHUFFLENET_V2,
      { stagesRepeats: [1, 1, 1], stagesOutChannels: [24, 47, 96, 192, 1024] },
      /"stagesOutChannels" must be even/,
    ],
    [
      DENSENET,
      { growthRate: 0, blockConfig: [2], numInitFeatures: 8, bnSize: 4 },
      /"growthRate" must be a positive integer: got 0/,
    ],
    [
      DENSENET,
      { growthRate: 8, blockConfig: [2, "x"], numInitFeatures: 8, bnSize: 4 },
      /"blockConfig" must be/,
    ],
    [GOOGLENET, { transformInput: "yes" }, /"transformInput" must be true or false: got "yes"/],
    [GOOGLENET, null, /must be an object/],
  ];
  for (const [family, raw, re] of bad) {
    assert.throws(() => family.parse(raw, "cfg.json"), (e: Error) => {
      assert.match(e.message, /^Cannot read cfg\.json: /);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("ShuffleNetV2, DenseNet, GoogLeNet: gradients reach the stem in training", () => {
  const cases: [Backbone, string, number][] = [
    [
      build(SHUFFLENET_V2, "shufflenet_v2_x1_0", {
        stagesRepeats: [1, 2, 1],
        stagesOutChannels: [8, 16, 32, 64, 96],
      }),
      "conv1.0.weight",
      32,
    ],
    [
      build(DENSENET, "densenet121", {
        growthRate: 8,
        blockConfig: [2, 2],
        numInitFeatures: 16,
        bnSize: 2,
      }),
      "features.conv0.weight",
      32,
    ],
    [build(GOOGLENET, "googlenet", { transformInput: true }), "conv1.conv.weight", 32],
  ];
  for (const [bb, stemKey, side] of cases) {
    try {
      scope(() => {
        const train: Pass = { key: "b", training: true, seed: 3 };
        let x = bb.stem(randomImages(2, side, 8), train);
        for (const b of bb.blocks) x = b.forward(x, train, "execute");
        const out = bb.tail(x, train);
        assert.deepEqual(out.shape, [2, bb.features]);
        const r = new Rng(6);
        const w = tensor(Float32Array.from({ length: out.size }, () => r.normal()), out.shape);
        backward(sum(mul(out, w)));
        const g = new Map(bb.namedParameters()).get(stemKey)!.grad;
        assert.ok(g && g.toArray().some((v) => v !== 0), `${bb.arch}: ${stemKey} learns`);
      });
    } finally {
      bb.dispose();
    }
  }
});
