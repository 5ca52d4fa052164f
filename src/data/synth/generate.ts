/**
 * Writes a synthetic face database in the SCUT-FBP5500 layout (images named
 * AF/AM/CF/CM<n>, All_labels.txt, the 60/40 split, 5 cross-validation folds and
 * All_Ratings.xlsx from simulated raters), so the real reader is what reads it.
 *
 * Labels: gender is the name's second letter; with probability `labelNoise` a face is
 * drawn with the other sex's features (gender label noise) and its raters perceive it a
 * grade higher or lower than its features say (beauty label noise). Raters each have a
 * bias and per-rating noise; the beauty grade is then the reader's most-given-rating rule.
 * @module
 */

import ExcelJS from "exceljs";
import { Image } from "imagescript";
import { join } from "node:path";
import { formatCsv } from "../csv.ts";
import { Rng } from "../../random/rng.ts";
import { drawFace } from "./draw.ts";
import { type FaceFeatures, sampleFeatures, STYLE_COUNT, trueScore } from "./features.ts";

/** Options of {@link generateSynthetic}; every field but `out` has a default. */
export interface SynthOptions {
  /** Folder to write (created; must be empty or a previous synthetic database). */
  out: string;
  /** Number of images (default 500). */
  count?: number;
  /** Image side in pixels (default 96). */
  size?: number;
  /** Seed (default 0): the same options give byte-identical images and text files. */
  seed?: number;
  /** Image format (default "jpg", as the real release). */
  format?: "jpg" | "png";
  /** Simulated raters per image (default 60, as the real release). */
  raters?: number;
  /** Standard deviation of one rating around the rater's perception (default 0.5). */
  raterNoise?: number;
  /** Fraction of images whose labels disagree with their features (default 0.05). */
  labelNoise?: number;
  /** Sexes to draw: "FM" (default), "F" (a female-only database, like LSAFBD) or "M". */
  genders?: "FM" | "F" | "M";
  /** Races to draw: "AC" (default), "A" or "C". */
  races?: "AC" | "A" | "C";
  /** Background/lighting style 0–2 (default 0): different styles mimic different databases. */
  style?: number;
  /** Ratings file: "xlsx" (default), "csv" (an export), or "none" (grades from mean). */
  ratings?: "xlsx" | "csv" | "none";
}

/** Defaults of {@link SynthOptions}. */
export const SYNTH_DEFAULTS: Readonly<Required<Omit<SynthOptions, "out">>> = {
  count: 500,
  size: 96,
  seed: 0,
  format: "jpg",
  raters: 60,
  raterNoise: 0.5,
  labelNoise: 0.05,
  genders: "FM",
  races: "AC",
  style: 0,
  ratings: "xlsx",
};

/** What {@link generateSynthetic} wrote. */
export interface SynthResult {
  /** The folder written. */
  out: string;
  /** Images per group: `{AF: 182, AM: 182, CF: 68, CM: 68}`. */
  groups: Record<string, number>;
  /** Wall time of the generation. */
  seconds: number;
}

/** Name of the metadata file that marks a folder as a synthetic database. */
export const SYNTH_META = "synthetic.json";

/** Generator version: bump it when the same options would draw different files. */
export const SYNTH_VERSION = 2;

/** Group sizes in the real release's proportions (AF 2000, AM 2000, CF 750, CM 750). */
function groupSizes(o: Required<Omit<SynthOptions, "out">>): [string, number][] {
  const groups = ([["AF", 2000], ["AM", 2000], ["CF", 750], ["CM", 750]] as [string, number][])
    .filter(([g]) => o.races.includes(g[0]) && o.genders.includes(g[1]));
  const total = groups.reduce((s, [, w]) => s + w, 0);
  const exact = groups.map(([, w]) => (o.count * w) / total);
  const sizes = exact.map(Math.floor);
  // Largest remainder, so the sizes add up to count.
  const order = exact.map((e, i) => [e - sizes[i], i]).sort((a, b) => b[0] - a[0]);
  const missing = o.count - sizes.reduce((a, b) => a + b, 0);
  for (let k = 0; k < missing; k++) sizes[order[k][1]]++;
  return groups.map(([g], i) => [g, sizes[i]]);
}

/**
 * Bounds of the synthetic options: sizes a laptop writes in minutes at most (a larger
 * count or side would only fill the disk or run out of memory).
 */
export const SYNTH_LIMITS = {
  count: { min: 1, max: 1_000_000 },
  size: { min: 16, max: 1024 },
  seed: { min: 0, max: 0xffff_ffff },
  raters: { min: 1, max: 1000 },
  raterNoise: { min: 0, max: 10 },
} as const;

/**
 * Checks synthetic options; returns what is wrong ("count must be a positive integer:
 * current value is 0") or undefined when all are valid.
 */
export function checkSynthOptions(options: Omit<SynthOptions, "out">): string | undefined {
  const o = { ...SYNTH_DEFAULTS, ...options };
  const bad = (what: string, v: unknown, want: string) =>
    `${what} must be ${want}: current value is ${typeof v === "string" ? `"${v}"` : v}`;
  const L = SYNTH_LIMITS;
  const int = (what: string, v: number, { min, max }: { min: number; max: number }) =>
    Number.isInteger(v) && v >= min && v <= max
      ? undefined
      : bad(what, v, `an integer from ${min} to ${max}`);
  const wrong = int("count", o.count, L.count) ?? int("size", o.size, L.size) ??
    int("seed", o.seed, L.seed) ?? int("raters", o.raters, L.raters);
  if (wrong) return wrong;
  if (!(o.raterNoise >= 0 && o.raterNoise <= L.raterNoise.max)) {
    return bad("raterNoise", o.raterNoise, `in [0, ${L.raterNoise.max}]`);
  }
  if (!(o.labelNoise >= 0 && o.labelNoise <= 1)) {
    return bad("labelNoise", o.labelNoise, "in [0, 1]");
  }
  if (!["jpg", "png"].includes(o.format)) return bad("format", o.format, `"jpg" or "png"`);
  if (!["FM", "F", "M"].includes(o.genders)) return bad("genders", o.genders, `"FM", "F" or "M"`);
  if (!["AC", "A", "C"].includes(o.races)) return bad("races", o.races, `"AC", "A" or "C"`);
  if (!["xlsx", "csv", "none"].includes(o.ratings)) {
    return bad("ratings", o.ratings, `"xlsx", "csv" or "none"`);
  }
  if (!Number.isInteger(o.style) || o.style < 0 || o.style >= STYLE_COUNT) {
    return bad("style", o.style, `an integer in 0–${STYLE_COUNT - 1}`);
  }
  return undefined;
}

/** Empties `out` if it is a previous synthetic database; refuses any other non-empty folder. */
async function prepareOut(out: string): Promise<void> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(out)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (names.length > 0 && !names.includes(SYNTH_META)) {
    throw new Error(
      `Cannot write synthetic database to "${out}": folder is not empty and holds no ${SYNTH_META}`,
    );
  }
  for (const n of names) await Deno.remove(join(out, n), { recursive: true });
  await Deno.mkdir(join(out, "Images"), { recursive: true });
}

async function writeRatings(
  out: string,
  kind: "xlsx" | "csv",
  rows: [number, string, number][],
): Promise<void> {
  const header = ["Rater", "Filename", "Rating", "original Rating"];
  if (kind === "csv") {
    const body = rows.map(([r, f, v]) => [String(r), f, String(v), String(v)]);
    await Deno.writeTextFile(join(out, "All_Ratings.csv"), formatCsv([header, ...body]));
    return;
  }
  const wb = new ExcelJS.Workbook();
  // Fixed document dates; the zip entries still carry the write time, so the workbook's
  // cells, not its bytes, are what identical options reproduce.
  wb.created = wb.modified = new Date(0);
  const ws = wb.addWorksheet("Sheet1");
  ws.addRow(header);
  for (const [r, f, v] of rows) ws.addRow([r, f, v, v]);
  const buf = await wb.xlsx.writeBuffer();
  await Deno.writeFile(join(out, "All_Ratings.xlsx"), new Uint8Array(buf as ArrayBuffer));
}

/** One simulated face before drawing: what it looks like and what raters said. */
export interface SimulatedFace {
  /** File name, e.g. "AF12.jpg". */
  name: string;
  /** Drawn features (with the other sex's look when `noisy`). */
  features: FaceFeatures;
  /** Whether this face's labels were made to disagree with its features. */
  noisy: boolean;
  /** The score raters perceive: the true score, ±1 when `noisy`. */
  perceived: number;
  /** One integer rating (1–5) per simulated rater. */
  ratings: number[];
}

/**
 * Simulates every face of a synthetic database in file order, without drawing: the
 * ground truth the generator writes, for tests and analysis.
 */
export function simulateFaces(options: Omit<SynthOptions, "out">): SimulatedFace[] {
  const o = { ...SYNTH_DEFAULTS, ...options };
  const raterBias = Array.from(
    { length: o.raters },
    (_, r) => 0.3 * new Rng(o.seed, -1, r).normal(),
  );
  const faces: SimulatedFace[] = [];
  let i = 0;
  for (const [group, n] of groupSizes(o)) {
    for (let k = 1; k <= n; k++, i++) {
      const rng = new Rng(o.seed, i, 0);
      const noisy = rng.chance(o.labelNoise);
      const gender = group[1] === "M" ? 1 : 0;
      const race = group[0] === "C" ? 1 : 0;
      const features = sampleFeatures(rng, noisy ? 1 - gender : gender, race, o.style);
      const perceived = trueScore(features) + (noisy ? (rng.chance(0.5) ? 1 : -1) : 0);
      const rr = new Rng(o.seed, i, 2);
      const ratings = raterBias.map((bias) =>
        Math.min(5, Math.max(1, Math.round(perceived + bias + o.raterNoise * rr.normal())))
      );
      faces.push({ name: `${group}${k}.${o.format}`, features, noisy, perceived, ratings });
    }
  }
  return faces;
}

/** Writes `train.txt`/`test.txt` style files: `<file> <mean score>` per line. */
async function writeList(path: string, lines: string[], idx: number[]): Promise<void> {
  await Deno.writeTextFile(path, idx.map((i) => lines[i]).join("\n") + "\n");
}

/**
 * Generates a synthetic face database at `options.out` in the SCUT-FBP5500 layout.
 * @throws {RangeError} For an option outside its range (message names option and value).
 * @throws {Error} When `out` is a non-empty folder that is not a synthetic database.
 */
export async function generateSynthetic(options: SynthOptions): Promise<SynthResult> {
  const t0 = performance.now();
  const o = { ...SYNTH_DEFAULTS, ...options };
  const wrong = checkSynthOptions(o);
  if (wrong) throw new RangeError(`Cannot generate synthetic database: ${wrong}`);
  const out = options.out;
  await prepareOut(out);
  const labelLines: string[] = [];
  const ratingRows: [number, string, number][] = [];
  const groups: Record<string, number> = {};
  const faces = simulateFaces(o);
  for (let i = 0; i < faces.length; i++) {
    const face = faces[i];
    groups[face.name.slice(0, 2)] = (groups[face.name.slice(0, 2)] ?? 0) + 1;
    const img = new Image(o.size, o.size);
    img.bitmap.set(drawFace(face.features, o.size, new Rng(o.seed, i, 1)));
    const bytes = o.format === "jpg" ? await img.encodeJPEG(90) : await img.encode(1);
    await Deno.writeFile(join(out, "Images", face.name), bytes);
    face.ratings.forEach((rating, r) => ratingRows.push([r + 1, face.name, rating]));
    const mean = face.ratings.reduce((x, y) => x + y, 0) / face.ratings.length;
    labelLines.push(`${face.name} ${mean.toFixed(6)}`);
  }
  const tt = join(out, "train_test_files");
  await Deno.mkdir(tt, { recursive: true });
  await writeList(join(tt, "All_labels.txt"), labelLines, labelLines.map((_, j) => j));
  const perm = new Rng(o.seed, -2).shuffle(labelLines.map((_, j) => j));
  const official = join(tt, "split_of_60%training and 40%testing");
  await Deno.mkdir(official, { recursive: true });
  const cut = Math.round(perm.length * 0.6);
  await writeList(
    join(official, "train.txt"),
    labelLines,
    perm.slice(0, cut).sort((a, b) => a - b),
  );
  await writeList(join(official, "test.txt"), labelLines, perm.slice(cut).sort((a, b) => a - b));
  const folds = new Rng(o.seed, -3).shuffle(labelLines.map((_, j) => j));
  for (let k = 1; k <= 5; k++) {
    const dir = join(tt, "5_folders_cross_validations_files", `cross_validation_${k}`);
    await Deno.mkdir(dir, { recursive: true });
    const lo = Math.round(((k - 1) * folds.length) / 5), hi = Math.round((k * folds.length) / 5);
    const test = new Set(folds.slice(lo, hi));
    const train = folds.filter((j) => !test.has(j)).sort((a, b) => a - b);
    await writeList(join(dir, `train_${k}.txt`), labelLines, train);
    await writeList(join(dir, `test_${k}.txt`), labelLines, [...test].sort((a, b) => a - b));
  }
  if (o.ratings !== "none") await writeRatings(out, o.ratings, ratingRows);
  const { out: _, ...meta } = { ...o, out };
  await Deno.writeTextFile(
    join(out, SYNTH_META),
    JSON.stringify(
      { generator: "fbp synthetic faces", version: SYNTH_VERSION, options: meta, groups },
      null,
      2,
    ) +
      "\n",
  );
  return { out, groups, seconds: (performance.now() - t0) / 1000 };
}
