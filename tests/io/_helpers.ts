/**
 * Test helpers for the weights readers: fixture loading, a zip writer (stored, deflate,
 * zip64), a pickle byte builder, and a seeded PRNG for the fuzz tests.
 * @module
 */

import assert from "node:assert/strict";
import { crc32 } from "../../src/io/crc32.ts";
import { WeightsFormatError } from "../../src/io/weights_format_error.ts";
import type { WeightsTensor } from "../../src/io/weights_tensor.ts";

/** Folder of the committed fixtures. */
export const FIXTURES = new URL("../testdata/io/", import.meta.url);

/**
 * Returns the path of a fixture file.
 * @param name file name inside tests/testdata/io
 * @returns a file system path
 */
export function fixturePath(name: string): string {
  return decodeURIComponent(new URL(name, FIXTURES).pathname);
}

/**
 * Reads a fixture file.
 * @param name file name inside tests/testdata/io
 * @returns its bytes
 */
export function readFixture(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, FIXTURES));
}

/** One tensor of expected.json. */
export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: (number | string)[];
}

/** The layout of expected.json (written by tasks/make_io_fixtures.py). */
export interface Expected {
  metadata: Record<string, Record<string, string>>;
  tensors: Record<string, Record<string, ExpectedTensor>>;
}

/**
 * Loads expected.json.
 * @returns the expected values per fixture
 */
export function loadExpected(): Expected {
  return JSON.parse(new TextDecoder().decode(readFixture("expected.json")));
}

/**
 * Asserts that tensors equal the expected ones exactly (NaN, ±0 and ±Infinity included).
 * @param actual tensors read by a reader
 * @param expected tensors from expected.json
 */
export function assertTensorsEqual(
  actual: Map<string, WeightsTensor>,
  expected: Record<string, ExpectedTensor>,
): void {
  assert.deepEqual([...actual.keys()].sort(), Object.keys(expected).sort());
  for (const [key, want] of Object.entries(expected)) {
    const got = actual.get(key)!;
    assert.equal(got.dtype, want.dtype, `dtype of ${key}`);
    assert.deepEqual(got.shape, want.shape, `shape of ${key}`);
    const values = want.values.map((v) => typeof v === "string" ? Number(v) : v);
    // deepStrictEqual compares with Object.is: NaN equals NaN, -0 differs from 0.
    assert.deepEqual([...got.data], values, `values of ${key}`);
  }
}

/**
 * Asserts that `fn` throws a {@linkcode WeightsFormatError} whose message contains every
 * substring.
 * @param fn the code expected to throw
 * @param substrings parts the message must contain
 * @returns the error, for further checks
 */
export function assertFormatError(fn: () => unknown, ...substrings: string[]): WeightsFormatError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  return checkFormatError(error, substrings);
}

/**
 * Asserts that `fn` rejects with a {@linkcode WeightsFormatError} whose message contains
 * every substring.
 * @param fn the code expected to reject
 * @param substrings parts the message must contain
 * @returns the error, for further checks
 */
export async function assertFormatRejects(
  fn: () => Promise<unknown>,
  ...substrings: string[]
): Promise<WeightsFormatError> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  return checkFormatError(error, substrings);
}

function checkFormatError(error: unknown, substrings: string[]): WeightsFormatError {
  if (!(error instanceof WeightsFormatError)) {
    assert.fail(`expected a WeightsFormatError, got ${error === undefined ? "no error" : error}`);
  }
  for (const s of substrings) {
    assert.ok(error.message.includes(s), `message ${JSON.stringify(error.message)} lacks ${s}`);
  }
  return error;
}

/**
 * Concatenates byte arrays and strings (strings as Latin-1, one byte per char code).
 * @param parts pieces
 * @returns the joined bytes
 */
export function bytesOf(...parts: (Uint8Array | string | number[])[]): Uint8Array {
  const arrays = parts.map((p) =>
    typeof p === "string"
      ? Uint8Array.from(p, (c) => c.charCodeAt(0))
      : p instanceof Uint8Array
      ? p
      : Uint8Array.from(p)
  );
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** A file to put in a test zip. */
export interface ZipFile {
  name: string;
  data: Uint8Array;
  /** Deflate-compress it (default: stored). */
  deflate?: boolean;
  /**
   * Raw deflate bytes to store as they are (`data` is then ignored), with the size and
   * CRC-32 the headers declare: for bombs and entries that lie about their size.
   */
  deflated?: { bytes: Uint8Array; size: number; crc: number };
}

/**
 * A raw deflate stream of `size` zero bytes (size ≥ 1) built directly, one fixed-Huffman
 * block: a literal 0, then copies of 258 bytes at distance 1 (13 bits each), so 1 GiB
 * takes 6.8 MB and no time to compress.
 * @param size bytes it inflates to
 * @returns the stream and the CRC-32 of what it inflates to
 */
export function zeroBomb(size: number): { bytes: Uint8Array; size: number; crc: number } {
  // 13 bits per copy, up to 257 literals of 8 bits for the rest.
  const out = new Uint8Array(Math.ceil((3 + 8 + 13 * Math.floor(size / 258) + 7) / 8) + 258);
  let at = 0, acc = 0, bits = 0;
  const put = (value: number, n: number) => { // value's n bits, least significant first
    acc |= value << bits;
    bits += n;
    while (bits >= 8) {
      out[at++] = acc & 0xff;
      acc >>>= 8;
      bits -= 8;
    }
  };
  const huffman = (code: number, n: number) => { // Huffman codes go most significant first
    let reversed = 0;
    for (let i = 0; i < n; i++) reversed |= ((code >>> i) & 1) << (n - 1 - i);
    put(reversed, n);
  };
  put(1, 1); // BFINAL
  put(1, 2); // BTYPE 01: fixed Huffman codes
  huffman(0x30, 8); // literal 0
  let left = size - 1;
  const copy258 = (() => { // length code 285 (8 bits 0xc5), then distance code 0 (5 bits)
    let r = 0;
    for (let i = 0; i < 8; i++) r |= ((0xc5 >>> i) & 1) << (7 - i);
    return r; // the distance code is five zero bits above it
  })();
  for (; left >= 258; left -= 258) put(copy258, 13);
  for (; left > 0; left--) huffman(0x30, 8); // the rest as literals
  huffman(0, 7); // end of block
  if (bits > 0) out[at++] = acc & 0xff;
  const zeros = new Uint8Array(1 << 20);
  let crc = 0;
  for (let done = 0; done < size; done += zeros.length) {
    crc = crc32(zeros.subarray(0, Math.min(zeros.length, size - done)), crc);
  }
  return { bytes: out.subarray(0, at), size, crc };
}

/**
 * Raw-deflates bytes with CompressionStream.
 * @param data input
 * @returns compressed bytes
 */
export async function deflateRaw(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Writes a zip archive (what the reader must accept), optionally in zip64 form.
 * @param files entries in order
 * @param options `zip64` saturates the 32-bit fields and adds the zip64 records
 * @returns the archive bytes
 */
export async function buildZip(
  files: ZipFile[],
  options: { zip64?: boolean } = {},
): Promise<Uint8Array> {
  const local: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = new TextEncoder().encode(f.name);
    const deflate = f.deflate || f.deflated !== undefined;
    const stored = f.deflated?.bytes ?? (f.deflate ? await deflateRaw(f.data) : f.data);
    const size = f.deflated?.size ?? f.data.length;
    const crc = f.deflated?.crc ?? crc32(f.data);
    const header = new DataView(new ArrayBuffer(30));
    header.setUint32(0, 0x04034b50, true);
    header.setUint16(4, 20, true);
    header.setUint16(8, deflate ? 8 : 0, true);
    header.setUint32(14, crc, true);
    header.setUint32(18, stored.length, true);
    header.setUint32(22, size, true);
    header.setUint16(26, name.length, true);
    local.push(new Uint8Array(header.buffer), name, stored);
    const extra = new DataView(new ArrayBuffer(options.zip64 ? 28 : 0));
    if (options.zip64) {
      extra.setUint16(0, 1, true);
      extra.setUint16(2, 24, true);
      extra.setBigUint64(4, BigInt(size), true);
      extra.setBigUint64(12, BigInt(stored.length), true);
      extra.setBigUint64(20, BigInt(offset), true);
    }
    const c = new DataView(new ArrayBuffer(46));
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, 45, true);
    c.setUint16(10, deflate ? 8 : 0, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, options.zip64 ? 0xffffffff : stored.length, true);
    c.setUint32(24, options.zip64 ? 0xffffffff : size, true);
    c.setUint16(28, name.length, true);
    c.setUint16(30, extra.byteLength, true);
    c.setUint32(42, options.zip64 ? 0xffffffff : offset, true);
    central.push(new Uint8Array(c.buffer), name, new Uint8Array(extra.buffer));
    offset += 30 + name.length + stored.length;
  }
  const cdSize = central.reduce((n, a) => n + a.length, 0);
  const tail: Uint8Array[] = [];
  if (options.zip64) {
    const record = new DataView(new ArrayBuffer(56));
    record.setUint32(0, 0x06064b50, true);
    record.setBigUint64(4, 44n, true);
    record.setBigUint64(24, BigInt(files.length), true);
    record.setBigUint64(32, BigInt(files.length), true);
    record.setBigUint64(40, BigInt(cdSize), true);
    record.setBigUint64(48, BigInt(offset), true);
    const locator = new DataView(new ArrayBuffer(20));
    locator.setUint32(0, 0x07064b50, true);
    locator.setBigUint64(8, BigInt(offset + cdSize), true);
    locator.setUint32(16, 1, true);
    tail.push(new Uint8Array(record.buffer), new Uint8Array(locator.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, options.zip64 ? 0xffff : files.length, true);
  end.setUint16(10, options.zip64 ? 0xffff : files.length, true);
  end.setUint32(12, options.zip64 ? 0xffffffff : cdSize, true);
  end.setUint32(16, options.zip64 ? 0xffffffff : offset, true);
  return bytesOf(...local, ...central, ...tail, new Uint8Array(end.buffer));
}

/** Pickle (protocol 2) byte builders, named after the opcodes they emit. */
export const pk = {
  proto: (n = 2) => bytesOf([0x80, n]),
  global: (module: string, name: string) => bytesOf(`c${module}\n${name}\n`),
  str(s: string): Uint8Array {
    const utf8 = new TextEncoder().encode(s);
    const n = new DataView(new ArrayBuffer(4));
    n.setUint32(0, utf8.length, true);
    return bytesOf("X", new Uint8Array(n.buffer), utf8);
  },
  int(v: number): Uint8Array {
    if (v >= 0 && v < 256) return bytesOf([0x4b, v]);
    const n = new DataView(new ArrayBuffer(4));
    n.setInt32(0, v, true);
    return bytesOf("J", new Uint8Array(n.buffer));
  },
  tuple: (...items: Uint8Array[]) => bytesOf("(", ...items, "t"),
  mark: "(",
  emptyTuple: ")",
  reduce: "R",
  setItems: "u",
  persId: "Q",
  newFalse: bytesOf([0x89]),
  stop: ".",
};

/** A tensor for {@linkcode stateDictPickle}. */
export interface PickledTensor {
  key: string;
  storage: string;
  numel: number;
  type?: string;
  offset?: number;
  size: number[];
  stride: number[];
}

/**
 * Emits the pickle torch.save writes for an OrderedDict of tensors (protocol 2, no memo).
 * @param tensors tensors in order
 * @returns the data.pkl bytes
 */
export function stateDictPickle(tensors: PickledTensor[]): Uint8Array {
  const items = tensors.map((t) =>
    bytesOf(
      pk.str(t.key),
      pk.global("torch._utils", "_rebuild_tensor_v2"),
      pk.tuple(
        pk.tuple(
          pk.str("storage"),
          pk.global("torch", t.type ?? "FloatStorage"),
          pk.str(t.storage),
          pk.str("cpu"),
          pk.int(t.numel),
        ),
        bytesOf(pk.persId),
        pk.int(t.offset ?? 0),
        pk.tuple(...t.size.map(pk.int)),
        pk.tuple(...t.stride.map(pk.int)),
        pk.newFalse,
        pk.global("collections", "OrderedDict"),
        bytesOf(pk.emptyTuple, pk.reduce),
      ),
      pk.reduce,
    )
  );
  return bytesOf(
    pk.proto(),
    pk.global("collections", "OrderedDict"),
    pk.emptyTuple,
    pk.reduce,
    pk.mark,
    ...items,
    pk.setItems,
    pk.stop,
  );
}

/**
 * Builds a torch.save-shaped zip: `archive/data.pkl`, `archive/data/<key>`, `archive/version`.
 * @param pickle the data.pkl bytes
 * @param storages storage bytes by key
 * @param extra more entries (e.g. byteorder)
 * @returns the .pth bytes
 */
export async function buildPth(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array> = {},
  extra: ZipFile[] = [],
): Promise<Uint8Array> {
  return await buildZip([
    { name: "archive/data.pkl", data: pickle },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    { name: "archive/version", data: bytesOf("3\n") },
    ...extra,
  ]);
}

/**
 * Little-endian float32 bytes of values.
 * @param values numbers
 * @returns their bytes
 */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/**
 * A seeded PRNG (mulberry32) so every fuzz case can be replayed from its index.
 * @param seed 32-bit seed
 * @returns a function giving floats in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One PNG chunk: length, type, data and its CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
