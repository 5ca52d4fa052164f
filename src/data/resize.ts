/**
 * Antialiased bilinear resize of 8-bit images (the triangle filter widened by the scale
 * factor when shrinking, as PIL and torchvision's antialiased Resize do). imagescript only
 * has nearest-neighbour resizing, which aliases badly when a 350² face shrinks to 72².
 * Separable: a horizontal pass into floats, then a vertical pass back to bytes.
 * @module
 */

interface Taps {
  /** First source index per output index. */
  start: Int32Array;
  /** Number of taps per output index. */
  count: Int32Array;
  /** (out, maxTaps) normalised weights. */
  weights: Float32Array;
  maxTaps: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = Math.max(1, scale); // triangle of radius 1, stretched when shrinking
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize), count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize, Math.ceil(center + support));
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
      weights[i * maxTaps + j - lo] = w;
      sum += w;
    }
    for (let j = lo; j < hi; j++) weights[i * maxTaps + j - lo] /= sum;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, maxTaps };
}

/**
 * Resizes an (H, W, channels) 8-bit image to (outH, outW, 3) RGB, dropping alpha.
 * @param channels 4 for RGBA input, 3 for RGB.
 */
export function resizeRgb(
  src: Uint8Array,
  width: number,
  height: number,
  channels: 3 | 4,
  outW: number,
  outH: number,
): Uint8Array {
  const tx = taps(width, outW), ty = taps(height, outH);
  const tmp = new Float32Array(height * outW * 3); // (H, outW, 3)
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    for (let x = 0; x < outW; x++) {
      let r = 0, g = 0, b = 0;
      const s = tx.start[x], n = tx.count[x], wo = x * tx.maxTaps;
      for (let k = 0; k < n; k++) {
        const w = tx.weights[wo + k], p = row + (s + k) * channels;
        r += w * src[p];
        g += w * src[p + 1];
        b += w * src[p + 2];
      }
      const o = (y * outW + x) * 3;
      tmp[o] = r;
      tmp[o + 1] = g;
      tmp[o + 2] = b;
    }
  }
  const out = new Uint8Array(outH * outW * 3);
  const acc = new Float32Array(outW * 3);
  const rowLen = outW * 3;
  for (let y = 0; y < outH; y++) {
    acc.fill(0);
    const s = ty.start[y], n = ty.count[y], wo = y * ty.maxTaps;
    for (let k = 0; k < n; k++) {
      const w = ty.weights[wo + k], row = (s + k) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += w * tmp[row + i];
    }
    // Uint8Array stores truncate; round and clamp explicitly.
    const o = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      const v = acc[i] + 0.5;
      out[o + i] = v <= 0 ? 0 : v >= 255 ? 255 : v;
    }
  }
  return out;
}

/** Output size that makes the shorter side `target`, keeping the aspect ratio. */
export function shorterSideSize(width: number, height: number, target: number): [number, number] {
  return width <= height
    ? [target, Math.max(target, Math.round((height * target) / width))]
    : [Math.max(target, Math.round((width * target) / height)), target];
}
