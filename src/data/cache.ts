/**
 * On-disk cache of decoded, resized images: one file per image and size, named by a hash
 * of (path, size, mtime, byte length), so an edited image misses the cache. A file holds
 * a header (magic, width, height, the source path to guard against hash collisions) and
 * the raw RGB bytes. Writes go to a temporary name and are renamed into place, so
 * workers that race on the same image never see half a file.
 * @module
 */

import { join, resolve } from "node:path";
import { mix32 } from "../random/rng.ts";

const MAGIC = 0x43504246; // "FBPC" little-endian

/** A cached RGB image. */
export interface CachedRgb {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** (H, W, 3) */
  rgb: Uint8Array;
}

/** 64-bit hex hash of a string (two independent 32-bit mixes). */
function hash64(s: string): string {
  let a = 0x12345678, b = 0x9abcdef0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = mix32(a ^ c);
    b = mix32(b ^ (c * 31 + i));
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** Cache file for `path` resized to shorter side `size`, or undefined if it cannot be stat'ed. */
export async function cacheFile(
  dir: string,
  path: string,
  size: number,
): Promise<{ file: string; key: string } | undefined> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch {
    return undefined;
  }
  const key = `${resolve(path)}|${size}|${st.mtime?.getTime() ?? 0}|${st.size}`;
  return { file: join(dir, `${hash64(key)}.rgb`), key };
}

/** Reads a cache entry; undefined on a miss, a foreign file or a damaged file. */
export async function readCached(file: string, key: string): Promise<CachedRgb | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch {
    return undefined;
  }
  if (bytes.length < 16) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [magic, width, height, keyLen] = [0, 4, 8, 12].map((o) => dv.getUint32(o, true));
  const start = 16 + keyLen;
  if (magic !== MAGIC || bytes.length !== start + width * height * 3) return undefined;
  if (new TextDecoder().decode(bytes.subarray(16, start)) !== key) return undefined;
  return { width, height, rgb: bytes.subarray(start) };
}

/** Writes a cache entry atomically (temporary file, then rename). */
export async function writeCached(file: string, key: string, img: CachedRgb): Promise<void> {
  const k = new TextEncoder().encode(key);
  const bytes = new Uint8Array(16 + k.length + img.rgb.length);
  const dv = new DataView(bytes.buffer);
  [MAGIC, img.width, img.height, k.length].forEach((v, i) => dv.setUint32(i * 4, v, true));
  bytes.set(k, 16);
  bytes.set(img.rgb, 16 + k.length);
  const tmp = `${file}.${crypto.randomUUID()}.tmp`;
  await Deno.mkdir(join(file, ".."), { recursive: true });
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, file);
}
