/**
 * A bare torchvision classifier: any architecture with one task, "output", whose head is
 * torchvision's last Linear, on one database ("images") with one BN copy. `predict --arch`
 * runs it on torchvision weights, the quick way to confirm an import.
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import { parseNetworkConfig } from "./config.ts";
import { MultiTaskNet } from "./network.ts";

/** The task name of a bare classifier's head. */
export const CLASSIFIER_TASK = "output";
/** The database name a bare classifier reads. */
export const CLASSIFIER_DATABASE = "images";

/** Options of {@link classifierNetwork}. */
export interface ClassifierOptions {
  /** Outputs of the head (torchvision ImageNet: 1000). */
  classes: number;
  /** The arch's table (default: the named variant's). */
  archConfig?: unknown;
  /** Backend of the parameters (default: the active one). */
  backend?: Backend;
}

/**
 * A freshly initialised bare classifier of `arch`; load torchvision weights into it with
 * `importTorchvisionWeights(net, tensors, { bare: true })`.
 */
export function classifierNetwork(arch: string, opts: ClassifierOptions): MultiTaskNet {
  const config = parseNetworkConfig({
    arch,
    archConfig: opts.archConfig,
    tasks: [{ name: CLASSIFIER_TASK, classes: opts.classes, database: CLASSIFIER_DATABASE }],
    bn: "shared",
    aff: false,
    dropout: 0,
  }, `the ${arch} classifier`);
  return new MultiTaskNet(config, { backend: opts.backend });
}
