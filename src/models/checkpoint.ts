/**
 * Checkpoints: a network's tensors in safetensors under the names of DESIGN.md §3, with
 * the model config as JSON in `__metadata__.fbp`, so a file alone rebuilds the network.
 * Also the import of torchvision ResNet18 weights (`.pth` or `.safetensors`): each BN is
 * copied into every per-database copy, `fc.*` is dropped, AFF and heads keep their fresh
 * initialisation.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import { parsePth } from "../io/pth.ts";
import { parseSafetensors, writeSafetensors } from "../io/safetensors.ts";
import type { WeightsTensor } from "../io/weights_tensor.ts";
import { formatShape } from "../tensor/tensor.ts";
import { type NetworkConfig, parseNetworkConfig } from "./config.ts";
import { MultiTaskNet } from "./network.ts";

/** Version written into checkpoints' config (readers accept files without it). */
export const CHECKPOINT_VERSION = 1;

/** A tensor as read from a file. */
export type HostTensor = Pick<WeightsTensor, "shape" | "data">;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Copies host tensors into the network's parameters and buffers.
 * @param source names the file in messages
 * @throws {Error} naming the key when a tensor is missing, unexpected or of another shape
 */
export function loadState(
  net: MultiTaskNet,
  tensors: ReadonlyMap<string, HostTensor>,
  source: string,
): void {
  const state = net.stateDict();
  for (const [key, t] of state) {
    const src = tensors.get(key);
    if (!src) throw new Error(`Cannot load "${source}": tensor "${key}" is missing`);
    if (!sameShape(src.shape, t.shape)) {
      throw new Error(
        `Cannot load "${source}": tensor "${key}" has shape ${
          formatShape(src.shape)
        }, the config expects ${formatShape(t.shape)}`,
      );
    }
  }
  for (const key of tensors.keys()) {
    if (!state.has(key)) {
      throw new Error(
        `Cannot load "${source}": tensor "${key}" is not part of the configured network`,
      );
    }
  }
  for (const [key, t] of state) t.backend.copyIn(t.storage, tensors.get(key)!.data);
}

/** The network's tensors copied to host memory, by name. */
export function stateToHost(
  net: MultiTaskNet,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of net.stateDict()) out.set(k, { shape: [...t.shape], data: t.toArray() });
  return out;
}

/**
 * Writes the network (and its config) to a safetensors file atomically.
 * @param extra further metadata entries (e.g. training provenance)
 */
export async function saveCheckpoint(
  path: string,
  net: MultiTaskNet,
  extra: Record<string, string> = {},
): Promise<void> {
  const config = { ...net.config, version: CHECKPOINT_VERSION };
  await writeSafetensors(path, stateToHost(net), {
    metadata: { ...extra, fbp: JSON.stringify(config) },
  });
}

/**
 * Reads a checkpoint's config without building the network.
 * @throws {Error} when the file has no valid `fbp` metadata
 */
export function checkpointConfig(metadata: Record<string, string>, source: string): NetworkConfig {
  if (metadata.fbp === undefined) {
    throw new Error(
      `Cannot load checkpoint "${source}": it has no "fbp" metadata entry (the model config). Hint: is it a torchvision file? Use it with --pretrained`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(metadata.fbp);
  } catch (e) {
    throw new Error(
      `Cannot load checkpoint "${source}": metadata "fbp" is not JSON: ${(e as Error).message}`,
    );
  }
  return parseNetworkConfig(raw, `checkpoint "${source}" config`);
}

/**
 * Builds a network from a checkpoint file (config from its metadata, then the weights).
 * @param opts.backend where the weights go (default: the active backend)
 * @throws {WeightsFormatError} for an invalid file, {Error} for a config or shape problem
 * @example Save a small network and load it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadBackend, MultiTaskNet, parseNetworkConfig, setDefaultBackend } from "../../mod.ts";
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const net = new MultiTaskNet(parseNetworkConfig({
 *   tasks: [{ name: "beauty", classes: 5, database: "scut" }], widths: [4, 4, 8, 8],
 * }));
 * const dir = await Deno.makeTempDir();
 * await saveCheckpoint(`${dir}/net.safetensors`, net);
 * const copy = await loadCheckpoint(`${dir}/net.safetensors`);
 * assert.deepEqual(copy.config, net.config);
 * assert.deepEqual(copy.heads.byTask.get("beauty")!.bias.toArray(),
 *   net.heads.byTask.get("beauty")!.bias.toArray());
 * net.dispose();
 * copy.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadCheckpoint(
  path: string,
  opts: { backend?: Backend } = {},
): Promise<MultiTaskNet> {
  return networkFromCheckpoint(await readCheckpointFile(path), opts);
}

/** A checkpoint file read and checked, before any network or backend exists. */
export interface CheckpointFile {
  path: string;
  config: NetworkConfig;
  tensors: ReadonlyMap<string, HostTensor>;
  metadata: Record<string, string>;
}

/**
 * Reads a weights file's bytes; a missing file, a folder, a FIFO or device, or any other
 * read failure becomes one Error naming the file (a FIFO would block a plain read forever).
 * @param what names the file's role in the message ("checkpoint", "pretrained weights")
 */
export async function readWeightsBytes(path: string, what: string): Promise<Uint8Array> {
  const fail = (why: string): never => {
    throw new Error(`Cannot read ${what} "${path}": ${why}`);
  };
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    fail(e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message);
  }
  if (info!.isDirectory) fail("it is a directory");
  if (!info!.isFile) fail("it is not a regular file");
  try {
    return await Deno.readFile(path);
  } catch (e) {
    return fail((e as Error).message);
  }
}

/**
 * Reads and validates a checkpoint (safetensors format, `fbp` config) without building
 * the network, so a bad file is refused before a backend is loaded or an image read.
 * @throws {WeightsFormatError} for an invalid file, {Error} for an unreadable file or a
 *   bad config; a `.pth` is refused with a hint (it holds no config)
 */
export async function readCheckpointFile(path: string): Promise<CheckpointFile> {
  const bytes = await readWeightsBytes(path, "checkpoint");
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    throw new Error(
      `Cannot load checkpoint "${path}": it is a PyTorch zip (.pth) file, not a checkpoint ` +
        `written by deno task train. Hint: use ImageNet weights with train --pretrained`,
    );
  }
  const file = parseSafetensors(bytes, { source: path });
  const config = checkpointConfig(file.metadata, path);
  checkFinite(file.tensors, `Cannot load checkpoint "${path}"`);
  return { path, config, tensors: file.tensors, metadata: file.metadata };
}

/**
 * Builds the network of a checkpoint read by {@link readCheckpointFile}.
 * @throws {Error} naming the key when a tensor is missing, unexpected or of another shape
 */
export function networkFromCheckpoint(
  file: CheckpointFile,
  opts: { backend?: Backend } = {},
): MultiTaskNet {
  const net = new MultiTaskNet(file.config, { backend: opts.backend });
  try {
    loadState(net, file.tensors, file.path);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

/**
 * Reads torchvision ResNet18 weights (`.pth` through the restricted unpickler, or
 * `.safetensors`) and copies the backbone into `net`; returns how many tensors it set.
 * `preloaded` skips the read (the tensors of {@link readPretrainedWeights}).
 * @throws {Error} naming the key when a backbone tensor is missing or of another shape
 */
export async function importTorchvisionResnet18(
  net: MultiTaskNet,
  path: string,
  preloaded?: ReadonlyMap<string, HostTensor>,
): Promise<number> {
  const tensors = preloaded ?? await readTorchvisionFile(path);
  const state = net.stateDict();
  const keys = net.bnKeys();
  let copied = 0;
  const set = (dst: string, src: string) => {
    const from = tensors.get(src), to = state.get(dst);
    if (!to) throw new Error(`Cannot import "${path}": the network has no tensor "${dst}"`);
    if (!from) {
      throw new Error(
        `Cannot import "${path}": tensor "${src}" is missing (is it a ResNet18 state dict?)`,
      );
    }
    if (!sameShape(from.shape, to.shape)) {
      throw new Error(
        `Cannot import "${path}": tensor "${src}" has shape ${formatShape(from.shape)}, expected ${
          formatShape(to.shape)
        }`,
      );
    }
    to.backend.copyIn(to.storage, from.data);
    copied++;
  };
  // Map every torchvision backbone key; BN tensors go to each DAB copy.
  const bnSuffix = /^(.*\.?(?:bn\d|downsample\.1))\.(weight|bias|running_mean|running_var)$/;
  for (const src of tensors.keys()) {
    if (src.startsWith("fc.") || src.endsWith("num_batches_tracked")) continue;
    const m = bnSuffix.exec(src);
    if (m) { for (const k of keys) set(`${m[1]}.${k}.${m[2]}`, src); }
    else set(src, src);
  }
  // Every backbone conv must have come from the file.
  for (const [key] of state) {
    if (/^(conv1|layer\d\.\d\.(conv\d|downsample\.0))\.weight$/.test(key) && !tensors.has(key)) {
      throw new Error(
        `Cannot import "${path}": tensor "${key}" is missing (is it a ResNet18 state dict?)`,
      );
    }
  }
  return copied;
}

/**
 * Refuses tensors holding NaN or ±Infinity: such weights make every output NaN, and the
 * trainer would report the first step as a diverged loss.
 * @param prefix the start of the message, naming the file
 */
function checkFinite(tensors: ReadonlyMap<string, HostTensor>, prefix: string): void {
  for (const [key, t] of tensors) {
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i];
      if (v - v !== 0) {
        throw new Error(`${prefix}: tensor "${key}" holds ${v} (element ${i})`);
      }
    }
  }
}

/** Reads a torchvision weights file: `.safetensors` by name, otherwise a `.pth` zip. */
export async function readTorchvisionFile(path: string): Promise<Map<string, HostTensor>> {
  const bytes = await readWeightsBytes(path, "pretrained weights");
  return path.endsWith(".safetensors")
    ? parseSafetensors(bytes, { source: path }).tensors
    : await parsePth(bytes, { source: path });
}

/**
 * Shapes of the torchvision ResNet18 backbone keys (BN keys without a database, no `fc`)
 * for stem/layer widths `widths` (torchvision: 64, 128, 256, 512).
 */
export function resnet18BackboneShapes(
  widths: readonly [number, number, number, number],
): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const bn = (prefix: string, c: number) => {
    for (const k of ["weight", "bias", "running_mean", "running_var"]) {
      shapes.set(`${prefix}.${k}`, [c]);
    }
  };
  shapes.set("conv1.weight", [widths[0], 3, 7, 7]);
  bn("bn1", widths[0]);
  let cin = widths[0];
  widths.forEach((c, i) => {
    for (const j of [0, 1]) {
      const p = `layer${i + 1}.${j}`;
      const from = j === 0 ? cin : c;
      shapes.set(`${p}.conv1.weight`, [c, from, 3, 3]);
      bn(`${p}.bn1`, c);
      shapes.set(`${p}.conv2.weight`, [c, c, 3, 3]);
      bn(`${p}.bn2`, c);
      // Layers 2–4 halve the resolution, so their first block has a 1×1/2 shortcut.
      if (j === 0 && i > 0) {
        shapes.set(`${p}.downsample.0.weight`, [c, from, 1, 1]);
        bn(`${p}.downsample.1`, c);
      }
    }
    cin = c;
  });
  return shapes;
}

/**
 * Reads `--pretrained` weights and checks them against a ResNet18 of `widths` before any
 * network, backend or data exists: a hostile, truncated or foreign file fails here, in
 * milliseconds, naming the file and the first bad key.
 * @returns the tensors, for {@link importTorchvisionResnet18}'s `preloaded`
 * @throws {WeightsFormatError} for an invalid or hostile file, {Error} for a missing file
 *   or a tensor that is absent, unknown or of another shape
 */
export async function readPretrainedWeights(
  path: string,
  widths: readonly [number, number, number, number],
): Promise<Map<string, HostTensor>> {
  const tensors = await readTorchvisionFile(path);
  const expected = resnet18BackboneShapes(widths);
  const hint = "Hint: --pretrained takes torchvision ResNet18 weights matching --widths";
  for (const [key, t] of tensors) {
    if (key.startsWith("fc.") || key.endsWith("num_batches_tracked")) continue;
    const shape = expected.get(key);
    if (!shape) {
      throw new Error(
        `Cannot import "${path}": tensor "${key}" is not part of a ResNet18 backbone. ${hint}`,
      );
    }
    if (!sameShape(t.shape, shape)) {
      throw new Error(
        `Cannot import "${path}": tensor "${key}" has shape ${formatShape(t.shape)}, expected ${
          formatShape(shape)
        } (widths ${widths.join(",")}). ${hint}`,
      );
    }
  }
  checkFinite(
    new Map([...tensors].filter(([k]) => expected.has(k))),
    `Cannot import "${path}"`,
  );
  // As in the import: every convolution must come from the file (BN may keep its init).
  for (const key of expected.keys()) {
    if (key.endsWith(".weight") && expected.get(key)!.length === 4 && !tensors.has(key)) {
      throw new Error(
        `Cannot import "${path}": tensor "${key}" is missing (is it a ResNet18 state dict?)`,
      );
    }
  }
  return tensors;
}
