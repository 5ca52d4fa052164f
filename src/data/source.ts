/**
 * One source syntax for every command:
 *
 * | spec                         | reads                                              |
 * |------------------------------|----------------------------------------------------|
 * | `scut:<dir>`                 | SCUT-FBP5500 archive layout (`<dir>` holds Images/) |
 * | `csv:<file>`                 | manifest CSV                                       |
 * | `folders:<dir>`              | class folders `<dir>/<class>/<image>`              |
 * | `list:<file>[@<image root>]` | list file of `<path> <int label>` lines            |
 * | `synthetic[:k=v,…]`          | generated faces (options below), SCUT layout       |
 *
 * Synthetic options: the fields of {@link SynthOptions} (`count`, `size`, `seed`, `format`,
 * `raters`, `raterNoise`, `labelNoise`, `genders`, `races`, `style`, `ratings`) plus `dir`
 * (where to write; default `.cache/synthetic/<hash of options>`, reused when present) and
 * `labels` (labels to keep, joined by `+`, e.g. `labels=gender`).
 * @module
 */

import { join } from "node:path";
import { readClassFolders } from "./folders.ts";
import { readListFile } from "./list_file.ts";
import { readManifest } from "./manifest.ts";
import { mix32 } from "../random/rng.ts";
import type { Dataset } from "./records.ts";
import { readScut, scutFolds } from "./scut.ts";
import {
  checkSynthOptions,
  generateSynthetic,
  SYNTH_DEFAULTS,
  SYNTH_META,
  SYNTH_VERSION,
  type SynthOptions,
} from "./synth/generate.ts";

/** Options of a `synthetic` source. */
export interface SyntheticSourceOptions extends Omit<SynthOptions, "out"> {
  /** Folder to generate into (default: a cache folder keyed by the options). */
  dir?: string;
  /** Labels to keep (default: all of beauty, gender, race). */
  labels?: string[];
}

/** A parsed source spec. */
export type SourceSpec =
  | { kind: "scut"; dir: string }
  | { kind: "csv"; file: string }
  | { kind: "folders"; dir: string }
  | { kind: "list"; file: string; imageRoot?: string }
  | { kind: "synthetic"; options: SyntheticSourceOptions };

/** The source kinds, in the order help texts list them. */
export const SOURCE_KINDS: readonly string[] = ["scut", "csv", "folders", "list", "synthetic"];

const INT_OPTIONS = ["count", "size", "seed", "raters", "style"] as const;
const NUM_OPTIONS = ["raterNoise", "labelNoise"] as const;
const ENUM_OPTIONS: Record<string, readonly string[]> = {
  format: ["jpg", "png"],
  genders: ["FM", "F", "M"],
  races: ["AC", "A", "C"],
  ratings: ["xlsx", "csv", "none"],
};
const ALL_OPTIONS = [...INT_OPTIONS, ...NUM_OPTIONS, ...Object.keys(ENUM_OPTIONS), "dir", "labels"];

function parseSynthetic(spec: string, text: string): SyntheticSourceOptions {
  const fail = (why: string): never => {
    throw new Error(`Cannot parse data source "${spec}": ${why}`);
  };
  const opts: Record<string, unknown> = {};
  if (text === "") return opts;
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) fail(`expected option "key=value": current value is "${part}"`);
    const raw = part.slice(0, eq).trim(), value = part.slice(eq + 1).trim();
    const key = ALL_OPTIONS.find((k) => k.toLowerCase() === raw.toLowerCase().replace(/[-_]/g, ""));
    if (!key) fail(`unknown option "${raw}": expected one of ${ALL_OPTIONS.join(", ")}`);
    if (key! in opts) fail(`option "${key}" given twice`);
    if ((INT_OPTIONS as readonly string[]).includes(key!)) {
      if (!/^-?\d+$/.test(value)) {
        fail(`option "${key}" must be an integer: current value is "${value}"`);
      }
      opts[key!] = Number(value);
    } else if ((NUM_OPTIONS as readonly string[]).includes(key!)) {
      const n = Number(value);
      if (value === "" || !Number.isFinite(n)) {
        fail(`option "${key}" must be a number: current value is "${value}"`);
      }
      opts[key!] = n;
    } else if (key! in ENUM_OPTIONS) {
      const allowed = ENUM_OPTIONS[key!];
      const v = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
      if (!v) {
        fail(`option "${key}" must be one of ${allowed.join(", ")}: current value is "${value}"`);
      }
      opts[key!] = v;
    } else if (key === "labels") {
      const labels = value.split("+").map((s) => s.trim());
      const bad = labels.find((l) => !["beauty", "gender", "race"].includes(l));
      if (bad !== undefined) {
        fail(
          `option "labels" must join beauty, gender, race with "+": current value is "${value}"`,
        );
      }
      opts.labels = labels;
    } else {
      if (value === "") fail(`option "dir" is empty`);
      opts.dir = value;
    }
  }
  const wrong = checkSynthOptions(opts);
  if (wrong) fail(wrong);
  return opts as SyntheticSourceOptions;
}

/**
 * Parses a source spec such as `scut:data/SCUT-FBP5500_v2` or `synthetic:count=200`.
 * @throws {Error} `Cannot parse data source "<spec>": <why>` for an unknown kind, a
 * missing path, or a bad synthetic option (naming the option and the value given).
 * @example A list file with an image root
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSource } from "./source.ts";
 * assert.deepEqual(parseSource("list:train.txt@images"), {
 *   kind: "list", file: "train.txt", imageRoot: "images",
 * });
 * ```
 */
export function parseSource(spec: string): SourceSpec {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? "" : spec.slice(colon + 1);
  const kinds = SOURCE_KINDS.join(", ");
  if (kind === "synthetic") return { kind, options: parseSynthetic(spec, rest) };
  if (colon < 0 || !SOURCE_KINDS.includes(kind)) {
    const why = colon < 0
      ? `expected "<kind>:<path>" with kind one of ${kinds}`
      : `unknown kind "${kind}": expected one of ${kinds}`;
    throw new Error(`Cannot parse data source "${spec}": ${why}`);
  }
  if (rest.trim() === "") {
    throw new Error(`Cannot parse data source "${spec}": missing path after "${kind}:"`);
  }
  switch (kind) {
    case "scut":
      return { kind, dir: rest };
    case "csv":
      return { kind, file: rest };
    case "folders":
      return { kind, dir: rest };
    default: {
      // The image root follows the last "@"; a path with "@" in it needs an explicit root.
      const at = rest.lastIndexOf("@");
      if (at < 0) return { kind: "list", file: rest };
      const file = rest.slice(0, at), imageRoot = rest.slice(at + 1);
      if (file === "" || imageRoot === "") {
        const which = file === "" ? "list file" : "image root";
        throw new Error(`Cannot parse data source "${spec}": ${which} is empty around "@"`);
      }
      return { kind: "list", file, imageRoot };
    }
  }
}

/** Folder a synthetic source is generated into: `dir`, or a cache folder keyed by options. */
export function syntheticDir(options: SyntheticSourceOptions, cacheRoot = ".cache"): string {
  if (options.dir) return options.dir;
  const { dir: _d, labels: _l, ...gen } = options;
  const full = { ...SYNTH_DEFAULTS, ...gen };
  const json = JSON.stringify([
    SYNTH_VERSION,
    ...Object.keys(full).sort().map((k) => [k, full[k as keyof typeof full]]),
  ]);
  let h = 0;
  for (let i = 0; i < json.length; i++) h = mix32(h ^ json.charCodeAt(i));
  return join(cacheRoot, "synthetic", h.toString(16).padStart(8, "0"));
}

/** True when `dir` holds a complete synthetic database made with these options. */
async function isGenerated(dir: string, options: SynthOptions): Promise<boolean> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(join(dir, SYNTH_META)));
    const want = { ...SYNTH_DEFAULTS, ...options, out: undefined };
    return meta.version === SYNTH_VERSION &&
      Object.entries(want).every(([k, v]) => v === undefined || meta.options?.[k] === v);
  } catch {
    return false;
  }
}

/** Generates (or reuses) the database of a synthetic source; returns its folder. */
export async function ensureSynthetic(options: SyntheticSourceOptions): Promise<string> {
  const { dir: _d, labels: _l, ...gen } = options;
  const dir = syntheticDir(options);
  if (await isGenerated(dir, { ...gen, out: dir })) return dir;
  if (options.dir) {
    await generateSynthetic({ ...gen, out: dir });
    return dir;
  }
  // Generate beside the cache folder and rename, so concurrent runs never see half a database.
  const tmp = `${dir}.tmp-${Deno.pid}`;
  try {
    await generateSynthetic({ ...gen, out: tmp });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  try {
    await Deno.rename(tmp, dir);
  } catch {
    // Another run may have finished first; anything else in our cache folder is debris.
    if (!(await isGenerated(dir, { ...gen, out: dir }))) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.rename(tmp, dir);
    } else await Deno.remove(tmp, { recursive: true });
  }
  return dir;
}

/** Keeps only the named labels of a dataset (records and class tables). */
function keepLabels(d: Dataset, labels: readonly string[]): Dataset {
  const keep = <T>(o: Record<string, T>) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => labels.includes(k)));
  const records = d.records.map((r) => ({ ...r, labels: keep(r.labels) }));
  const out: Dataset = { ...d, classes: keep(d.classes), records };
  if (d.classOrigins) out.classOrigins = keep(d.classOrigins);
  return out;
}

/**
 * Reads a source given as a spec string or a parsed {@link SourceSpec}. A synthetic
 * source is generated first (into its `dir`, or a cache folder under .cache/), then read
 * as a SCUT-FBP5500 folder.
 * @returns the database: its records, class names, shipped splits and problems found
 * @throws {Error} For a bad spec or an unreadable source (see the readers).
 * @example Generate and read a small synthetic database
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSource } from "./source.ts";
 * const dir = await Deno.makeTempDir();
 * const db = await readSource(`synthetic:count=20,size=32,ratings=none,dir=${dir}/faces`);
 * assert.equal(db.records.length, 20);
 * assert.deepEqual(db.classes.gender, ["F", "M"]);
 * assert.ok("cv1" in db.splits);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSource(spec: string | SourceSpec): Promise<Dataset> {
  const s = typeof spec === "string" ? parseSource(spec) : spec;
  const text = typeof spec === "string" ? spec : formatSource(s);
  switch (s.kind) {
    case "scut":
      return await readScut(s.dir, text);
    case "csv":
      return await readManifest(s.file, text);
    case "folders":
      return await readClassFolders(s.dir, {}, text);
    case "list":
      return await readListFile(s.file, { imageRoot: s.imageRoot }, text);
    case "synthetic": {
      const dir = await ensureSynthetic(s.options);
      const d = { ...(await readScut(dir, text)), name: "synthetic" };
      return s.options.labels ? keepLabels(d, s.options.labels) : d;
    }
  }
}

/**
 * The cross-validation folds a source ships (split names "cv1"…"cv5"), found without
 * reading its images or labels: the folds present in a `scut:` folder, all five for a
 * `synthetic` source (its generator writes them), none for the other kinds.
 * @throws {Error} for a spec that does not parse, or a `scut:` folder that does not exist
 */
export async function sourceFolds(spec: string | SourceSpec): Promise<number[]> {
  const s = typeof spec === "string" ? parseSource(spec) : spec;
  if (s.kind === "scut") return await scutFolds(s.dir);
  return s.kind === "synthetic" ? [1, 2, 3, 4, 5] : [];
}

/** Formats a parsed spec back into the source syntax. */
export function formatSource(s: SourceSpec): string {
  switch (s.kind) {
    case "scut":
    case "folders":
      return `${s.kind}:${s.dir}`;
    case "csv":
      return `csv:${s.file}`;
    case "list":
      return `list:${s.file}${s.imageRoot === undefined ? "" : `@${s.imageRoot}`}`;
    case "synthetic": {
      const parts = Object.entries(s.options).map(([k, v]) =>
        `${k}=${Array.isArray(v) ? v.join("+") : v}`
      );
      return parts.length ? `synthetic:${parts.join(",")}` : "synthetic";
    }
  }
}
