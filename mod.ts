/**
 * fbp — facial beauty prediction with multi-task ResNet18 + AdaShare + DAB + AFF, on Deno.
 *
 * The stable public API: backends, tensors and autograd, differentiable ops, layers, the
 * multi-task network with its policies, checkpoints and weights I/O, the optimiser, data
 * sources and loaders, training runs and their reports, ONNX export, and the local
 * prediction page.
 *
 * @example Build a network and run it
 * ```ts
 * import { loadBackend, MultiTaskNet, parseNetworkConfig, scope, setDefaultBackend, zeros }
 *   from "./mod.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const net = new MultiTaskNet(parseNetworkConfig({
 *   tasks: [{ name: "beauty", classes: 5, database: "scut" }], widths: [4, 4, 8, 8],
 * }));
 * const logits = scope(() => net.forward(zeros([1, 3, 32, 32]), "scut").get("beauty")!.toArray());
 * if (logits.length !== 5) throw new Error("expected 5 logits");
 * net.dispose();
 * ```
 *
 * @example Train a run from a preset (writes runs/demo)
 * ```ts ignore
 * import { loadBackend, presetConfig, setDefaultBackend, train, writeReport } from "./mod.ts";
 * const backend = await loadBackend("auto"); // CUDA when it can run here, else the CPU
 * setDefaultBackend(backend);
 * const config = { ...presetConfig("default"), name: "demo", out: "runs/demo" };
 * const result = await train(config, { backend, onNote: console.log });
 * await writeReport(config.out, result); // report.md and its plots
 * console.log(result.tasks.beauty.test.accuracy);
 * ```
 *
 * @example Load a checkpoint and predict
 * ```ts ignore
 * import { loadBackend, loadCheckpoint, predictImages, setDefaultBackend } from "./mod.ts";
 * const backend = await loadBackend("cpu");
 * setDefaultBackend(backend);
 * const net = await loadCheckpoint("runs/demo/checkpoint.safetensors", { backend });
 * for (const p of await predictImages(net, ["face.jpg"])) {
 *   console.log(p.image, p.tasks.beauty.label, p.tasks.beauty.probabilities);
 * }
 * net.dispose();
 * ```
 *
 * @example Export a checkpoint to ONNX
 * ```ts ignore
 * import { exportOnnx, loadBackend, loadCheckpoint, setDefaultBackend } from "./mod.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const net = await loadCheckpoint("runs/demo/checkpoint.safetensors");
 * await Deno.writeFile("demo.onnx", exportOnnx(net)); // input "image"; an output per task
 * ```
 *
 * @example Read a data source and batch it
 * ```ts ignore
 * import { BatchLoader, readSource, stratifiedSplit } from "./mod.ts";
 * const db = await readSource("scut:data/SCUT-FBP5500_v2"); // or csv:, folders:, list:
 * const split = stratifiedSplit(db.records, { by: "beauty", seed: 0 }); // 6:2:2
 * const loader = new BatchLoader(split.train.map((i) => db.records[i]), {
 *   batchSize: 32, train: true, size: 224,
 * });
 * for await (const batch of loader.epoch(0)) {
 *   console.log(batch.images.length / (3 * 224 * 224), batch.labels.beauty); // (N), N labels
 * }
 * loader.close();
 * ```
 * @module
 */
export type {
  AdamWHyper,
  Backend,
  KernelArgs,
  KernelName,
  Kernels,
  MathSettings,
  PrecisionName,
  Shape4,
  Storage,
} from "./src/backend/backend.ts";
export { Precision } from "./src/backend/backend.ts";
export type * from "./src/backend/kernel_types.ts";
export {
  applyMath,
  autoPrecision,
  type BackendName,
  loadBackend,
  type LoadBackendOptions,
  type PrecisionChoice,
} from "./src/backend/load.ts";
export { ReferenceBackend } from "./src/backend/reference.ts";
export {
  empty,
  full,
  getDefaultBackend,
  type GradNode,
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
export { backward, gradientAt, isGradEnabled, noGrad } from "./src/autograd/tape.ts";
export * as ops from "./src/ops/mod.ts";
export { Module, ModuleList } from "./src/nn/module.ts";
export { Conv2d } from "./src/nn/conv2d.ts";
export { BatchNorm2d, type BnMode, DatasetBatchNorm } from "./src/nn/batch_norm.ts";
export { Linear } from "./src/nn/linear.ts";
export { Aff, type AffOptions } from "./src/nn/aff.ts";
export {
  BasicBlock,
  type BasicBlockOptions,
  type Downsample,
  type Gate,
} from "./src/models/basic_block.ts";
export {
  blockName,
  BLOCKS,
  type NetworkConfig,
  parseNetworkConfig,
  type TaskConfig,
} from "./src/models/config.ts";
export {
  type ForwardOptions,
  type Heads,
  MultiTaskNet,
  type Policy,
} from "./src/models/network.ts";
export {
  allExecute,
  argmaxPolicy,
  fixedGates,
  gumbelGates,
  gumbelNoise,
  type GumbelOptions,
  samplePolicy,
} from "./src/models/policy.ts";
// The trunk architectures (Table 11 backbones) and torchvision imports.
export type {
  ArchFamily,
  Backbone,
  BackboneBlock,
  BuildContext,
  Pass,
} from "./src/models/backbone.ts";
export {
  archFamily,
  archIsGateable,
  archNames,
  archTable,
  type BackboneOptions,
  buildBackbone,
} from "./src/models/archs/registry.ts";
export {
  CLASSIFIER_TASK,
  classifierNetwork,
  type ClassifierOptions,
} from "./src/models/classifier.ts";
export {
  importTorchvisionWeights,
  type TorchvisionImportOptions,
  torchvisionKeys,
} from "./src/models/torchvision_import.ts";
export { type ModelSummary, modelSummary } from "./src/models/summary.ts";
export { countMacs } from "./src/ops/mac_meter.ts";
export {
  checkpointConfig,
  type HostTensor,
  importTorchvisionResnet18,
  loadCheckpoint,
  loadState,
  readTorchvisionFile,
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
export type { EpochKind, PlannedEpoch } from "./src/train/plan.ts";
export type { StepBatch } from "./src/train/step.ts";
export {
  type DatabaseSpec,
  RUN_DEFAULTS,
  type RunConfig,
  type StageEpochs,
  type TaskSpec,
  validateRunConfig,
} from "./src/train/run_config.ts";
export { presetConfig, type PresetData, type PresetName, PRESETS } from "./src/train/presets.ts";
export { runConfigFromArgs, type Values as RunArgValues } from "./tasks/_cli/run_args.ts";
export type { HistoryEntry, RunResult, StageTime, TaskMetrics } from "./src/train/result.ts";
// Adaptive task weights (--task-weights).
export { TASK_WEIGHT_SCHEMES, type TaskWeightScheme } from "./src/train/run_config.ts";
export type { TaskWeightsResult } from "./src/train/result.ts";
export {
  dwaWeights,
  gradNormGradient,
  type GradNormInputs,
  type TaskWeightsState,
} from "./src/train/task_weights.ts";
// Task kinds (class, score, dist) and class balance (--balance).
export { type AnyTaskMetrics, isScoreMetrics, type ScoreTaskMetrics } from "./src/train/result.ts";
export { type ScoreFigures, scoreFigures } from "./src/train/metrics.ts";
export {
  SCORE_LOSSES,
  type ScoreLoss,
  TASK_KINDS,
  type TaskKind,
  type TaskLoss,
} from "./src/train/task_kinds.ts";
export { type Balance, BALANCES, inverseFrequencyWeights } from "./src/train/class_balance.ts";
export { classificationMetrics, ConfusionAccumulator } from "./src/train/metrics.ts";
export { type RenderedReport, renderReport, writeReport } from "./src/report/report.ts";
export { comparisonTable, type LabelledRun, runTable, sweepTable } from "./src/report/tables.ts";
export {
  type ExperimentRun,
  planComparison,
  type PlannedRun,
  planSweep,
  runAll,
  type RunPlannedOptions,
  type RunStart,
} from "./src/train/experiments.ts";
export { type EvalPart, evaluateParts } from "./src/train/evaluate.ts";
export { type ImagePrediction, predictImages, type TaskPrediction } from "./src/train/predict.ts";
export {
  exportOnnx,
  networkToOnnx,
  ONNX_INPUT,
  ONNX_OPSET,
  type OnnxExportOptions,
} from "./src/export/onnx_graph.ts";
export {
  decodeOnnxModel,
  encodeOnnxModel,
  type OnnxAttribute,
  type OnnxGraph,
  type OnnxInitializer,
  type OnnxModel,
  type OnnxNode,
  type OnnxValueInfo,
} from "./src/export/onnx_proto.ts";
export {
  describeModel,
  MAX_UPLOAD_BYTES,
  modelHandler,
  type ModelInfo,
  readRunSummary,
  type RunSummary,
  serveModel,
  type ServeOptions,
  type SummaryRow,
  type TaskInfo,
} from "./src/serve/server.ts";
