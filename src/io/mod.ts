/**
 * Weights I/O: safetensors read/write, PyTorch `.pth` (zip) import through a restricted
 * unpickler, and crash-safe file replacement. Every reader throws
 * {@linkcode WeightsFormatError} for a malformed or hostile file.
 *
 * @example Round trip
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = serializeSafetensors(
 *   new Map([["w", { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }]]),
 *   { metadata: { fbp: "{}" } },
 * );
 * const { tensors, metadata } = parseSafetensors(bytes);
 * assert.deepEqual([...tensors.get("w")!.data], [1, 2, 3, 4]);
 * assert.equal(metadata.fbp, "{}");
 * ```
 * @module
 */

export { writeFileAtomic } from "./atomic_write.ts";
export { parsePth, readPth, type ReadPthOptions } from "./pth.ts";
export {
  CHECKSUM_KEY,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  type ReadSafetensorsOptions,
  type SafetensorsFile,
  serializeSafetensors,
  type TensorToWrite,
  writeSafetensors,
  type WriteSafetensorsOptions,
} from "./safetensors.ts";
export { WeightsFormatError, type WeightsFormatErrorOptions } from "./weights_format_error.ts";
export type { WeightsDtype, WeightsTensor } from "./weights_tensor.ts";
