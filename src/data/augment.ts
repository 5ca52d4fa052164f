/**
 * Crop, horizontal flip and normalisation of a resized RGB image into float32 CHW, the
 * last step before batching. Random choices come in as numbers (drawn from the loader's
 * seeded generator on the main thread), so results do not depend on which worker ran.
 * @module
 */

import type { Rng } from "../random/rng.ts";

/** ImageNet channel means (RGB, 0–1 scale), as torchvision's pretrained weights expect. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB, 0–1 scale). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Where to crop and whether to flip: `u`, `v` in [0, 1) pick the offset, centre when absent. */
export interface CropParams {
  /** Horizontal offset in [0, 1): 0 = left edge, →1 = right edge. */
  u?: number;
  /** Vertical offset in [0, 1). */
  v?: number;
  /** Mirror left–right. */
  flip?: boolean;
}

/** Draws random crop offsets and a flip (probability 0.5) from `rng`. */
export function randomCrop(rng: Rng): CropParams {
  return { u: rng.next(), v: rng.next(), flip: rng.next() < 0.5 };
}

/**
 * Crops a `size`×`size` window out of an (H, W, 3) RGB image, optionally mirrored, and
 * writes `(x/255 − mean[c]) / std[c]` as (3, size, size) floats into `out` at `offset`.
 * @throws {RangeError} When the image is smaller than the crop.
 */
export function cropNormalize(
  rgb: Uint8Array,
  width: number,
  height: number,
  size: number,
  crop: CropParams,
  out: Float32Array,
  offset = 0,
  mean: readonly number[] = IMAGENET_MEAN,
  std: readonly number[] = IMAGENET_STD,
): void {
  if (width < size || height < size) {
    throw new RangeError(
      `Cannot crop ${size}×${size}: image is ${width}×${height}`,
    );
  }
  const x0 = crop.u === undefined
    ? Math.floor((width - size) / 2)
    : Math.floor(crop.u * (width - size + 1));
  const y0 = crop.v === undefined
    ? Math.floor((height - size) / 2)
    : Math.floor(crop.v * (height - size + 1));
  const plane = size * size;
  // Fold /255, mean and std into one multiply-add per value.
  const a = [0, 1, 2].map((c) => 1 / (255 * std[c]));
  const b = [0, 1, 2].map((c) => -mean[c] / std[c]);
  for (let y = 0; y < size; y++) {
    const row = ((y0 + y) * width + x0) * 3;
    const o = offset + y * size;
    for (let x = 0; x < size; x++) {
      const p = row + (crop.flip ? size - 1 - x : x) * 3;
      out[o + x] = rgb[p] * a[0] + b[0];
      out[o + plane + x] = rgb[p + 1] * a[1] + b[1];
      out[o + 2 * plane + x] = rgb[p + 2] * a[2] + b[2];
    }
  }
}
