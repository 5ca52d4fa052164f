/**
 * What `deno task data info` reports: counts per split and class, and every problem, so
 * a database can be checked before training. The JSON form is {@link DataInfo}.
 * @module
 */

import { checkLabel } from "./classes.ts";
import { BadImageError } from "./decode.ts";
import type { BadImagePolicy } from "./loader.ts";
import { formatProblem, type Problem } from "./problems.ts";
import { countLabels, type Dataset, type ImageRecord } from "./records.ts";
import { DEFAULT_VAL_FRACTION, stratifiedSplit, trainingSplit } from "./split.ts";
import { DecodePool } from "./worker_pool.ts";

/** Counts of one part of a split. */
export interface PartInfo {
  /** Images in this part. */
  images: number;
  /** Images per class for each label. */
  labels: Record<string, Record<string, number>>;
}

/** Counts of one split: its parts, and for a shipped split without validation what a run uses. */
export type SplitInfo = Record<"train" | "val" | "test", PartInfo> & {
  /**
   * A shipped split with train and test lists only (SCUT-FBP5500's official and cv1–cv5):
   * the sizes of train and val once a run carves `fraction` of train into validation
   * (split.ts trainingSplit); the test list stays as shipped.
   */
  carved?: { fraction: number; train: number; val: number };
};

/** The report of `data info --json`. */
export interface DataInfo {
  /** The source spec read. */
  source: string;
  /** Labelled images that decode (or that exist, when decoding was not checked). */
  images: number;
  /** Entries skipped (images, label-file lines, rating rows), all listed in `problems`. */
  skipped: number;
  /** Skipped entries per reason. */
  skips: Record<string, number>;
  /** Every problem found, with file and (where it has one) line. */
  problems: Problem[];
  /** Images per class for each label, over the `images` counted. */
  labels: Record<string, Record<string, number>>;
  /** Class names per label (index = integer label). */
  classes: Record<string, string[]>;
  /**
   * Per label, every reason a task on it is refused (values that are not classes of their
   * column, empty classes, names differing only in case or spaces, a declared count not
   * met: see classes.ts); `[]` for a label that can be trained on.
   */
  labelErrors: Record<string, Problem[]>;
  /** Per split ("stratified" 6:2:2 and the source's own): counts per part. */
  splits: Record<string, SplitInfo>;
  /** Whether every image was decoded to check it. */
  decoded: boolean;
}

/** Options of {@link collectInfo}. */
export interface InfoOptions {
  /** Decode every image to check it (default true). */
  decode?: boolean;
  /** Bad image policy (default "skip": count and report; "fail": throw). */
  onBadImage?: BadImagePolicy;
  /** Decode workers (default 2). */
  workers?: number;
  /** Seed of the stratified split and of carved validation (default 0). */
  seed?: number;
  /** Validation share carved out of a shipped split without one (default 0.1). */
  valFraction?: number;
  /** Class counts declared per label (as a task's `--task NAME=DB:LABEL:λ:K` does). */
  classes?: Record<string, number>;
}

/**
 * Checks a dataset (decoding every image unless `decode` is false) and counts it.
 * @throws {BadImageError} With policy "fail", for the first image that does not decode.
 */
export async function collectInfo(dataset: Dataset, options: InfoOptions = {}): Promise<DataInfo> {
  const problems = [...dataset.problems];
  const skips = { ...dataset.skips };
  const good = new Set<number>(dataset.records.map((_, i) => i));
  const decode = options.decode ?? true;
  if (decode) {
    const pool = new DecodePool({ workers: options.workers ?? 2 });
    try {
      const results = await Promise.allSettled(dataset.records.map((r) => pool.check(r.path)));
      results.forEach((r, i) => {
        if (r.status === "fulfilled") return;
        if (!(r.reason instanceof BadImageError) || options.onBadImage === "fail") throw r.reason;
        good.delete(i);
        problems.push({
          file: r.reason.path,
          message: `${r.reason.reason}; skipped`,
          skipped: true,
        });
        skips["bad image"] = (skips["bad image"] ?? 0) + 1;
      });
    } finally {
      pool.close();
    }
  }
  const records = dataset.records.filter((_, i) => good.has(i));
  const declared = options.classes ?? {};
  const labelErrors: Record<string, Problem[]> = {};
  for (const label of new Set([...Object.keys(dataset.classes), ...Object.keys(declared)])) {
    const k = Object.hasOwn(declared, label) ? declared[label] : undefined;
    labelErrors[label] = checkLabel(dataset, label, k).errors;
  }
  const part = (idx: number[]): PartInfo => {
    const rs: ImageRecord[] = idx.filter((i) => good.has(i)).map((i) => dataset.records[i]);
    return { images: rs.length, labels: countLabels(rs, dataset.classes) };
  };
  const splits: DataInfo["splits"] = {};
  const all = {
    stratified: stratifiedSplit(dataset.records, { seed: options.seed }),
    ...dataset.splits,
  };
  for (const [name, s] of Object.entries(all)) {
    splits[name] = { train: part(s.train), val: part(s.val), test: part(s.test) };
    if (name !== "stratified" && s.val.length === 0 && s.train.length > 0 && s.test.length > 0) {
      const fraction = options.valFraction ?? DEFAULT_VAL_FRACTION;
      const used = trainingSplit(dataset, name, { seed: options.seed, valFraction: fraction });
      const n = (idx: number[]) => idx.filter((i) => good.has(i)).length;
      splits[name].carved = { fraction, train: n(used.split.train), val: n(used.split.val) };
    }
  }
  return {
    source: dataset.source,
    images: records.length,
    skipped: Object.values(skips).reduce((a, b) => a + b, 0),
    skips,
    problems,
    labels: countLabels(records, dataset.classes),
    classes: dataset.classes,
    labelErrors,
    splits,
    decoded: decode,
  };
}

/**
 * Formats counts as `F 250  M 250`; runs of empty class ids are joined (`5–998 none`), and
 * past `max` entries the rest is counted.
 */
function counts(c: Record<string, number>, max = 40): string {
  const entries = Object.entries(c);
  const ids = entries.every(([k], i) => k === String(i));
  const parts: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    let j = i;
    if (ids && entries[i][1] === 0) {
      while (j + 1 < entries.length && entries[j + 1][1] === 0) j++;
    }
    parts.push(j > i + 1 ? `${i}–${j} none` : `${entries[i][0]} ${entries[i][1]}`);
    if (j === i + 1) parts.push(`${j} 0`);
    i = j;
  }
  const more = parts.length > max ? `  … ${parts.length - max} more (--json for all)` : "";
  return parts.slice(0, max).join("  ") + more;
}

/**
 * Renders {@link DataInfo} as text for a terminal: counts per class of every label (its
 * class table), the label errors that refuse a task, splits, and at most `maxProblems` of
 * the other problems.
 */
export function formatInfo(info: DataInfo, maxProblems = 50): string {
  const lines = [
    `source   ${info.source}`,
    `images   ${info.images}${info.decoded ? " (all decoded)" : " (not decoded)"}`,
    `skipped  ${info.skipped}`,
  ];
  for (const [reason, n] of Object.entries(info.skips)) lines.push(`  ${reason}: ${n}`);
  lines.push("", "labels (images per class)");
  const errors = Object.entries(info.labelErrors).filter(([, e]) => e.length > 0);
  for (const [name, c] of Object.entries(info.labels)) {
    const n = info.labelErrors[name]?.length ?? 0;
    const flag = n === 0 ? "" : `  ✗ ${n} label error${n === 1 ? "" : "s"}`;
    lines.push(`  ${name.padEnd(8)} ${counts(c)}${flag}`);
  }
  if (errors.length > 0) {
    const all = errors.flatMap(([, e]) => e);
    const names = errors.map(([l]) => `"${l}"`).join(", ");
    lines.push("", `label errors (${all.length}): a task on ${names} is refused until fixed`);
    for (const p of all.slice(0, maxProblems)) lines.push(`  ${formatProblem(p)}`);
    if (all.length > maxProblems) {
      lines.push(`  … ${all.length - maxProblems} more (use --json for all)`);
    }
  }
  lines.push("", "splits");
  for (const [name, s] of Object.entries(info.splits)) {
    const carved = s.carved
      ? `; a run carves ${+(100 * s.carved.fraction).toFixed(2)}% of train into val: ` +
        `train ${s.carved.train}, val ${s.carved.val}`
      : "";
    lines.push(
      `  ${name}: train ${s.train.images}, val ${s.val.images}, test ${s.test.images}${carved}`,
    );
    for (const p of ["train", "val", "test"] as const) {
      if (s[p].images === 0) continue;
      for (const [label, c] of Object.entries(s[p].labels)) {
        lines.push(`    ${p.padEnd(5)} ${label.padEnd(8)} ${counts(c)}`);
      }
    }
  }
  // Label errors the reader found are listed above; the rest here.
  const others = info.problems.filter((p) =>
    !(p.error && p.label !== undefined && Object.hasOwn(info.labelErrors, p.label))
  );
  lines.push("", `problems (${others.length})`);
  for (const p of others.slice(0, maxProblems)) lines.push(`  ${formatProblem(p)}`);
  if (others.length > maxProblems) {
    lines.push(`  … ${others.length - maxProblems} more (use --json for all)`);
  }
  return lines.join("\n");
}
