/**
 * Reads an image's format and size from its header without decoding it, and checks the
 * file's structure (issue 8): a PNG's chunk lengths, CRCs, IHDR and IEND; a JPEG's marker
 * segments up to the first scan, its frame header (SOF) and the end-of-image marker after
 * the scan data. The decoder (imagescript, WebAssembly) allocates width × height × 4 bytes
 * as the header says and reports damage only as "failed to decode", so a hostile 20000×20000
 * header is refused here, and a damaged file is named with what and where.
 * @module
 */

import { crc32 } from "../io/crc32.ts";

/** Format and size of an image, from its header. */
export interface ImageHeader {
  format: "png" | "jpeg";
  width: number;
  height: number;
}

/** The structure of an image file is broken; `message` says what and at which byte. */
export class ImageHeaderError extends Error {
  /** Creates the error with a reason such as "PNG chunk "IDAT" at byte 33 has a bad CRC". */
  constructor(reason: string) {
    super(reason);
    this.name = "ImageHeaderError";
  }
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
/** Bit depths allowed per PNG colour type (PNG spec, table 11.1). */
const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/** The critical chunks of PNG (the spec's four; others are ancillary or unknown). */
const PNG_CRITICAL = ["IHDR", "PLTE", "IDAT", "IEND"];

/** True when the bytes start like a PNG file. */
function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

/** True when the bytes start like a JPEG file (SOI followed by a marker). */
function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function chunkName(b: Uint8Array, at: number): string {
  const name = String.fromCharCode(...b.subarray(at, at + 4));
  return /^[A-Za-z]{4}$/.test(name) ? `"${name}"` : JSON.stringify(name);
}

function pngHeader(b: Uint8Array): ImageHeader {
  const fail = (why: string): never => {
    throw new ImageHeaderError(why);
  };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 8, width = 0, height = 0, idat = 0, end = false, color = 0, plte = false;
  while (!end) {
    if (at + 8 > b.length) fail(`PNG is truncated at byte ${at}: no IEND chunk`);
    const length = dv.getUint32(at);
    const name = String.fromCharCode(...b.subarray(at + 4, at + 8));
    if (length > 0x7fffffff || at + 12 + length > b.length) {
      fail(
        `PNG is truncated: chunk ${chunkName(b, at + 4)} at byte ${at} declares ${length} bytes, ` +
          `${Math.max(0, b.length - at - 12)} remain`,
      );
    }
    const crc = dv.getUint32(at + 8 + length);
    if (crc32(b.subarray(at + 4, at + 8 + length)) !== crc) {
      fail(`PNG chunk ${chunkName(b, at + 4)} at byte ${at} has a bad CRC`);
    }
    if (at === 8) {
      if (name !== "IHDR" || length !== 13) fail("PNG does not start with a 13-byte IHDR chunk");
      width = dv.getUint32(at + 8);
      height = dv.getUint32(at + 12);
      const depth = b[at + 16];
      color = b[at + 17];
      if (!(PNG_DEPTHS[color] ?? []).includes(depth)) {
        fail(`PNG has an invalid colour type ${color} with bit depth ${depth}`);
      }
      if (b[at + 18] !== 0 || b[at + 19] !== 0 || b[at + 20] > 1) {
        fail("PNG has an unknown compression, filter or interlace method");
      }
    } else if (name === "IHDR") {
      fail(`PNG has a second IHDR chunk at byte ${at}`);
    }
    if (!/^[A-Za-z]{4}$/.test(name)) {
      fail(`PNG chunk at byte ${at} has an invalid name ${chunkName(b, at + 4)}`);
    }
    // A critical chunk (upper-case first letter) the decoder does not know makes it fail.
    if (/^[A-Z]/.test(name) && !PNG_CRITICAL.includes(name)) {
      fail(`PNG has an unknown critical chunk "${name}" at byte ${at}`);
    }
    if (name === "PLTE") plte = true;
    if (name === "IDAT" && color === 3 && !plte) {
      fail(`PNG has a palette colour type but no PLTE chunk before its image data (byte ${at})`);
    }
    if (name === "IDAT") idat++;
    if (name === "IEND") end = true;
    at += 12 + length;
  }
  if (idat === 0) fail("PNG has no image data (no IDAT chunk)");
  return { format: "png", width, height };
}

/** SOF markers that carry a frame header (not DHT C4, JPG C8, DAC CC). */
function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

function jpegHeader(b: Uint8Array): ImageHeader {
  const fail = (why: string): never => {
    throw new ImageHeaderError(why);
  };
  let at = 2, width = 0, height = 0, sof = false;
  for (;;) {
    if (at + 2 > b.length) fail(`JPEG is truncated at byte ${at}: no scan data`);
    if (b[at] !== 0xff) fail(`JPEG is corrupt: expected a marker at byte ${at}`);
    const m = b[at + 1];
    if (m === 0xff) { // fill byte before a marker
      at++;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { // markers without a segment
      at += 2;
      continue;
    }
    if (m === 0xd9) fail(`JPEG ends (EOI at byte ${at}) before any scan data`);
    if (at + 4 > b.length) fail(`JPEG is truncated at byte ${at}`);
    const length = (b[at + 2] << 8) | b[at + 3];
    if (length < 2 || at + 2 + length > b.length) {
      fail(
        `JPEG is truncated: segment 0x${m.toString(16).toUpperCase()} at byte ${at} ` +
          `declares ${length} bytes, ${Math.max(0, b.length - at - 2)} remain`,
      );
    }
    if (isSof(m)) {
      if (length < 8) fail(`JPEG frame header at byte ${at} is too short`);
      height = (b[at + 5] << 8) | b[at + 6];
      width = (b[at + 7] << 8) | b[at + 8];
      sof = true;
    }
    if (m === 0xda) {
      if (!sof) fail(`JPEG has scan data (byte ${at}) before any frame header`);
      break;
    }
    at += 2 + length;
  }
  // Entropy-coded data stuffs 0xFF as FF 00, so FF D9 after the first scan is the end.
  let eoi = -1;
  for (let i = b.length - 2; i > at; i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) {
      eoi = i;
      break;
    }
  }
  if (eoi < 0) fail(`JPEG is truncated: no end-of-image marker after the scan at byte ${at}`);
  return { format: "jpeg", width, height };
}

/**
 * Format and size of a PNG or JPEG from its bytes, after checking the file's structure.
 * @returns undefined when the bytes are neither PNG nor JPEG
 * @throws {ImageHeaderError} naming what is broken and where
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (isPng(bytes)) return pngHeader(bytes);
  if (isJpeg(bytes)) return jpegHeader(bytes);
  return undefined;
}
