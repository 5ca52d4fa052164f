/**
 * `deno task data <command>`: check a database (`info`), write a synthetic one (`synth`),
 * or export any source as a manifest CSV (`manifest`). Thin: the work is in src/data.
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { labelErrors, MAX_CLASSES } from "../src/data/classes.ts";
import { collectInfo, formatInfo } from "../src/data/info.ts";
import { writeManifest } from "../src/data/manifest.ts";
import { formatProblem, quote } from "../src/data/problems.ts";
import { readSource } from "../src/data/source.ts";
import { chooseSplit, MAX_VAL_FRACTION } from "../src/data/split.ts";
import {
  generateSynthetic,
  SYNTH_DEFAULTS,
  SYNTH_LIMITS,
  type SynthOptions,
} from "../src/data/synth/generate.ts";
import { STYLE_COUNT } from "../src/data/synth/features.ts";
import {
  HELP_OPTION,
  numberFlag,
  type NumberRange,
  type ParsedArgs,
  parseFlags,
  SEED_RANGE,
  stringOptions,
} from "./_cli/options.ts";

const SOURCES = `Sources:
  scut:<dir>                    SCUT-FBP5500 archive layout (<dir> holds Images/)
  csv:<file>                    manifest CSV (header; path column; one column per label)
  folders:<dir>                 class folders <dir>/<class>/<image>
  list:<file>[@<image root>]    "<path> <int label>" lines (LSAFBD style)
  synthetic[:k=v,...]           generated faces, e.g. synthetic:count=200,size=64,seed=1`;

const HELP: Record<string, string> = {
  main: `Usage: deno task data <command> [options]

Commands:
  info SOURCE              check a database: counts per split and class, every problem
  synth --out DIR          write a synthetic face database in the SCUT-FBP5500 layout
  manifest SOURCE --out F  write a source as a manifest CSV with a split column

Run "deno task data <command> --help" for a command's options.

${SOURCES}`,
  info: `Usage: deno task data info SOURCE [options]

Reads SOURCE, decodes every image, and prints each label's class table (images per
class), counts per split, and every problem found (file:line: message). Label errors
(a value that is not a class of its column such as -1, 2.5 or NaN among class ids; a
class id that leaves classes empty; names that differ only in case or spaces such as f
beside F; a declared class count not met) are listed first and exit with code 1: a
training task on that label is refused until they are fixed.

Options:
  --classes LABEL=K         check LABEL against K declared classes (repeatable), as a
                            task declared with --task NAME=DB:LABEL:λ:K is checked
  --json                    print one JSON object: images, skipped, skips, problems
                            [{file, line?, message, label?, error?}], labels {name:
                            {value: count}}, labelErrors {name: [problem]}, splits
  --on-bad-image skip|fail  a corrupt or empty image is counted and reported (skip,
                            default) or stops with an error (fail)
  --no-decode               do not decode images (only check that they exist)
  --workers N               decode workers (default 2)
  --seed K                  seed of the stratified 6:2:2 split shown, and of the
                            validation a run carves out of a shipped split (default 0)
  --val-fraction F          share of a shipped split's train list that a run carves into
                            validation when the split has none (SCUT official, cv1..cv5),
                            in (0, 0.5] (default 0.1): the sizes are shown beside the split
  --max-problems N          problems listed in text output (default 50)
  -h, --help                show this help

${SOURCES}`,
  synth: `Usage: deno task data synth --out DIR [options]

Writes synthetic faces whose beauty grade and gender are learnable functions of drawn
features plus label noise, in the SCUT-FBP5500 layout (read it with scut:DIR).

Options:
  --out DIR             folder to write (must be empty or a previous synthetic database)
  --count N             images, 1–1000000 (default ${SYNTH_DEFAULTS.count})
  --size S              image side in pixels, 16–1024 (default ${SYNTH_DEFAULTS.size})
  --seed K              seed 0–4294967295; the same options give identical files (default ${SYNTH_DEFAULTS.seed})
  --format jpg|png      image format (default ${SYNTH_DEFAULTS.format})
  --raters N            simulated raters per image, 1–1000 (default ${SYNTH_DEFAULTS.raters})
  --rater-noise X       spread of one rating, 0–10 (default ${SYNTH_DEFAULTS.raterNoise})
  --label-noise P       fraction of images whose labels disagree with their features,
                        0–1 (default ${SYNTH_DEFAULTS.labelNoise})
  --genders FM|F|M      sexes drawn (default ${SYNTH_DEFAULTS.genders}; F makes a female-only database)
  --races AC|A|C        races drawn (default ${SYNTH_DEFAULTS.races})
  --style N             background and lighting style 0–2, a per-database look (default ${SYNTH_DEFAULTS.style})
  --ratings xlsx|csv|none  ratings file written (default ${SYNTH_DEFAULTS.ratings})
  -h, --help            show this help`,
  manifest: `Usage: deno task data manifest SOURCE --out FILE [options]

Writes SOURCE as a manifest CSV (path relative to FILE's folder, score, labels as class
names, split) that csv:FILE reads back. A source with label errors (see data info) is
refused.

Options:
  --out FILE      CSV file to write
  --split NAME    split written to the split column: stratified (default), official,
                  cv1..cv5, manifest
  --seed K        seed of the stratified split (default 0)
  -h, --help      show this help

${SOURCES}`,
};

class UsageError extends Error {}

/** A numeric flag in `range` (default: a number), as a usage error naming the flag. */
function numFlag(
  flags: Record<string, unknown>,
  name: string,
  range: NumberRange = {},
): number | undefined {
  try {
    return numberFlag(flags[name], name, range);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** An integer flag in `range` (default: counts and seeds, 0 to 2^32 - 1). */
function intFlag(
  flags: Record<string, unknown>,
  name: string,
  range: NumberRange = SEED_RANGE,
): number | undefined {
  return numFlag(flags, name, { ...range, integer: true });
}

/** A flag whose value is one of `allowed`. */
function enumFlag<T extends string>(
  flags: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) {
    throw new UsageError(
      `Cannot parse --${name}: expected one of ${allowed.join(", ")}: current value is "${v}"`,
    );
  }
  return v as T;
}

/** Ranges of the numeric `synth` flags: sizes a laptop writes in minutes at most. */
const SYNTH_RANGES = {
  count: SYNTH_LIMITS.count,
  size: SYNTH_LIMITS.size,
  raters: SYNTH_LIMITS.raters,
  "rater-noise": SYNTH_LIMITS.raterNoise,
  "label-noise": { min: 0, max: 1 },
  style: { min: 0, max: STYLE_COUNT - 1 },
} as const satisfies Record<string, NumberRange>;

/** Parses a command's flags, -h / --help and its positional arguments. */
function parseCommand<const O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
): ParsedArgs<O & typeof HELP_OPTION, true> {
  return parseFlags({ args, allowPositionals: true, options: { ...options, ...HELP_OPTION } });
}

/** `--val-fraction F`: a share in (0, 0.5], as `--db NAME=SOURCE@SPLIT:val=F` takes. */
function valFractionFlag(flags: Record<string, unknown>): number | undefined {
  return numFlag(flags, "val-fraction", { above: 0, max: MAX_VAL_FRACTION });
}

function oneSource(positionals: string[], command: string): string {
  if (positionals.length !== 1) {
    const got = positionals.length === 0 ? "none" : positionals.map((p) => `"${p}"`).join(", ");
    throw new UsageError(`Cannot run "data ${command}": expected one SOURCE: got ${got}`);
  }
  return positionals[0];
}

async function info(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    json: { type: "boolean" },
    classes: { type: "string", multiple: true },
    "on-bad-image": { type: "string", default: "skip" },
    "no-decode": { type: "boolean" },
    ...stringOptions("workers", "seed", "max-problems", "val-fraction"),
  });
  if (values.help) return console.log(HELP.info);
  const policy = values["on-bad-image"];
  if (policy !== "skip" && policy !== "fail") {
    throw new UsageError(
      `Cannot parse --on-bad-image: expected skip or fail: current value is "${policy}"`,
    );
  }
  const classes: Record<string, number> = {};
  for (const c of values.classes ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(c);
    if (!m || Number(m[2]) < 2 || Number(m[2]) > MAX_CLASSES) {
      throw new UsageError(
        `Cannot parse --classes: expected LABEL=K with K an integer from 2 to ${MAX_CLASSES}: ` +
          `current value is ${quote(c)}`,
      );
    }
    classes[m[1]] = Number(m[2]);
  }
  const dataset = await readSource(oneSource(positionals, "info"));
  const result = await collectInfo(dataset, {
    decode: !values["no-decode"],
    onBadImage: policy,
    workers: intFlag(values, "workers"),
    seed: intFlag(values, "seed"),
    valFraction: valFractionFlag(values),
    classes,
  });
  console.log(
    values.json
      ? JSON.stringify(result, null, 2)
      : formatInfo(result, intFlag(values, "max-problems")),
  );
  const bad = Object.entries(result.labelErrors).filter(([, e]) => e.length > 0);
  if (bad.length > 0) {
    const n = bad.reduce((a, [, e]) => a + e.length, 0);
    throw new Error(
      `${dataset.source}: ${n} label error${n === 1 ? "" : "s"} (${
        bad.map(([l, e]) => `"${l}": ${e.length}`).join(", ")
      }): a task on ${bad.length === 1 ? "this label" : "these labels"} is refused until ` +
        `they are fixed`,
    );
  }
}

async function synth(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(
    args,
    stringOptions(
      "out",
      "count",
      "size",
      "seed",
      "format",
      "raters",
      "rater-noise",
      "label-noise",
      "genders",
      "races",
      "style",
      "ratings",
    ),
  );
  if (values.help) return console.log(HELP.synth);
  if (positionals.length > 0) {
    throw new UsageError(`Cannot run "data synth": unexpected "${positionals[0]}"`);
  }
  if (!values.out) throw new UsageError(`Cannot run "data synth": --out DIR is required`);
  const options: SynthOptions = {
    out: values.out,
    count: intFlag(values, "count", SYNTH_RANGES.count),
    size: intFlag(values, "size", SYNTH_RANGES.size),
    seed: intFlag(values, "seed", SEED_RANGE),
    format: enumFlag(values, "format", ["jpg", "png"] as const),
    raters: intFlag(values, "raters", SYNTH_RANGES.raters),
    raterNoise: numFlag(values, "rater-noise", SYNTH_RANGES["rater-noise"]),
    labelNoise: numFlag(values, "label-noise", SYNTH_RANGES["label-noise"]),
    genders: enumFlag(values, "genders", ["FM", "F", "M"] as const),
    races: enumFlag(values, "races", ["AC", "A", "C"] as const),
    style: intFlag(values, "style", SYNTH_RANGES.style),
    ratings: enumFlag(values, "ratings", ["xlsx", "csv", "none"] as const),
  };
  for (const k of Object.keys(options) as (keyof SynthOptions)[]) {
    if (options[k] === undefined) delete options[k];
  }
  const r = await generateSynthetic(options);
  const groups = Object.entries(r.groups).map(([g, n]) => `${g} ${n}`).join(", ");
  console.log(
    `wrote ${r.out} (${groups}) in ${r.seconds.toFixed(1)} s; read it with scut:${r.out}`,
  );
}

async function manifest(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...stringOptions("out", "seed"),
    split: { type: "string", default: "stratified" },
  });
  if (values.help) return console.log(HELP.manifest);
  const source = oneSource(positionals, "manifest");
  if (!values.out) throw new UsageError(`Cannot run "data manifest": --out FILE is required`);
  const dataset = await readSource(source);
  const errors = labelErrors(dataset);
  if (errors.length > 0) {
    const more = errors.length === 1
      ? ""
      : ` (${errors.length - 1} more: "deno task data info ${source}" lists them)`;
    throw new Error(`Cannot write manifest from ${source}: ${formatProblem(errors[0])}${more}`);
  }
  const split = chooseSplit(dataset, values.split, { seed: intFlag(values, "seed") });
  await writeManifest(dataset, values.out, split);
  console.log(`wrote ${values.out} (${dataset.records.length} images, split "${values.split}")`);
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { info, synth, manifest };

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(HELP.main);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(
      `Cannot run "data ${command}": unknown command: expected info, synth or manifest`,
    );
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (e) {
    const usage = e instanceof UsageError ||
      (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(e instanceof Error ? e.message : String(e));
    if (usage) console.error(`Run "deno task data ${command} --help" for usage.`);
    return usage ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
