/**
 * The tensor record both weights readers return, and the decoding of stored element types
 * into float32 (the toolkit computes in f32 only; DESIGN.md §1 src/tensor).
 * @module
 */

/**
 * The element type a tensor had in the file (safetensors spelling). Every dtype is returned
 * as float32: F16 and BF16 widen exactly; I64 (e.g. torchvision's `num_batches_tracked`)
 * rounds to the nearest float32, exact up to 2^24.
 */
export type WeightsDtype = "F32" | "F16" | "BF16" | "I64";

/** A tensor read from a weights file. */
export interface WeightsTensor {
  /** The element type stored in the file. */
  dtype: WeightsDtype;
  /** Dimensions, outermost first; `[]` for a scalar. */
  shape: number[];
  /** Row-major values, `shape` product long. */
  data: Float32Array;
}

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<WeightsDtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
};

/** Whether typed arrays use little-endian order here (every host Deno runs on today). */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Float32Array | undefined;

/** Builds (once) the 65536-entry table from IEEE half bits to float32. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  halfTable = table;
  return table;
}

/**
 * Decodes `count` little-endian elements of `dtype` starting at `bytes[0]` into float32.
 * @param bytes the stored bytes (at least `count` elements long)
 * @param dtype the stored element type
 * @param count the number of elements
 * @returns a new array that owns its memory
 */
export function decodeToFloat32(
  bytes: Uint8Array,
  dtype: WeightsDtype,
  count: number,
): Float32Array {
  const byteLength = count * DTYPE_SIZE[dtype];
  if (bytes.length < byteLength) {
    throw new RangeError(
      `Cannot decode ${dtype} data: need ${byteLength} bytes, current length is ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case "F32":
      if (HOST_IS_LITTLE_ENDIAN) {
        new Uint8Array(out.buffer).set(bytes.subarray(0, byteLength));
      } else {
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      }
      break;
    case "F16": {
      const table = halfToFloatTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32: shifting the bits back is exact.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < count; i++) {
        const low = view.getUint32(8 * i, true);
        const high = view.getInt32(8 * i + 4, true);
        // high * 2^32 + low is exact in float64 up to 2^53; float32 rounding follows.
        out[i] = high * 4294967296 + low;
      }
      break;
  }
  return out;
}
