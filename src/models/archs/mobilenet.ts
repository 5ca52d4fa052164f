/**
 * MobileNetV2 (Sandler et al., arXiv:1801.04381) and MobileNetV3 (Howard et al.,
 * arXiv:1905.02244) from torchvision 0.14's tables, with torchvision's parameter names
 * (`features.3.conv.1.0.weight`, `features.4.block.2.fc1.bias`, `classifier.0.weight`) and
 * DAB batch norm. One generic inverted-residual builder per version reads its table:
 *
 * - V2: `features.0` stem (3×3 stride 2, ReLU6), one block per table repeat, the last 1×1
 *   ConvNormAct (`features.18` in mobilenet_v2) in the tail, then avgpool → Dropout →
 *   `classifier.1`.
 * - V3: `features.0` stem (3×3 stride 2, Hardswish), one block per row, the last 1×1
 *   ConvNormAct (6 × the last block's width, Hardswish) in the tail, avgpool →
 *   `classifier.0` Linear → Hardswish (both in the tail) → Dropout → `classifier.3`. Batch
 *   norms use eps 0.001 (torchvision's MobileNetV3; momentum: see layers.ts dabNorm).
 *
 * A block is gateable where torchvision has a residual connection (stride 1, same width).
 * @module
 */
import { add, hardswish } from "../../ops/elementwise.ts";
import { globalAvgPool } from "../../ops/pool.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import {
  type ArchFamily,
  type Backbone,
  type BackboneBlock,
  type BuildContext,
  type Gate,
  gated,
  type Pass,
} from "../backbone.ts";
import {
  type Activation,
  Conv,
  ConvNormAct,
  Dense,
  makeDivisible,
  Norm,
  type NormOptions,
  Seq,
  SqueezeExcitation,
} from "./layers.ts";
import { initBackbone, type InitRules, kaimingNormal, normal, zeros } from "./init.ts";

// ---------------------------------------------------------------------------------------
// Shared helpers

/** Python's round() (half to even), as torchvision's `int(round(...))` uses it. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Refuses `gate` other than "execute" for a block without a residual path. */
function executeOnly(name: string, gate: Gate): void {
  if (gate !== "execute") {
    throw new Error(
      `Cannot gate block "${name}": it has no residual connection, so it always executes`,
    );
  }
}

/** The `fail` of a parser: throws "Cannot read <source>: <msg>". */
function failer(source: string): (msg: string) => never {
  return (msg: string): never => {
    throw new Error(`Cannot read ${source}: ${msg}`);
  };
}

function isPosInt(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1;
}

function isPosNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v > 0;
}

function asObject(raw: unknown, fail: (m: string) => never): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return fail(`the config must be an object: got ${JSON.stringify(raw)}`);
  }
  return raw as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------
// MobileNetV2

/** One row of MobileNetV2's table: expansion t, channels c, repeats n, first stride s. */
export type MobileNetV2Row = [t: number, c: number, n: number, s: number];

/** MobileNetV2's table, as torchvision's constructor takes it (width applied by the builder). */
export interface MobileNetV2Config {
  /** Width multiplier (torchvision's `width_mult`). */
  widthMult: number;
  /** Channels are rounded to multiples of this (`round_nearest`, 8). */
  roundNearest: number;
  /** Rows [t, c, n, s] before the width multiplier. */
  setting: MobileNetV2Row[];
  /** Width of the last 1×1 conv before the multiplier (1280; never narrowed below it). */
  lastChannel: number;
}

/** The stem's width before the multiplier (torchvision's `input_channel = 32`). */
const V2_STEM = 32;

/** torchvision's MobileNetV2 InvertedResidual: `conv` = [expand 1×1], dw 3×3, project 1×1, BN. */
export class InvertedResidualV2 extends Module implements BackboneBlock {
  readonly name: string;
  readonly gateable: boolean;
  /** torchvision's `conv` Sequential. */
  readonly conv: Seq;
  /** `inp` → `oup` channels with expansion `t` and the depthwise conv's `stride`. */
  constructor(
    name: string,
    inp: number,
    oup: number,
    stride: number,
    t: number,
    ctx: BuildContext,
  ) {
    super();
    this.name = name;
    this.gateable = stride === 1 && inp === oup;
    const hidden = roundHalfEven(inp * t);
    this.conv = this.child("conv", new Seq());
    if (t !== 1) this.conv.add(new ConvNormAct(inp, hidden, ctx, { kernel: 1, act: "relu6" }));
    this.conv.add(
      new ConvNormAct(hidden, hidden, ctx, { kernel: 3, stride, groups: hidden, act: "relu6" }),
    );
    this.conv.add(new Conv(hidden, oup, ctx, { kernel: 1 }));
    this.conv.add(new Norm(oup, ctx));
  }
  forward(x: Tensor, pass: Pass, gate: Gate): Tensor {
    if (!this.gateable) {
      executeOnly(this.name, gate);
      return this.conv.run(x, pass);
    }
    return gated(x, gate, () => add(x, this.conv.run(x, pass)));
  }
}

/** The MobileNetV2 trunk. */
export class MobileNetV2Backbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = MOBILENET_V2.classifier;
  readonly blocks: InvertedResidualV2[] = [];
  /** `features.0`: 3×3 stride-2 ConvNormAct, ReLU6. */
  readonly first: ConvNormAct;
  /** The last `features.<n>`: 1×1 ConvNormAct to the last channel, ReLU6 (in the tail). */
  readonly last: ConvNormAct;

  /** Builds `arch` from `c`, applying `c.widthMult` as torchvision does. */
  constructor(arch: string, c: MobileNetV2Config, ctx: BuildContext) {
    super();
    this.arch = arch;
    const feats = this.child("features", new ModuleList());
    let cin = makeDivisible(V2_STEM * c.widthMult, c.roundNearest);
    const lastChannel = makeDivisible(c.lastChannel * Math.max(1, c.widthMult), c.roundNearest);
    this.first = feats.add(
      "0",
      new ConvNormAct(3, cin, ctx, { kernel: 3, stride: 2, act: "relu6" }),
    );
    let index = 1;
    for (const [t, ch, n, s] of c.setting) {
      const cout = makeDivisible(ch * c.widthMult, c.roundNearest);
      for (let i = 0; i < n; i++) {
        const name = `features.${index}`;
        const block = new InvertedResidualV2(name, cin, cout, i === 0 ? s : 1, t, ctx);
        this.blocks.push(feats.add(String(index), block));
        cin = cout;
        index++;
      }
    }
    this.last = feats.add(
      String(index),
      new ConvNormAct(cin, lastChannel, ctx, { kernel: 1, act: "relu6" }),
    );
    this.features = lastChannel;
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return this.first.run(images, pass);
  }

  tail(x: Tensor, pass: Pass): Tensor {
    return globalAvgPool(this.last.run(x, pass));
  }
}

/** torchvision's mobilenet_v2 table. */
const V2_SETTING: MobileNetV2Row[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** torchvision's MobileNetV2/V3 init: convs Kaiming fan-out, Linear Normal(0, 0.01), biases 0. */
const MOBILENET_INIT: InitRules = {
  convWeight: kaimingNormal("fan_out"),
  convBias: zeros,
  linearWeight: normal(0.01),
  linearBias: zeros,
};

/** MobileNetV2 (torchvision's `mobilenet_v2`; a custom table through `archConfig`). */
export const MOBILENET_V2: ArchFamily<MobileNetV2Config> = {
  variants: {
    mobilenet_v2: { widthMult: 1.0, roundNearest: 8, setting: V2_SETTING, lastChannel: 1280 },
  },
  classifier: "classifier.1",
  gateable: true,
  /** torchvision: convs Kaiming fan-out (bias 0), Linear Normal(0, 0.01) (bias 0). */
  init(backbone, rng) {
    initBackbone(backbone, rng, MOBILENET_INIT);
  },
  parse(raw: unknown, source: string): MobileNetV2Config {
    const fail = failer(source);
    const r = asObject(raw, fail);
    if (!isPosNumber(r.widthMult)) {
      fail(`"widthMult" must be a positive number: got ${JSON.stringify(r.widthMult)}`);
    }
    if (!isPosInt(r.roundNearest)) {
      fail(`"roundNearest" must be a positive integer: got ${JSON.stringify(r.roundNearest)}`);
    }
    if (!isPosInt(r.lastChannel)) {
      fail(`"lastChannel" must be a positive integer: got ${JSON.stringify(r.lastChannel)}`);
    }
    const s = r.setting;
    if (!Array.isArray(s) || s.length === 0) {
      fail(`"setting" must be a non-empty list of [t, c, n, s] rows: got ${JSON.stringify(s)}`);
    }
    const setting = (s as unknown[]).map((row, i): MobileNetV2Row => {
      if (
        !Array.isArray(row) || row.length !== 4 || !isPosNumber(row[0]) || !isPosInt(row[1]) ||
        !isPosInt(row[2]) || (row[3] !== 1 && row[3] !== 2)
      ) {
        return fail(
          `"setting[${i}]" must be [t > 0, c ≥ 1, n ≥ 1, s ∈ {1, 2}]: got ${JSON.stringify(row)}`,
        );
      }
      return [row[0], row[1], row[2], row[3]];
    });
    return {
      widthMult: r.widthMult as number,
      roundNearest: r.roundNearest as number,
      setting,
      lastChannel: r.lastChannel as number,
    };
  },
  build(arch: string, config: MobileNetV2Config, ctx: BuildContext): Backbone {
    return new MobileNetV2Backbone(arch, config, ctx);
  },
};

// ---------------------------------------------------------------------------------------
// MobileNetV3

/**
 * One row of MobileNetV3's table (torchvision's InvertedResidualConfig, widths already
 * multiplied): input, kernel, expanded and output channels, squeeze-excitation,
 * activation ("RE" ReLU, "HS" Hardswish), stride, dilation (only 1 is supported).
 */
export type MobileNetV3Row = [
  inputChannels: number,
  kernel: number,
  expandedChannels: number,
  outChannels: number,
  useSe: boolean,
  activation: "RE" | "HS",
  stride: number,
  dilation: number,
];

/** MobileNetV3's table. */
export interface MobileNetV3Config {
  /** The inverted residual rows, width-adjusted. */
  setting: MobileNetV3Row[];
  /** Width of `classifier.0` (the penultimate layer: 1024 small, 1280 large). */
  lastChannel: number;
}

/** MobileNetV3's batch norm settings. */
const V3_NORM: NormOptions = { eps: 0.001 };

/**
 * torchvision's MobileNetV3 InvertedResidual: `block` = [expand 1×1], dw k×k, [SE], project
 * 1×1 (no activation).
 */
export class InvertedResidualV3 extends Module implements BackboneBlock {
  readonly name: string;
  readonly gateable: boolean;
  /** torchvision's `block` Sequential. */
  readonly block: Seq;
  /** Builds the block of table row `row`. */
  constructor(name: string, row: MobileNetV3Row, ctx: BuildContext) {
    super();
    const [cin, kernel, exp, cout, useSe, actName, stride, dilation] = row;
    if (dilation !== 1) {
      throw new Error(
        `Cannot build "${name}": dilation ${dilation} is not supported (only 1; torchvision's ` +
          `dilated=True variant is not built by fbp)`,
      );
    }
    this.name = name;
    this.gateable = stride === 1 && cin === cout;
    const act: Activation = actName === "HS" ? "hardswish" : "relu";
    this.block = this.child("block", new Seq());
    if (exp !== cin) {
      this.block.add(new ConvNormAct(cin, exp, ctx, { kernel: 1, act, ...V3_NORM }));
    }
    this.block.add(
      new ConvNormAct(exp, exp, ctx, { kernel, stride, groups: exp, act, ...V3_NORM }),
    );
    if (useSe) {
      const squeeze = makeDivisible(Math.floor(exp / 4), 8);
      this.block.add(
        new SqueezeExcitation(exp, squeeze, ctx, { act: "relu", gate: "hardsigmoid" }),
      );
    }
    this.block.add(new ConvNormAct(exp, cout, ctx, { kernel: 1, act: "none", ...V3_NORM }));
  }
  forward(x: Tensor, pass: Pass, gate: Gate): Tensor {
    if (!this.gateable) {
      executeOnly(this.name, gate);
      return this.block.run(x, pass);
    }
    return gated(x, gate, () => add(this.block.run(x, pass), x));
  }
}

/** The MobileNetV3 trunk. */
export class MobileNetV3Backbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = MOBILENET_V3.classifier;
  readonly blocks: InvertedResidualV3[] = [];
  /** `features.0`: 3×3 stride-2 ConvNormAct, Hardswish. */
  readonly first: ConvNormAct;
  /** The last `features.<n>`: 1×1 ConvNormAct to 6× the last width, Hardswish. */
  readonly last: ConvNormAct;
  /** `classifier.0`: Linear to `lastChannel` (then Hardswish), in the tail. */
  readonly fc0: Dense;

  /** Builds `arch` from table `c`. */
  constructor(arch: string, c: MobileNetV3Config, ctx: BuildContext) {
    super();
    this.arch = arch;
    const feats = this.child("features", new ModuleList());
    const first = c.setting[0][0];
    this.first = feats.add(
      "0",
      new ConvNormAct(3, first, ctx, { kernel: 3, stride: 2, act: "hardswish", ...V3_NORM }),
    );
    c.setting.forEach((row, i) => {
      const block = new InvertedResidualV3(`features.${i + 1}`, row, ctx);
      this.blocks.push(feats.add(String(i + 1), block));
    });
    const lastIn = c.setting[c.setting.length - 1][3];
    const lastOut = 6 * lastIn;
    this.last = feats.add(
      String(c.setting.length + 1),
      new ConvNormAct(lastIn, lastOut, ctx, { kernel: 1, act: "hardswish", ...V3_NORM }),
    );
    const cls = this.child("classifier", new ModuleList());
    this.fc0 = cls.add("0", new Dense(lastOut, c.lastChannel, ctx));
    this.features = c.lastChannel;
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return this.first.run(images, pass);
  }

  tail(x: Tensor, pass: Pass): Tensor {
    return hardswish(this.fc0.run(globalAvgPool(this.last.run(x, pass))));
  }
}

/** torchvision's InvertedResidualConfig.adjust_channels at `widthMult`. */
function adjustV3(c: number, widthMult: number): number {
  return makeDivisible(c * widthMult, 8);
}

/**
 * torchvision's `_mobilenet_v3_conf(arch, width_mult)` (no reduced tail, no dilation): the
 * raw rows with every width passed through `adjust_channels`, and the last channel.
 */
export function mobilenetV3Table(
  arch: "mobilenet_v3_small" | "mobilenet_v3_large",
  widthMult = 1.0,
): MobileNetV3Config {
  type Raw = [number, number, number, number, boolean, "RE" | "HS", number, number];
  const large: Raw[] = [
    [16, 3, 16, 16, false, "RE", 1, 1],
    [16, 3, 64, 24, false, "RE", 2, 1],
    [24, 3, 72, 24, false, "RE", 1, 1],
    [24, 5, 72, 40, true, "RE", 2, 1],
    [40, 5, 120, 40, true, "RE", 1, 1],
    [40, 5, 120, 40, true, "RE", 1, 1],
    [40, 3, 240, 80, false, "HS", 2, 1],
    [80, 3, 200, 80, false, "HS", 1, 1],
    [80, 3, 184, 80, false, "HS", 1, 1],
    [80, 3, 184, 80, false, "HS", 1, 1],
    [80, 3, 480, 112, true, "HS", 1, 1],
    [112, 3, 672, 112, true, "HS", 1, 1],
    [112, 5, 672, 160, true, "HS", 2, 1],
    [160, 5, 960, 160, true, "HS", 1, 1],
    [160, 5, 960, 160, true, "HS", 1, 1],
  ];
  const small: Raw[] = [
    [16, 3, 16, 16, true, "RE", 2, 1],
    [16, 3, 72, 24, false, "RE", 2, 1],
    [24, 3, 88, 24, false, "RE", 1, 1],
    [24, 5, 96, 40, true, "HS", 2, 1],
    [40, 5, 240, 40, true, "HS", 1, 1],
    [40, 5, 240, 40, true, "HS", 1, 1],
    [40, 5, 120, 48, true, "HS", 1, 1],
    [48, 5, 144, 48, true, "HS", 1, 1],
    [48, 5, 288, 96, true, "HS", 2, 1],
    [96, 5, 576, 96, true, "HS", 1, 1],
    [96, 5, 576, 96, true, "HS", 1, 1],
  ];
  const rows = arch === "mobilenet_v3_large" ? large : small;
  return {
    setting: rows.map(([cin, k, exp, cout, se, act, s, d]) => [
      adjustV3(cin, widthMult),
      k,
      adjustV3(exp, widthMult),
      adjustV3(cout, widthMult),
      se,
      act,
      s,
      d,
    ]),
    lastChannel: adjustV3(arch === "mobilenet_v3_large" ? 1280 : 1024, widthMult),
  };
}

/** MobileNetV3 small and large (torchvision's builders; a custom table via `archConfig`). */
export const MOBILENET_V3: ArchFamily<MobileNetV3Config> = {
  variants: {
    mobilenet_v3_large: mobilenetV3Table("mobilenet_v3_large"),
    mobilenet_v3_small: mobilenetV3Table("mobilenet_v3_small"),
  },
  classifier: "classifier.3",
  gateable: true,
  /** torchvision: convs Kaiming fan-out (bias 0), Linear Normal(0, 0.01) (bias 0). */
  init(backbone, rng) {
    initBackbone(backbone, rng, MOBILENET_INIT);
  },
  parse(raw: unknown, source: string): MobileNetV3Config {
    const fail = failer(source);
    const r = asObject(raw, fail);
    if (!isPosInt(r.lastChannel)) {
      fail(`"lastChannel" must be a positive integer: got ${JSON.stringify(r.lastChannel)}`);
    }
    const s = r.setting;
    if (!Array.isArray(s) || s.length === 0) {
      fail(
        `"setting" must be a non-empty list of [inputChannels, kernel, expandedChannels, ` +
          `outChannels, useSe, "RE"|"HS", stride, dilation] rows: got ${JSON.stringify(s)}`,
      );
    }
    const setting = (s as unknown[]).map((row, i): MobileNetV3Row => {
      const ok = Array.isArray(row) && row.length === 8 && isPosInt(row[0]) &&
        isPosInt(row[1]) && row[1] % 2 === 1 && isPosInt(row[2]) && isPosInt(row[3]) &&
        typeof row[4] === "boolean" && (row[5] === "RE" || row[5] === "HS") &&
        (row[6] === 1 || row[6] === 2) && isPosInt(row[7]);
      if (!ok) {
        return fail(
          `"setting[${i}]" must be [inputChannels ≥ 1, odd kernel, expandedChannels ≥ 1, ` +
            `outChannels ≥ 1, useSe (boolean), "RE"|"HS", stride ∈ {1, 2}, dilation]: got ` +
            JSON.stringify(row),
        );
      }
      if (row[7] !== 1) {
        fail(
          `"setting[${i}][7]" (dilation) must be 1 (dilated MobileNetV3 is not supported): got ` +
            JSON.stringify(row[7]),
        );
      }
      return row as MobileNetV3Row;
    });
    for (let i = 1; i < setting.length; i++) {
      if (setting[i][0] !== setting[i - 1][3]) {
        fail(
          `"setting[${i}]" inputChannels must equal the previous row's outChannels ` +
            `(${setting[i - 1][3]}): got ${setting[i][0]}`,
        );
      }
    }
    return { setting, lastChannel: r.lastChannel as number };
  },
  build(arch: string, config: MobileNetV3Config, ctx: BuildContext): Backbone {
    return new MobileNetV3Backbone(arch, config, ctx);
  },
};
