/**
 * EfficientNet B0–B7 (Tan & Le, arXiv:1905.11946) from torchvision 0.14's tables, with
 * torchvision's parameter names (`features.2.1.block.2.fc1.weight`) and DAB batch norm:
 * `features.0` stem (3×3 stride 2, SiLU), `features.1` … one Sequential of MBConv blocks
 * per table row (each MBConv is one block), the last 1×1 ConvNormAct (SiLU, in the tail),
 * avgpool → Dropout → `classifier.1`.
 *
 * An MBConv with torchvision's residual connection (stride 1, same width) is gateable and
 * in training drops its residual branch per sample (stochastic depth, "row" mode) with
 * probability stochasticDepthProb · blockIndex / blocks, as torchvision does. Batch norms
 * follow torchvision's eps: 1e-5 for B0–B4, 1e-3 for efficientnet_b5, _b6 and _b7 (chosen by
 * the arch name, for its custom tables too); momentum 0.1 (layers.ts dabNorm).
 * @module
 */
import { add } from "../../ops/elementwise.ts";
import { stochasticDepth } from "../../ops/channels.ts";
import { globalAvgPool } from "../../ops/pool.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import {
  type ArchFamily,
  type Backbone,
  type BackboneBlock,
  blockSeed,
  type BuildContext,
  type Gate,
  gated,
  type Pass,
} from "../backbone.ts";
import { ConvNormAct, makeDivisible, type NormOptions, Seq, SqueezeExcitation } from "./layers.ts";
import { initBackbone, kaimingNormal, uniform, zeros } from "./init.ts";

/**
 * One stage of the table (torchvision's MBConvConfig after the width and depth
 * multipliers): expansion ratio, kernel, first stride, input and output channels, layers.
 */
export type EfficientNetRow = [
  expandRatio: number,
  kernel: number,
  stride: number,
  inputChannels: number,
  outChannels: number,
  numLayers: number,
];

/** An EfficientNet table. */
export interface EfficientNetConfig {
  /** The stages, already width- and depth-adjusted. */
  setting: EfficientNetRow[];
  /** Stochastic depth of the last block (torchvision's default 0.2). */
  stochasticDepthProb: number;
  /** Width of the last 1×1 conv; null: 4 × the last stage's output channels. */
  lastChannel: number | null;
}

/** torchvision's MBConv: `block` = [expand 1×1], dw k×k, SE, project 1×1 (no activation). */
export class MBConv extends Module implements BackboneBlock {
  readonly name: string;
  readonly gateable: boolean;
  /** torchvision's `block` Sequential. */
  readonly block: Seq;
  /** This block's stochastic depth probability. */
  readonly sdProb: number;
  /** Its index among the trunk's blocks (the stochastic depth seed's). */
  readonly index: number;

  /** `cin` → `cout` with `expandRatio`, `kernel` and `stride`. */
  constructor(
    name: string,
    index: number,
    row: { expandRatio: number; kernel: number; stride: number; cin: number; cout: number },
    sdProb: number,
    norm: NormOptions,
    ctx: BuildContext,
  ) {
    super();
    const { expandRatio, kernel, stride, cin, cout } = row;
    this.name = name;
    this.index = index;
    this.sdProb = sdProb;
    this.gateable = stride === 1 && cin === cout;
    const expanded = makeDivisible(cin * expandRatio, 8);
    this.block = this.child("block", new Seq());
    if (expanded !== cin) {
      this.block.add(new ConvNormAct(cin, expanded, ctx, { kernel: 1, act: "silu", ...norm }));
    }
    this.block.add(
      new ConvNormAct(expanded, expanded, ctx, {
        kernel,
        stride,
        groups: expanded,
        act: "silu",
        ...norm,
      }),
    );
    const squeeze = Math.max(1, Math.floor(cin / 4));
    this.block.add(
      new SqueezeExcitation(expanded, squeeze, ctx, { act: "silu", gate: "sigmoid" }),
    );
    this.block.add(new ConvNormAct(expanded, cout, ctx, { kernel: 1, act: "none", ...norm }));
  }

  forward(x: Tensor, pass: Pass, gate: Gate): Tensor {
    if (!this.gateable) {
      if (gate !== "execute") {
        throw new Error(
          `Cannot gate block "${this.name}": it has no residual connection, so it always executes`,
        );
      }
      return this.block.run(x, pass);
    }
    return gated(x, gate, () => {
      let r = this.block.run(x, pass);
      if (pass.training && this.sdProb > 0) {
        r = stochasticDepth(r, this.sdProb, true, blockSeed(pass, this.index));
      }
      return add(r, x);
    });
  }
}

/** The EfficientNet trunk. */
export class EfficientNetBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = EFFICIENTNET.classifier;
  readonly blocks: MBConv[] = [];
  /** `features.0`: 3×3 stride-2 ConvNormAct, SiLU. */
  readonly first: ConvNormAct;
  /** The last `features.<n>`: 1×1 ConvNormAct, SiLU (in the tail). */
  readonly last: ConvNormAct;

  /** Builds `arch` from table `c`. */
  constructor(arch: string, c: EfficientNetConfig, ctx: BuildContext) {
    super();
    this.arch = arch;
    const norm = efficientNetNorm(arch);
    const feats = this.child("features", new ModuleList());
    this.first = feats.add(
      "0",
      new ConvNormAct(3, c.setting[0][3], ctx, { kernel: 3, stride: 2, act: "silu", ...norm }),
    );
    const total = c.setting.reduce((n, row) => n + row[5], 0);
    let id = 0;
    c.setting.forEach(([expandRatio, kernel, stride, cin, cout, layers], s) => {
      const stage = feats.add(String(s + 1), new ModuleList());
      for (let j = 0; j < layers; j++) {
        const sd = c.stochasticDepthProb * id / total;
        const block = new MBConv(
          `features.${s + 1}.${j}`,
          id,
          { expandRatio, kernel, stride: j === 0 ? stride : 1, cin: j === 0 ? cin : cout, cout },
          sd,
          norm,
          ctx,
        );
        this.blocks.push(stage.add(String(j), block));
        id++;
      }
    });
    const lastIn = c.setting[c.setting.length - 1][4];
    const lastOut = c.lastChannel ?? 4 * lastIn;
    this.last = feats.add(
      String(c.setting.length + 1),
      new ConvNormAct(lastIn, lastOut, ctx, { kernel: 1, act: "silu", ...norm }),
    );
    this.features = lastOut;
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return this.first.run(images, pass);
  }

  tail(x: Tensor, pass: Pass): Tensor {
    return globalAvgPool(this.last.run(x, pass));
  }
}

/** torchvision's BatchNorm eps of `arch`: B5–B7 use 1e-3 (momentum: see layers.ts dabNorm). */
export function efficientNetNorm(arch: string): NormOptions {
  return /^efficientnet_b[567]$/.test(arch) ? { eps: 1e-3 } : {};
}

/** The B0 table before the multipliers (torchvision's `_efficientnet_conf`). */
const BASE: EfficientNetRow[] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

/**
 * torchvision's MBConvConfig at `widthMult` and `depthMult`: channels through
 * `_make_divisible(c · width, 8)`, layers `ceil(n · depth)`.
 */
export function efficientNetTable(widthMult: number, depthMult: number): EfficientNetConfig {
  return {
    setting: BASE.map(([t, k, s, cin, cout, n]) => [
      t,
      k,
      s,
      makeDivisible(cin * widthMult, 8),
      makeDivisible(cout * widthMult, 8),
      Math.ceil(n * depthMult),
    ]),
    stochasticDepthProb: 0.2,
    lastChannel: null,
  };
}

function isPosInt(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1;
}

/** EfficientNet B0–B7 (torchvision's builders; a custom table through `archConfig`). */
export const EFFICIENTNET: ArchFamily<EfficientNetConfig> = {
  variants: {
    efficientnet_b0: efficientNetTable(1.0, 1.0),
    efficientnet_b1: efficientNetTable(1.0, 1.1),
    efficientnet_b2: efficientNetTable(1.1, 1.2),
    efficientnet_b3: efficientNetTable(1.2, 1.4),
    efficientnet_b4: efficientNetTable(1.4, 1.8),
    efficientnet_b5: efficientNetTable(1.6, 2.2),
    efficientnet_b6: efficientNetTable(1.8, 2.6),
    efficientnet_b7: efficientNetTable(2.0, 3.1),
  },
  classifier: "classifier.1",
  gateable: true,
  /** torchvision: convs Kaiming fan-out (bias 0), Linear uniform(±1/√out_features) (bias 0). */
  init(backbone, rng) {
    initBackbone(backbone, rng, {
      convWeight: kaimingNormal("fan_out"),
      convBias: zeros,
      linearWeight: uniform((l) => 1 / Math.sqrt(l[0])),
      linearBias: zeros,
    });
  },
  parse(raw: unknown, source: string): EfficientNetConfig {
    const fail = (msg: string): never => {
      throw new Error(`Cannot read ${source}: ${msg}`);
    };
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(`the config must be an object: got ${JSON.stringify(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    const p = r.stochasticDepthProb;
    if (typeof p !== "number" || !(p >= 0 && p < 1)) {
      fail(`"stochasticDepthProb" must be a number in [0, 1): got ${JSON.stringify(p)}`);
    }
    const lastChannel = r.lastChannel ?? null;
    if (lastChannel !== null && !isPosInt(lastChannel)) {
      fail(
        `"lastChannel" must be a positive integer or null: got ${JSON.stringify(r.lastChannel)}`,
      );
    }
    const s = r.setting;
    if (!Array.isArray(s) || s.length === 0) {
      fail(
        `"setting" must be a non-empty list of [expandRatio, kernel, stride, inputChannels, ` +
          `outChannels, numLayers] rows: got ${JSON.stringify(s)}`,
      );
    }
    const setting = (s as unknown[]).map((row, i): EfficientNetRow => {
      const ok = Array.isArray(row) && row.length === 6 && typeof row[0] === "number" &&
        Number.isFinite(row[0]) && row[0] > 0 && isPosInt(row[1]) && row[1] % 2 === 1 &&
        (row[2] === 1 || row[2] === 2) && isPosInt(row[3]) && isPosInt(row[4]) &&
        isPosInt(row[5]);
      if (!ok) {
        return fail(
          `"setting[${i}]" must be [expandRatio > 0, odd kernel, stride ∈ {1, 2}, ` +
            `inputChannels ≥ 1, outChannels ≥ 1, numLayers ≥ 1]: got ${JSON.stringify(row)}`,
        );
      }
      return row as EfficientNetRow;
    });
    for (let i = 1; i < setting.length; i++) {
      if (setting[i][3] !== setting[i - 1][4]) {
        fail(
          `"setting[${i}]" inputChannels must equal the previous row's outChannels ` +
            `(${setting[i - 1][4]}): got ${setting[i][3]}`,
        );
      }
    }
    return {
      setting,
      stochasticDepthProb: p as number,
      lastChannel: lastChannel as number | null,
    };
  },
  build(arch: string, config: EfficientNetConfig, ctx: BuildContext): Backbone {
    return new EfficientNetBackbone(arch, config, ctx);
  },
};
