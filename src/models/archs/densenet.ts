/**
 * DenseNet-BC (Huang et al., arXiv:1608.06993) from torchvision's tables: densenet121,
 * 161, 169 and 201. Names are torchvision's: `features.conv0`, `features.norm0`, the dense
 * blocks `features.denseblock<b>.denselayer<l>` (`norm1`, `conv1` 1×1 to bnSize·growth,
 * `norm2`, `conv2` 3×3 to growth), the transitions `features.transition<b>` (`norm`,
 * `conv` 1×1 halving the channels, 2×2/2 average pool), `features.norm5`, and
 * `classifier` (the Linear the heads replace).
 *
 * Each dense layer is one block: x → concat(x, layer(x)), so a block's output is its
 * dense block's running concatenation, as torchvision's. Transitions are blocks of their
 * own. None has a residual path, so none is gateable.
 *
 * Note: torchvision's ImageNet files name the dense layers' modules with the legacy keys
 * `norm.1`, `conv.1`, … (torchvision renames them on load to `norm1`, `conv1`, …).
 * @module
 */
import { relu } from "../../ops/elementwise.ts";
import { concatChannels } from "../../ops/channels.ts";
import { avgPool2d, globalAvgPool, maxPool2d } from "../../ops/pool.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import type { ArchFamily, Backbone, BackboneBlock, BuildContext, Pass } from "../backbone.ts";
import { Conv, Norm } from "./layers.ts";
import { initBackbone, kaimingNormal, zeros } from "./init.ts";

/** A DenseNet table. */
export interface DenseNetConfig {
  /** Channels each dense layer adds (k). */
  growthRate: number;
  /** Dense layers per dense block (torchvision: 4 blocks). */
  blockConfig: number[];
  /** Channels of the stem convolution. */
  numInitFeatures: number;
  /** Bottleneck width factor: conv1 gives bnSize·growthRate channels (torchvision: 4). */
  bnSize: number;
}

/** torchvision's _DenseLayer: BN → ReLU → 1×1 → BN → ReLU → 3×3 (growth channels). */
export class DenseLayer extends Module {
  readonly norm1: Norm;
  readonly conv1: Conv;
  readonly norm2: Norm;
  readonly conv2: Conv;
  /** Reads `cin` channels, adds `growth`. */
  constructor(cin: number, growth: number, bnSize: number, ctx: BuildContext) {
    super();
    this.norm1 = this.child("norm1", new Norm(cin, ctx));
    this.conv1 = this.child("conv1", new Conv(cin, bnSize * growth, ctx, { kernel: 1 }));
    this.norm2 = this.child("norm2", new Norm(bnSize * growth, ctx));
    this.conv2 = this.child("conv2", new Conv(bnSize * growth, growth, ctx, { kernel: 3 }));
  }
  /** The new features (N, growth, H, W) of the concatenation `x`. */
  run(x: Tensor, pass: Pass): Tensor {
    const h = this.conv1.run(relu(this.norm1.run(x, pass)));
    return this.conv2.run(relu(this.norm2.run(h, pass)));
  }
}

/** torchvision's _Transition: BN → ReLU → 1×1 conv → 2×2/2 average pool. */
export class Transition extends Module {
  readonly norm: Norm;
  readonly conv: Conv;
  /** `cin` → `cout` channels at half the resolution. */
  constructor(cin: number, cout: number, ctx: BuildContext) {
    super();
    this.norm = this.child("norm", new Norm(cin, ctx));
    this.conv = this.child("conv", new Conv(cin, cout, ctx, { kernel: 1 }));
  }
  run(x: Tensor, pass: Pass): Tensor {
    const h = this.conv.run(relu(this.norm.run(x, pass)));
    return avgPool2d(h, { kernel: 2, stride: 2 });
  }
}

/** The DenseNet trunk: conv0/norm0/pool0 stem, dense layers and transitions, norm5 tail. */
export class DenseNetBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = DENSENET.classifier;
  readonly blocks: BackboneBlock[] = [];
  readonly conv0: Conv;
  readonly norm0: Norm;
  readonly norm5: Norm;

  /** Builds `arch` from `config`. */
  constructor(arch: string, config: DenseNetConfig, ctx: BuildContext) {
    super();
    this.arch = arch;
    const feats = this.child("features", new ModuleList());
    const init = config.numInitFeatures, growth = config.growthRate;
    this.conv0 = feats.add("conv0", new Conv(3, init, ctx, { kernel: 7, stride: 2, padding: 3 }));
    this.norm0 = feats.add("norm0", new Norm(init, ctx));
    let c = init;
    config.blockConfig.forEach((layers, b) => {
      const blockName = `denseblock${b + 1}`;
      const dense = feats.add(blockName, new ModuleList());
      for (let l = 0; l < layers; l++) {
        const layer = dense.add(
          `denselayer${l + 1}`,
          new DenseLayer(c + l * growth, growth, config.bnSize, ctx),
        );
        this.blocks.push({
          name: `features.${blockName}.denselayer${l + 1}`,
          gateable: false,
          forward: (x: Tensor, pass: Pass) => concatChannels([x, layer.run(x, pass)]),
        });
      }
      c += layers * growth;
      if (b !== config.blockConfig.length - 1) {
        const name = `transition${b + 1}`;
        const trans = feats.add(name, new Transition(c, c >> 1, ctx));
        this.blocks.push({
          name: `features.${name}`,
          gateable: false,
          forward: (x: Tensor, pass: Pass) => trans.run(x, pass),
        });
        c = c >> 1;
      }
    });
    this.norm5 = feats.add("norm5", new Norm(c, ctx));
    this.features = c;
  }

  /** conv0 → norm0 → ReLU → 3×3/2 max pool (padding 1). */
  stem(images: Tensor, pass: Pass): Tensor {
    const h = relu(this.norm0.run(this.conv0.run(images), pass));
    return maxPool2d(h, { kernel: 3, stride: 2, padding: 1 });
  }

  /** norm5 → ReLU → global average pool: (N, features). */
  tail(x: Tensor, pass: Pass): Tensor {
    return globalAvgPool(relu(this.norm5.run(x, pass)));
  }
}

function fail(source: string, msg: string): never {
  throw new Error(`Cannot read ${source}: ${msg}`);
}

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;

/** DenseNet-121/161/169/201 (torchvision's tables). */
export const DENSENET: ArchFamily<DenseNetConfig> = {
  variants: {
    densenet121: { growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64, bnSize: 4 },
    densenet161: { growthRate: 48, blockConfig: [6, 12, 36, 24], numInitFeatures: 96, bnSize: 4 },
    densenet169: { growthRate: 32, blockConfig: [6, 12, 32, 32], numInitFeatures: 64, bnSize: 4 },
    densenet201: { growthRate: 32, blockConfig: [6, 12, 48, 32], numInitFeatures: 64, bnSize: 4 },
  },
  classifier: "classifier",
  gateable: false,
  /** torchvision: kaiming_normal_ (fan-in, ReLU gain) for convs, Linear bias 0. */
  init(backbone, rng) {
    initBackbone(backbone, rng, { convWeight: kaimingNormal("fan_in"), linearBias: zeros });
  },
  parse(raw: unknown, source: string): DenseNetConfig {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(source, `the DenseNet config must be an object: got ${JSON.stringify(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    for (const f of ["growthRate", "numInitFeatures", "bnSize"] as const) {
      if (!isPosInt(r[f])) {
        fail(source, `"${f}" must be a positive integer: got ${JSON.stringify(r[f])}`);
      }
    }
    const bc = r.blockConfig;
    if (!Array.isArray(bc) || bc.length === 0 || !bc.every(isPosInt)) {
      fail(
        source,
        `"blockConfig" must be a non-empty list of positive integers: got ${JSON.stringify(bc)}`,
      );
    }
    return {
      growthRate: r.growthRate as number,
      blockConfig: [...bc as number[]],
      numInitFeatures: r.numInitFeatures as number,
      bnSize: r.bnSize as number,
    };
  },
  build(arch: string, config: DenseNetConfig, ctx: BuildContext): Backbone {
    return new DenseNetBackbone(arch, config, ctx);
  },
};
