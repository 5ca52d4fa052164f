/**
 * fbp — facial beauty prediction with multi-task ResNet18 + AdaShare + DAB + AFF, on Deno.
 *
 * The stable public API: backends, tensors and autograd, differentiable ops, layers, the
 * multi-task network with its policies, checkpoints and weights I/O, and the optimiser.
 *
 * @example Build a network, run it, save it
 * ```ts
 * import { loadBackend, MultiTaskNet, parseNetworkConfig, saveCheckpoint, scope,
 *   setDefaultBackend, zeros } from "./mod.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const net = new MultiTaskNet(parseNetworkConfig({
 *   tasks: [{ name: "beauty", classes: 5, database: "scut" }], widths: [4, 4, 8, 8],
 * }));
 * const logits = scope(() => net.forward(zeros([1, 3, 32, 32]), "scut").get("beauty")!.toArray());
 * if (logits.length !== 5) throw new Error("expected 5 logits");
 * net.dispose();
 * ```
 * @module
 */
export type { AdamWHyper, Backend, Kernels, Storage } from "./src/backend/backend.ts";
export { type BackendName, loadBackend } from "./src/backend/load.ts";
export { ReferenceBackend } from "./src/backend/reference.ts";
export {
  empty,
  full,
  getDefaultBackend,
  graphScope,
  keep,
  ones,
  scope,
  setDefaultBackend,
  Tensor,
  tensor,
  type TensorOptions,
  zeros,
} from "./src/tensor/tensor.ts";
export { backward, isGradEnabled, noGrad } from "./src/autograd/tape.ts";
export * as ops from "./src/ops/mod.ts";
export { Module, ModuleList } from "./src/nn/module.ts";
export { Conv2d } from "./src/nn/conv2d.ts";
export { BatchNorm2d, type BnMode, DatasetBatchNorm } from "./src/nn/batch_norm.ts";
export { Linear } from "./src/nn/linear.ts";
export { Aff, type AffOptions } from "./src/nn/aff.ts";
export { BasicBlock, type Gate } from "./src/models/basic_block.ts";
export {
  blockName,
  BLOCKS,
  type NetworkConfig,
  parseNetworkConfig,
  type TaskConfig,
} from "./src/models/config.ts";
export { type ForwardOptions, MultiTaskNet } from "./src/models/network.ts";
export {
  allExecute,
  argmaxPolicy,
  fixedGates,
  gumbelGates,
  gumbelNoise,
  type GumbelOptions,
  samplePolicy,
} from "./src/models/policy.ts";
export {
  checkpointConfig,
  importTorchvisionResnet18,
  loadCheckpoint,
  loadState,
  saveCheckpoint,
  stateToHost,
} from "./src/models/checkpoint.ts";
export { AdamW, type AdamWOptions } from "./src/optim/adamw.ts";
export * from "./src/io/mod.ts";
export * from "./src/data/mod.ts";
export {
  type ProgressEvent,
  RunInterrupted,
  train,
  type TrainOptions,
} from "./src/train/trainer.ts";
export { RUN_DEFAULTS, type RunConfig, validateRunConfig } from "./src/train/run_config.ts";
export { presetConfig, PRESETS } from "./src/train/presets.ts";
export { runConfigFromArgs } from "./tasks/_cli/run_args.ts";
export type { HistoryEntry, RunResult, TaskMetrics } from "./src/train/result.ts";
export { classificationMetrics, ConfusionAccumulator } from "./src/train/metrics.ts";
export { renderReport, writeReport } from "./src/report/report.ts";
export { comparisonTable, runTable, sweepTable } from "./src/report/tables.ts";
export { planComparison, planSweep, runAll } from "./src/train/experiments.ts";
export { evaluateParts } from "./src/train/evaluate.ts";
export { predictImages } from "./src/train/predict.ts";
