/**
 * The records every source produces: one labelled image each, plus the class-name
 * tables that give integer labels their meaning.
 *
 * Class tables of SCUT-FBP5500 (and of the synthetic database written in its layout):
 * - `beauty`: `"0"`–`"4"` (grade = most-given rating − 1)
 * - `gender`: `F` = 0, `M` = 1 (second letter of the file name)
 * - `race`:   `A` = 0 (Asian), `C` = 1 (Caucasian) (first letter of the file name)
 * @module
 */

import type { Problem } from "./problems.ts";

/** One labelled image. A label absent from `labels` is unknown for this image. */
export interface ImageRecord {
  /** Path of the image file (as joined from the source's root; relative or absolute). */
  path: string;
  /** Integer labels by name, e.g. `{beauty: 2, gender: 0, race: 1}`. */
  labels: Record<string, number>;
  /** Mean attractiveness score (1–5) where the source has one. */
  score?: number;
  /**
   * The raters' histogram where the source has per-rater ratings (SCUT-FBP5500's
   * All_Ratings): the fraction of ratings 1, 2, … 5 (index = rating − 1), summing to 1.
   */
  ratingHistogram?: number[];
}

/** Indices into `Dataset.records` of a train/validation/test partition. */
export interface Split {
  /** Training images. */
  train: number[];
  /** Validation images (empty for splits that have none, such as SCUT's 60/40). */
  val: number[];
  /** Test images. */
  test: number[];
}

/** Where a class of a label was first seen: a file and, for files of lines, the line. */
export interface ClassOrigin {
  /** The label file (manifest, list file) or, for class folders, the class folder. */
  file: string;
  /** 1-based line of the first entry with this class. */
  line?: number;
}

/** A database as read from a source, with its problems. */
export interface Dataset {
  /** Short name: the source kind ("scut", "csv", "folders", "list", "synthetic"). */
  name: string;
  /** The source spec it was read from. */
  source: string;
  /** Directory that image paths are relative to when they are not absolute. */
  root: string;
  /** The labelled images, in a stable order. */
  records: ImageRecord[];
  /** Class names per label: `classes.gender[1] === "M"`. */
  classes: Record<string, string[]>;
  /** Splits shipped with the source (SCUT: "official" 60/40 and "cv1"–"cv5"). */
  splits: Record<string, Split>;
  /** Every problem found while reading. */
  problems: Problem[];
  /** Skipped entries per reason. */
  skips: Record<string, number>;
  /**
   * For each label whose class table the reader built from the values it read (manifest
   * columns, list files, class folders): where each class was first seen (index = class;
   * undefined for a class no entry has). Absent for labels whose classes the format fixes
   * (SCUT-FBP5500's grades, genders and races). See classes.ts for what is checked.
   */
  classOrigins?: Record<string, (ClassOrigin | undefined)[]>;
}

/** Class names of the SCUT-FBP5500 labels (index = integer label). */
export const SCUT_CLASSES: Readonly<Record<"beauty" | "gender" | "race", readonly string[]>> = {
  beauty: ["0", "1", "2", "3", "4"],
  gender: ["F", "M"],
  race: ["A", "C"],
};

/** Counts images per class for every label: `{gender: {F: 3, M: 2}}`. */
export function countLabels(
  records: readonly ImageRecord[],
  classes: Readonly<Record<string, readonly string[]>>,
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, names] of Object.entries(classes)) {
    const counts: Record<string, number> = {};
    for (const n of names) counts[n] = 0;
    out[name] = counts;
  }
  for (const r of records) {
    for (const [name, value] of Object.entries(r.labels)) {
      const names = classes[name];
      const key = names?.[value] ?? String(value);
      out[name] ??= {};
      out[name][key] = (out[name][key] ?? 0) + 1;
    }
  }
  return out;
}
