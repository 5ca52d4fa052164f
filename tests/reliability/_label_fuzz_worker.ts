/**
 * The label-file fuzzer, run in a Worker so the test can stop it if a reader hangs (a
 * synchronous infinite loop would otherwise block the test runner). Message in:
 * `{seed, budgetMs, cases: {reader: maxCases}}`; out: `{kind: "case", reader, n}` before each
 * case, then `{kind: "done", counts, failures}`. Each case's PRNG is seeded from
 * (seed, reader, case number), so a failure names what replays it.
 *
 * A case passes when the reader returns a dataset that keeps its invariants (labels inside
 * their class tables, split indices in range, every problem located in a file of the case
 * with a line inside it, skip counts that add up) or throws a plain `Error` whose message
 * names a file of the case. Anything else (TypeError, RangeError, a non-Error, a message
 * without the file) is a failure.
 * @module
 */

import { join } from "node:path";
import { checkLabel, taskClasses } from "../../src/data/classes.ts";
import { parseCsv } from "../../src/data/csv.ts";
import { readListFile } from "../../src/data/list_file.ts";
import { readManifest } from "../../src/data/manifest.ts";
import { ProblemLog } from "../../src/data/problems.ts";
import type { Dataset } from "../../src/data/records.ts";
import { readScut } from "../../src/data/scut.ts";
import { splitLines } from "../../src/data/text_lines.ts";
import { mulberry32 } from "../io/_helpers.ts";

/** Message that starts a fuzz run. */
export interface FuzzRequest {
  seed: number;
  /** Wall-time budget for all readers together; each gets an equal share. */
  budgetMs: number;
  /** Most cases per reader. */
  cases: Record<string, number>;
}

/** Messages the worker posts. */
export type FuzzReply =
  | { kind: "case"; reader: string; n: number }
  | {
    kind: "done";
    counts: Record<string, number>;
    outcomes: Record<string, { ok: number; error: number }>;
    failures: string[];
  };

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<FuzzRequest>) => void) | null;
  postMessage(msg: FuzzReply): void;
};

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

/** Tokens that have broken parsers before: numbers at the edges, quotes, separators, names. */
const TOKENS = [
  '"',
  '""',
  '"a,b"',
  ",",
  ";",
  "\t",
  " ",
  "\r",
  "\n",
  "\r\n",
  "\u0000",
  "\uFEFF",
  "\u2028",
  "-1",
  "5",
  "6",
  "255",
  "99999999999",
  "4294967296",
  "100000000",
  "1e308",
  "-0",
  "NaN",
  "Infinity",
  "0x1F",
  "٣",
  "3.5",
  "2.5",
  "1e0",
  "999",
  "f",
  "m",
  " F",
  "NA",
  "+2",
  "007",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "../../etc/passwd",
  "/abs/x.jpg",
  "AF1.jpg",
  "AM1",
  "a.jpg",
  "b c.jpg",
  "%",
  "\\",
  "é",
  "😀",
  " ".repeat(300),
  "x".repeat(5000),
  "train",
  "TEST",
  "val",
  "path",
  "beauty",
  "gender",
  "score",
  "split",
];

function mutateText(rng: Rng, text: string): string {
  let lines = text.split("\n");
  switch (int(rng, 14)) {
    case 0:
      return "\uFEFF" + text;
    case 1: // CRLF on every line, or on some
      return rng() < 0.5
        ? text.replaceAll("\n", "\r\n")
        : lines.map((l) => (rng() < 0.5 ? l + "\r" : l)).join("\n");
    case 2: // blank lines
      lines.splice(
        int(rng, lines.length + 1),
        0,
        ...Array(1 + int(rng, 3)).fill(pick(rng, ["", " ", "\t", "\r"])),
      );
      return lines.join("\n");
    case 3: { // duplicate a line
      const i = int(rng, lines.length);
      lines.splice(int(rng, lines.length + 1), 0, lines[i]);
      return lines.join("\n");
    }
    case 4: // delete a line
      lines.splice(int(rng, lines.length), 1);
      return lines.join("\n");
    case 5: // shuffle
      lines = lines.map((l) => [rng(), l] as const).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
      return lines.join("\n");
    case 6: // truncate
      return text.slice(0, int(rng, text.length + 1));
    case 7: { // insert a token anywhere
      const at = int(rng, text.length + 1);
      return text.slice(0, at) + pick(rng, TOKENS) + text.slice(at);
    }
    case 8:
    case 9: { // replace a field of a line (case 9: the first, a CSV header) with a token
      const i = rng() < 0.5 ? 0 : int(rng, lines.length);
      const fields = lines[i].split(/([\s,;]+)/);
      const f = 2 * int(rng, Math.ceil(fields.length / 2));
      fields[f] = pick(rng, TOKENS);
      lines[i] = fields.join("");
      return lines.join("\n");
    }
    case 10: { // quote a field, sometimes unbalanced
      const i = int(rng, lines.length);
      const fields = lines[i].split(",");
      const f = int(rng, fields.length);
      fields[f] = rng() < 0.7 ? `"${fields[f].replaceAll('"', '""')}"` : `"${fields[f]}`;
      lines[i] = fields.join(",");
      return lines.join("\n");
    }
    case 11: // no final newline, or many
      return rng() < 0.5 ? text.replace(/\n+$/, "") : text + "\n\n\n";
    case 12: // many copies of the whole file (duplicates of every row)
      return text + text;
    default: { // a label column as a big or negative number
      const i = int(rng, lines.length);
      lines[i] = lines[i].replace(
        /\d+(\.\d+)?\s*$/,
        pick(rng, ["-3", "5", "99999999999", "4294967295", "1e9", "NaN", "2.5", "999", "1e0"]),
      );
      return lines.join("\n");
    }
  }
}

function mutateBytes(rng: Rng, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  for (let i = 0, n = 1 + int(rng, 4); i < n && out.length; i++) {
    out[int(rng, out.length)] = pick(rng, [
      0xff,
      0xfe,
      0xc3,
      0x80,
      0x00,
      0x22,
      0x0d,
      0x2c,
      int(rng, 256),
    ]);
  }
  return out;
}

/** A mutated version of `seedText` as bytes: 1–4 text mutations, sometimes byte damage. */
function mutant(rng: Rng, seedText: string): Uint8Array {
  let text = seedText;
  for (let i = 0, n = 1 + int(rng, 4); i < n; i++) text = mutateText(rng, text);
  const bytes = new TextEncoder().encode(text);
  return rng() < 0.15 ? mutateBytes(rng, bytes) : bytes;
}

function lineCount(bytes: Uint8Array): number {
  let n = 1;
  for (const b of bytes) if (b === 10) n++;
  return n;
}

/** Checks a dataset's invariants; returns what is wrong, or "". */
function checkDataset(ds: Dataset, files: Map<string, number>, extraFiles: string[]): string {
  if (Object.getPrototypeOf(ds.classes) !== Object.prototype) {
    return "the class tables' prototype was changed (a label named __proto__?)";
  }
  for (const [label, names] of Object.entries(ds.classes)) {
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      return `classes.${label} is not a list of names`;
    }
    if (names.length > 100_000) return `classes.${label} has ${names.length} entries`;
  }
  for (const [i, r] of ds.records.entries()) {
    if (typeof r.path !== "string" || r.path === "") return `record ${i} has no path`;
    if (Object.getPrototypeOf(r.labels) !== Object.prototype) {
      return `record ${i} labels have a changed prototype`;
    }
    for (const [label, v] of Object.entries(r.labels)) {
      const names = Object.hasOwn(ds.classes, label) ? ds.classes[label] : undefined;
      if (!names) return `record ${i} has label "${label}" without a class table`;
      if (!Number.isInteger(v) || v < 0 || v >= names.length) {
        return `record ${i} label ${label} = ${v} outside 0..${names.length - 1}`;
      }
    }
    if (r.score !== undefined && !Number.isFinite(r.score)) return `record ${i} score ${r.score}`;
  }
  for (const [name, s] of Object.entries(ds.splits)) {
    const seen = new Set<number>();
    for (const part of [s.train, s.val, s.test]) {
      for (const i of part) {
        if (!Number.isInteger(i) || i < 0 || i >= ds.records.length) {
          return `split ${name} index ${i} out of range`;
        }
        if (seen.has(i)) return `split ${name} holds record ${i} twice`;
        seen.add(i);
      }
    }
  }
  let skipped = 0;
  for (const p of ds.problems) {
    if (typeof p.message !== "string" || p.message === "") return "a problem without a message";
    if (p.skipped) skipped++;
    const lines = files.get(p.file);
    if (lines === undefined) {
      if (!extraFiles.some((f) => p.file.startsWith(f))) {
        return `problem in unknown file "${p.file}"`;
      }
    } else if (
      p.line !== undefined && !(Number.isInteger(p.line) && p.line >= 1 && p.line <= lines)
    ) {
      return `problem at line ${p.line} of a ${lines}-line file`;
    }
  }
  const counted = Object.values(ds.skips).reduce((a, b) => a + b, 0);
  if (counted !== skipped) return `skips count ${counted}, problems mark ${skipped} skipped`;
  return "";
}

/**
 * Checks the label checks of a dataset (classes.ts): every label error is located in a
 * file of the case with a short message, and a task on each label either gets a class
 * table that every label fits (no empty classes where the reader built it) or is refused
 * with a plain Error naming a file of the case. Returns what is wrong, or "".
 */
function checkLabels(ds: Dataset, files: Map<string, number>, extraFiles: string[]): string {
  const named = (text: string) => [...files.keys(), ...extraFiles].some((f) => text.includes(f));
  for (const label of Object.keys(ds.classes)) {
    const check = checkLabel(ds, label);
    for (const p of check.errors) {
      if (!p.error || p.label !== label) return `a label error of "${label}" is not marked so`;
      if (!named(p.file)) return `label error in unknown file "${p.file}"`;
      if (p.message.length > 1000) return `a label error of ${p.message.length} characters`;
    }
    let names: string[];
    try {
      names = taskClasses(ds, { name: "t", label });
    } catch (e) {
      if (!(e instanceof Error) || e.constructor !== Error) return describe(e);
      if (!named(e.message)) return `refusal names no file: ${e.message.slice(0, 200)}`;
      if (check.errors.length === 0) return `refused without a label error: ${e.message}`;
      continue;
    }
    if (check.errors.length > 0) {
      return `label "${label}" accepted with ${check.errors.length} errors`;
    }
    if (names.length !== ds.classes[label].length) return `label "${label}" table changed size`;
    if (check.derived && check.counts.some((n) => n === 0)) {
      return `label "${label}" accepted with an empty class`;
    }
    const lower = new Set(names.map((n) => n.trim().toLowerCase()));
    if (check.derived && lower.size !== names.length) {
      return `label "${label}" accepted with names differing only in case or spaces`;
    }
  }
  return "";
}

/** One reader under fuzz: writes its files for a case and reads them. */
interface Target {
  name: string;
  run(rng: Rng): Promise<{ files: Map<string, number>; result: () => Promise<unknown> }>;
}

async function targets(dir: string): Promise<Target[]> {
  // Images the label files refer to: the readers only list and stat them.
  const img = join(dir, "img");
  await Deno.mkdir(join(img, "sub"), { recursive: true });
  for (const f of ["a.jpg", "b c.jpg", "sub/d.png", "e.jpg", "x,y.jpg"]) {
    await Deno.writeFile(join(img, f), new Uint8Array([0xff, 0xd8]));
  }
  const scut = join(dir, "scut");
  const tt = join(scut, "train_test_files");
  const official = join(tt, "split_of_60%training and 40%testing");
  const cv1 = join(tt, "5_folders_cross_validations_files", "cross_validation_1");
  await Deno.mkdir(join(scut, "Images"), { recursive: true });
  await Deno.mkdir(official, { recursive: true });
  await Deno.mkdir(cv1, { recursive: true });
  const stems = ["AF1", "AF2", "AM1", "AM2", "CF1", "CM1"];
  for (const s of stems) {
    await Deno.writeFile(join(scut, "Images", `${s}.jpg`), new Uint8Array([1]));
  }

  const listSeed = "a.jpg 0\nb c.jpg 1\nsub/d.png 2\ne.jpg 3\nx,y.jpg 4\nmissing.jpg 1\n";
  const csvSeed = 'path,beauty,gender,score,split\na.jpg,3,F,3.2,train\n"b c.jpg",1,M,1.5,test\n' +
    'sub/d.png,2,F,2.5,val\n"x,y.jpg",0,M,,train\ne.jpg,,F,4,test\n';
  const labelsSeed = stems.map((s, i) => `${s}.jpg ${(1.5 + i * 0.6).toFixed(6)}`).join("\n") +
    "\n";
  const trainSeed = "AF1.jpg 2.1\nAM1.jpg 1.5\nCF1.jpg 3.3\nCM1.jpg 4.0\n";
  const testSeed = "AF2.jpg 2.5\nAM2.jpg 3.0\n";
  const ratingsSeed = "Filename,Rating,Rater\n" +
    stems.flatMap((s, i) => [`${s}.jpg,${1 + (i % 5)},1`, `${s}.jpg,${1 + ((i + 2) % 5)},2`]).join(
      "\n",
    ) + "\n";

  /** What each SCUT file holds now: the seed text or a mutant. */
  const scutState = new Map<string, "seed" | "mutant">();
  const write = async (path: string, bytes: Uint8Array, files: Map<string, number>) => {
    await Deno.writeFile(path, bytes);
    files.set(path, lineCount(bytes));
  };
  const pure = (
    name: string,
    seedText: string,
    parse: (t: string, f: string) => unknown,
  ): Target => ({
    name,
    run(rng) {
      const file = `${name}.txt`;
      const bytes = mutant(rng, seedText);
      const files = new Map([[file, lineCount(bytes)]]);
      const text = new TextDecoder().decode(bytes);
      return Promise.resolve({ files, result: () => Promise.resolve(parse(text, file)) });
    },
  });
  /** A reader of one file `<img>/<fileName>`, written as a mutant of `seedText`. */
  const oneFile = (
    name: string,
    fileName: string,
    seedText: string,
    read: (file: string) => Promise<unknown>,
  ): Target => ({
    name,
    async run(rng) {
      const files = new Map<string, number>();
      const file = join(img, fileName);
      await write(file, mutant(rng, seedText), files);
      return { files, result: () => read(file) };
    },
  });
  return [
    pure("csv parser", csvSeed, (t, f) => parseCsv(t, f, new ProblemLog())),
    pure("text lines", listSeed, (t, f) => splitLines(t, f, new ProblemLog())),
    oneFile("list file", "list.txt", listSeed, readListFile),
    oneFile("manifest csv", "manifest.csv", csvSeed, readManifest),
    {
      name: "scut labels+splits",
      async run(rng) {
        const files = new Map<string, number>();
        const seeds: [string, string][] = [
          [join(tt, "All_labels.txt"), labelsSeed],
          [join(official, "train.txt"), trainSeed],
          [join(official, "test.txt"), testSeed],
          [join(cv1, "train_1.txt"), trainSeed],
          [join(cv1, "test_1.txt"), testSeed],
        ];
        // Mutate one or two of the files, keep the rest as they are (rewriting only the
        // files a previous case mutated: a busy machine then still runs enough cases).
        const hit = new Set([int(rng, seeds.length), int(rng, seeds.length)]);
        for (const [k, [path, text]] of seeds.entries()) {
          if (hit.has(k)) {
            await write(path, mutant(rng, text), files);
            scutState.set(path, "mutant");
            continue;
          }
          const bytes = new TextEncoder().encode(text);
          if (scutState.get(path) !== "seed") await Deno.writeFile(path, bytes);
          scutState.set(path, "seed");
          files.set(path, lineCount(bytes));
        }
        const ratings = join(scut, "All_Ratings.csv");
        if (rng() < 0.4) await write(ratings, mutant(rng, ratingsSeed), files);
        else await Deno.remove(ratings).catch(() => {});
        return { files, result: () => readScut(scut) };
      },
    },
  ];
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return `a non-Error was thrown: ${String(e)}`;
  return `${e.constructor.name}: ${e.message.slice(0, 300)}\n${
    e.stack?.split("\n").slice(1, 4).join("\n")
  }`;
}

async function fuzz(req: FuzzRequest): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fbp-label-fuzz-" });
  const counts: Record<string, number> = {};
  const outcomes: Record<string, { ok: number; error: number }> = {};
  const failures: string[] = [];
  // One failure per distinct kind (reader + first line of the error), with its first case.
  const kinds = new Set<string>();
  const fail = (reader: string, n: number, why: string) => {
    const kind = `${reader}: ${why.split("\n")[0].replace(/\d+/g, "N").replace(/"[^"]*"/g, "S")}`;
    if (kinds.has(kind) || kinds.size >= 30) return;
    kinds.add(kind);
    failures.push(`${reader} case ${n} (seed ${req.seed}): ${why}`);
  };
  try {
    const all = await targets(dir);
    const begin = performance.now();
    for (const [t, target] of all.entries()) {
      const max = req.cases[target.name] ?? 0;
      const start = performance.now();
      // An equal share of what is left, so time a fast reader leaves goes to the others.
      const share = (req.budgetMs - (start - begin)) / (all.length - t);
      counts[target.name] = 0;
      outcomes[target.name] = { ok: 0, error: 0 };
      for (let n = 0; n < max && performance.now() - start < share; n++) {
        scope.postMessage({ kind: "case", reader: target.name, n } satisfies FuzzReply);
        const rng = mulberry32(
          (req.seed ^ Math.imul(t + 1, 0x9e3779b1) ^ Math.imul(n, 0x85ebca6b)) >>> 0,
        );
        const { files, result } = await target.run(rng);
        counts[target.name]++;
        let value: unknown;
        try {
          value = await result();
        } catch (e) {
          outcomes[target.name].error++;
          if (Deno.env.get("FBP_FUZZ_SHOW") === target.name && e instanceof Error) {
            console.log(e.message.slice(0, 200));
          }
          const named = e instanceof Error &&
            [...files.keys(), dir].some((f) => e.message.includes(f));
          if (!(e instanceof Error) || e.constructor !== Error || !named) {
            fail(target.name, n, describe(e));
          }
          continue;
        }
        outcomes[target.name].ok++;
        if (value && typeof value === "object" && "records" in value) {
          const why = checkDataset(value as Dataset, files, [dir]) ||
            checkLabels(value as Dataset, files, [dir]);
          if (why) fail(target.name, n, why);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  scope.postMessage({ kind: "done", counts, outcomes, failures } satisfies FuzzReply);
}

scope.onmessage = (e: MessageEvent<FuzzRequest>) => {
  fuzz(e.data).catch((err) => {
    scope.postMessage(
      {
        kind: "done",
        counts: {},
        outcomes: {},
        failures: [`the fuzzer itself failed: ${describe(err)}`],
      } satisfies FuzzReply,
    );
  });
};
