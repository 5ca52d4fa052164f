/**
 * Checkpoints: a network's tensors in safetensors under the names of DESIGN.md §3, with
 * the model config as JSON in `__metadata__.fbp`, so a file alone rebuilds the network.
 * Also the import of torchvision ResNet18 weights (`.pth` or `.safetensors`): each BN is
 * copied into every per-database copy, `fc.*` is dropped, AFF and heads keep their fresh
 * initialisation.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import { readPth } from "../io/pth.ts";
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
 * @throws {WeightsFormatError} for an invalid file, {Error} for a config or shape problem
 */
export async function loadCheckpoint(
  path: string,
  opts: { backend?: Backend } = {},
): Promise<MultiTaskNet> {
  const file = parseSafetensors(await Deno.readFile(path), { source: path });
  const config = checkpointConfig(file.metadata, path);
  const net = new MultiTaskNet(config, { backend: opts.backend });
  try {
    loadState(net, file.tensors, path);
  } catch (e) {
    net.dispose();
    throw e;
  }
  return net;
}

/**
 * Reads torchvision ResNet18 weights (`.pth` through the restricted unpickler, or
 * `.safetensors`) and copies the backbone into `net`; returns how many tensors it set.
 * @throws {Error} naming the key when a backbone tensor is missing or of another shape
 */
export async function importTorchvisionResnet18(net: MultiTaskNet, path: string): Promise<number> {
  const tensors = path.endsWith(".safetensors")
    ? parseSafetensors(await Deno.readFile(path), { source: path }).tensors
    : await readPth(path);
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
