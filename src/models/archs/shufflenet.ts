/**
 * ShuffleNetV2 (Ma et al., arXiv:1807.11164) from torchvision's tables: shufflenet_v2_x0_5,
 * _x1_0, _x1_5, _x2_0. Names are torchvision's: `conv1` (conv `0`, BN `1`), `stage2..4` of
 * InvertedResidual units (`branch1` only where the unit downsamples: 3×3 depthwise `0`,
 * BN `1`, 1×1 `2`, BN `3`; `branch2`: 1×1 `0`, BN `1`, 3×3 depthwise `3`, BN `4`, 1×1
 * `5`, BN `6`), `conv5`, and `fc` (the Linear the heads replace). No unit is residual (its
 * output is a channel shuffle of a concatenation), so none is gateable.
 * @module
 */
import { relu } from "../../ops/elementwise.ts";
import { channelShuffle, concatChannels, splitChannels } from "../../ops/channels.ts";
import { globalAvgPool, maxPool2d } from "../../ops/pool.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { ArchFamily, Backbone, BackboneBlock, BuildContext, Pass } from "../backbone.ts";
import { Conv, Norm, Seq } from "./layers.ts";
import { initBackbone, pytorchDefault } from "./init.ts";

/** A ShuffleNetV2 table. */
export interface ShuffleNetV2Config {
  /** Units of stage2, stage3, stage4 (torchvision: 4, 8, 4). */
  stagesRepeats: [number, number, number];
  /** Output channels of conv1, stage2, stage3, stage4 and conv5. */
  stagesOutChannels: [number, number, number, number, number];
}

/** torchvision's InvertedResidual: split (stride 1) or two branches (stride 2), shuffle. */
export class InvertedResidual extends Module {
  readonly stride: number;
  readonly branch1: Seq | null;
  readonly branch2: Seq;
  /** `inp` → `oup` channels at `stride` (1 requires inp = oup). */
  constructor(inp: number, oup: number, stride: number, ctx: BuildContext) {
    super();
    this.stride = stride;
    const bf = oup >> 1;
    if (stride > 1) {
      const b1 = this.branch1 = this.child("branch1", new Seq());
      b1.add(new Conv(inp, inp, ctx, { kernel: 3, stride, padding: 1, groups: inp }));
      b1.add(new Norm(inp, ctx));
      b1.add(new Conv(inp, bf, ctx, { kernel: 1 }));
      b1.add(new Norm(bf, ctx));
      b1.fn((x) => relu(x));
    } else {
      this.branch1 = null;
    }
    const b2 = this.branch2 = this.child("branch2", new Seq());
    b2.add(new Conv(stride > 1 ? inp : bf, bf, ctx, { kernel: 1 }));
    b2.add(new Norm(bf, ctx));
    b2.fn((x) => relu(x));
    b2.add(new Conv(bf, bf, ctx, { kernel: 3, stride, padding: 1, groups: bf }));
    b2.add(new Norm(bf, ctx));
    b2.add(new Conv(bf, bf, ctx, { kernel: 1 }));
    b2.add(new Norm(bf, ctx));
    b2.fn((x) => relu(x));
  }
  forward(x: Tensor, pass: Pass): Tensor {
    let out: Tensor;
    if (this.branch1 === null) {
      const half = x.shape[1] >> 1;
      const [x1, x2] = splitChannels(x, [half, x.shape[1] - half]);
      out = concatChannels([x1, this.branch2.run(x2, pass)]);
    } else {
      out = concatChannels([this.branch1.run(x, pass), this.branch2.run(x, pass)]);
    }
    return channelShuffle(out, 2);
  }
}

/** The ShuffleNetV2 trunk: conv1 → maxpool stem, the units, conv5 → mean tail. */
export class ShuffleNetV2Backbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = SHUFFLENET_V2.classifier;
  readonly blocks: BackboneBlock[] = [];
  readonly conv1: Seq;
  readonly conv5: Seq;

  /** Builds `arch` from `config`. */
  constructor(arch: string, config: ShuffleNetV2Config, ctx: BuildContext) {
    super();
    this.arch = arch;
    const ch = config.stagesOutChannels;
    this.conv1 = this.child("conv1", new Seq());
    this.conv1.add(new Conv(3, ch[0], ctx, { kernel: 3, stride: 2, padding: 1 }));
    this.conv1.add(new Norm(ch[0], ctx));
    this.conv1.fn((x) => relu(x));
    let cin = ch[0];
    for (let s = 0; s < 3; s++) {
      const name = `stage${s + 2}`;
      const stage = this.child(name, new ModuleList());
      for (let j = 0; j < config.stagesRepeats[s]; j++) {
        const unit = stage.add(
          String(j),
          new InvertedResidual(j === 0 ? cin : ch[s + 1], ch[s + 1], j === 0 ? 2 : 1, ctx),
        );
        this.blocks.push({
          name: `${name}.${j}`,
          gateable: false,
          forward: (x: Tensor, pass: Pass) => unit.forward(x, pass),
        });
      }
      cin = ch[s + 1];
    }
    this.conv5 = this.child("conv5", new Seq());
    this.conv5.add(new Conv(cin, ch[4], ctx, { kernel: 1 }));
    this.conv5.add(new Norm(ch[4], ctx));
    this.conv5.fn((x) => relu(x));
    this.features = ch[4];
  }

  /** conv1 → 3×3/2 max pool (padding 1). */
  stem(images: Tensor, pass: Pass): Tensor {
    return maxPool2d(this.conv1.run(images, pass), { kernel: 3, stride: 2, padding: 1 });
  }

  /** conv5 → mean over H×W: (N, features). */
  tail(x: Tensor, pass: Pass): Tensor {
    return globalAvgPool(this.conv5.run(x, pass));
  }
}

function fail(source: string, msg: string): never {
  throw new Error(`Cannot read ${source}: ${msg}`);
}

function positiveInts(v: unknown, n: number): v is number[] {
  return Array.isArray(v) && v.length === n && v.every((x) => Number.isInteger(x) && x >= 1);
}

/** ShuffleNetV2 x0.5 / x1.0 / x1.5 / x2.0 (torchvision's tables). */
export const SHUFFLENET_V2: ArchFamily<ShuffleNetV2Config> = {
  variants: {
    shufflenet_v2_x0_5: { stagesRepeats: [4, 8, 4], stagesOutChannels: [24, 48, 96, 192, 1024] },
    shufflenet_v2_x1_0: {
      stagesRepeats: [4, 8, 4],
      stagesOutChannels: [24, 116, 232, 464, 1024],
    },
    shufflenet_v2_x1_5: {
      stagesRepeats: [4, 8, 4],
      stagesOutChannels: [24, 176, 352, 704, 1024],
    },
    shufflenet_v2_x2_0: {
      stagesRepeats: [4, 8, 4],
      stagesOutChannels: [24, 244, 488, 976, 2048],
    },
  },
  classifier: "fc",
  gateable: false,
  /** torchvision: PyTorch's defaults, uniform(±1/√fan_in) for every weight and bias. */
  init(backbone, rng) {
    initBackbone(backbone, rng, {
      convWeight: pytorchDefault,
      convBias: pytorchDefault,
      linearWeight: pytorchDefault,
      linearBias: pytorchDefault,
    });
  },
  parse(raw: unknown, source: string): ShuffleNetV2Config {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(source, `the ShuffleNetV2 config must be an object: got ${JSON.stringify(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    if (!positiveInts(r.stagesRepeats, 3)) {
      fail(
        source,
        `"stagesRepeats" must be 3 positive integers: got ${JSON.stringify(r.stagesRepeats)}`,
      );
    }
    const ch = r.stagesOutChannels;
    if (!positiveInts(ch, 5)) {
      fail(source, `"stagesOutChannels" must be 5 positive integers: got ${JSON.stringify(ch)}`);
    }
    if (!(ch as number[]).slice(1, 4).every((c) => c % 2 === 0)) {
      fail(
        source,
        `"stagesOutChannels" must be even for stage2..stage4 (two branches of half the ` +
          `channels): got ${JSON.stringify(ch)}`,
      );
    }
    return {
      stagesRepeats: [...r.stagesRepeats as number[]] as ShuffleNetV2Config["stagesRepeats"],
      stagesOutChannels: [...ch as number[]] as ShuffleNetV2Config["stagesOutChannels"],
    };
  },
  build(arch: string, config: ShuffleNetV2Config, ctx: BuildContext): Backbone {
    return new ShuffleNetV2Backbone(arch, config, ctx);
  },
};
