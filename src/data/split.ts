/**
 * Train/validation/test splits: stratified and seeded (default 6:2:2), or a split the
 * source ships (SCUT's 60/40 "official" and "cv1"–"cv5"; a manifest's split column).
 * A shipped split without a validation part gets one carved from its training list
 * ({@link carveValidation}); its test list stays as shipped. Every split is checked to be
 * disjoint.
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
  /**
   * Label to stratify on (default "beauty" when present, else the first label); several
   * labels stratify on their joint value (every combination is a class of its own).
   */
  by?: string | readonly string[];
}

/**
 * Share of a shipped split's training list that becomes validation when the split has
 * none (SCUT-FBP5500's 60/40 and its cross-validation folds): 10%, so the model still
 * trains on 90% of the list the release meant for training.
 */
export const DEFAULT_VAL_FRACTION = 0.1;

/** Largest validation share {@link carveValidation} accepts: beyond it, train is the minority. */
export const MAX_VAL_FRACTION = 0.5;

/** The label a split stratifies on by default. */
export function defaultStratifyLabel(records: readonly ImageRecord[]): string | undefined {
  const names = new Set(records.flatMap((r) => Object.keys(r.labels)));
  return names.has("beauty") ? "beauty" : [...names].sort()[0];
}

/**
 * Groups record indices by their values of the `by` labels (-1 for an absent label),
 * groups in ascending order of those values: with one label the order of the label's
 * classes, so the seeded splits made before joint strata existed stay the same.
 */
function groupBy(records: readonly ImageRecord[], by: readonly string[]): number[][] {
  const groups = new Map<string, { key: number[]; idx: number[] }>();
  records.forEach((r, i) => {
    const key = by.map((l) => r.labels[l] ?? -1);
    const k = key.join(",");
    if (!groups.has(k)) groups.set(k, { key, idx: [] });
    groups.get(k)!.idx.push(i);
  });
  const order = (a: number[], b: number[]) => {
    for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return a[j] - b[j];
    return 0;
  };
  return [...groups.values()].sort((a, b) => order(a.key, b.key)).map((g) => g.idx);
}

/** The labels a split stratifies on: `by` as a list, or the default label. */
function stratifyLabels(
  records: readonly ImageRecord[],
  by: string | readonly string[] | undefined,
): string[] {
  if (typeof by === "string") return [by];
  if (by !== undefined) return [...by];
  const label = defaultStratifyLabel(records);
  return label === undefined ? [] : [label];
}

/** Splits index groups, each group in the given proportions (largest remainder). */
function splitGroups(
  groups: readonly number[][],
  ratios: readonly number[],
  rng: Rng,
): Split {
  const total = ratios.reduce((a, b) => a + b, 0);
  const out: Split = { train: [], val: [], test: [] };
  for (const group of groups) {
    const idx = rng.shuffle([...group]);
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
  const groups = groupBy(records, stratifyLabels(records, options.by));
  return splitGroups(groups, ratios, new Rng(options.seed ?? 0, 0x5911));
}

/**
 * The labels that carving validation out of `train` stratifies on: all of `labels` jointly
 * when every joint class among those images expects at least one validation image
 * (size × fraction ≥ 1), else only the first label: a joint class too small for that would
 * be drawn from by rounding alone, and the first task's classes are the ones whose
 * validation accuracy picks the best checkpoint.
 * @param records the database's records
 * @param train indices of the training images (into `records`)
 * @param labels the labels of the tasks that use the database, first task first
 * @param fraction the validation share
 * @returns `labels`, or its first label, or `[]` when `labels` is empty
 */
export function carveStrata(
  records: readonly ImageRecord[],
  train: readonly number[],
  labels: readonly string[],
  fraction: number,
): string[] {
  const unique = [...new Set(labels)];
  if (unique.length <= 1) return unique;
  const groups = groupBy(train.map((i) => records[i]), unique);
  return groups.every((g) => g.length * fraction >= 1) ? unique : [unique[0]];
}

/**
 * Moves a seeded, stratified `fraction` of a split's training images into validation, for
 * shipped splits such as SCUT-FBP5500's 60/40 and its folds, which have none. The test
 * part is returned as it was. The validation size is round(fraction × train) (at least
 * one image when train has two), shared out over the classes of `by` by largest
 * remainder, so each class gives ⌊share⌋ or ⌈share⌉ of its images.
 * @param records the database's records
 * @param split the shipped split (its `val` is kept and added to)
 * @param fraction validation share of the training list, in (0, {@link MAX_VAL_FRACTION}]
 * @param options seed and the label(s) to stratify on (see {@link SplitOptions})
 * @returns the split with validation carved out of train
 * @throws {RangeError} for a fraction outside (0, 0.5]
 * @example Ten training images, 20% to validation
 * ```ts
 * import assert from "node:assert/strict";
 * import { carveValidation } from "./split.ts";
 * const records = Array.from({ length: 12 }, (_, i) => ({ path: `${i}.jpg`, labels: { g: i % 2 } }));
 * const s = carveValidation(records, { train: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], val: [], test: [10, 11] }, 0.2);
 * assert.equal(s.val.length, 2);
 * assert.deepEqual(s.test, [10, 11]);
 * ```
 */
export function carveValidation(
  records: readonly ImageRecord[],
  split: Split,
  fraction: number,
  options: Omit<SplitOptions, "ratios"> = {},
): Split {
  if (!(fraction > 0 && fraction <= MAX_VAL_FRACTION)) {
    throw new RangeError(
      `Cannot carve validation: the fraction must be in (0, ${MAX_VAL_FRACTION}]: current value is ${fraction}`,
    );
  }
  const train = split.train.map((i) => records[i]);
  const groups = groupBy(train, stratifyLabels(train, options.by));
  const n = train.length;
  const want = n < 2 ? 0 : Math.max(1, Math.round(n * fraction));
  // Largest remainder over all classes at once, so the total is exactly `want`.
  const exact = groups.map((g) => g.length * fraction);
  const counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - counts[i], i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let missing = want - counts.reduce((a, b) => a + b, 0);
  for (let k = 0; missing > 0; k = (k + 1) % order.length) {
    const g = order[k][1];
    if (counts[g] < groups[g].length) {
      counts[g]++;
      missing--;
    }
  }
  const rng = new Rng(options.seed ?? 0, 0xca7e);
  const val = new Set<number>();
  groups.forEach((g, i) => {
    for (const j of rng.shuffle([...g]).slice(0, counts[i])) val.add(j);
  });
  const part = (inVal: boolean) => split.train.filter((_, j) => val.has(j) === inVal);
  return {
    train: part(false).sort((a, b) => a - b),
    val: [...split.val, ...part(true)].sort((a, b) => a - b),
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

/** Options of {@link trainingSplit}. */
export interface TrainingSplitOptions {
  /** Seed of the stratified split or of the validation carved out (default 0). */
  seed?: number;
  /**
   * Labels of the tasks that use the database, first task first: the stratified split
   * stratifies on the first, carved validation on all jointly (see {@link carveStrata}).
   */
  labels?: readonly string[];
  /**
   * Validation share carved out of a shipped split's training list when the split has no
   * validation part (default {@link DEFAULT_VAL_FRACTION}); refused for a split that has one.
   */
  valFraction?: number;
}

/** The split a run trains on, and how its validation part was made. */
export interface TrainingSplit {
  /** Split name: "stratified", or the source's ("official", "cv1", …). */
  name: string;
  split: Split;
  /** Present when validation was carved out of the shipped training list. */
  carved?: {
    /** Share of the shipped training list moved to validation. */
    fraction: number;
    /** Labels the carving stratified on (jointly). */
    by: string[];
  };
}

/**
 * The train / val / test split a run uses: {@link chooseSplit}, and for a shipped split
 * with training and test lists but no validation part (SCUT-FBP5500's "official" and
 * "cv1"–"cv5"), validation carved out of the training list ({@link carveValidation},
 * seeded by `seed`); the shipped test list stays the test set.
 * @throws {Error} for an unknown split, an overlap, or a `valFraction` given for a split
 *   that has its own validation part (the stratified one included)
 */
export function trainingSplit(
  dataset: Pick<Dataset, "records" | "splits" | "source">,
  name = "stratified",
  options: TrainingSplitOptions = {},
): TrainingSplit {
  const labels = options.labels ?? [];
  const split = chooseSplit(dataset, name, { seed: options.seed, by: labels[0] });
  const shipless = name !== "stratified" && split.val.length === 0 &&
    split.train.length > 0 && split.test.length > 0;
  if (options.valFraction !== undefined && !shipless) {
    const why = name === "stratified"
      ? "the stratified split has its own (6:2:2)"
      : `it has its own validation part (${split.val.length} image${
        split.val.length === 1 ? "" : "s"
      })`;
    throw new Error(
      `Cannot carve validation out of split "${name}" of "${dataset.source}": ${why}`,
    );
  }
  if (!shipless) return { name, split };
  const fraction = options.valFraction ?? DEFAULT_VAL_FRACTION;
  const by = carveStrata(dataset.records, split.train, labels, fraction);
  const carved = carveValidation(dataset.records, split, fraction, { seed: options.seed, by });
  assertDisjoint(carved, name, dataset.records);
  return { name, split: carved, carved: { fraction, by } };
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
