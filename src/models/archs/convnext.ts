/**
 * ConvNeXt (Liu et al., arXiv:2201.03545) from torchvision's tables: convnext_tiny, _small,
 * _base and _large. Names are torchvision's: `features.0` the 4×4/4 stem (conv `0`,
 * LayerNorm2d `1`), `features.1, 3, 5, 7` the stages of CNBlocks, `features.2, 4, 6` the
 * downsampling layers (LayerNorm2d `0`, 2×2/2 conv `1`), `classifier.0` the LayerNorm2d of
 * the tail (`classifier.2` is the Linear the heads replace).
 *
 * CNBlock runs in NCHW without permutes: torchvision's two Linears (`block.3`, `block.5`,
 * weights (O, I) as in its files) are 1×1 convolutions with the weight reshaped to
 * (O, I, 1, 1) in the forward, its LayerNorm (`block.2`) a LayerNorm over channels. Each
 * CNBlock is residual, so AdaShare may skip it (identity); in training its branch is
 * dropped per sample with torchvision's linearly increasing stochastic-depth probability.
 * @module
 */
import { conv2d } from "../../ops/conv.ts";
import { add, gelu, mul } from "../../ops/elementwise.ts";
import { stochasticDepth } from "../../ops/channels.ts";
import { globalAvgPool } from "../../ops/pool.ts";
import { reshape } from "../../ops/shape.ts";
import { full, type Tensor } from "../../tensor/tensor.ts";
import { Linear } from "../../nn/linear.ts";
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
import { Conv, type Layer, LayerNorm2d, Seq } from "./layers.ts";
import { initBackbone, truncNormal, zeros } from "./init.ts";

/** One stage: `[inputChannels, outChannels | null, numLayers]` (torchvision's CNBlockConfig). */
export type ConvNeXtStage = [number, number | null, number];

/** A ConvNeXt table. */
export interface ConvNeXtConfig {
  /**
   * The stages in order; a stage with outChannels downsamples (LayerNorm2d, 2×2/2 conv)
   * to it after its blocks, and the next stage's inputChannels must equal it.
   */
  stages: ConvNeXtStage[];
  /** The last block's stochastic-depth probability (block k of B: p·k/(B − 1)). */
  stochasticDepthProb: number;
  /** Initial value of every block's layer_scale (torchvision: 1e-6). */
  layerScale: number;
}

/**
 * torchvision's nn.Linear applied to every position of an NCHW tensor: a 1×1 convolution
 * whose weight is the Linear's (O, I) weight reshaped to (O, I, 1, 1); keys `weight` (O, I)
 * and `bias` (O) as in torchvision's files.
 */
export class PointwiseLinear extends Module implements Layer {
  readonly linear: Linear;
  /** `cin` → `cout` with PyTorch's default Linear initialisation. */
  constructor(cin: number, cout: number, ctx: BuildContext) {
    super();
    this.linear = this.adopt(new Linear(cin, cout, ctx.rng, ctx.backend));
  }
  run(x: Tensor): Tensor {
    const [O, I] = this.linear.weight.shape;
    return conv2d(x, reshape(this.linear.weight, [O, I, 1, 1]), { bias: this.linear.bias });
  }
}

/**
 * torchvision's CNBlock: 7×7 depthwise conv (`block.0`) → LayerNorm (`block.2`) → Linear
 * 4C (`block.3`) → GELU → Linear C (`block.5`) → · layer_scale (C, 1, 1) → stochastic
 * depth → + input. Indices 1 and 6 are torchvision's permutes (no-ops in NCHW).
 */
export class CNBlock extends Module {
  readonly block: Seq;
  readonly layerScale: Tensor;
  /** Stochastic-depth probability of this block's branch in training. */
  readonly sdProb: number;
  /** A block over `dim` channels. */
  constructor(dim: number, layerScale: number, sdProb: number, ctx: BuildContext) {
    super();
    this.sdProb = sdProb;
    this.block = this.child("block", new Seq());
    this.block.add(new Conv(dim, dim, ctx, { kernel: 7, padding: 3, groups: dim, bias: true }));
    this.block.fn((x) => x); // Permute([0, 2, 3, 1])
    this.block.add(new LayerNorm2d(dim, ctx, 1e-6));
    this.block.add(new PointwiseLinear(dim, 4 * dim, ctx));
    this.block.fn((x) => gelu(x));
    this.block.add(new PointwiseLinear(4 * dim, dim, ctx));
    this.block.fn((x) => x); // Permute([0, 3, 1, 2])
    this.layerScale = this.param(
      "layer_scale",
      full([dim, 1, 1], layerScale, { backend: ctx.backend }),
    );
  }
  /** The block under `gate` (skipped: the input); `seed` draws the stochastic-depth rows. */
  forward(x: Tensor, pass: Pass, gate: Gate, seed: number): Tensor {
    return gated(x, gate, () => {
      let r = mul(this.block.run(x, pass), this.layerScale);
      if (pass.training && this.sdProb > 0) r = stochasticDepth(r, this.sdProb, true, seed);
      return add(r, x);
    });
  }
}

/** The ConvNeXt trunk: features.0 stem, stages and downsampling layers, pooled LayerNorm. */
export class ConvNeXtBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = CONVNEXT.classifier;
  readonly blocks: BackboneBlock[] = [];
  /** features.0: Conv2dNormActivation(3, C₀, 4, stride 4, LayerNorm2d, no activation). */
  readonly stemLayers: Seq;
  /** classifier.0: the LayerNorm2d before the flatten. */
  readonly headNorm: LayerNorm2d;

  /** Builds `arch` from `config`. */
  constructor(arch: string, config: ConvNeXtConfig, ctx: BuildContext) {
    super();
    this.arch = arch;
    const feats = this.child("features", new ModuleList());
    const stages = config.stages;
    this.stemLayers = feats.add("0", new Seq());
    this.stemLayers.add(
      new Conv(3, stages[0][0], ctx, { kernel: 4, stride: 4, padding: 0, bias: true }),
    );
    this.stemLayers.add(new LayerNorm2d(stages[0][0], ctx, 1e-6));
    const total = stages.reduce((s, st) => s + st[2], 0);
    let index = 1, blockId = 0, width = stages[0][0];
    for (const [cin, cout, layers] of stages) {
      const stageName = `features.${index}`;
      const stage = feats.add(String(index++), new ModuleList());
      for (let j = 0; j < layers; j++) {
        const sdProb = total > 1 ? config.stochasticDepthProb * blockId / (total - 1) : 0;
        blockId++;
        const blk = stage.add(String(j), new CNBlock(cin, config.layerScale, sdProb, ctx));
        const i = this.blocks.length;
        this.blocks.push({
          name: `${stageName}.${j}`,
          gateable: true,
          forward: (x: Tensor, pass: Pass, gate: Gate) =>
            blk.forward(x, pass, gate, blockSeed(pass, i)),
        });
      }
      width = cin;
      if (cout !== null) {
        const name = `features.${index}`;
        const down = feats.add(String(index++), new Seq());
        down.add(new LayerNorm2d(cin, ctx, 1e-6));
        down.add(new Conv(cin, cout, ctx, { kernel: 2, stride: 2, padding: 0, bias: true }));
        this.blocks.push({
          name,
          gateable: false,
          forward: (x: Tensor, pass: Pass) => down.run(x, pass),
        });
        width = cout;
      }
    }
    this.features = width;
    const cls = this.child("classifier", new ModuleList());
    this.headNorm = cls.add("0", new LayerNorm2d(width, ctx, 1e-6));
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return this.stemLayers.run(images, pass);
  }

  /** avgpool → classifier.0 (LayerNorm2d) → flatten: (N, C). */
  tail(x: Tensor): Tensor {
    const [N, C] = x.shape;
    const pooled = reshape(globalAvgPool(x), [N, C, 1, 1]);
    return reshape(this.headNorm.run(pooled), [N, C]);
  }
}

function fail(source: string, msg: string): never {
  throw new Error(`Cannot read ${source}: ${msg}`);
}

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;

/** ConvNeXt tiny/small/base/large (torchvision's CNBlockConfig tables). */
export const CONVNEXT: ArchFamily<ConvNeXtConfig> = {
  variants: {
    convnext_tiny: {
      stages: [[96, 192, 3], [192, 384, 3], [384, 768, 9], [768, null, 3]],
      stochasticDepthProb: 0.1,
      layerScale: 1e-6,
    },
    convnext_small: {
      stages: [[96, 192, 3], [192, 384, 3], [384, 768, 27], [768, null, 3]],
      stochasticDepthProb: 0.4,
      layerScale: 1e-6,
    },
    convnext_base: {
      stages: [[128, 256, 3], [256, 512, 3], [512, 1024, 27], [1024, null, 3]],
      stochasticDepthProb: 0.5,
      layerScale: 1e-6,
    },
    convnext_large: {
      stages: [[192, 384, 3], [384, 768, 3], [768, 1536, 27], [1536, null, 3]],
      stochasticDepthProb: 0.5,
      layerScale: 1e-6,
    },
  },
  classifier: "classifier.2",
  gateable: true,
  /** torchvision: trunc_normal_(std 0.02, bounds ±2) for Conv2d and Linear weights, zero biases. */
  init(backbone, rng) {
    const w = truncNormal(0.02, 0, -2, 2);
    initBackbone(backbone, rng, {
      convWeight: w,
      convBias: zeros,
      linearWeight: w,
      linearBias: zeros,
    });
  },
  parse(raw: unknown, source: string): ConvNeXtConfig {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(source, `the ConvNeXt config must be an object: got ${JSON.stringify(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    const st = r.stages;
    const stageOk = (s: unknown): s is ConvNeXtStage =>
      Array.isArray(s) && s.length === 3 && isPosInt(s[0]) && (s[1] === null || isPosInt(s[1])) &&
      isPosInt(s[2]);
    if (!Array.isArray(st) || st.length === 0 || !st.every(stageOk)) {
      fail(
        source,
        `"stages" must be a non-empty list of [inputChannels, outChannels or null, numLayers] ` +
          `(positive integers): got ${JSON.stringify(st)}`,
      );
    }
    const stages = st as ConvNeXtStage[];
    for (let i = 0; i + 1 < stages.length; i++) {
      const out = stages[i][1] ?? stages[i][0];
      if (stages[i + 1][0] !== out) {
        fail(
          source,
          `"stages" must chain: stage ${i + 1} has inputChannels ${stages[i + 1][0]}, ` +
            `stage ${i} gives ${out}: got ${JSON.stringify(st)}`,
        );
      }
    }
    const p = r.stochasticDepthProb;
    if (typeof p !== "number" || !(p >= 0 && p < 1)) {
      fail(source, `"stochasticDepthProb" must be a number in [0, 1): got ${JSON.stringify(p)}`);
    }
    const ls = r.layerScale;
    if (typeof ls !== "number" || !Number.isFinite(ls)) {
      fail(source, `"layerScale" must be a finite number: got ${JSON.stringify(ls)}`);
    }
    return {
      stages: stages.map((s) => [s[0], s[1], s[2]] as ConvNeXtStage),
      stochasticDepthProb: p as number,
      layerScale: ls as number,
    };
  },
  build(arch: string, config: ConvNeXtConfig, ctx: BuildContext): Backbone {
    return new ConvNeXtBackbone(arch, config, ctx);
  },
};
