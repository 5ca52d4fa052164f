/**
 * MobileNetV2/V3, EfficientNet and RegNet beyond the torchvision fixtures: the named
 * variants' tables (values read from torchvision 0.14), which blocks AdaShare may gate,
 * torchvision's state-dict keys of the fixture configurations, each family's batch-norm
 * settings, skipped and soft-gated blocks, EfficientNet's stochastic depth, config
 * validation.
 */
import assert from "node:assert/strict";
import { add, mul } from "../../src/ops/elementwise.ts";
import { scope, tensor } from "../../src/tensor/tensor.ts";
import { BatchNorm2d } from "../../src/nn/batch_norm.ts";
import type { ArchFamily, Gate, Pass } from "../../src/models/backbone.ts";
import {
  MOBILENET_V2,
  MOBILENET_V3,
  type MobileNetV3Config,
} from "../../src/models/archs/mobilenet.ts";
import {
  EFFICIENTNET,
  type EfficientNetConfig,
  type MBConv,
} from "../../src/models/archs/efficientnet.ts";
import { REGNET, type RegNetConfig, ResBottleneckBlock } from "../../src/models/archs/regnet.ts";
import { assertTorchvisionKeys, build, EVAL, maxAbsDiff, randomImages } from "./_arch_helpers.ts";

const FAMILIES = [MOBILENET_V2, MOBILENET_V3, EFFICIENTNET, REGNET] as ArchFamily<unknown>[];

// Small tables of the fixtures (tasks/make_arch_fixtures.py).
const V3_SMALL: MobileNetV3Config = {
  setting: [
    [16, 3, 16, 16, true, "RE", 2, 1],
    [16, 3, 48, 24, false, "RE", 2, 1],
    [24, 5, 72, 24, true, "HS", 1, 1],
    [24, 3, 64, 24, false, "HS", 1, 1],
    [24, 3, 96, 32, true, "HS", 1, 1],
  ],
  lastChannel: 64,
};
const EFF_SMALL: EfficientNetConfig = {
  setting: [[1, 3, 1, 16, 8, 1], [4, 5, 2, 8, 16, 2]],
  stochasticDepthProb: 0.2,
  lastChannel: null,
};
const REGNET_SMALL: RegNetConfig = {
  stemWidth: 16,
  depths: [1, 2, 2],
  widths: [16, 32, 48],
  groupWidths: [8, 8, 8],
  bottleneckMultipliers: [1, 1, 0.5],
  strides: [2, 2, 1],
  seRatio: 0.25,
};

Deno.test("named variants hold torchvision's tables", () => {
  // RegNet: BlockParams.from_init_params, read from torchvision 0.14 (widths, depths,
  // group widths per stage).
  const regnet: Record<string, [number[], number[], number[]]> = {
    regnet_y_400mf: [[48, 104, 208, 440], [1, 3, 6, 6], [8, 8, 8, 8]],
    regnet_y_800mf: [[64, 144, 320, 784], [1, 3, 8, 2], [16, 16, 16, 16]],
    regnet_y_1_6gf: [[48, 120, 336, 888], [2, 6, 17, 2], [24, 24, 24, 24]],
    regnet_y_3_2gf: [[72, 216, 576, 1512], [2, 5, 13, 1], [24, 24, 24, 24]],
    regnet_y_8gf: [[224, 448, 896, 2016], [2, 4, 10, 1], [56, 56, 56, 56]],
    regnet_y_16gf: [[224, 448, 1232, 3024], [2, 4, 11, 1], [112, 112, 112, 112]],
    regnet_y_32gf: [[232, 696, 1392, 3712], [2, 5, 12, 1], [232, 232, 232, 232]],
    regnet_y_128gf: [[528, 1056, 2904, 7392], [2, 7, 17, 1], [264, 264, 264, 264]],
    regnet_x_400mf: [[32, 64, 160, 400], [1, 2, 7, 12], [16, 16, 16, 16]],
    regnet_x_800mf: [[64, 128, 288, 672], [1, 3, 7, 5], [16, 16, 16, 16]],
    regnet_x_1_6gf: [[72, 168, 408, 912], [2, 4, 10, 2], [24, 24, 24, 24]],
    regnet_x_3_2gf: [[96, 192, 432, 1008], [2, 6, 15, 2], [48, 48, 48, 48]],
    regnet_x_8gf: [[80, 240, 720, 1920], [2, 5, 15, 1], [80, 120, 120, 120]],
    regnet_x_16gf: [[256, 512, 896, 2048], [2, 6, 13, 1], [128, 128, 128, 128]],
    regnet_x_32gf: [[336, 672, 1344, 2520], [2, 7, 13, 1], [168, 168, 168, 168]],
  };
  assert.deepEqual(Object.keys(REGNET.variants).sort(), Object.keys(regnet).sort());
  for (const [name, [widths, depths, groupWidths]] of Object.entries(regnet)) {
    assert.deepEqual(REGNET.variants[name], {
      stemWidth: 32,
      depths,
      widths,
      groupWidths,
      bottleneckMultipliers: [1, 1, 1, 1],
      strides: [2, 2, 2, 2],
      seRatio: name.startsWith("regnet_y") ? 0.25 : null,
    }, name);
  }
  // EfficientNet: channels (_make_divisible(c · width, 8)) and depths (ceil(n · depth)).
  const e = EFFICIENTNET.variants;
  assert.deepEqual(Object.keys(e), [0, 1, 2, 3, 4, 5, 6, 7].map((b) => `efficientnet_b${b}`));
  assert.deepEqual(e.efficientnet_b4.setting.map((r) => r[4]), [24, 32, 56, 112, 160, 272, 448]);
  assert.deepEqual(e.efficientnet_b4.setting.map((r) => r[5]), [2, 4, 4, 6, 6, 8, 2]);
  assert.equal(e.efficientnet_b4.setting[0][3], 48);
  assert.deepEqual(e.efficientnet_b7.setting.map((r) => r[4]), [32, 48, 80, 160, 224, 384, 640]);
  assert.deepEqual(e.efficientnet_b7.setting.map((r) => r[5]), [4, 7, 7, 10, 10, 13, 4]);
  assert.deepEqual(e.efficientnet_b0.setting, [
    [1, 3, 1, 32, 16, 1],
    [6, 3, 2, 16, 24, 2],
    [6, 5, 2, 24, 40, 2],
    [6, 3, 2, 40, 80, 3],
    [6, 5, 1, 80, 112, 3],
    [6, 5, 2, 112, 192, 4],
    [6, 3, 1, 192, 320, 1],
  ]);
  for (const v of Object.values(e)) {
    assert.equal(v.stochasticDepthProb, 0.2);
    assert.equal(v.lastChannel, null);
  }
  // MobileNetV3: the last channel, and rows of both tables.
  const m3 = MOBILENET_V3.variants;
  assert.equal(m3.mobilenet_v3_large.lastChannel, 1280);
  assert.equal(m3.mobilenet_v3_small.lastChannel, 1024);
  assert.equal(m3.mobilenet_v3_large.setting.length, 15);
  assert.equal(m3.mobilenet_v3_small.setting.length, 11);
  assert.deepEqual(m3.mobilenet_v3_large.setting[12], [112, 5, 672, 160, true, "HS", 2, 1]);
  assert.deepEqual(m3.mobilenet_v3_small.setting[2], [24, 3, 88, 24, false, "RE", 1, 1]);
  assert.deepEqual(MOBILENET_V2.variants.mobilenet_v2.setting[3], [6, 64, 4, 2]);
  for (const f of FAMILIES) {
    for (const [name, table] of Object.entries(f.variants)) {
      assert.deepEqual(f.parse(JSON.parse(JSON.stringify(table)), name), table, name);
    }
  }
});

Deno.test("gateable blocks are torchvision's residual ones (use_res_connect)", () => {
  for (const f of FAMILIES) assert.equal(f.gateable, true);
  // Names of the blocks with use_res_connect in torchvision 0.14.
  const cases: [ArchFamily<unknown>, string, number, number, string, string[]][] = [
    [MOBILENET_V2 as ArchFamily<unknown>, "mobilenet_v2", 17, 1280, "classifier.1", [
      "features.3",
      "features.5",
      "features.6",
      "features.8",
      "features.9",
      "features.10",
      "features.12",
      "features.13",
      "features.15",
      "features.16",
    ]],
    [MOBILENET_V3 as ArchFamily<unknown>, "mobilenet_v3_small", 11, 1024, "classifier.3", [
      "features.3",
      "features.5",
      "features.6",
      "features.8",
      "features.10",
      "features.11",
    ]],
    [MOBILENET_V3 as ArchFamily<unknown>, "mobilenet_v3_large", 15, 1280, "classifier.3", [
      "features.1",
      "features.3",
      "features.5",
      "features.6",
      "features.8",
      "features.9",
      "features.10",
      "features.12",
      "features.14",
      "features.15",
    ]],
    [EFFICIENTNET as ArchFamily<unknown>, "efficientnet_b0", 16, 1280, "classifier.1", [
      "features.2.1",
      "features.3.1",
      "features.4.1",
      "features.4.2",
      "features.5.1",
      "features.5.2",
      "features.6.1",
      "features.6.2",
      "features.6.3",
    ]],
  ];
  for (const [family, arch, count, features, classifier, residual] of cases) {
    const bb = build(family, arch, family.variants[arch]);
    try {
      assert.equal(bb.blocks.length, count, arch);
      assert.equal(bb.features, features, arch);
      assert.equal(bb.classifier, classifier, arch);
      assert.deepEqual(bb.blocks.filter((b) => b.gateable).map((b) => b.name), residual, arch);
    } finally {
      bb.dispose();
    }
  }
  const rg = build(REGNET, "regnet_x_400mf", REGNET.variants.regnet_x_400mf);
  try {
    assert.equal(rg.blocks.length, 1 + 2 + 7 + 12);
    assert.ok(rg.blocks.every((b) => b.gateable));
    assert.equal(rg.blocks[1].name, "trunk_output.block2.block2-0");
    assert.equal(rg.blocks[2].name, "trunk_output.block2.block2-1");
    assert.equal(rg.features, 400);
    assert.equal(rg.classifier, "fc");
  } finally {
    rg.dispose();
  }
});

// The fixtures' key lists are torchvision's state dicts: every fbp key (less the BN copy's
// segment) is one of them, and each of them is fbp's, except the last Linear.
for (
  const cas of [
    "mobilenet_v2_custom",
    "mobilenet_v3_small",
    "mobilenet_v3_custom",
    "efficientnet_custom",
    "efficientnet_b5_custom",
    "regnet_y_custom",
    "regnet_x_custom",
  ]
) {
  Deno.test(`${cas}: torchvision's state-dict keys and shapes`, () =>
    assertTorchvisionKeys(cas, FAMILIES));
}

Deno.test("batch norms use each family's eps, and PyTorch's momentum 0.1 everywhere", () => {
  const cases: [ArchFamily<unknown>, string, unknown, number, number][] = [
    [
      MOBILENET_V2 as ArchFamily<unknown>,
      "mobilenet_v2",
      {
        widthMult: 0.5,
        roundNearest: 8,
        setting: [[1, 16, 1, 1], [6, 24, 2, 2]],
        lastChannel: 1280,
      },
      1e-5,
      0.1,
    ],
    [MOBILENET_V3 as ArchFamily<unknown>, "mobilenet_v3_small", V3_SMALL, 1e-3, 0.1],
    [EFFICIENTNET as ArchFamily<unknown>, "efficientnet_b4", EFF_SMALL, 1e-5, 0.1],
    [EFFICIENTNET as ArchFamily<unknown>, "efficientnet_b5", EFF_SMALL, 1e-3, 0.1],
    [EFFICIENTNET as ArchFamily<unknown>, "efficientnet_b7", EFF_SMALL, 1e-3, 0.1],
    [REGNET as ArchFamily<unknown>, "regnet_y_400mf", REGNET_SMALL, 1e-5, 0.1],
  ];
  for (const [family, arch, table, eps, momentum] of cases) {
    const bb = build(family, arch, table);
    try {
      const bns = bb.namedModules().filter(([, m]) => m instanceof BatchNorm2d)
        .map(([, m]) => m as BatchNorm2d);
      assert.ok(bns.length > 4, arch);
      for (const bn of bns) {
        assert.equal(bn.eps, eps, arch);
        assert.equal(bn.momentum, momentum, arch);
      }
    } finally {
      bb.dispose();
    }
  }
});

Deno.test("a skipped gateable block returns its input (RegNet: its projection), soft gates mix", () => {
  const soft: Gate = { exec: tensor([0.25], [1]), skip: tensor([0.75], [1]) };
  const tables: [ArchFamily<unknown>, string, unknown][] = [
    [MOBILENET_V2 as ArchFamily<unknown>, "mobilenet_v2", {
      widthMult: 0.5,
      roundNearest: 8,
      setting: [[1, 16, 1, 1], [6, 24, 2, 2], [3, 40, 2, 2], [4, 40, 1, 1]],
      lastChannel: 1280,
    }],
    [MOBILENET_V3 as ArchFamily<unknown>, "mobilenet_v3_small", V3_SMALL],
    [EFFICIENTNET as ArchFamily<unknown>, "efficientnet_b0", EFF_SMALL],
    [REGNET as ArchFamily<unknown>, "regnet_y_400mf", REGNET_SMALL],
  ];
  for (const [family, arch, table] of tables) {
    const bb = build(family, arch, table, 7);
    try {
      scope(() => {
        let x = bb.stem(randomImages(2, 32, 3), EVAL);
        let sawGateable = false;
        for (const block of bb.blocks) {
          const f = block.forward(x, EVAL, "execute");
          if (!block.gateable) {
            assert.throws(() => block.forward(x, EVAL, "skip"), /no residual connection/);
          } else {
            sawGateable = true;
            const skipped = block.forward(x, EVAL, "skip");
            const proj = block instanceof ResBottleneckBlock ? block.proj : null;
            if (proj) {
              assert.deepEqual(skipped.toArray(), proj.run(x, EVAL).toArray(), block.name);
            } else {
              assert.equal(skipped, x, block.name);
              assert.ok(maxAbsDiff(f.toArray(), x.toArray()) > 1e-4, `${block.name} executes`);
            }
            const mixed = block.forward(x, EVAL, soft).toArray();
            const want = add(mul(f, 0.25), mul(skipped, 0.75)).toArray();
            assert.ok(maxAbsDiff(mixed, want) < 1e-5, block.name);
          }
          x = f;
        }
        assert.ok(sawGateable, arch);
        assert.deepEqual(bb.tail(x, EVAL).shape, [2, bb.features]);
      });
    } finally {
      bb.dispose();
    }
  }
});

Deno.test("EfficientNet: stochastic depth grows linearly, drops whole samples in training", () => {
  const bb = build(EFFICIENTNET, "efficientnet_b0", {
    setting: [[1, 3, 1, 16, 16, 2], [4, 3, 1, 16, 16, 2]],
    stochasticDepthProb: 0.8,
    lastChannel: 32,
  });
  try {
    const blocks = bb.blocks as MBConv[];
    assert.deepEqual(blocks.map((b) => b.sdProb), [0, 0.2, 0.4, 0.6000000000000001]);
    assert.ok(blocks.every((b) => b.gateable));
    assert.equal(bb.features, 32);
    scope(() => {
      const n = 4;
      const x = bb.stem(randomImages(n, 8, 5), EVAL);
      const per = x.size / n;
      const xs = x.toArray();
      let dropped = 0, kept = 0;
      for (let seed = 1; seed <= 6; seed++) {
        const train: Pass = { key: "b", training: true, seed };
        const out = blocks[3].forward(x, train, "execute").toArray();
        assert.deepEqual(blocks[3].forward(x, train, "execute").toArray(), out, "same seed");
        for (let s = 0; s < n; s++) {
          const row = out.subarray(s * per, (s + 1) * per);
          const same = row.every((v, i) => v === xs[s * per + i]);
          if (same) dropped++;
          else kept++;
        }
      }
      assert.ok(dropped > 0 && kept > 0, `dropped ${dropped}, kept ${kept}`);
      // Eval: never dropped.
      const e = blocks[3].forward(x, EVAL, "execute").toArray();
      for (let s = 0; s < n; s++) {
        assert.ok(
          maxAbsDiff(e.subarray(s * per, (s + 1) * per), xs.subarray(s * per, (s + 1) * per)) > 0,
        );
      }
    });
  } finally {
    bb.dispose();
  }
});

Deno.test("parse names the source and the field", () => {
  const v2 = { widthMult: 1, roundNearest: 8, setting: [[1, 16, 1, 1]], lastChannel: 1280 };
  const bad: [ArchFamily<unknown>, unknown, RegExp][] = [
    [
      MOBILENET_V2 as ArchFamily<unknown>,
      { ...v2, widthMult: 0 },
      /"widthMult" must be a positive number: got 0/,
    ],
    [
      MOBILENET_V2 as ArchFamily<unknown>,
      { ...v2, setting: [[1, 16, 1, 3]] },
      /"setting\[0\]" must be/,
    ],
    [
      MOBILENET_V2 as ArchFamily<unknown>,
      { ...v2, setting: [] },
      /"setting" must be a non-empty list/,
    ],
    [
      MOBILENET_V3 as ArchFamily<unknown>,
      { ...V3_SMALL, setting: [[16, 3, 16, 16, true, "RE", 2, 2]] },
      /"setting\[0\]\[7\]" \(dilation\) must be 1 .*: got 2/,
    ],
    [
      MOBILENET_V3 as ArchFamily<unknown>,
      { ...V3_SMALL, setting: [[16, 3, 16, 16, true, "XX", 2, 1]] },
      /"setting\[0\]" must be/,
    ],
    [
      MOBILENET_V3 as ArchFamily<unknown>,
      {
        ...V3_SMALL,
        setting: [[16, 3, 16, 16, true, "RE", 2, 1], [8, 3, 16, 16, true, "RE", 1, 1]],
      },
      /"setting\[1\]" inputChannels must equal the previous row's outChannels \(16\): got 8/,
    ],
    [
      MOBILENET_V3 as ArchFamily<unknown>,
      { ...V3_SMALL, lastChannel: 1.5 },
      /"lastChannel" must be/,
    ],
    [
      EFFICIENTNET as ArchFamily<unknown>,
      { ...EFF_SMALL, stochasticDepthProb: 1 },
      /"stochasticDepthProb" must be a number in \[0, 1\): got 1/,
    ],
    [
      EFFICIENTNET as ArchFamily<unknown>,
      { ...EFF_SMALL, setting: [[1, 4, 1, 16, 8, 1]] },
      /"setting\[0\]" must be/,
    ],
    [
      EFFICIENTNET as ArchFamily<unknown>,
      { ...EFF_SMALL, lastChannel: 0 },
      /"lastChannel" must be a positive integer or null: got 0/,
    ],
    [
      REGNET as ArchFamily<unknown>,
      { ...REGNET_SMALL, widths: [16, 32] },
      /"widths" must be a list of 3 positive integers/,
    ],
    [
      REGNET as ArchFamily<unknown>,
      { ...REGNET_SMALL, depths: [] },
      /"depths" must be a non-empty list/,
    ],
    [REGNET as ArchFamily<unknown>, { ...REGNET_SMALL, strides: [2, 3, 1] }, /"strides" must be/],
    [
      REGNET as ArchFamily<unknown>,
      { ...REGNET_SMALL, seRatio: 0 },
      /"seRatio" must be a positive number or null: got 0/,
    ],
    [
      REGNET as ArchFamily<unknown>,
      { ...REGNET_SMALL, groupWidths: [8, 64, 8] },
      /"groupWidths\[1\]" must be/,
    ],
    [REGNET as ArchFamily<unknown>, "x", /must be an object/],
  ];
  for (const [family, raw, re] of bad) {
    assert.throws(() => family.parse(raw, "cfg.json"), (e: Error) => {
      assert.match(e.message, /^Cannot read cfg\.json: /);
      assert.match(e.message, re);
      return true;
    });
  }
  // A dilated row that bypasses parse is refused by the builder.
  assert.throws(
    () =>
      build(MOBILENET_V3, "mobilenet_v3_small", {
        ...V3_SMALL,
        setting: [[16, 3, 16, 16, true, "RE", 2, 2]],
      }),
    /dilation 2 is not supported/,
  );
});
