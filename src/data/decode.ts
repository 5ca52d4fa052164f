/**
 * Image decoding with imagescript (JPEG, PNG). A failed decode names the file and the
 * reason, so the bad-image policy can report it.
 * @module
 */

import { Image } from "imagescript";

/** A decoded image: RGBA bytes, row-major. */
export interface Rgba {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** (H, W, 4) */
  data: Uint8Array;
}

/** Error for an image that cannot be read or decoded (carries the path). */
export class BadImageError extends Error {
  /** The image file. */
  readonly path: string;
  /** What is wrong with it ("file is empty (0 bytes)"). */
  readonly reason: string;
  /** Creates the error; the message is `Cannot decode image "path": reason`. */
  constructor(path: string, reason: string) {
    super(`Cannot decode image "${path}": ${reason}`);
    this.name = "BadImageError";
    this.path = path;
    this.reason = reason;
  }
}

/**
 * Decodes image bytes (JPEG or PNG) to RGBA.
 * @throws {BadImageError} For an empty file, an unknown format or corrupt data.
 */
export async function decodeImage(bytes: Uint8Array, path: string): Promise<Rgba> {
  if (bytes.length === 0) throw new BadImageError(path, "file is empty (0 bytes)");
  let img: Image;
  try {
    img = await Image.decode(bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // imagescript's JPEG decoder is WebAssembly; corrupt data can end in a wasm trap.
    const why = msg === "Unsupported image type"
      ? "not a JPEG or PNG file"
      : msg === "unreachable"
      ? "corrupt image data"
      : `corrupt image data (${msg})`;
    throw new BadImageError(path, why);
  }
  const b = img.bitmap;
  return {
    width: img.width,
    height: img.height,
    data: new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
  };
}

/**
 * Reads and decodes an image file.
 * @throws {BadImageError} When the file is missing, unreadable, empty or corrupt.
 */
export async function readImage(path: string): Promise<Rgba> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    throw new BadImageError(path, why);
  }
  return await decodeImage(bytes, path);
}
