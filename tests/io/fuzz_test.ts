/**
 * Seeded, bounded fuzzing of the weights readers (issue 8). Every mutated input must either
 * parse into consistent tensors within the allocation bound, or throw WeightsFormatError
 * with the reader's message prefix; any other exception fails the test with the case
 * number, which replays it (each case has its own PRNG seeded from its number).
 * @module
 */

import assert from "node:assert/strict";
import { parsePth } from "../../src/io/pth.ts";
import { parseSafetensors } from "../../src/io/safetensors.ts";
import { WeightsFormatError } from "../../src/io/weights_format_error.ts";
import type { WeightsTensor } from "../../src/io/weights_tensor.ts";
import { ZipArchive } from "../../src/io/zip.ts";
import { buildZip, bytesOf, mulberry32, readFixture, type ZipFile } from "./_helpers.ts";

const SEED = 20250101;
const SAFETENSORS_CASES = 10000;
const PTH_RAW_CASES = 3000;
const PTH_PICKLE_CASES = 5000;
const PTH_STORAGE_CASES = 500;
/** A single case taking this long means a reader is not linear in its input. */
const MAX_CASE_MS = 2000;

type Rng = () => number;

const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

const INTERESTING_32 = [
  0,
  1,
  7,
  8,
  0x7f,
  0xff,
  0xffff,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];

/** One generic byte-level mutation, limited to `[from, to)` of the input. */
function mutateBytes(rng: Rng, input: Uint8Array, from = 0, to = input.length): Uint8Array {
  const at = from + int(rng, Math.max(1, to - from));
  const bytes = input.slice();
  switch (int(rng, 8)) {
    case 0: // truncate
      return input.slice(0, at);
    case 1: // flip a few bytes
      for (let i = 0, n = 1 + int(rng, 8); i < n && bytes.length; i++) {
        const p = from + int(rng, Math.max(1, to - from));
        if (p < bytes.length) {
          bytes[p] = rng() < 0.5 ? bytes[p] ^ (1 << int(rng, 8)) : int(rng, 256);
        }
      }
      return bytes;
    case 2: { // overwrite a 32-bit field with an edge value
      if (at + 4 > bytes.length) return bytes;
      const value = rng() < 0.7 ? pick(rng, INTERESTING_32) : int(rng, 2 ** 32);
      new DataView(bytes.buffer).setUint32(
        at,
        (value + (rng() < 0.2 ? input.length : 0)) >>> 0,
        true,
      );
      return bytes;
    }
    case 3: // insert random bytes
      return bytesOf(
        input.subarray(0, at),
        Uint8Array.from({ length: 1 + int(rng, 16) }, () => int(rng, 256)),
        input.subarray(at),
      );
    case 4: // delete a range
      return bytesOf(input.subarray(0, at), input.subarray(at + 1 + int(rng, 32)));
    case 5: { // duplicate a range
      const start = int(rng, input.length);
      return bytesOf(
        input.subarray(0, at),
        input.subarray(start, start + 1 + int(rng, 64)),
        input.subarray(at),
      );
    }
    case 6: // append garbage
      return bytesOf(input, Uint8Array.from({ length: 1 + int(rng, 64) }, () => int(rng, 256)));
    default: // keep a prefix, randomise the rest
      return bytesOf(
        input.subarray(0, at),
        Uint8Array.from({ length: int(rng, 64) }, () => int(rng, 256)),
      );
  }
}

// ---------------------------------------------------------------- safetensors

const SAFETENSORS_SEEDS = ["f32", "f16", "bf16", "mixed"].map((n) =>
  readFixture(`${n}.safetensors`)
);

/** Splits a safetensors file into its header object and data. */
function splitSafetensors(bytes: Uint8Array) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header: header as Record<string, unknown>, data: bytes.subarray(8 + n) };
}

/** Re-assembles a safetensors file from header text and data, with a given length field. */
function joinSafetensors(text: string, data: Uint8Array, length?: bigint): Uint8Array {
  const json = new TextEncoder().encode(text);
  const prefix = new DataView(new ArrayBuffer(8));
  prefix.setBigUint64(0, BigInt.asUintN(64, length ?? BigInt(json.length)), true);
  return bytesOf(new Uint8Array(prefix.buffer), json, data);
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  2 ** 64,
  -(2 ** 63),
  "",
  "F32",
  "x",
  [],
  [0],
  [-1, 2],
  [2, 1],
  [0, 2 ** 53],
  [1.5, 4],
  ["0", "4"],
  {},
  { a: 1 },
  [[1]],
  [2 ** 31, 2 ** 31, 2 ** 31],
];
const DTYPES = [
  "F32",
  "F16",
  "BF16",
  "I64",
  "F64",
  "BOOL",
  "U8",
  "I32",
  "F8_E4M3",
  "f32",
  "",
  "Q4",
];

/** A structural edit of the header JSON, re-encoded with a correct length most of the time. */
function mutateSafetensorsHeader(rng: Rng, input: Uint8Array): Uint8Array {
  const { header, data } = splitSafetensors(input);
  const keys = Object.keys(header).filter((k) => k !== "__metadata__");
  const key = pick(rng, keys);
  const entry = { ...(header[key] as Record<string, unknown>) };
  switch (int(rng, 9)) {
    case 0:
      entry.dtype = rng() < 0.7 ? pick(rng, DTYPES) : pick(rng, ODD_VALUES);
      break;
    case 1:
      entry.shape = rng() < 0.5
        ? pick(rng, ODD_VALUES)
        : [...(entry.shape as number[]), pick(rng, [0, 1, 2, 2 ** 40, -1])];
      break;
    case 2: {
      const [b, e] = entry.data_offsets as number[];
      const delta = pick(rng, [-8, -4, -2, -1, 1, 2, 4, 8, 2 ** 32, 2 ** 53]);
      entry.data_offsets = rng() < 0.5
        ? [b + delta, e]
        : rng() < 0.5
        ? [b, e + delta]
        : pick(rng, ODD_VALUES);
      break;
    }
    case 3:
      delete entry[pick(rng, ["dtype", "shape", "data_offsets"])];
      break;
    case 4: // duplicate a tensor entry under another name (overlap)
      header[`${key}.copy`] = { ...entry };
      break;
    case 5:
      delete header[key];
      return joinSafetensors(JSON.stringify(header), data);
    case 6:
      header.__metadata__ = rng() < 0.5 ? { fbp: pick(rng, ODD_VALUES) } : pick(rng, ODD_VALUES);
      return joinSafetensors(JSON.stringify(header), data);
    case 7: { // deep nesting somewhere
      const depth = 1 + int(rng, 40);
      entry.extra = JSON.parse("[".repeat(depth) + "]".repeat(depth));
      break;
    }
    default:
      header[key] = pick(rng, ODD_VALUES);
      return joinSafetensors(JSON.stringify(header), data);
  }
  header[key] = entry;
  const text = JSON.stringify(header);
  const lengthEdit = rng() < 0.15 ? BigInt(pick(rng, [-1, 1, -8, 8, 2 ** 20])) : 0n;
  return joinSafetensors(text, data, BigInt(new TextEncoder().encode(text).length) + lengthEdit);
}

/** Edits only the 8-byte header length. */
function mutateHeaderLength(rng: Rng, input: Uint8Array): Uint8Array {
  const bytes = input.slice();
  const current = new DataView(bytes.buffer).getBigUint64(0, true);
  const value = pick(rng, [
    -1n,
    -(2n ** 63n),
    2n ** 63n,
    2n ** 53n,
    0n,
    1n,
    100_000_001n,
    BigInt(bytes.length),
    current - 1n,
    current + 1n,
    current + 8n,
  ]);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return bytes;
}

/** Checks one outcome; returns whether the input parsed. */
function checkTensors(
  tensors: Map<string, WeightsTensor>,
  inputLength: number,
  factor: number,
): void {
  let total = 0;
  for (const [key, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    assert.equal(t.data.length, count, `tensor ${key} length`);
    total += t.data.byteLength;
  }
  assert.ok(total <= factor * inputLength + 65536, `output ${total} bytes from ${inputLength}`);
}

/** A message with names and numbers masked, to count distinct kinds of rejection. */
function shape(message: string): string {
  return message.replace(/(not valid JSON).*/, "$1").replace(/"[^"]*"/g, "S")
    .replace(/0x[0-9a-f]+/g, "H").replace(/[0-9]+/g, "N");
}

/** Classifies an error: WeightsFormatError with the prefix passes, anything else fails. */
function expectFormatError(e: unknown, prefix: string, label: string): void {
  if (!(e instanceof WeightsFormatError) || !e.message.startsWith(prefix)) {
    throw new Error(`${label}: expected WeightsFormatError, got ${e}`, { cause: e });
  }
}

Deno.test("parseSafetensors() fuzz: every mutated input parses or throws WeightsFormatError", () => {
  const outcomes = { parsed: 0, rejected: 0 };
  const messages = new Set<string>();
  let slowest = 0;
  for (let i = 0; i < SAFETENSORS_CASES; i++) {
    const rng = mulberry32(SEED + i);
    const seed = pick(rng, SAFETENSORS_SEEDS);
    const kind = int(rng, 4);
    const input = kind === 0
      ? mutateSafetensorsHeader(rng, seed)
      : kind === 1
      ? mutateHeaderLength(rng, seed)
      : mutateBytes(rng, seed, 0, kind === 2 ? seed.length : Math.min(seed.length, 400));
    const start = performance.now();
    try {
      const file = parseSafetensors(input, { source: "fuzz" });
      checkTensors(file.tensors, input.length, 2);
      outcomes.parsed++;
    } catch (e) {
      expectFormatError(e, 'Cannot read safetensors file "fuzz": ', `safetensors case ${i}`);
      messages.add(shape((e as Error).message));
      outcomes.rejected++;
    }
    slowest = Math.max(slowest, performance.now() - start);
  }
  assert.ok(slowest < MAX_CASE_MS, `slowest case took ${slowest} ms`);
  assert.ok(outcomes.rejected > SAFETENSORS_CASES / 2 && outcomes.parsed > 0);
  assert.ok(messages.size > 20, `only ${messages.size} distinct rejections`);
  console.log(`safetensors fuzz: ${JSON.stringify(outcomes)}, ${messages.size} distinct messages`);
});

// ---------------------------------------------------------------- .pth

const PTH_SEEDS = ["state_dict.pth", "half.pth", "protocol4.pth", "deflated.pth"].map(readFixture);
const PTH_ENTRIES: ZipFile[][] = await Promise.all(
  PTH_SEEDS.slice(0, 3).map(async (bytes) => {
    const zip = ZipArchive.open(bytes);
    return await Promise.all(
      [...zip.entries.keys()].map(async (name) => ({ name, data: (await zip.read(name)).slice() })),
    );
  }),
);

const GLOBALS = [
  "collections\nOrderedDict",
  "torch._utils\n_rebuild_tensor_v2",
  "torch._utils\n_rebuild_parameter",
  "torch\nFloatStorage",
  "torch\nDoubleStorage",
  "torch\nLongStorage",
  "os\nsystem",
  "builtins\neval",
  "posix\nsystem",
  "torch\nload",
  "collections\nOrderedDict.fromkeys",
];
const OPCODES =
  "()]}tNIJKLMRQPSTUVXabcdeghijloqrstu0129.\x80\x81\x82\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\xff";

/** A pickle-aware mutation of data.pkl: opcodes, small ints, names, storage keys. */
function mutatePickle(rng: Rng, pickle: Uint8Array): Uint8Array {
  const text = String.fromCharCode(...pickle);
  switch (int(rng, 6)) {
    case 0: { // replace one byte with an opcode
      const bytes = pickle.slice();
      bytes[int(rng, bytes.length)] = pick(rng, [...OPCODES]).charCodeAt(0);
      return bytes;
    }
    case 1: { // insert an opcode (GLOBAL with a name sometimes)
      const at = int(rng, pickle.length);
      const op = rng() < 0.3 ? `c${pick(rng, GLOBALS)}\n` : pick(rng, [...OPCODES]);
      return bytesOf(pickle.subarray(0, at), op, pickle.subarray(at));
    }
    case 2: { // change the operand of a BININT1 (sizes, strides, offsets, numel)
      const positions = [...text.matchAll(/K/g)].map((m) => m.index!);
      const bytes = pickle.slice();
      const p = pick(rng, positions) + 1;
      if (p < bytes.length) bytes[p] = pick(rng, [0, 1, 2, 3, 5, 64, 255, int(rng, 256)]);
      return bytes;
    }
    case 3: { // swap which global a GLOBAL line names
      const lines = [...text.matchAll(/c[A-Za-z_.]+\n[A-Za-z_0-9]+\n/g)];
      if (!lines.length) return pickle;
      const m = pick(rng, lines);
      return bytesOf(
        pickle.subarray(0, m.index!),
        `c${pick(rng, GLOBALS)}\n`,
        pickle.subarray(m.index! + m[0].length),
      );
    }
    case 4: { // point a storage key elsewhere: BINUNICODE of length 1 holding a digit
      const keys: number[] = [];
      for (let p = text.indexOf("X\x01\0\0\0"); p >= 0; p = text.indexOf("X\x01\0\0\0", p + 1)) {
        if (/[0-9]/.test(text[p + 5] ?? "")) keys.push(p + 5);
      }
      if (!keys.length) return pickle;
      const bytes = pickle.slice();
      bytes[pick(rng, keys)] = 0x30 + int(rng, 10);
      return bytes;
    }
    default:
      return mutateBytes(rng, pickle);
  }
}

Deno.test("parsePth() fuzz: every mutated input parses or throws WeightsFormatError", async () => {
  const outcomes = { raw: [0, 0], pickle: [0, 0], storage: [0, 0] };
  const messages = new Set<string>();
  let slowest = 0;
  const attempt = async (input: Uint8Array, label: string, tally: number[]) => {
    const start = performance.now();
    try {
      checkTensors(await parsePth(input, { source: "fuzz" }), input.length, 4);
      tally[0]++;
    } catch (e) {
      expectFormatError(e, 'Cannot read .pth file "fuzz": ', label);
      messages.add(shape((e as Error).message));
      tally[1]++;
    }
    slowest = Math.max(slowest, performance.now() - start);
  };
  for (let i = 0; i < PTH_RAW_CASES; i++) {
    const rng = mulberry32(SEED + 100_000 + i);
    const seed = pick(rng, PTH_SEEDS);
    // Half the cases aim at the zip structure: the central directory and end records.
    const from = rng() < 0.5 ? Math.max(0, seed.length - 700) : 0;
    await attempt(mutateBytes(rng, seed, from), `pth raw case ${i}`, outcomes.raw);
  }
  for (let i = 0; i < PTH_PICKLE_CASES; i++) {
    const rng = mulberry32(SEED + 200_000 + i);
    const entries = pick(rng, PTH_ENTRIES).map((e) =>
      e.name.endsWith("/data.pkl") ? { ...e, data: mutatePickle(rng, e.data) } : e
    );
    await attempt(await buildZip(entries), `pth pickle case ${i}`, outcomes.pickle);
  }
  for (let i = 0; i < PTH_STORAGE_CASES; i++) {
    const rng = mulberry32(SEED + 300_000 + i);
    const entries = pick(rng, PTH_ENTRIES).map((e) => ({ ...e }));
    const storages = entries.filter((e) => e.name.includes("/data/"));
    const target = pick(rng, storages);
    const cut = pick(rng, [-8, -4, -2, -1, 1, 2, 4, 8]);
    target.data = cut < 0 ? target.data.slice(0, cut) : bytesOf(target.data, new Uint8Array(cut));
    if (rng() < 0.3) entries.splice(entries.indexOf(target), 1);
    await attempt(await buildZip(entries), `pth storage case ${i}`, outcomes.storage);
  }
  assert.ok(slowest < MAX_CASE_MS, `slowest case took ${slowest} ms`);
  assert.ok(messages.size > 40, `only ${messages.size} distinct rejections`);
  const total = PTH_RAW_CASES + PTH_PICKLE_CASES + PTH_STORAGE_CASES;
  console.log(
    `pth fuzz (${total} cases) [parsed, rejected]: ${
      JSON.stringify(outcomes)
    }, ${messages.size} distinct messages`,
  );
});
