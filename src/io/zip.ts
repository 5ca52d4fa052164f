/**
 * A small, strict zip reader (PKWARE APPNOTE 6.3: end-of-central-directory record, its
 * zip64 variant, central directory, local headers) for PyTorch's `torch.save` archives.
 *
 * The central directory is the source of truth (torch writes zeros in the local sizes and a
 * data descriptor after the data). Every offset and size is checked against the file before
 * use; entries may not overlap; STORED entries are returned as views without copying;
 * DEFLATE entries are inflated with `DecompressionStream("deflate-raw")`, fed 16 KiB at a
 * time and stopped as soon as they pass their declared size, which itself may not exceed
 * deflate's maximum ratio (1032:1). Each entry's CRC-32 is verified on read.
 *
 * Zip bombs: {@linkcode ZipArchive.checkDeclaredSizes} refuses an archive whose entries
 * declare more than a limit (before anything is inflated), and
 * {@linkcode ZipArchive.verify} inflates an entry without keeping it, so an archive can be
 * proven to inflate to its declared sizes before it is handed to a library that trusts
 * them (exceljs for `.xlsx`). {@linkcode writeStoredZip} writes a small archive back.
 * @module
 */

import { crc32 } from "./crc32.ts";
import { quote, WeightsFormatError } from "./weights_format_error.ts";

/** One file of the archive, as the central directory describes it. */
export interface ZipEntry {
  /** Path inside the archive. */
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
  /** Bytes stored in the archive. */
  compressedSize: number;
  /** Bytes after decompression. */
  uncompressedSize: number;
  /** Offset of the local header. */
  localOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
}

/** Options of {@linkcode ZipArchive.open}. */
export interface OpenZipOptions {
  /** Name of the source used in error messages (a path); defaults to `"<bytes>"`. */
  source?: string;
  /** What the archive is, for error messages; defaults to `"zip archive"`. */
  what?: string;
}

const EOCD = 0x06054b50;
const EOCD64_LOCATOR = 0x07064b50;
const EOCD64 = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
/** Deflate cannot expand more than 1032:1 (RFC 1951: 258 bytes from a 2-bit code). */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed bytes fed to the inflater at a time: one step yields at most ~16.5 MiB. */
const INFLATE_SLICE = 16 * 1024;

type Fail = (detail: string, key?: string) => never;

/** A zip archive held in memory, opened with strict validation. */
export class ZipArchive {
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly #bytes: Uint8Array;
  readonly #fail: Fail;

  private constructor(bytes: Uint8Array, entries: Map<string, ZipEntry>, fail: Fail) {
    this.#bytes = bytes;
    this.entries = entries;
    this.#fail = fail;
  }

  /**
   * Parses and validates the directory of a zip archive.
   * @param bytes the whole archive
   * @param options `source` and `what` name the archive in error messages
   * @returns the opened archive
   * @throws {WeightsFormatError} when the directory is malformed, an entry is encrypted,
   *   uses a method other than stored/deflate, or lies outside the file
   */
  static open(bytes: Uint8Array, options: OpenZipOptions = {}): ZipArchive {
    const file = options.source ?? "<bytes>";
    const fail: Fail = (detail, key) => {
      throw new WeightsFormatError(
        `Cannot read ${options.what ?? "zip archive"} "${file}": ${detail}`,
        { file, key, detail },
      );
    };
    return new ZipArchive(bytes, readDirectory(bytes, fail), fail);
  }

  /**
   * Refuses the archive when an entry, or all of them together, declare more than `limit`
   * bytes uncompressed: the check a zip bomb must pass before anything is inflated.
   * @param limit the most bytes allowed, each and in all
   * @param hint appended in parentheses to the message (e.g. how to raise the limit)
   * @throws {WeightsFormatError} naming the archive and the entry
   */
  checkDeclaredSizes(limit: number, hint?: string): void {
    const tail = `, more than the limit of ${limit} bytes${hint ? ` (${hint})` : ""}`;
    let total = 0;
    for (const e of this.entries.values()) {
      if (e.uncompressedSize > limit) {
        this.#fail(
          `entry ${quote(e.name)} declares ${e.uncompressedSize} bytes uncompressed${tail}`,
          e.name,
        );
      }
      total += e.uncompressedSize;
    }
    if (total > limit) {
      this.#fail(
        `its ${this.entries.size} entries declare ${total} bytes uncompressed in all${tail}`,
      );
    }
  }

  /**
   * Tells whether the archive has an entry.
   * @param name the path inside the archive
   * @returns true when present
   */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Returns an entry's uncompressed bytes (a view into the archive for stored entries).
   * @param name the path inside the archive
   * @returns the bytes, CRC-checked
   * @throws {WeightsFormatError} when the entry is missing, does not inflate to its declared
   *   size, or fails its CRC-32
   */
  async read(name: string): Promise<Uint8Array> {
    const entry = this.entries.get(name);
    if (!entry) this.#fail(`entry ${quote(name)} is missing`, name);
    const e = entry as ZipEntry;
    const raw = this.#bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    if (e.method === 0) {
      checkCrc(e, crc32(raw), this.#fail);
      return raw;
    }
    const chunks: Uint8Array[] = [];
    const crc = await inflate(raw, e, this.#fail, (chunk) => chunks.push(chunk));
    checkCrc(e, crc, this.#fail);
    return concat(chunks, e.uncompressedSize);
  }

  /**
   * Checks that an entry inflates to exactly its declared size and CRC-32, without keeping
   * its bytes: memory stays at one inflate step (about 16 MiB) whatever the entry holds.
   * @param name the path inside the archive
   * @throws {WeightsFormatError} as {@linkcode ZipArchive.read} does
   */
  async verify(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) this.#fail(`entry ${quote(name)} is missing`, name);
    const e = entry as ZipEntry;
    const raw = this.#bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
    const crc = e.method === 0 ? crc32(raw) : await inflate(raw, e, this.#fail, () => {});
    checkCrc(e, crc, this.#fail);
  }
}

/** Refuses an entry whose CRC-32 is not the declared one. */
function checkCrc(e: ZipEntry, actual: number, fail: Fail): void {
  if (actual !== e.crc32) {
    fail(
      `entry ${quote(e.name)} is corrupt: CRC-32 is ${hex(actual)}, expected ${hex(e.crc32)}`,
      e.name,
    );
  }
}

/** Formats a CRC for messages. */
function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/** Finds the end-of-central-directory record and reads every central header. */
function readDirectory(bytes: Uint8Array, fail: Fail): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (p: number) => view.getUint16(p, true);
  const u32 = (p: number) => view.getUint32(p, true);
  const u64 = (p: number, what: string): number => {
    const high = u32(p + 4);
    if (high > 0x1fffff) fail(`${what} is too large: ${view.getBigUint64(p, true)}`);
    return high * 2 ** 32 + u32(p);
  };
  if (bytes.length < 22) fail(`file is ${bytes.length} bytes, too short for a zip archive`);

  // The record sits at the end, followed only by a comment of at most 65535 bytes.
  let eocd = -1;
  for (let p = bytes.length - 22; p >= Math.max(0, bytes.length - 22 - MAX16); p--) {
    if (u32(p) === EOCD && p + 22 + u16(p + 20) === bytes.length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail("end of central directory record not found (truncated file?)");
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0 || u16(eocd + 8) !== u16(eocd + 10)) {
    fail("multi-disk archives are not supported");
  }
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  let cdLimit = eocd;
  if (count === MAX16 || cdSize === MAX32 || cdOffset === MAX32) {
    const locator = eocd - 20;
    if (locator < 0 || u32(locator) !== EOCD64_LOCATOR) {
      fail("zip64 end of central directory locator not found");
    }
    const record = u64(locator + 8, "zip64 record offset");
    if (record + 56 > locator || u32(record) !== EOCD64) {
      fail(`zip64 end of central directory record not found at byte ${record}`);
    }
    count = u64(record + 32, "zip64 entry count");
    cdSize = u64(record + 40, "zip64 central directory size");
    cdOffset = u64(record + 48, "zip64 central directory offset");
    cdLimit = record;
  }
  if (cdOffset + cdSize > cdLimit) {
    fail(
      `central directory runs past its end: offset ${cdOffset} + size ${cdSize} > ${cdLimit}`,
    );
  }
  if (count * 46 > cdSize) {
    fail(`central directory of ${cdSize} bytes cannot hold ${count} entries`);
  }

  const decoder = new TextDecoder("utf-8", { fatal: true });
  const entries = new Map<string, ZipEntry>();
  const cdEnd = cdOffset + cdSize;
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== CENTRAL) {
      fail(`central directory entry ${i} is malformed at byte ${p}`);
    }
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let compressedSize = u32(p + 20);
    let uncompressedSize = u32(p + 24);
    const nameLength = u16(p + 28);
    const extraLength = u16(p + 30);
    let localOffset = u32(p + 42);
    const next = p + 46 + nameLength + extraLength + u16(p + 32);
    if (next > cdEnd) fail(`central directory entry ${i} runs past the central directory`);
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLength);
    let name = "";
    try {
      name = decoder.decode(nameBytes);
    } catch {
      fail(`central directory entry ${i} has a name that is not valid UTF-8`);
    }
    // zip64 extended information: 64-bit values for the fields saturated at 0xffffffff.
    const extraEnd = p + 46 + nameLength + extraLength;
    for (let q = p + 46 + nameLength; q + 4 <= extraEnd;) {
      const id = u16(q);
      const size = u16(q + 2);
      if (q + 4 + size > extraEnd) {
        fail(`entry ${quote(name)} has an extra field that overruns`, name);
      }
      if (id === 0x0001) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > q + 4 + size) fail(`entry ${quote(name)} has a short zip64 field`, name);
          r += 8;
          return u64(r - 8, `entry ${quote(name)} ${what}`);
        };
        if (uncompressedSize === MAX32) uncompressedSize = take("uncompressed size");
        if (compressedSize === MAX32) compressedSize = take("compressed size");
        if (localOffset === MAX32) localOffset = take("local header offset");
      }
      q += 4 + size;
    }
    if (flags & 0x41) fail(`entry ${quote(name)} is encrypted`, name);
    if (method !== 0 && method !== 8) {
      fail(
        `entry ${quote(name)} uses compression method ${method}: only stored (0) and deflate (8) ` +
          `are supported`,
        name,
      );
    }
    if (entries.has(name)) fail(`entry ${quote(name)} appears twice`, name);
    if (localOffset + 30 > bytes.length || u32(localOffset) !== LOCAL) {
      fail(`entry ${quote(name)} has no local header at byte ${localOffset}`, name);
    }
    const localNameLength = u16(localOffset + 26);
    const dataOffset = localOffset + 30 + localNameLength + u16(localOffset + 28);
    const localName = bytes.subarray(localOffset + 30, localOffset + 30 + localNameLength);
    if (localName.length !== nameBytes.length || !localName.every((b, j) => b === nameBytes[j])) {
      fail(`entry ${quote(name)} has a different name in its local header`, name);
    }
    if (dataOffset + compressedSize > cdOffset) {
      fail(
        `entry ${quote(name)} has data past the end of the entries: it ends at byte ` +
          `${dataOffset + compressedSize}, the central directory starts at ${cdOffset}`,
        name,
      );
    }
    if (method === 0 && compressedSize !== uncompressedSize) {
      fail(
        `entry ${quote(name)} is stored but its sizes differ: ${compressedSize} stored, ` +
          `${uncompressedSize} declared`,
        name,
      );
    }
    if (method === 8 && uncompressedSize > compressedSize * MAX_DEFLATE_RATIO + 64) {
      fail(
        `entry ${quote(name)} declares ${uncompressedSize} bytes from ${compressedSize} ` +
          `compressed bytes, more than deflate can produce`,
        name,
      );
    }
    entries.set(name, {
      name,
      method,
      crc32: crc,
      compressedSize,
      uncompressedSize,
      localOffset,
      dataOffset,
    });
    p = next;
  }
  // Overlapping entries would let a small file present the same bytes many times over.
  const ordered = [...entries.values()].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < ordered.length; i++) {
    const before = ordered[i - 1];
    if (before.dataOffset + before.compressedSize > ordered[i].localOffset) {
      fail(`entries ${quote(before.name)} and ${quote(ordered[i].name)} overlap`, ordered[i].name);
    }
  }
  return entries;
}

/**
 * Inflates a raw-deflate entry 16 KiB of input at a time, handing each piece to `onChunk`
 * and stopping as soon as the output passes the declared size.
 * @returns the CRC-32 of the output
 */
async function inflate(
  raw: Uint8Array,
  entry: ZipEntry,
  fail: Fail,
  onChunk: (chunk: Uint8Array) => void,
): Promise<number> {
  const expected = entry.uncompressedSize;
  let fed = 0;
  const input = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (fed >= raw.length) return controller.close();
      // A copy: the stream may transfer what it is given.
      controller.enqueue(raw.slice(fed, fed + INFLATE_SLICE));
      fed += INFLATE_SLICE;
    },
  }, { highWaterMark: 0 });
  const reader = input.pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  let length = 0;
  let crc = 0;
  let problem: string | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.length;
      if (length > expected) {
        problem = `inflates to more than its declared ${expected} bytes`;
        break;
      }
      crc = crc32(value, crc);
      onChunk(value);
    }
  } catch (e) {
    problem = `is not valid deflate data: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (problem !== undefined) {
    await reader.cancel().catch(() => {});
    fail(`entry ${quote(entry.name)} ${problem}`, entry.name);
  }
  if (length !== expected) {
    fail(
      `entry ${quote(entry.name)} inflates to ${length} bytes, expected ${expected}`,
      entry.name,
    );
  }
  return crc;
}

/** Joins chunks of known total length (no copy for a single chunk). */
function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(length);
  let position = 0;
  for (const c of chunks) {
    out.set(c, position);
    position += c.length;
  }
  return out;
}

/**
 * Writes a zip archive of stored (uncompressed) entries, in the order given: what
 * {@linkcode ZipArchive} and other readers (JSZip, unzip) read back.
 * @param files the entries: path inside the archive and bytes
 * @returns the archive bytes
 * @throws {RangeError} when the archive would need zip64 (4 GiB or 65535 entries)
 */
export function writeStoredZip(files: readonly { name: string; data: Uint8Array }[]): Uint8Array {
  const names = files.map((f) => new TextEncoder().encode(f.name));
  const localSize = files.reduce((n, f, i) => n + 30 + names[i].length + f.data.length, 0);
  const centralSize = names.reduce((n, name) => n + 46 + name.length, 0);
  if (files.length >= MAX16 || localSize + centralSize >= MAX32) {
    throw new RangeError(
      `Cannot write zip: ${files.length} entries, ${localSize} bytes: too large`,
    );
  }
  const out = new Uint8Array(localSize + centralSize + 22);
  const view = new DataView(out.buffer);
  const central: [number, number][] = []; // offset and CRC of each entry
  let p = 0;
  files.forEach((f, i) => {
    const crc = crc32(f.data);
    central.push([p, crc]);
    view.setUint32(p, LOCAL, true);
    view.setUint16(p + 4, 20, true); // version needed: 2.0
    view.setUint16(p + 6, 0x0800, true); // names are UTF-8
    view.setUint32(p + 14, crc, true);
    view.setUint32(p + 18, f.data.length, true);
    view.setUint32(p + 22, f.data.length, true);
    view.setUint16(p + 26, names[i].length, true);
    out.set(names[i], p + 30);
    out.set(f.data, p + 30 + names[i].length);
    p += 30 + names[i].length + f.data.length;
  });
  files.forEach((f, i) => {
    view.setUint32(p, CENTRAL, true);
    view.setUint16(p + 4, 20, true);
    view.setUint16(p + 6, 20, true);
    view.setUint16(p + 8, 0x0800, true);
    view.setUint32(p + 16, central[i][1], true);
    view.setUint32(p + 20, f.data.length, true);
    view.setUint32(p + 24, f.data.length, true);
    view.setUint16(p + 28, names[i].length, true);
    view.setUint32(p + 42, central[i][0], true);
    out.set(names[i], p + 46);
    p += 46 + names[i].length;
  });
  view.setUint32(p, EOCD, true);
  view.setUint16(p + 8, files.length, true);
  view.setUint16(p + 10, files.length, true);
  view.setUint32(p + 12, centralSize, true);
  view.setUint32(p + 16, localSize, true);
  return out;
}
