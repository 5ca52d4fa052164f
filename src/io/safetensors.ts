/**
 * safetensors read and write (https://github.com/huggingface/safetensors, format section):
 * an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{"<key>": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
 * then the data buffer that the offsets index (relative to its start).
 *
 * Reading is strict because files come from the web (issue 8): every size is checked
 * against the file before it is used, the tensors must tile the data buffer exactly (no
 * overlap, no hole, nothing after), and no allocation is driven by a declared size, only
 * by bytes that are present: outputs total at most 2× the file size (F16/BF16 widen).
 * Writing emits F32 only, keys sorted, the header padded with spaces to 8 bytes.
 *
 * Integrity: fbp's writer adds `__metadata__.fbp_checksum = "crc32:<8 hex digits>"`, and the
 * reader verifies it whenever it is present (files of other tools, which have none, load as
 * before; other readers see one more metadata string). It covers what a load uses: the
 * UTF-8 of the JSON text `[metadata pairs sorted by key, without fbp_checksum, [[name,
 * dtype, shape] sorted by name]]`, then each tensor's bytes in name order (the data buffer
 * as fbp writes it). So a flipped byte in the tensors, in the model config or in the resume
 * state is refused, while the layout (offsets, padding, key order) may differ. CRC-32,
 * not a cryptographic hash: the checksum sits in the file it protects, so whoever can edit
 * the file can rewrite it, and a hash would add no protection against tampering; against
 * accidental damage CRC-32 catches every burst of up to 32 bits and all but 1 in 2^32
 * random changes, and zlib computes it natively at about 20 GB/s (2 ms for a ResNet18
 * checkpoint of 45 MB, where SHA-256 takes about 20 times as long).
 * @module
 */

import { writeFileAtomic } from "./atomic_write.ts";
import { crc32 } from "./crc32.ts";
import {
  decodeToFloat32,
  DTYPE_SIZE,
  HOST_IS_LITTLE_ENDIAN,
  type WeightsDtype,
  type WeightsTensor,
} from "./weights_tensor.ts";
import { quote, WeightsFormatError } from "./weights_format_error.ts";

/** What {@linkcode parseSafetensors} returns. */
export interface SafetensorsFile {
  /** Tensors in data-offset order, keyed by name. */
  tensors: Map<string, WeightsTensor>;
  /** The `__metadata__` string map (empty when the file has none), without `fbp_checksum`. */
  metadata: Record<string, string>;
  /** The file's `fbp_checksum` (verified), or undefined when it has none. */
  checksum?: string;
}

/** A tensor to write: row-major float32 values and their shape. */
export interface TensorToWrite {
  /** Dimensions, outermost first; `[]` for a scalar. */
  shape: readonly number[];
  /** `shape` product values. */
  data: Float32Array;
}

/** Options of the readers. */
export interface ReadSafetensorsOptions {
  /** Name of the source used in error messages (a path); defaults to `"<bytes>"`. */
  source?: string;
}

/** Options of the writers. */
export interface WriteSafetensorsOptions {
  /** String map stored as `__metadata__` (e.g. `{fbp: JSON.stringify(config)}`). */
  metadata?: Record<string, string>;
  /**
   * Add `fbp_checksum` (default true); a `fbp_checksum` in `metadata` is always replaced
   * by the writer's own, or dropped when false.
   */
  checksum?: boolean;
}

/** The spec caps the header at 100 MB so that a reader never parses a huge JSON. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Valid headers nest 3 deep (root, tensor entry, shape); anything far deeper is hostile. */
export const MAX_JSON_DEPTH = 8;

const METADATA_KEY = "__metadata__";
/** The `__metadata__` key of the checksum fbp writes and verifies. */
export const CHECKSUM_KEY = "fbp_checksum";
const CHECKSUM_FORMAT = /^crc32:[0-9a-f]{8}$/;
const SUPPORTED = new Set<string>(["F32", "F16", "BF16", "I64"]);
// Dtypes of the spec that this reader knows but cannot convert to float32.
const KNOWN_UNSUPPORTED = new Set<string>([
  "BOOL",
  "U8",
  "I8",
  "U16",
  "I16",
  "U32",
  "I32",
  "U64",
  "F64",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "C64",
]);

interface Entry {
  key: string;
  dtype: WeightsDtype;
  shape: number[];
  begin: number;
  end: number;
  count: number;
}

/**
 * Parses safetensors bytes. F32 is copied; F16, BF16 widen exactly to float32; I64 rounds.
 * @param bytes the whole file
 * @param options `source` names the file in error messages
 * @returns the tensors and the `__metadata__` map
 * @throws {WeightsFormatError} when the bytes are not a valid safetensors file, or a tensor
 *   has a dtype other than F32, F16, BF16, I64
 */
export function parseSafetensors(
  bytes: Uint8Array,
  options: ReadSafetensorsOptions = {},
): SafetensorsFile {
  const file = options.source ?? "<bytes>";
  const fail = (detail: string, key?: string): never => {
    throw new WeightsFormatError(`Cannot read safetensors file "${file}": ${detail}`, {
      file,
      key,
    });
  };
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signed = view.getBigInt64(0, true);
  if (signed < 0n) fail(`header length is negative: current value is ${signed}`);
  if (signed > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length is ${signed} bytes, more than the limit of ${MAX_HEADER_BYTES}`);
  }
  const headerLength = Number(signed);
  const dataStart = 8 + headerLength;
  if (dataStart > bytes.length) {
    fail(
      `header length is ${headerLength} bytes, past the end of the file: file size is ` +
        `${bytes.length}`,
    );
  }
  const header = parseHeaderJson(bytes.subarray(8, dataStart), fail);
  const dataSize = bytes.length - dataStart;

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, info] of Object.entries(header)) {
    if (key === METADATA_KEY) metadata = validateMetadata(info, fail);
    else entries.push(validateEntry(key, info, dataSize, fail));
  }
  checkTiling(entries, dataSize, fail);
  const checksum = metadata[CHECKSUM_KEY];
  if (checksum !== undefined) {
    delete metadata[CHECKSUM_KEY];
    verifyChecksum(checksum, metadata, entries, bytes.subarray(dataStart), file);
  }

  const tensors = new Map<string, WeightsTensor>();
  for (const e of entries) {
    const data = decodeToFloat32(
      bytes.subarray(dataStart + e.begin, dataStart + e.end),
      e.dtype,
      e.count,
    );
    tensors.set(e.key, { dtype: e.dtype, shape: e.shape, data });
  }
  return checksum === undefined ? { tensors, metadata } : { tensors, metadata, checksum };
}

/** A tensor as the checksum sees it: name, dtype, shape and its little-endian bytes. */
interface ChecksumPart {
  key: string;
  dtype: string;
  shape: readonly number[];
  bytes: () => Uint8Array;
}

/**
 * The `fbp_checksum` value of a file's content (see the module documentation).
 * @param metadata the metadata without `fbp_checksum`
 * @param parts the tensors, in any order
 */
function contentChecksum(metadata: Record<string, string>, parts: ChecksumPart[]): string {
  const byName = (a: { key: string }, b: { key: string }) =>
    a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  const sorted = [...parts].sort(byName);
  const pairs = Object.keys(metadata).sort().map((k) => [k, metadata[k]]);
  const table = sorted.map((p) => [p.key, p.dtype, p.shape]);
  let crc = crc32(new TextEncoder().encode(JSON.stringify([pairs, table])));
  for (const p of sorted) crc = crc32(p.bytes(), crc);
  return `crc32:${crc.toString(16).padStart(8, "0")}`;
}

/** Refuses a file whose content does not match its `fbp_checksum`. */
function verifyChecksum(
  recorded: string,
  metadata: Record<string, string>,
  entries: readonly Entry[],
  data: Uint8Array,
  file: string,
): void {
  const damaged = (detail: string): never => {
    throw new WeightsFormatError(`"${file}" is damaged: ${detail}`, { file, key: CHECKSUM_KEY });
  };
  if (!CHECKSUM_FORMAT.test(recorded)) {
    damaged(
      `metadata ${quote(CHECKSUM_KEY)} is ${quote(recorded)}, expected "crc32:" and 8 hex digits`,
    );
  }
  const actual = contentChecksum(
    metadata,
    entries.map((e) => ({ ...e, bytes: () => data.subarray(e.begin, e.end) })),
  );
  if (actual !== recorded) {
    damaged(
      `checksum mismatch: its tensors and metadata give ${actual}, its metadata records ` +
        `${recorded} (the file changed after fbp wrote it)`,
    );
  }
}

/**
 * A float32 array's bytes in little-endian order (a view on little-endian hosts), as
 * safetensors and ONNX's TensorProto.raw_data store them.
 * @param data the values
 * @returns their bytes: a view on `data` on little-endian hosts, else a new array
 */
export function littleEndianBytes(data: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  return out;
}

/** Decodes and parses the JSON header after checking encoding, shape and nesting depth. */
function parseHeaderJson(
  headerBytes: Uint8Array,
  fail: (detail: string) => never,
): Record<string, unknown> {
  if (headerBytes.length === 0 || headerBytes[0] !== 0x7b) {
    fail('header does not start with "{": not a safetensors file');
  }
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail("header is not valid UTF-8");
  }
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    fail(`header JSON is nested ${depth} levels deep, more than the limit of ${MAX_JSON_DEPTH}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header JSON is not an object");
  }
  return header as Record<string, unknown>;
}

/**
 * Returns the deepest bracket nesting of `text`, ignoring brackets inside strings; stops
 * once past the limit (so a hostile header costs one linear scan).
 */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      deepest = Math.max(deepest, ++depth);
      if (deepest > MAX_JSON_DEPTH) break;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/** Checks that `__metadata__` is a map of strings. */
function validateMetadata(
  info: unknown,
  fail: (detail: string, key?: string) => never,
): Record<string, string> {
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    fail(`${quote(METADATA_KEY)} is ${describeJson(info)}, expected an object of strings`);
  }
  const pairs = Object.entries(info as Record<string, unknown>);
  for (const [k, v] of pairs) {
    if (typeof v !== "string") {
      fail(`metadata value of ${quote(k)} is ${describeJson(v)}, expected a string`, k);
    }
  }
  // fromEntries defines own properties, so a "__proto__" key cannot reach the prototype.
  return Object.fromEntries(pairs) as Record<string, string>;
}

/** Checks one tensor entry of the header against the spec and the data size. */
function validateEntry(
  key: string,
  info: unknown,
  dataSize: number,
  fail: (detail: string, key?: string) => never,
): Entry {
  const bad = (detail: string): never => fail(`tensor ${quote(key)} ${detail}`, key);
  if (typeof info !== "object" || info === null || Array.isArray(info)) {
    bad(`is ${describeJson(info)}, expected an object with dtype, shape, data_offsets`);
  }
  const fields = info as Record<string, unknown>;
  for (const field of ["dtype", "shape", "data_offsets"]) {
    if (fields[field] === undefined) bad(`has no "${field}" field`);
  }
  const { dtype, shape, data_offsets: offsets } = fields;
  if (typeof dtype !== "string") bad(`has dtype ${describeJson(dtype)}, expected a string`);
  const name = dtype as string;
  if (!SUPPORTED.has(name)) {
    if (KNOWN_UNSUPPORTED.has(name)) {
      bad(
        `has dtype ${
          quote(name)
        }, which is not supported: supported dtypes are F32, F16, BF16, I64`,
      );
    }
    bad(`has unknown dtype ${quote(name)}`);
  }
  if (!Array.isArray(shape)) bad(`has shape ${describeJson(shape)}, expected an array`);
  const dims = shape as unknown[];
  let count = 1;
  for (const d of dims) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      bad(`has shape ${shortJson(dims)}: dimensions must be non-negative integers`);
    }
    count *= d as number;
    if (count > Number.MAX_SAFE_INTEGER) {
      bad(`has shape ${shortJson(dims)} whose element count overflows`);
    }
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
  ) {
    bad(`has data_offsets ${shortJson(offsets)}, expected [begin, end] of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) bad(`has data_offsets [${begin}, ${end}] with begin after end`);
  if (end > dataSize) {
    bad(`has offsets past the end of the data: end is ${end}, data size is ${dataSize}`);
  }
  const size = DTYPE_SIZE[name as WeightsDtype];
  if (count * size !== end - begin) {
    bad(
      `has shape ${shortJson(dims)} and dtype ${name}, which need ${count * size} bytes, ` +
        `but its data_offsets span ${end - begin} bytes`,
    );
  }
  return { key, dtype: name as WeightsDtype, shape: dims as number[], begin, end, count };
}

/** Sorts entries by offset and checks that they cover the data exactly once. */
function checkTiling(
  entries: Entry[],
  dataSize: number,
  fail: (detail: string, key?: string) => never,
): void {
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  let previous: Entry | undefined;
  for (const e of entries) {
    if (e.begin < position) {
      fail(
        `tensor ${quote(e.key)} overlaps tensor ${
          quote(previous!.key)
        }: it begins at ${e.begin}, ` +
          `before ${position}`,
        e.key,
      );
    }
    if (e.begin > position) {
      fail(
        `tensor ${quote(e.key)} is not contiguous with the data before it: it begins at ` +
          `${e.begin}, expected ${position}`,
        e.key,
      );
    }
    position = e.end;
    previous = e;
  }
  if (position !== dataSize) {
    fail(`data has ${dataSize - position} bytes after the last tensor: data size is ${dataSize}`);
  }
}

/** Names a JSON value's type for messages. */
function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `the string ${shortJson(value)}`;
  return `${typeof value} ${shortJson(value)}`;
}

/** JSON text of a value, cut to keep messages short. */
function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Serializes float32 tensors to safetensors bytes (F32, keys sorted, data in key order).
 * @param tensors tensors by name
 * @param options `metadata` becomes `__metadata__`
 * @returns the file bytes
 * @throws {RangeError} when a shape is invalid or disagrees with its data length, or a key
 *   is `"__metadata__"`
 * @throws {TypeError} when a metadata value is not a string
 */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite>,
  options: WriteSafetensorsOptions = {},
): Uint8Array {
  const metadata: Record<string, string> = { ...options.metadata };
  delete metadata[CHECKSUM_KEY];
  const metaKeys = Object.keys(metadata).sort();
  for (const k of metaKeys) {
    if (typeof metadata[k] !== "string") {
      throw new TypeError(
        `Cannot write safetensors: metadata value of ${quote(k)} is ${typeof metadata[k]}, ` +
          `expected a string`,
      );
    }
  }
  const keys = [...tensors.keys()].sort();
  const table: [string, unknown][] = [];
  let offset = 0;
  for (const key of keys) {
    if (key === METADATA_KEY) {
      throw new RangeError(`Cannot write safetensors: tensor key "${METADATA_KEY}" is reserved`);
    }
    const { shape, data } = tensors.get(key)!;
    let count = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(
          `Cannot write safetensors: tensor ${quote(key)} has shape [${shape}]: dimensions must ` +
            `be non-negative integers`,
        );
      }
      count *= d;
    }
    if (count !== data.length) {
      throw new RangeError(
        `Cannot write safetensors: tensor ${quote(key)} has shape [${shape}] (${count} elements) ` +
          `but ${data.length} values`,
      );
    }
    table.push([key, {
      dtype: "F32",
      shape: [...shape],
      data_offsets: [offset, offset + 4 * count],
    }]);
    offset += 4 * count;
  }
  if (options.checksum ?? true) {
    metadata[CHECKSUM_KEY] = contentChecksum(
      metadata,
      keys.map((key) => {
        const t = tensors.get(key)!;
        return { key, dtype: "F32", shape: t.shape, bytes: () => littleEndianBytes(t.data) };
      }),
    );
    metaKeys.push(CHECKSUM_KEY);
    metaKeys.sort();
  }
  if (metaKeys.length > 0) {
    table.unshift([METADATA_KEY, Object.fromEntries(metaKeys.map((k) => [k, metadata[k]]))]);
  }
  // fromEntries defines own properties in order: a "__proto__" key stays a plain key.
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(table)));
  // Pad with spaces so the data starts 8-byte aligned (8-byte length prefix + header).
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let position = 8 + headerLength;
  for (const key of keys) {
    const { data } = tensors.get(key)!;
    out.set(littleEndianBytes(data), position);
    position += data.byteLength;
  }
  return out;
}

/**
 * Reads and parses a safetensors file.
 * @param path the file
 * @returns the tensors and the `__metadata__` map
 * @throws {WeightsFormatError} when the file is not valid (the message names the path)
 * @throws {Deno.errors.NotFound} and other I/O errors from reading the file
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return parseSafetensors(await Deno.readFile(path), { source: path });
}

/**
 * Writes tensors to a safetensors file atomically (the previous file survives a crash).
 * @param path the file
 * @param tensors tensors by name
 * @param options `metadata` becomes `__metadata__`
 * @returns when the file is durably in place
 * @throws {RangeError} or {TypeError} for invalid tensors or metadata, I/O errors otherwise
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorToWrite>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, options));
}
