/**
 * ResNet (He et al., arXiv:1512.03385) from torchvision's tables: BasicBlock for
 * resnet18/34, Bottleneck for resnet50. This is also the method's trunk: every block takes
 * DAB batch norm, optional AFF at its skip connection, and an AdaShare gate (a skipped block
 * still applies its projection shortcut, so shapes stay valid). `widths` narrows the four
 * stages (tests; torchvision: 64, 128, 256, 512).
 * @module
 */
import { add, mul, relu } from "../../ops/elementwise.ts";
import { globalAvgPool, maxPool2d } from "../../ops/pool.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { AffOptions } from "../../nn/aff.ts";
import { Aff } from "../../nn/aff.ts";
import { DatasetBatchNorm } from "../../nn/batch_norm.ts";
import { Conv2d } from "../../nn/conv2d.ts";
import { Module, ModuleList } from "../../nn/module.ts";
import { BasicBlock, Downsample } from "../basic_block.ts";
import type { ArchFamily, Backbone, BackboneBlock, BuildContext, Gate, Pass } from "../backbone.ts";

/** A ResNet table. */
export interface ResNetConfig {
  /** "basic" (two 3×3, expansion 1) or "bottleneck" (1×1, 3×3, 1×1, expansion 4). */
  block: "basic" | "bottleneck";
  /** Blocks per stage, four stages. */
  layers: [number, number, number, number];
  /** Stage widths before expansion (torchvision: 64, 128, 256, 512). */
  widths?: [number, number, number, number];
}

/** The ResNet blocks' common surface: DAB key, training flag and gate. */
export interface ResidualUnit extends Module {
  forward(x: Tensor, key: string, training: boolean, gate?: Gate): Tensor;
}

/** Options of the method's trunk: AFF at each skip connection. */
export interface ResNetOptions {
  aff: AffOptions | null;
}

/** torchvision's Bottleneck: 1×1 reduce, 3×3 (stride), 1×1 expand ×4, with DAB and AFF. */
export class Bottleneck extends Module implements ResidualUnit {
  readonly conv1: Conv2d;
  readonly bn1: DatasetBatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: DatasetBatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: DatasetBatchNorm;
  readonly downsample: Downsample | null;
  readonly aff: Aff | null;
  /** `cin` → `width`·4 channels; `stride` on the 3×3 (torchvision's ResNet v1.5). */
  constructor(
    cin: number,
    width: number,
    stride: number,
    ctx: BuildContext,
    aff: AffOptions | null,
  ) {
    super();
    const { keys, rng, backend } = ctx;
    const cout = width * 4;
    this.conv1 = this.child("conv1", new Conv2d(cin, width, rng, { kernel: 1, backend }));
    this.bn1 = this.child("bn1", new DatasetBatchNorm(width, keys, backend));
    this.conv2 = this.child(
      "conv2",
      new Conv2d(width, width, rng, { kernel: 3, stride, padding: 1, backend }),
    );
    this.bn2 = this.child("bn2", new DatasetBatchNorm(width, keys, backend));
    this.conv3 = this.child("conv3", new Conv2d(width, cout, rng, { kernel: 1, backend }));
    this.bn3 = this.child("bn3", new DatasetBatchNorm(cout, keys, backend));
    const projection = Downsample.projection(cin, cout, stride, keys, rng, backend);
    this.downsample = projection ? this.child("downsample", projection) : null;
    this.aff = aff ? this.child("aff", new Aff(cout, keys, rng, { ...aff, backend })) : null;
  }

  /** Runs the block with BN copy `key` under `gate` (skipped: the shortcut only). */
  forward(x: Tensor, key: string, training: boolean, gate: Gate = "execute"): Tensor {
    const s = this.downsample ? this.downsample.forward(x, key, training) : x;
    if (gate === "skip") return s;
    let h = relu(this.bn1.forward(this.conv1.forward(x), key, training));
    h = relu(this.bn2.forward(this.conv2.forward(h), key, training));
    const f = this.bn3.forward(this.conv3.forward(h), key, training);
    const fused = this.aff ? this.aff.forward(s, f, key, training) : relu(add(s, f));
    if (gate === "execute") return fused;
    return add(mul(fused, gate.exec), mul(s, gate.skip));
  }
}

/** The ResNet trunk: conv1/bn1/maxpool stem, layer1..layer4, global average pool. */
export class ResNetBackbone extends Module implements Backbone {
  readonly arch: string;
  readonly features: number;
  readonly classifier: string = RESNET.classifier;
  /** The stem's 7×7 stride-2 convolution. */
  readonly conv1: Conv2d;
  /** The stem's batch norm (DAB). */
  readonly bn1: DatasetBatchNorm;
  /** The residual blocks in order (layer1.0 …). */
  readonly units: ResidualUnit[] = [];
  readonly blocks: BackboneBlock[] = [];

  /** Builds `arch` from `config`, with AFF at each block when `opts.aff` is set. */
  constructor(arch: string, config: ResNetConfig, ctx: BuildContext, opts: ResNetOptions) {
    super();
    this.arch = arch;
    const { keys, rng, backend } = ctx;
    const widths = config.widths ?? [64, 128, 256, 512];
    const expansion = config.block === "basic" ? 1 : 4;
    this.conv1 = this.child(
      "conv1",
      new Conv2d(3, widths[0], rng, { kernel: 7, stride: 2, padding: 3, backend }),
    );
    this.bn1 = this.child("bn1", new DatasetBatchNorm(widths[0], keys, backend));
    let cin = widths[0];
    for (let layer = 0; layer < 4; layer++) {
      const stage = this.child(`layer${layer + 1}`, new ModuleList());
      for (let j = 0; j < config.layers[layer]; j++) {
        const stride = layer > 0 && j === 0 ? 2 : 1;
        const unit: ResidualUnit = config.block === "basic"
          ? new BasicBlock(cin, widths[layer], stride, keys, rng, { aff: opts.aff, backend })
          : new Bottleneck(cin, widths[layer], stride, ctx, opts.aff);
        stage.add(`${j}`, unit);
        this.units.push(unit);
        this.blocks.push({
          name: `layer${layer + 1}.${j}`,
          gateable: true,
          forward: (x: Tensor, pass: Pass, gate: Gate) =>
            unit.forward(x, pass.key, pass.training, gate),
        });
        cin = widths[layer] * expansion;
      }
    }
    this.features = cin;
  }

  stem(images: Tensor, pass: Pass): Tensor {
    return maxPool2d(relu(this.bn1.forward(this.conv1.forward(images), pass.key, pass.training)));
  }

  tail(x: Tensor): Tensor {
    return globalAvgPool(x);
  }
}

function positiveInts(v: unknown, n: number): v is number[] {
  return Array.isArray(v) && v.length === n && v.every((x) => Number.isInteger(x) && x >= 1);
}

/** ResNet18/34/50 (BasicBlock / Bottleneck tables); the method's options through `aff`. */
export const RESNET: ArchFamily<ResNetConfig> & {
  buildWith(arch: string, c: ResNetConfig, ctx: BuildContext, o: ResNetOptions): ResNetBackbone;
} = {
  variants: {
    resnet18: { block: "basic", layers: [2, 2, 2, 2] },
    resnet34: { block: "basic", layers: [3, 4, 6, 3] },
    resnet50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  },
  classifier: "fc",
  gateable: true,
  parse(raw: unknown, source: string): ResNetConfig {
    const fail = (msg: string): never => {
      throw new Error(`Cannot read ${source}: ${msg}`);
    };
    const r =
      (typeof raw === "object" && raw !== null ? raw : fail("expected an object")) as Record<
        string,
        unknown
      >;
    if (r.block !== "basic" && r.block !== "bottleneck") {
      fail(`"block" must be "basic" or "bottleneck": got ${JSON.stringify(r.block)}`);
    }
    if (!positiveInts(r.layers, 4)) {
      fail(`"layers" must be 4 positive integers: got ${JSON.stringify(r.layers)}`);
    }
    if (r.widths !== undefined && !positiveInts(r.widths, 4)) {
      fail(`"widths" must be 4 positive integers: got ${JSON.stringify(r.widths)}`);
    }
    return {
      block: r.block as ResNetConfig["block"],
      layers: r.layers as ResNetConfig["layers"],
      ...(r.widths ? { widths: r.widths as ResNetConfig["widths"] } : {}),
    };
  },
  build(arch: string, config: ResNetConfig, ctx: BuildContext): Backbone {
    return new ResNetBackbone(arch, config, ctx, { aff: null });
  },
  buildWith(arch, config, ctx, opts): ResNetBackbone {
    return new ResNetBackbone(arch, config, ctx, opts);
  },
};
