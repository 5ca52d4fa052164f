/**
 * GoogLeNet (Inception v1, Szegedy et al., arXiv:1409.4842) as torchvision builds it:
 * BasicConv2d (`conv`, BN `bn` with eps 0.001, ReLU) everywhere, `conv1` 7×7/2, `conv2`
 * 1×1, `conv3` 3×3, Inception modules `inception3a` … `inception5b` (`branch1`;
 * `branch2.0/.1`; `branch3.0/.1`, a 3×3 where the paper has 5×5, as torchvision;
 * `branch4.1` after a 3×3/1 max pool), ceil-mode max pools between them, and `fc` (the
 * Linear the heads replace). The auxiliary classifiers (`aux1`, `aux2`) are not built: they
 * only act in training, and the importer skips their keys.
 *
 * Blocks: each Inception module, with the max pool before it (maxpool3 in inception4a,
 * maxpool4 in inception5a); the stem runs transform_input, conv1 … maxpool2. No module is
 * residual, so none is gateable. `transformInput` (torchvision's transform_input, on when it
 * loads ImageNet weights) maps ImageNet-normalised images to the [−1, 1] scaling the ported
 * weights expect: x_c · std_c/0.5 + (mean_c − 0.5)/0.5.
 * @module
 */
import { add, mul, relu } from "../../ops/elementwise.ts";
import { concatChannels } from "../../ops/channels.ts";
import { globalAvgPool, maxPool2d } from "../../ops/pool.ts";
import { type Tensor, tensor } from "../../tensor/tensor.ts";
import { Module } from "../../nn/module.ts";
import type { ArchFamily, Backbone, BackboneBlock, BuildContext, Pass } from "../backbone.ts";
import { Conv, type Layer, Norm, Seq } from "./layers.ts";
import { initBackbone, truncNormal } from "./init.ts";

/** GoogLeNet's settings (its table is fixed). */
export interface GoogLeNetConfig {
  /** torchvision's transform_input (true with its ImageNet weights). */
  transformInput: boolean;
}

/** torchvision's BasicConv2d: conv (no bias) → BN (eps 0.001) → ReLU. */
export class BasicConv2d extends Module implements Layer {
  readonly conv: Conv;
  readonly bn: Norm;
  /** `cin` → `cout` with a `kernel`×`kernel` window. */
  constructor(
    cin: number,
    cout: number,
    ctx: BuildContext,
    opts: { kernel: number; stride?: number; padding?: number },
  ) {
    super();
    this.conv = this.child(
      "conv",
      new Conv(cin, cout, ctx, {
        kernel: opts.kernel,
        stride: opts.stride ?? 1,
        padding: opts.padding ?? 0,
      }),
    );
    this.bn = this.child("bn", new Norm(cout, ctx, { eps: 0.001 }));
  }
  run(x: Tensor, pass: Pass): Tensor {
    return relu(this.bn.run(this.conv.run(x), pass));
  }
}

/** One row of torchvision's Inception table: in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj. */
type InceptionRow = [number, number, number, number, number, number, number];

/** torchvision's Inception module: four branches concatenated over channels. */
export class Inception extends Module {
  readonly branch1: BasicConv2d;
  readonly branch2: Seq;
  readonly branch3: Seq;
  readonly branch4: Seq;
  /** Output channels: ch1x1 + ch3x3 + ch5x5 + poolProj. */
  readonly outChannels: number;
  constructor(row: InceptionRow, ctx: BuildContext) {
    super();
    const [cin, ch1, ch3r, ch3, ch5r, ch5, pp] = row;
    this.branch1 = this.child("branch1", new BasicConv2d(cin, ch1, ctx, { kernel: 1 }));
    this.branch2 = this.child("branch2", new Seq());
    this.branch2.add(new BasicConv2d(cin, ch3r, ctx, { kernel: 1 }));
    this.branch2.add(new BasicConv2d(ch3r, ch3, ctx, { kernel: 3, padding: 1 }));
    this.branch3 = this.child("branch3", new Seq());
    this.branch3.add(new BasicConv2d(cin, ch5r, ctx, { kernel: 1 }));
    this.branch3.add(new BasicConv2d(ch5r, ch5, ctx, { kernel: 3, padding: 1 }));
    this.branch4 = this.child("branch4", new Seq());
    this.branch4.fn((x) => maxPool2d(x, { kernel: 3, stride: 1, padding: 1, ceilMode: true }));
    this.branch4.add(new BasicConv2d(cin, pp, ctx, { kernel: 1 }));
    this.outChannels = ch1 + ch3 + ch5 + pp;
  }
  forward(x: Tensor, pass: Pass): Tensor {
    return concatChannels([
      this.branch1.run(x, pass),
      this.branch2.run(x, pass),
      this.branch3.run(x, pass),
      this.branch4.run(x, pass),
    ]);
  }
}

/** torchvision's Inception table, with the ceil-mode max pool (kernel) before each module. */
const INCEPTIONS: [string, InceptionRow, number | null][] = [
  ["inception3a", [192, 64, 96, 128, 16, 32, 32], null],
  ["inception3b", [256, 128, 128, 192, 32, 96, 64], null],
  ["inception4a", [480, 192, 96, 208, 16, 48, 64], 3], // maxpool3: 3×3/2
  ["inception4b", [512, 160, 112, 224, 24, 64, 64], null],
  ["inception4c", [512, 128, 128, 256, 24, 64, 64], null],
  ["inception4d", [512, 112, 144, 288, 32, 64, 64], null],
  ["inception4e", [528, 256, 160, 320, 32, 128, 128], null],
  ["inception5a", [832, 256, 160, 320, 32, 128, 128], 2], // maxpool4: 2×2/2
  ["inception5b", [832, 384, 192, 384, 48, 128, 128], null],
];

/** ImageNet's per-channel mean and std (transform_input). */
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** The GoogLeNet trunk. */
export class GoogLeNetBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features = 1024;
  readonly classifier: string = GOOGLENET.classifier;
  readonly blocks: BackboneBlock[] = [];
  readonly transformInput: boolean;
  readonly conv1: BasicConv2d;
  readonly conv2: BasicConv2d;
  readonly conv3: BasicConv2d;

  /** Builds `arch` with `config`. */
  constructor(arch: string, config: GoogLeNetConfig, ctx: BuildContext) {
    super();
    this.arch = arch;
    this.transformInput = config.transformInput;
    this.conv1 = this.child(
      "conv1",
      new BasicConv2d(3, 64, ctx, { kernel: 7, stride: 2, padding: 3 }),
    );
    this.conv2 = this.child("conv2", new BasicConv2d(64, 64, ctx, { kernel: 1 }));
    this.conv3 = this.child("conv3", new BasicConv2d(64, 192, ctx, { kernel: 3, padding: 1 }));
    for (const [name, row, pool] of INCEPTIONS) {
      const inc = this.child(name, new Inception(row, ctx));
      this.blocks.push({
        name,
        gateable: false,
        forward: (x: Tensor, pass: Pass) =>
          inc.forward(
            pool === null
              ? x
              : maxPool2d(x, { kernel: pool, stride: 2, padding: 0, ceilMode: true }),
            pass,
          ),
      });
    }
  }

  /** transform_input (if on) → conv1 → maxpool1 → conv2 → conv3 → maxpool2. */
  stem(images: Tensor, pass: Pass): Tensor {
    let x = images;
    if (this.transformInput) {
      const be = images.backend;
      const scale = tensor(STD.map((s) => s / 0.5), [1, 3, 1, 1], { backend: be });
      const shift = tensor(MEAN.map((m) => (m - 0.5) / 0.5), [1, 3, 1, 1], { backend: be });
      x = add(mul(x, scale), shift);
    }
    x = this.conv1.run(x, pass);
    x = maxPool2d(x, { kernel: 3, stride: 2, padding: 0, ceilMode: true });
    x = this.conv3.run(this.conv2.run(x, pass), pass);
    return maxPool2d(x, { kernel: 3, stride: 2, padding: 0, ceilMode: true });
  }

  /** avgpool → flatten: (N, 1024). The dropout before fc is the network's. */
  tail(x: Tensor): Tensor {
    return globalAvgPool(x);
  }
}

/** GoogLeNet (torchvision's table; transform_input switchable). */
export const GOOGLENET: ArchFamily<GoogLeNetConfig> = {
  variants: { googlenet: { transformInput: true } },
  classifier: "fc",
  gateable: false,
  /** torchvision: trunc_normal_(0, 0.01, a −2, b 2) for conv and Linear weights. */
  init(backbone, rng) {
    const w = truncNormal(0.01, 0, -2, 2);
    initBackbone(backbone, rng, { convWeight: w, linearWeight: w });
  },
  parse(raw: unknown, source: string): GoogLeNetConfig {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new Error(
        `Cannot read ${source}: the GoogLeNet config must be an object: got ${JSON.stringify(raw)}`,
      );
    }
    const t = (raw as Record<string, unknown>).transformInput;
    if (typeof t !== "boolean") {
      throw new Error(
        `Cannot read ${source}: "transformInput" must be true or false: got ${JSON.stringify(t)}`,
      );
    }
    return { transformInput: t };
  },
  build(arch: string, config: GoogLeNetConfig, ctx: BuildContext): Backbone {
    return new GoogLeNetBackbone(arch, config, ctx);
  },
};
