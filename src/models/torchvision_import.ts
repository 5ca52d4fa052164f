/**
 * torchvision weights into any architecture: each of fbp's keys has one torchvision key —
 * the same, less the BN copy's segment after a DAB batch norm (`….1.<key>.weight` →
 * `….1.weight`, copied into every copy), and for a bare classifier the head `heads.output`
 * is torchvision's last Linear (`fc`, `classifier.1`, …). The method's own parts (AFF,
 * task heads, policy) keep their initialisation.
 * @module
 */
import { DatasetBatchNorm } from "../nn/batch_norm.ts";
import { formatShape } from "../tensor/tensor.ts";
import type { HostTensor } from "./checkpoint.ts";
import { CLASSIFIER_TASK } from "./classifier.ts";
import type { MultiTaskNet } from "./network.ts";

/** Options of {@link importTorchvisionWeights}. */
export interface TorchvisionImportOptions {
  /** Names the file in messages. */
  source: string;
  /**
   * A bare classifier (classifierNetwork): torchvision's last Linear loads into the head.
   * Otherwise the classifier's keys are skipped and the task heads keep their init.
   */
  bare?: boolean;
}

/**
 * torchvision's own renames on load: DenseNet's ImageNet files predate its module names
 * (`denselayer1.norm.1.weight` for `denselayer1.norm1.weight`).
 */
function currentKey(key: string): string {
  return key.replace(/(denselayer\d+\.(?:norm|relu|conv))\.([12])\./, "$1$2.");
}

/** Keys a torchvision file may hold that no fbp network builds (GoogLeNet's aux heads). */
const NEVER_BUILT = /^(aux1|aux2)\.|num_batches_tracked$/;

/**
 * fbp key → torchvision key for every tensor of `net` that torchvision's file holds (the
 * trunk, and the head of a bare classifier).
 */
export function torchvisionKeys(net: MultiTaskNet, bare: boolean): Map<string, string> {
  const map = new Map<string, string>();
  const dab = new Set<string>();
  for (const [name, m] of net.namedModules()) if (m instanceof DatasetBatchNorm) dab.add(name);
  const head = `heads.${CLASSIFIER_TASK}.`;
  for (const key of net.stateDict().keys()) {
    if (key.startsWith(head)) {
      if (bare) map.set(key, `${net.backbone.classifier}.${key.slice(head.length)}`);
      continue;
    }
    if (key.startsWith("heads.") || key === "policy.logits" || /(^|\.)aff\./.test(key)) continue;
    // `<bn>.<copy>.<tensor>` with <bn> a DatasetBatchNorm: drop the copy's segment.
    const m = /^(.*)\.([^.]+)\.([^.]+)$/.exec(key);
    map.set(key, m && dab.has(m[1]) ? `${m[1]}.${m[3]}` : key);
  }
  return map;
}

/**
 * Copies torchvision tensors into `net`; returns how many of fbp's tensors were set.
 * @throws {Error} naming the file and key when a tensor is missing, foreign, of another
 *   shape or not finite
 */
export function importTorchvisionWeights(
  net: MultiTaskNet,
  tensors: ReadonlyMap<string, HostTensor>,
  opts: TorchvisionImportOptions,
): number {
  const { source } = opts;
  tensors = new Map([...tensors].map(([k, t]) => [currentKey(k), t]));
  const keys = torchvisionKeys(net, opts.bare ?? false);
  const hint = `Hint: is it a torchvision ${net.config.arch} state dict?`;
  const wanted = new Set(keys.values());
  const classifier = `${net.backbone.classifier}.`;
  for (const key of tensors.keys()) {
    if (wanted.has(key) || NEVER_BUILT.test(key)) continue;
    if (!opts.bare && key.startsWith(classifier)) continue;
    throw new Error(
      `Cannot import "${source}": tensor "${key}" is not part of ${net.config.arch}. ${hint}`,
    );
  }
  const state = net.stateDict();
  let copied = 0;
  for (const [dst, src] of keys) {
    const from = tensors.get(src), to = state.get(dst)!;
    if (!from) throw new Error(`Cannot import "${source}": tensor "${src}" is missing. ${hint}`);
    if (from.shape.length !== to.shape.length || from.shape.some((d, i) => d !== to.shape[i])) {
      throw new Error(
        `Cannot import "${source}": tensor "${src}" has shape ${formatShape(from.shape)}, ` +
          `${net.config.arch} expects ${formatShape(to.shape)}. ${hint}`,
      );
    }
    for (let i = 0; i < from.data.length; i++) {
      const v = from.data[i];
      if (v - v !== 0) {
        throw new Error(`Cannot import "${source}": tensor "${src}" holds ${v} (element ${i})`);
      }
    }
    to.backend.copyIn(to.storage, from.data);
    copied++;
  }
  return copied;
}
