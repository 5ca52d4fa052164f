/**
 * The weights of the architecture fixtures (tasks/make_arch_fixtures.py): every tensor is a
 * formula of its torchvision key and element index, computed in float64 and rounded once to
 * float32 exactly as the script does, so fixtures need not store weights.
 * @module
 */
import type { HostTensor } from "../../src/models/checkpoint.ts";

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** fbp's dropout hash (contract.ts, dropout_forward): u in [0, 1) for element i. */
function hashUniform(seed: number, i: number): number {
  let h = (Math.imul(i, 0x9e3779b9) + seed) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 8) / 16777216;
}

/** The value of state-dict tensor `key` of `shape`, as make_arch_fixtures.py computes it. */
export function formulaTensor(key: string, shape: readonly number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const seed = fnv1a32(key);
  const data = new Float32Array(n);
  const fanIn = shape.length > 1 ? Math.floor(n / shape[0]) : 1;
  const bound = Math.sqrt(3 / fanIn);
  for (let i = 0; i < n; i++) {
    const u = hashUniform(seed, i);
    let v: number;
    if (key.endsWith("running_var")) v = 0.5 + u;
    else if (key.endsWith("running_mean")) v = 0.2 * (2 * u - 1);
    else if (shape.length <= 1 && key.endsWith("weight")) v = 0.8 + 0.4 * u;
    else if (shape.length <= 1) v = 0.1 * (2 * u - 1);
    else v = (2 * u - 1) * bound;
    data[i] = v;
  }
  return { shape: [...shape], data };
}

/** Every tensor of a fixture's key list. */
export function formulaWeights(keys: readonly [string, number[]][]): Map<string, HostTensor> {
  return new Map(keys.map(([k, s]) => [k, formulaTensor(k, s)]));
}
