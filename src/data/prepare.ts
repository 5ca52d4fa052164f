/**
 * The per-image work of the input pipeline, shared by the decode workers and the inline
 * (zero-worker) path: (cache or decode → resize shorter side) → crop/flip → normalise.
 * @module
 */

import { cropNormalize, type CropParams, IMAGENET_MEAN, IMAGENET_STD } from "./augment.ts";
import { type CachedRgb, cacheFile, readCached, writeCached } from "./cache.ts";
import { readImage } from "./decode.ts";
import { resizeRgb, shorterSideSize } from "./resize.ts";

/** One image to prepare. */
export interface PrepareRequest {
  /** The image file. */
  path: string;
  /** Shorter side after resizing (e.g. 256 for training, = size for evaluation). */
  resize: number;
  /** Side of the square crop (e.g. 224). */
  size: number;
  /** Crop offsets and flip; centre crop without flip when empty. */
  crop: CropParams;
  /** Folder of the decoded-image cache; no caching when absent. */
  cacheDir?: string;
  /** Channel means (0–1 scale; default ImageNet). */
  mean?: readonly number[];
  /** Channel standard deviations (0–1 scale; default ImageNet). */
  std?: readonly number[];
}

/**
 * Returns the image at `path` decoded and resized so its shorter side is `resize`,
 * from the cache when it holds it (and filling the cache on a miss).
 * @throws {BadImageError} When the file is missing, empty or corrupt.
 */
export async function loadResized(
  path: string,
  resize: number,
  cacheDir?: string,
): Promise<CachedRgb> {
  const entry = cacheDir ? await cacheFile(cacheDir, path, resize) : undefined;
  if (entry) {
    const hit = await readCached(entry.file, entry.key);
    if (hit) return hit;
  }
  const img = await readImage(path);
  const [w, h] = shorterSideSize(img.width, img.height, resize);
  const rgb = resizeRgb(img.data, img.width, img.height, 4, w, h);
  const out = { width: w, height: h, rgb };
  if (entry) {
    try {
      await writeCached(entry.file, entry.key, out);
    } catch (e) {
      throw new Error(`Cannot write image cache "${cacheDir}": ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Prepares one image as (3, size, size) normalised floats.
 * @throws {BadImageError} When the file is missing, empty or corrupt.
 */
export async function prepareImage(req: PrepareRequest): Promise<Float32Array> {
  const img = await loadResized(req.path, req.resize, req.cacheDir);
  const out = new Float32Array(3 * req.size * req.size);
  cropNormalize(
    img.rgb,
    img.width,
    img.height,
    req.size,
    req.crop,
    out,
    0,
    req.mean ?? IMAGENET_MEAN,
    req.std ?? IMAGENET_STD,
  );
  return out;
}
