/**
 * Train/validation/test splits: stratified and seeded (default 6:2:2), or a split the
 * source ships (SCUT's 60/40 "official" and "cv1"–"cv5"; a manifest's split column).
 * Every split is checked to be disjoint.
 * @module
 */

import type { Dataset, ImageRecord, Split } from "./records.ts";
import { Rng } from "../random/rng.ts";

/** Options of {@link stratifiedSplit}. */
export interface SplitOptions {
  /** Train : validation : test proportions (default [6, 2, 2]). */
  ratios?: readonly [number, number, number];
  /** Seed (default 0). */
  seed?: number;
  /** Label to stratify on (default "beauty" when present, else the first label). */
  by?: string;
}

/** The label a split stratifies on by default. */
export function defaultStratifyLabel(records: readonly ImageRecord[]): string | undefined {
  const names = new Set(records.flatMap((r) => Object.keys(r.labels)));
  return names.has("beauty") ? "beauty" : [...names].sort()[0];
}

/** Splits indices `items` by group, each group in the given proportions (largest remainder). */
function splitGroups(
  groups: Map<number, number[]>,
  ratios: readonly number[],
  rng: Rng,
): Split {
  const total = ratios.reduce((a, b) => a + b, 0);
  const out: Split = { train: [], val: [], test: [] };
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(groups.get(key)!);
    const exact = ratios.map((r) => (idx.length * r) / total);
    const counts = exact.map(Math.floor);
    const order = exact.map((e, i) => [e - counts[i], i]).sort((a, b) =>
      b[0] - a[0] || a[1] - b[1]
    );
    const missing = idx.length - counts.reduce((a, b) => a + b, 0);
    for (let k = 0; k < missing; k++) counts[order[k][1]]++;
    out.train.push(...idx.slice(0, counts[0]));
    out.val.push(...idx.slice(counts[0], counts[0] + counts[1]));
    out.test.push(...idx.slice(counts[0] + counts[1]));
  }
  for (const k of ["train", "val", "test"] as const) out[k].sort((a, b) => a - b);
  return out;
}

/**
 * A seeded split in which every class of the `by` label keeps the given proportions.
 * Images without that label form a group of their own.
 * @throws {RangeError} When the ratios are not three non-negative numbers with a positive sum.
 */
export function stratifiedSplit(
  records: readonly ImageRecord[],
  options: SplitOptions = {},
): Split {
  const ratios = options.ratios ?? [6, 2, 2];
  if (
    ratios.length !== 3 || ratios.some((r) => !(r >= 0)) || !(ratios[0] + ratios[1] + ratios[2] > 0)
  ) {
    throw new RangeError(
      `Cannot split: ratios must be three non-negative numbers with a positive sum: current value is ${
        ratios.join(":")
      }`,
    );
  }
  const by = options.by ?? defaultStratifyLabel(records);
  const groups = new Map<number, number[]>();
  records.forEach((r, i) => {
    const k = by === undefined ? -1 : r.labels[by] ?? -1;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(i);
  });
  return splitGroups(groups, ratios, new Rng(options.seed ?? 0, 0x5911));
}

/**
 * Moves a stratified `fraction` of a split's training images into validation (for shipped
 * splits such as SCUT's 60/40, which have none).
 */
export function carveValidation(
  records: readonly ImageRecord[],
  split: Split,
  fraction: number,
  options: Omit<SplitOptions, "ratios"> = {},
): Split {
  const sub = stratifiedSplit(split.train.map((i) => records[i]), {
    ...options,
    ratios: [1 - fraction, fraction, 0],
  });
  const back = (xs: number[]) => xs.map((j) => split.train[j]).sort((a, b) => a - b);
  return {
    train: back(sub.train),
    val: [...split.val, ...back(sub.val)].sort((a, b) => a - b),
    test: split.test,
  };
}

/**
 * Throws if an index appears in two parts of a split (or twice in one).
 * @throws {Error} `Cannot use split "name": image 12 ("path") is in both train and test`
 */
export function assertDisjoint(split: Split, name: string, records?: readonly ImageRecord[]): void {
  const seen = new Map<number, string>();
  for (const part of ["train", "val", "test"] as const) {
    for (const i of split[part]) {
      const first = seen.get(i);
      if (first !== undefined) {
        const path = records ? ` ("${records[i]?.path}")` : "";
        const where = first === part ? `twice in ${part}` : `in both ${first} and ${part}`;
        throw new Error(`Cannot use split "${name}": image ${i}${path} is ${where}`);
      }
      seen.set(i, part);
    }
  }
}

/**
 * Picks a split by name: "stratified" (seeded 6:2:2 unless `ratios` say otherwise) or a
 * split the source ships ("official", "cv1"–"cv5", "manifest").
 * @throws {Error} For an unknown split name (listing the ones available) or an overlap.
 */
export function chooseSplit(
  dataset: Pick<Dataset, "records" | "splits" | "source">,
  name = "stratified",
  options: SplitOptions = {},
): Split {
  const split = name === "stratified"
    ? stratifiedSplit(dataset.records, options)
    : dataset.splits[name];
  if (!split) {
    const have = ["stratified", ...Object.keys(dataset.splits)].map((s) => `"${s}"`).join(", ");
    throw new Error(
      `Cannot use split "${name}" of "${dataset.source}": it has no such split: available are ${have}`,
    );
  }
  assertDisjoint(split, name, dataset.records);
  return split;
}

/** The records of each part of a split. */
export function splitRecords(
  records: readonly ImageRecord[],
  split: Split,
): Record<"train" | "val" | "test", ImageRecord[]> {
  return {
    train: split.train.map((i) => records[i]),
    val: split.val.map((i) => records[i]),
    test: split.test.map((i) => records[i]),
  };
}
