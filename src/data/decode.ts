/**
 * Image decoding with imagescript (JPEG, PNG). A failed decode names the file and the
 * reason, so the bad-image policy can report it.
 * @module
 */

import { Image } from "imagescript";
import { fileKind } from "./fs_util.ts";
import { ImageHeaderError, readImageHeader } from "./image_header.ts";

/**
 * Largest image decoded, in pixels (width × height): 50 megapixels, 200 MB as RGBA. The
 * decoder allocates what the header claims, so a larger one is refused before decoding.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** Largest image file read, in bytes (a JPEG or PNG under the pixel limit is far smaller). */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

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
 * What a failure of imagescript's decoders means, in words. Its PNG decoder reports only a
 * status number ("png: failed to decode (-8)"), its JPEG decoder only "failed to decode",
 * and corrupt JPEG data can end in a WebAssembly trap ("unreachable"). The file's structure
 * (chunks, CRCs, segments) was checked before, so what is left is the image data itself.
 */
function decoderReason(e: unknown, format: "png" | "jpeg", width: number, height: number) {
  const msg = e instanceof Error ? e.message : String(e);
  if (msg === "Unsupported image type") return "not a JPEG or PNG file";
  const status = /^png: failed to decode \((-?\d+)\)$/.exec(msg)?.[1];
  if (status === "-8") {
    return `corrupt PNG image data: the compressed pixels (IDAT) do not decode to the ` +
      `${width}×${height} image its header gives`;
  }
  if (status !== undefined) {
    return `PNG not supported or damaged: the decoder refused it (status ${status})`;
  }
  if (format === "jpeg" || msg === "unreachable" || msg.startsWith("jpg:")) {
    return "corrupt JPEG image data: the decoder could not read the compressed pixels";
  }
  return `corrupt image data (${msg.split("\n")[0].slice(0, 100)})`;
}

/**
 * Decodes image bytes (JPEG or PNG; grey, RGB, RGBA, 8- or 16-bit) to 8-bit RGBA. The
 * header is checked first (structure, CRCs, size), so a damaged file is named with what is
 * wrong and an oversized one is refused before anything is allocated for its pixels.
 * @throws {BadImageError} For an empty file, an unknown format, a damaged or truncated
 *   file, a size of 0 or above {@link MAX_IMAGE_PIXELS}, or data the decoder rejects.
 */
export async function decodeImage(bytes: Uint8Array, path: string): Promise<Rgba> {
  if (bytes.length === 0) throw new BadImageError(path, "file is empty (0 bytes)");
  let header;
  try {
    header = readImageHeader(bytes);
  } catch (e) {
    if (e instanceof ImageHeaderError) {
      throw new BadImageError(path, `corrupt image data (${e.message})`);
    }
    throw e;
  }
  if (!header) throw new BadImageError(path, "not a JPEG or PNG file");
  const { width, height } = header;
  if (width < 1 || height < 1) {
    throw new BadImageError(path, `${header.format} header gives a size of ${width}×${height}`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new BadImageError(
      path,
      `image is ${width}×${height} (${width * height} pixels), more than the limit of ` +
        `${MAX_IMAGE_PIXELS}; refused before decoding`,
    );
  }
  let img: Image;
  try {
    img = await Image.decode(bytes);
  } catch (e) {
    throw new BadImageError(path, decoderReason(e, header.format, width, height));
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
  const why = (e: unknown) =>
    e instanceof Deno.errors.NotFound
      ? "file not found"
      : e instanceof Deno.errors.PermissionDenied
      ? `permission denied (${(e as Error).message})`
      : (e as Error).message;
  let bytes: Uint8Array;
  try {
    // Stat first: a folder named like an image, or a FIFO (a plain read would block on it
    // forever), is refused by kind; a huge file by size, before it is read.
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new BadImageError(path, "it is a directory");
    if (!info.isFile) throw new BadImageError(path, `it is ${fileKind(info)}, not an image file`);
    if (info.size > MAX_IMAGE_FILE_BYTES) {
      throw new BadImageError(
        path,
        `file is ${info.size} bytes, more than the limit of ${MAX_IMAGE_FILE_BYTES}`,
      );
    }
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof BadImageError) throw e;
    throw new BadImageError(path, why(e));
  }
  return await decodeImage(bytes, path);
}
