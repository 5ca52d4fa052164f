/**
 * Test fixtures generated on the fly: tiny images, and a SCUT-FBP5500 layout whose every
 * file is given as raw text so tests can plant exactly the faults they check for.
 * @module
 */

import ExcelJS from "exceljs";
import { Image } from "imagescript";
import { join } from "node:path";

/** A solid-colour image (with a one-pixel marker so flips and crops are visible). */
export async function solidImage(
  rgb: [number, number, number],
  options: { width?: number; height?: number; format?: "jpg" | "png" } = {},
): Promise<Uint8Array> {
  const w = options.width ?? 8, h = options.height ?? 8;
  const img = new Image(w, h);
  for (let i = 0; i < w * h; i++) img.bitmap.set([...rgb, 255], i * 4);
  img.bitmap.set([255, 255, 255, 255], 0);
  return options.format === "png" ? await img.encode(0) : await img.encodeJPEG(95);
}

/** A JPEG cut off halfway: a valid header, then the data ends (a typical broken download). */
export async function corruptJpeg(): Promise<Uint8Array> {
  const good = await solidImage([10, 20, 30], { width: 16, height: 16 });
  return good.slice(0, Math.floor(good.length / 2));
}

/** Runs `fn` in a fresh temporary directory, removed afterwards whether `fn` passes or not. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fbp-data-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Rows of one ratings sheet. */
export interface SheetSpec {
  name: string;
  rows: (string | number | null)[][];
}

/** Writes an xlsx workbook with exceljs. */
export async function writeXlsx(path: string, sheets: SheetSpec[]): Promise<void> {
  const wb = new ExcelJS.Workbook();
  for (const s of sheets) {
    const ws = wb.addWorksheet(s.name);
    for (const r of s.rows) ws.addRow(r);
  }
  const buf = await wb.xlsx.writeBuffer();
  await Deno.writeFile(path, new Uint8Array(buf as ArrayBuffer));
}

/** What to write for a SCUT-FBP5500 fixture. */
export interface ScutSpec {
  /** Image files to create in Images/ (solid colours; "zero:" or "corrupt:" prefixes plant bad files). */
  images: string[];
  /** Raw text of train_test_files/All_labels.txt. */
  labels: string;
  /** All_Ratings.xlsx sheets, or raw CSV text for All_Ratings.csv. */
  ratings?: SheetSpec[] | string;
  /** Raw train.txt / test.txt of the official split. */
  official?: { train: string; test: string };
  /** Raw train_k / test_k of cross-validation folds 1.. */
  folds?: { train: string; test: string }[];
}

/** Writes a SCUT-FBP5500 layout under `root`; returns `root`. */
export async function writeScut(root: string, spec: ScutSpec): Promise<string> {
  const images = join(root, "Images");
  await Deno.mkdir(images, { recursive: true });
  let k = 0;
  for (const entry of spec.images) {
    const [kind, name] = entry.includes(":") ? entry.split(":") : ["ok", entry];
    const bytes = kind === "zero"
      ? new Uint8Array(0)
      : kind === "corrupt"
      ? await corruptJpeg()
      : await solidImage([(k * 40) % 256, (k * 90) % 256, (k * 150) % 256]);
    await Deno.writeFile(join(images, name), bytes);
    k++;
  }
  const tt = join(root, "train_test_files");
  await Deno.mkdir(tt, { recursive: true });
  await Deno.writeTextFile(join(tt, "All_labels.txt"), spec.labels);
  if (typeof spec.ratings === "string") {
    await Deno.writeTextFile(join(root, "All_Ratings.csv"), spec.ratings);
  } else if (spec.ratings) {
    await writeXlsx(join(root, "All_Ratings.xlsx"), spec.ratings);
  }
  if (spec.official) {
    const dir = join(tt, "split_of_60%training and 40%testing");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "train.txt"), spec.official.train);
    await Deno.writeTextFile(join(dir, "test.txt"), spec.official.test);
  }
  for (const [i, f] of (spec.folds ?? []).entries()) {
    const dir = join(tt, "5_folders_cross_validations_files", `cross_validation_${i + 1}`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, `train_${i + 1}.txt`), f.train);
    await Deno.writeTextFile(join(dir, `test_${i + 1}.txt`), f.test);
  }
  return root;
}

/** Ratings rows `[rater, file, rating]` giving each file the listed ratings. */
export function ratingRows(byFile: Record<string, number[]>): (string | number)[][] {
  const rows: (string | number)[][] = [];
  for (const [file, ratings] of Object.entries(byFile)) {
    ratings.forEach((r, i) => rows.push([i + 1, file, r, r]));
  }
  return rows;
}
