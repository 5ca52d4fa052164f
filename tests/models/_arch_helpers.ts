/**
 * What the architecture tests share: backbones built on the reference backend with two BN
 * copies, random images, an eval pass, and the largest difference of two outputs.
 * @module
 */
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import type { ArchFamily, Backbone, Pass } from "../../src/models/backbone.ts";
import { Rng } from "../../src/random/rng.ts";
import { setDefaultBackend, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { DatasetBatchNorm } from "../../src/nn/batch_norm.ts";

/** The reference backend every architecture test builds on (made the default). */
export const backend: ReferenceBackend = new ReferenceBackend();
setDefaultBackend(backend);

/** An eval-mode pass through BN copy "a". */
export const EVAL: Pass = { key: "a", training: false, seed: 1 };

/** `family`'s backbone of `arch` with `config`, BN copies "a" and "b", seeded. */
export function build<C>(family: ArchFamily<C>, arch: string, config: C, seed = 1): Backbone {
  return family.build(arch, config, { keys: ["a", "b"], rng: new Rng(seed), backend });
}

/** n standard-normal images of side × side, seeded. */
export function randomImages(n: number, side: number, seed: number): Tensor {
  const rng = new Rng(seed);
  const data = Float32Array.from({ length: n * 3 * side * side }, () => rng.normal());
  return tensor(data, [n, 3, side, side]);
}

/** The largest |a[i] − b[i]| (the lengths must agree). */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Asserts that the backbone fixture `cas` (tasks/make_arch_fixtures.py) describes has
 * torchvision's state-dict keys and shapes: every fbp key, less the BN copy's segment, is one
 * of the fixture's list, and each of those is fbp's, except the classifier's last Linear.
 */
export async function assertTorchvisionKeys(
  cas: string,
  families: readonly ArchFamily<unknown>[],
): Promise<void> {
  const fx = await readSafetensors(
    new URL(`../testdata/archs/${cas}.safetensors`, import.meta.url).pathname,
  );
  const family = families.find((f) => fx.metadata.arch in f.variants)!;
  const raw = JSON.parse(fx.metadata.archConfig);
  const table = raw === null ? family.variants[fx.metadata.arch] : family.parse(raw, cas);
  const bb = build(family, fx.metadata.arch, table);
  try {
    const dab = new Set<string>();
    for (const [name, m] of bb.namedModules()) if (m instanceof DatasetBatchNorm) dab.add(name);
    const ours = new Map<string, string>();
    for (const [key, t] of bb.stateDict()) {
      const m = /^(.*)\.([^.]+)\.([^.]+)$/.exec(key);
      ours.set(m && dab.has(m[1]) ? `${m[1]}.${m[3]}` : key, t.shape.join(","));
    }
    const theirs = new Map<string, string>(
      (JSON.parse(fx.metadata.keys) as [string, number[]][])
        .filter(([k]) => !k.startsWith(`${bb.classifier}.`))
        .map(([k, s]) => [k, s.join(",")]),
    );
    assert.deepEqual(new Map([...ours].sort()), new Map([...theirs].sort()));
  } finally {
    bb.dispose();
  }
}
