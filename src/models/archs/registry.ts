/**
 * Every architecture fbp builds, by torchvision's builder name: the family (one generic
 * builder over torchvision's configuration tables) and the variant's table. A network
 * config names the arch and may carry its own table (`archConfig`, e.g. a small one in
 * tests), which the family validates.
 * @module
 */
import type { ArchFamily, Backbone, BuildContext } from "../backbone.ts";
import type { AffOptions } from "../../nn/aff.ts";
import { CONVNEXT } from "./convnext.ts";
import { DENSENET } from "./densenet.ts";
import { EFFICIENTNET } from "./efficientnet.ts";
import { GOOGLENET } from "./googlenet.ts";
import { MOBILENET_V2, MOBILENET_V3 } from "./mobilenet.ts";
import { REGNET } from "./regnet.ts";
import { RESNET, type ResNetConfig } from "./resnet.ts";
import { SHUFFLENET_V2 } from "./shufflenet.ts";

/** The families, in the order `--help` and tables list them (the paper's Table 11 order). */
const FAMILIES = [
  RESNET,
  GOOGLENET,
  MOBILENET_V2,
  MOBILENET_V3,
  SHUFFLENET_V2,
  DENSENET,
  EFFICIENTNET,
  REGNET,
  CONVNEXT,
] as unknown as readonly ArchFamily<unknown>[];

const BY_ARCH = new Map<string, ArchFamily<unknown>>();
for (const f of FAMILIES) for (const name of Object.keys(f.variants)) BY_ARCH.set(name, f);

/** Every architecture name, e.g. "resnet18", "mobilenet_v3_small". */
export function archNames(): string[] {
  return [...BY_ARCH.keys()];
}

/**
 * The family that builds `arch`.
 * @throws {Error} naming the known architectures
 */
export function archFamily(arch: string): ArchFamily<unknown> {
  const f = BY_ARCH.get(arch);
  if (!f) {
    throw new Error(`Unknown architecture "${arch}": expected one of ${archNames().join(", ")}`);
  }
  return f;
}

/** Whether AdaShare can gate the blocks of `arch` (their blocks have residual paths). */
export function archIsGateable(arch: string): boolean {
  return archFamily(arch).gateable;
}

/** Whether `arch` is a ResNet (the method's trunk: AFF, `widths`). */
export function isResNet(arch: string): boolean {
  return archFamily(arch) === (RESNET as ArchFamily<unknown>);
}

/**
 * The table `arch` is built from: `raw` validated by its family, else the variant's own.
 * @throws {Error} naming `source` and the field
 */
export function archTable(arch: string, raw: unknown, source: string): unknown {
  const family = archFamily(arch);
  return raw === undefined || raw === null ? family.variants[arch] : family.parse(raw, source);
}

/** What the network adds to a table: ResNet's stage widths and AFF. */
export interface BackboneOptions {
  /** ResNet stage widths (the method's `widths`). */
  widths?: [number, number, number, number];
  /** AFF at each ResNet block's skip connection, or null. */
  aff?: AffOptions | null;
}

/**
 * Builds the backbone of `arch` from `table` (see {@link archTable}).
 * @throws {Error} when AFF is asked of an architecture other than ResNet
 */
export function buildBackbone(
  arch: string,
  table: unknown,
  ctx: BuildContext,
  opts: BackboneOptions = {},
): Backbone {
  if (isResNet(arch)) {
    const t = table as ResNetConfig;
    // A table's own widths (a custom ResNet) win over the network's default ones.
    return RESNET.buildWith(arch, { ...t, widths: t.widths ?? opts.widths }, ctx, {
      aff: opts.aff ?? null,
    });
  }
  if (opts.aff) {
    throw new Error(
      `Cannot build "${arch}" with AFF: AFF replaces the addition at a ResNet block's skip ` +
        `connection (the paper's method); use a resnet arch or turn AFF off (--aff off)`,
    );
  }
  const family = archFamily(arch);
  const backbone = family.build(arch, table, ctx);
  family.init?.(backbone, ctx.rng);
  return backbone;
}

/**
 * The dropout torchvision's classifier of `arch` applies before its last Linear (none:
 * 0), the default of a baseline trained with `--arch`; ResNets keep the paper's head
 * dropout (undefined here).
 */
export function torchvisionDropout(arch: string): number | undefined {
  if (isResNet(arch)) return undefined;
  const b = /^efficientnet_b(\d)$/.exec(arch);
  if (b) return [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5][Number(b[1])];
  return /^(googlenet|mobilenet_)/.test(arch) ? 0.2 : 0;
}
