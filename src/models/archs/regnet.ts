/**
 * RegNetX and RegNetY (Radosavovic et al., arXiv:2003.13678) from torchvision 0.14's
 * builders, with torchvision's parameter names (`stem.0.weight`,
 * `trunk_output.block2.block2-0.f.b.0.weight`, `….f.se.fc1.bias`, `….proj.1.…`, `fc`) and
 * DAB batch norm (eps 1e-5, momentum 0.1). The named variants' per-stage tables come from
 * {@link regnetBlockParams}, a port of torchvision's `BlockParams.from_init_params`
 * (float32 arithmetic as torch computes it, then `_adjust_widths_groups_compatibilty`).
 *
 * Every ResBottleneckBlock is a gateable block: executed it is act(skip + f(x)); skipped it
 * is its skip path alone: `proj(x)` (1×1 conv and BN) where the block has one, else x.
 * @module
 */
import { add, relu } from "../../ops/elementwise.ts";
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
import { ConvNormAct, type Layer, makeDivisible, SqueezeExcitation } from "./layers.ts";
import { fanOut, initBackbone, normal, pytorchDefault, zeros } from "./init.ts";

/** A RegNet's per-stage table (torchvision's BlockParams after quantisation). */
export interface RegNetConfig {
  /** Output width of the 3×3 stride-2 stem (32 in every torchvision variant). */
  stemWidth: number;
  /** Blocks per stage. */
  depths: number[];
  /** Output width of each stage. */
  widths: number[];
  /** Channels per group of each stage's 3×3 conv. */
  groupWidths: number[];
  /** Bottleneck width / stage width of each stage (1 in every torchvision variant). */
  bottleneckMultipliers: number[];
  /** Stride of each stage's first block (2). */
  strides: number[];
  /** Squeeze-excitation ratio of the block's input width (RegNetY: 0.25), or null: none. */
  seRatio: number | null;
}

/** Python's round() (half to even), as torch.round and `int(round(...))` compute it. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision's RegNet parameters (the `regnet_*` builders' arguments). */
export interface RegNetInitParams {
  depth: number;
  w0: number;
  wa: number;
  wm: number;
  groupWidth: number;
  bottleneckMultiplier?: number;
  seRatio?: number | null;
}

/**
 * torchvision's `BlockParams.from_init_params`: per-block widths w_0·w_m^round(log(u_j /
 * w_0) / log w_m), u_j = w_0 + w_a·j, quantised to multiples of 8 (in float32, as torch
 * computes them), grouped into stages of equal width, then widths and group widths made
 * compatible. The stem width is torchvision's 32.
 * @throws {RangeError} on torchvision's "Invalid RegNet settings"
 */
export function regnetBlockParams(p: RegNetInitParams): RegNetConfig {
  const { depth, w0, wa, wm, groupWidth } = p;
  const bm = p.bottleneckMultiplier ?? 1.0;
  const QUANT = 8;
  const STRIDE = 2;
  if (wa < 0 || w0 <= 0 || wm <= 1 || w0 % 8 !== 0) {
    throw new RangeError(
      `Invalid RegNet settings: w_a ${wa} must be ≥ 0, w_0 ${w0} a positive multiple of 8, ` +
        `w_m ${wm} > 1`,
    );
  }
  const f = Math.fround;
  const fwa = f(wa), fwm = f(wm), logWm = f(Math.log(wm));
  const blockWidths: number[] = [];
  for (let j = 0; j < depth; j++) {
    const u = f(f(j * fwa) + w0);
    const capacity = roundHalfEven(f(f(Math.log(f(u / w0))) / logWm));
    const w = f(w0 * f(Math.pow(fwm, capacity)));
    blockWidths.push(Math.trunc(roundHalfEven(f(w / QUANT)) * QUANT));
  }
  const numStages = new Set(blockWidths).size;
  // A stage starts wherever the width changes (sentinel 0 on both ends).
  const starts: number[] = [];
  for (let j = 0; j <= depth; j++) {
    const w = j < depth ? blockWidths[j] : 0;
    const prev = j > 0 ? blockWidths[j - 1] : 0;
    if (w !== prev) starts.push(j);
  }
  let stageWidths = starts.filter((j) => j < depth).map((j) => blockWidths[j]);
  const depths = starts.slice(1).map((j, i) => j - starts[i]);
  const strides = new Array<number>(numStages).fill(STRIDE);
  const bms = new Array<number>(numStages).fill(bm);
  let groupWidths = new Array<number>(numStages).fill(groupWidth);
  // _adjust_widths_groups_compatibilty (zip: the shorter list wins).
  const n = Math.min(stageWidths.length, bms.length, groupWidths.length);
  const wBot = stageWidths.slice(0, n).map((w, i) => Math.trunc(w * bms[i]));
  const gMin = wBot.map((w, i) => Math.min(groupWidths[i], w));
  const wsBot = wBot.map((w, i) => makeDivisible(w, gMin[i]));
  stageWidths = wsBot.map((w, i) => Math.trunc(w / bms[i]));
  groupWidths = gMin;
  // RegNet zips widths, strides, depths, group widths and multipliers.
  const m = Math.min(stageWidths.length, strides.length, depths.length, groupWidths.length);
  return {
    stemWidth: 32,
    depths: depths.slice(0, m),
    widths: stageWidths.slice(0, m),
    groupWidths: groupWidths.slice(0, m),
    bottleneckMultipliers: bms.slice(0, m),
    strides: strides.slice(0, m),
    seRatio: p.seRatio ?? null,
  };
}

/** torchvision's BottleneckTransform `f`: `a` 1×1, `b` 3×3 grouped (stride), [`se`], `c` 1×1. */
export class BottleneckTransform extends Module implements Layer {
  readonly a: ConvNormAct;
  readonly b: ConvNormAct;
  readonly se: SqueezeExcitation | null;
  readonly c: ConvNormAct;
  /** `win` → `wout` through a bottleneck of round(wout · bm) channels. */
  constructor(
    win: number,
    wout: number,
    stride: number,
    groupWidth: number,
    bm: number,
    seRatio: number | null,
    ctx: BuildContext,
  ) {
    super();
    const wb = roundHalfEven(wout * bm);
    const g = Math.floor(wb / groupWidth);
    this.a = this.child("a", new ConvNormAct(win, wb, ctx, { kernel: 1, act: "relu" }));
    this.b = this.child(
      "b",
      new ConvNormAct(wb, wb, ctx, { kernel: 3, stride, groups: g, act: "relu" }),
    );
    this.se = seRatio
      ? this.child(
        "se",
        new SqueezeExcitation(wb, roundHalfEven(seRatio * win), ctx, {
          act: "relu",
          gate: "sigmoid",
        }),
      )
      : null;
    this.c = this.child("c", new ConvNormAct(wb, wout, ctx, { kernel: 1, act: "none" }));
  }
  run(x: Tensor, pass: Pass): Tensor {
    let h = this.b.run(this.a.run(x, pass), pass);
    if (this.se) h = this.se.run(h);
    return this.c.run(h, pass);
  }
}

/** torchvision's ResBottleneckBlock: relu(skip + f(x)), skip = proj(x) or x. */
export class ResBottleneckBlock extends Module implements BackboneBlock {
  readonly name: string;
  readonly gateable = true;
  /** The projection shortcut (1×1 conv with the stride, BN), where width or stride change. */
  readonly proj: ConvNormAct | null;
  /** The bottleneck transform. */
  readonly f: BottleneckTransform;
  /** Builds one block (see {@link BottleneckTransform}). */
  constructor(
    name: string,
    win: number,
    wout: number,
    stride: number,
    groupWidth: number,
    bm: number,
    seRatio: number | null,
    ctx: BuildContext,
  ) {
    super();
    this.name = name;
    this.proj = win !== wout || stride !== 1
      ? this.child("proj", new ConvNormAct(win, wout, ctx, { kernel: 1, stride, act: "none" }))
      : null;
    this.f = this.child(
      "f",
      new BottleneckTransform(win, wout, stride, groupWidth, bm, seRatio, ctx),
    );
  }
  forward(x: Tensor, pass: Pass, gate: Gate): Tensor {
    const skip = this.proj ? this.proj.run(x, pass) : x;
    return gated(skip, gate, () => relu(add(skip, this.f.run(x, pass))));
  }
}

/** The RegNet trunk: `stem`, `trunk_output.block<i>.block<i>-<j>`, avgpool. */
export class RegNetBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = REGNET.classifier;
  readonly blocks: ResBottleneckBlock[] = [];
  /** `stem`: 3×3 stride-2 ConvNormAct, ReLU. */
  readonly first: ConvNormAct;

  /** Builds `arch` from table `c`. */
  constructor(arch: string, c: RegNetConfig, ctx: BuildContext) {
    super();
    this.arch = arch;
    this.first = this.child(
      "stem",
      new ConvNormAct(3, c.stemWidth, ctx, { kernel: 3, stride: 2, act: "relu" }),
    );
    const trunk = this.child("trunk_output", new ModuleList());
    let width = c.stemWidth;
    for (let i = 0; i < c.depths.length; i++) {
      const stageName = `block${i + 1}`;
      const stage = trunk.add(stageName, new ModuleList());
      for (let j = 0; j < c.depths[i]; j++) {
        const name = `${stageName}-${j}`;
        const block = new ResBottleneckBlock(
          `trunk_output.${stageName}.${name}`,
          j === 0 ? width : c.widths[i],
          c.widths[i],
          j === 0 ? c.strides[i] : 1,
          c.groupWidths[i],
          c.bottleneckMultipliers[i],
          c.seRatio,
          ctx,
        );
        this.blocks.push(stage.add(name, block));
      }
      width = c.widths[i];
    }
    this.features = width;
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return this.first.run(images, pass);
  }

  tail(x: Tensor): Tensor {
    return globalAvgPool(x);
  }
}

const Y = 0.25;

/** torchvision's `regnet_*` builders' parameters. */
export const REGNET_INIT_PARAMS: Readonly<Record<string, RegNetInitParams>> = {
  regnet_y_400mf: { depth: 16, w0: 48, wa: 27.89, wm: 2.09, groupWidth: 8, seRatio: Y },
  regnet_y_800mf: { depth: 14, w0: 56, wa: 38.84, wm: 2.4, groupWidth: 16, seRatio: Y },
  regnet_y_1_6gf: { depth: 27, w0: 48, wa: 20.71, wm: 2.65, groupWidth: 24, seRatio: Y },
  regnet_y_3_2gf: { depth: 21, w0: 80, wa: 42.63, wm: 2.66, groupWidth: 24, seRatio: Y },
  regnet_y_8gf: { depth: 17, w0: 192, wa: 76.82, wm: 2.19, groupWidth: 56, seRatio: Y },
  regnet_y_16gf: { depth: 18, w0: 200, wa: 106.23, wm: 2.48, groupWidth: 112, seRatio: Y },
  regnet_y_32gf: { depth: 20, w0: 232, wa: 115.89, wm: 2.53, groupWidth: 232, seRatio: Y },
  regnet_y_128gf: { depth: 27, w0: 456, wa: 160.83, wm: 2.52, groupWidth: 264, seRatio: Y },
  regnet_x_400mf: { depth: 22, w0: 24, wa: 24.48, wm: 2.54, groupWidth: 16 },
  regnet_x_800mf: { depth: 16, w0: 56, wa: 35.73, wm: 2.28, groupWidth: 16 },
  regnet_x_1_6gf: { depth: 18, w0: 80, wa: 34.01, wm: 2.25, groupWidth: 24 },
  regnet_x_3_2gf: { depth: 25, w0: 88, wa: 26.31, wm: 2.25, groupWidth: 48 },
  regnet_x_8gf: { depth: 23, w0: 80, wa: 49.56, wm: 2.88, groupWidth: 120 },
  regnet_x_16gf: { depth: 22, w0: 216, wa: 55.59, wm: 2.1, groupWidth: 128 },
  regnet_x_32gf: { depth: 23, w0: 320, wa: 69.86, wm: 2.0, groupWidth: 168 },
};

function isPosInt(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1;
}

/** RegNetX and RegNetY (torchvision's builders; a custom table through `archConfig`). */
export const REGNET: ArchFamily<RegNetConfig> = {
  variants: Object.fromEntries(
    Object.entries(REGNET_INIT_PARAMS).map(([name, p]) => [name, regnetBlockParams(p)]),
  ),
  classifier: "fc",
  gateable: true,
  /**
   * torchvision: convs Normal(0, √(2/fan_out)), Linear Normal(0, 0.01) with bias 0; the SE
   * convs' biases keep PyTorch's default, uniform(±1/√fan_in).
   */
  init(backbone, rng) {
    initBackbone(backbone, rng, {
      convWeight: normal((l) => Math.sqrt(2 / fanOut(l))),
      convBias: pytorchDefault,
      linearWeight: normal(0.01),
      linearBias: zeros,
    });
  },
  parse(raw: unknown, source: string): RegNetConfig {
    const fail = (msg: string): never => {
      throw new Error(`Cannot read ${source}: ${msg}`);
    };
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(`the config must be an object: got ${JSON.stringify(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    if (!isPosInt(r.stemWidth)) {
      fail(`"stemWidth" must be a positive integer: got ${JSON.stringify(r.stemWidth)}`);
    }
    const d = r.depths;
    if (!Array.isArray(d) || d.length === 0 || !d.every(isPosInt)) {
      fail(`"depths" must be a non-empty list of positive integers: got ${JSON.stringify(d)}`);
    }
    const stages = (d as number[]).length;
    const list = (field: string, ok: (v: unknown) => boolean, what: string): number[] => {
      const v = r[field];
      if (!Array.isArray(v) || v.length !== stages || !v.every(ok)) {
        return fail(
          `"${field}" must be a list of ${stages} ${what} (one per stage): got ${
            JSON.stringify(v)
          }`,
        );
      }
      return v as number[];
    };
    const widths = list("widths", isPosInt, "positive integers");
    const groupWidths = list("groupWidths", isPosInt, "positive integers");
    const bms = list(
      "bottleneckMultipliers",
      (v) => typeof v === "number" && Number.isFinite(v) && v > 0,
      "positive numbers",
    );
    const strides = list("strides", (v) => v === 1 || v === 2, "strides (1 or 2)");
    const se = r.seRatio ?? null;
    if (se !== null && !(typeof se === "number" && Number.isFinite(se) && se > 0)) {
      fail(`"seRatio" must be a positive number or null: got ${JSON.stringify(r.seRatio)}`);
    }
    widths.forEach((w, i) => {
      const wb = roundHalfEven(w * bms[i]);
      const g = Math.floor(wb / groupWidths[i]);
      if (g < 1 || wb % g !== 0) {
        fail(
          `"groupWidths[${i}]" must be at most the stage's bottleneck width ${wb} ` +
            `(round(widths[${i}] · bottleneckMultipliers[${i}])) and give a group count ` +
            `that divides it: got ${groupWidths[i]}`,
        );
      }
    });
    return {
      stemWidth: r.stemWidth as number,
      depths: d as number[],
      widths,
      groupWidths,
      bottleneckMultipliers: bms,
      strides,
      seRatio: se as number | null,
    };
  },
  build(arch: string, config: RegNetConfig, ctx: BuildContext): Backbone {
    return new RegNetBackbone(arch, config, ctx);
  },
};
