/**
 * The eval-mode multi-task network as an ONNX graph (opset 17), for ONNX Runtime and other
 * runtimes: one float32 input `image` (N, 3, S, S), ImageNet-normalised, N given at run
 * time; one output per task, named by the task, holding its softmax probabilities (N, K).
 *
 * The graph is the forward pass of {@linkcode MultiTaskNet} with the evaluation policy
 * ({@linkcode MultiTaskNet.evalPolicy}: the checkpoint's fixed policy, else the argmax of
 * the logits) baked in: a skipped block is absent but for its downsample (its shortcut),
 * and, as in `MultiTaskNet.forward`, tasks that use the same BN copy and take the same
 * decisions share their prefix, computed once. The stem convolution, which reads the image
 * itself, is shared by every path. Every batch norm is a BatchNormalization node with the
 * running statistics of the path's own copy (per database, per task or shared, by the
 * config's `bn`); AFF/MS-CAM is written out as Conv, BatchNormalization, Relu,
 * GlobalAveragePool, Add, Sub, Mul and Sigmoid nodes.
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import type { MultiTaskNet } from "../models/network.ts";
import { BasicBlock } from "../models/basic_block.ts";
import { ResNetBackbone } from "../models/archs/resnet.ts";
import { blockName, BLOCKS, type TaskConfig } from "../models/config.ts";
import { IMAGENET_MEAN, IMAGENET_STD } from "../data/augment.ts";
import type { BatchNorm2d } from "../nn/batch_norm.ts";
import type { Conv2d } from "../nn/conv2d.ts";
import type { Tensor } from "../tensor/tensor.ts";
import {
  encodeOnnxModel,
  type OnnxAttribute,
  type OnnxInitializer,
  type OnnxModel,
  type OnnxNode,
} from "./onnx_proto.ts";

/** ONNX operator set the graph is written for. */
export const ONNX_OPSET = 17;

/** ONNX IR version of opset 17 (ONNX 1.12). */
const IR_VERSION = 8;

/** Name of the graph's input. */
export const ONNX_INPUT = "image";

/** Options of {@linkcode networkToOnnx} and {@linkcode exportOnnx}. */
export interface OnnxExportOptions {
  /** Tasks to export, in output order (default: every task of the network). */
  tasks?: readonly string[];
}

const ints = (value: readonly number[]): OnnxAttribute => ({ type: "ints", value });
const int = (value: number): OnnxAttribute => ({ type: "int", value });
const float = (value: number): OnnxAttribute => ({ type: "float", value });

/** What the graph reads of a Conv2d: its tensors and geometry (the kernel is the weight's). */
type ConvLayer = Pick<Conv2d, "weight" | "bias" | "stride" | "padding">;

/** What the graph reads of a BatchNorm2d copy: its tensors and ε. */
type BatchNormLayer = Pick<BatchNorm2d, "weight" | "bias" | "runningMean" | "runningVar" | "eps">;

/**
 * Builds the node list. Value names of computed tensors start with "/" (for example
 * "/layer2.0/bn1.scut:41"), parameter names are the checkpoint's keys ("layer2.0.bn1.scut.
 * weight"): neither can be a task name, so each task's output keeps its own name.
 */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  readonly #state: Map<string, Tensor>;
  readonly #stored = new Set<string>();
  #count = 0;

  constructor(state: Map<string, Tensor>) {
    this.#state = state;
  }

  /**
   * The initializer holding `t`, a tensor of the network's layers, under its checkpoint key
   * (added on first use). The key must name `t` in the network's state dict, so a name typed
   * here cannot drift from the layer it reads.
   */
  param(key: string, t: Tensor): string {
    if (!this.#stored.has(key)) {
      if (this.#state.get(key) !== t) {
        throw new Error(
          `Cannot export the network to ONNX: a layer's tensor is named "${key}", but its ` +
            `state dict ${this.#state.has(key) ? "holds another tensor" : "has no tensor"} ` +
            "under that name",
        );
      }
      this.initializers.push({ name: key, dims: [...t.shape], data: t.toArray() });
      this.#stored.add(key);
    }
    return key;
  }

  /** The network's tensor `key` (for layers no public field reaches). */
  stateTensor(key: string): Tensor {
    const t = this.#state.get(key);
    if (!t) throw new Error(`Cannot export the network to ONNX: it has no tensor "${key}"`);
    return t;
  }

  /** A scalar constant (added once per value). */
  scalar(value: number): string {
    const name = `/const/${value}`;
    if (!this.#stored.has(name)) {
      this.initializers.push({ name, dims: [], data: new Float32Array([value]) });
      this.#stored.add(name);
    }
    return name;
  }

  /**
   * Appends one node and returns its output's name (`output`, or a fresh "/scope/op:n").
   */
  node(
    op: string,
    inputs: readonly string[],
    scope: string,
    attributes: Record<string, OnnxAttribute> = {},
    output?: string,
  ): string {
    const out = output ?? `/${scope}:${this.#count++}`;
    this.nodes.push({ op, inputs, outputs: [out], name: out, attributes });
    return out;
  }

  /** Conv of `x` by the layer `conv`, whose tensors are `<prefix>.weight` (and `.bias`). */
  conv(x: string, prefix: string, conv: ConvLayer): string {
    const [, , r, s] = conv.weight.shape;
    const inputs = [x, this.param(`${prefix}.weight`, conv.weight)];
    if (conv.bias) inputs.push(this.param(`${prefix}.bias`, conv.bias));
    const { stride, padding } = conv;
    return this.node("Conv", inputs, prefix, {
      kernel_shape: ints([r, s]),
      strides: ints([stride, stride]),
      pads: ints([padding, padding, padding, padding]),
    });
  }

  /** Eval-mode batch norm of `x` by the BN copy `bn`, whose tensors are `<name>.weight` …. */
  batchNorm(x: string, name: string, bn: BatchNormLayer): string {
    const inputs = [
      this.param(`${name}.weight`, bn.weight),
      this.param(`${name}.bias`, bn.bias),
      this.param(`${name}.running_mean`, bn.runningMean),
      this.param(`${name}.running_var`, bn.runningVar),
    ];
    return this.node("BatchNormalization", [x, ...inputs], name, { epsilon: float(bn.eps) });
  }
}

/** The tasks to export, by name, in the order given. */
function chosenTasks(net: MultiTaskNet, names: readonly string[] | undefined): TaskConfig[] {
  if (names === undefined) return net.config.tasks;
  if (names.length === 0) throw new Error("Cannot export the network to ONNX: no task chosen");
  const seen = new Set<string>();
  return names.map((n) => {
    if (seen.has(n)) throw new Error(`Cannot export the network to ONNX: task "${n}" given twice`);
    seen.add(n);
    return net.task(n);
  });
}

/**
 * The network's eval-mode forward pass as an ONNX model (see the module doc for the graph's
 * inputs, outputs and structure). The input side is the network's training size
 * (`config.imageSize`, 224 when the config does not say), the size `predict` resizes to.
 * Metadata (`metadata_props`): `fbp` (the model config as in a checkpoint), `policy` (the
 * baked-in policy), `mean` and `std` (the normalisation the input expects, 0–1 scale) and
 * `image_size`.
 * @throws {Error} naming the task for an unknown or repeated task, or one named like the
 *   input ("image")
 */
export function networkToOnnx(net: MultiTaskNet, opts: OnnxExportOptions = {}): OnnxModel {
  const tasks = chosenTasks(net, opts.tasks);
  for (const t of tasks) {
    if (t.kind === "score") {
      // Its one output is the score on the head's scale (3 + 2z, clamped): not a softmax.
      throw new Error(
        `Cannot export task "${t.name}" to ONNX: it is a score task (one output, the mean ` +
          `rating), and the export writes softmax outputs only: expected class or dist ` +
          `tasks. Hint: export the other tasks with --task NAME`,
      );
    }
    if (t.name === ONNX_INPUT) {
      throw new Error(
        `Cannot export task "${t.name}" to ONNX: the graph's input is named "${ONNX_INPUT}"; ` +
          "rename the task",
      );
    }
  }
  const trunk = resnet18Trunk(net);
  const size = net.config.imageSize ?? 224;
  const policy = net.evalPolicy();
  const g = new GraphBuilder(net.stateDict());
  const stem = g.conv(ONNX_INPUT, "conv1", trunk.conv1);
  // Computed prefixes by path signature: BN copy, "/", then one 0/1 per block so far
  // (MultiTaskNet.forward's memo). The "/" (never in a name) keeps copy "d" after an executed
  // block apart from copy "d1". Shortcuts and pooled features are memoised the same way.
  const memo = new Map<string, string>();
  const once = (signature: string, make: () => string): string => {
    let v = memo.get(signature);
    if (v === undefined) memo.set(signature, v = make());
    return v;
  };
  for (const task of tasks) {
    const key = net.bnKeyOf(task);
    let signature = `${key}/`;
    let x = once(signature, () => {
      const bn = g.batchNorm(stem, `bn1.${key}`, trunk.bn1.get(key));
      const h = g.node("Relu", [bn], `bn1.${key}.relu`);
      // maxPool2d's defaults, as MultiTaskNet.forward calls it (a function, not a layer).
      return g.node("MaxPool", [h], "maxpool", {
        kernel_shape: ints([3, 3]),
        strides: ints([2, 2]),
        pads: ints([1, 1, 1, 1]),
      });
    });
    for (let b = 0; b < BLOCKS; b++) {
      const input = x, prefix = signature;
      const shortcut = () => once(`${prefix}|S`, () => downsample(g, net, b, input, key));
      const execute = policy[task.name][b] === 1;
      signature += execute ? "1" : "0";
      x = once(signature, () => execute ? block(g, net, b, input, shortcut(), key) : shortcut());
    }
    const features = once(`${signature}|pool`, () => {
      const pooled = g.node("GlobalAveragePool", [x], "avgpool");
      return g.node("Flatten", [pooled], "flatten", { axis: int(1) });
    });
    const head = net.heads.byTask.get(task.name)!;
    const logits = g.node(
      "Gemm",
      [
        features,
        g.param(`heads.${task.name}.weight`, head.weight),
        g.param(`heads.${task.name}.bias`, head.bias),
      ],
      `heads.${task.name}`,
      { transB: int(1) },
    );
    g.node("Softmax", [logits], `heads.${task.name}.softmax`, { axis: int(1) }, task.name);
  }
  const used = Object.fromEntries(tasks.map((t) => [t.name, policy[t.name]]));
  return {
    irVersion: IR_VERSION,
    opset: ONNX_OPSET,
    producer: "fbp",
    producerVersion: denoJson.version,
    doc: `fbp multi-task network (ResNet18${net.config.aff ? " + AFF" : ""}, ${net.config.bn} ` +
      `batch norm): input "${ONNX_INPUT}" (N, 3, ${size}, ${size}), ImageNet-normalised RGB; ` +
      `outputs ${tasks.map((t) => `"${t.name}" (N, ${t.classes})`).join(", ")}, softmax ` +
      "probabilities",
    metadata: {
      fbp: JSON.stringify(net.config),
      policy: JSON.stringify(used),
      mean: JSON.stringify(IMAGENET_MEAN),
      std: JSON.stringify(IMAGENET_STD),
      image_size: String(size),
    },
    graph: {
      name: "fbp",
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{
        name: ONNX_INPUT,
        shape: ["N", 3, size, size],
        doc: "RGB images resized to the side given, each channel (v/255 − mean)/std",
      }],
      outputs: tasks.map((t) => ({
        name: t.name,
        shape: ["N", t.classes],
        doc: t.kind === "dist"
          ? `rating histogram (ratings 1–5) of task "${t.name}" (database "${t.database}")`
          : `class probabilities of task "${t.name}" (database "${t.database}")`,
      })),
    },
  };
}

/**
 * The network's ResNet18 trunk (BasicBlocks, as the graph below writes them).
 * @throws {Error} for any other architecture
 */
function resnet18Trunk(net: MultiTaskNet): ResNetBackbone {
  const bb = net.backbone;
  if (
    !(bb instanceof ResNetBackbone) || bb.units.length !== BLOCKS ||
    !bb.units.every((u) => u instanceof BasicBlock)
  ) {
    throw new Error(
      `Cannot export "${net.config.arch}" to ONNX: the export writes the method's ResNet18 ` +
        `trunk only (BasicBlocks with DAB, AFF and the policy)`,
    );
  }
  return bb;
}

/** ResNet18 block b (a BasicBlock). */
function basicBlock(net: MultiTaskNet, b: number): BasicBlock {
  return resnet18Trunk(net).units[b] as BasicBlock;
}

/** Block b's shortcut S of `x`: x itself, or its downsample through BN copy `key`. */
function downsample(g: GraphBuilder, net: MultiTaskNet, b: number, x: string, key: string): string {
  const ds = basicBlock(net, b).downsample;
  if (!ds) return x;
  const p = `${blockName(b)}.downsample`;
  return g.batchNorm(g.conv(x, `${p}.0`, ds.conv), `${p}.1.${key}`, ds.bn.get(key));
}

/** Block b executed on `x` with shortcut `s`: relu(S + F), or relu(AFF(S, F)). */
function block(
  g: GraphBuilder,
  net: MultiTaskNet,
  b: number,
  x: string,
  s: string,
  key: string,
): string {
  const blk = basicBlock(net, b);
  const p = blockName(b);
  const c1 = g.conv(x, `${p}.conv1`, blk.conv1);
  const h = g.node("Relu", [g.batchNorm(c1, `${p}.bn1.${key}`, blk.bn1.get(key))], `${p}.relu`);
  const f = g.batchNorm(g.conv(h, `${p}.conv2`, blk.conv2), `${p}.bn2.${key}`, blk.bn2.get(key));
  const u = g.node("Add", [s, f], `${p}.add`);
  if (!blk.aff) return g.node("Relu", [u], `${p}.relu`);
  // MS-CAM: w = sigmoid(L(u) + G(u)), then relu(scale·(F + w⊙(S − F))) as ops/aff.ts.
  // NOTE: Aff keeps its branches private (#local, #global) and nothing exposes them, so their
  // layers are read from the state dict by key: each 1×1 conv's weight and bias, stride 1 and
  // no padding (any other would change the shape and ONNX Runtime would refuse the graph), and
  // each BN copy's tensors with the ε of the block's own BN copy (BatchNorm2d's default).
  const eps = blk.bn1.get(key).eps;
  const conv = (input: string, q: string) =>
    g.conv(input, q, {
      weight: g.stateTensor(`${q}.weight`),
      bias: g.stateTensor(`${q}.bias`),
      stride: 1,
      padding: 0,
    });
  const bn = (input: string, q: string) => {
    const name = `${q}.${key}`;
    return g.batchNorm(input, name, {
      weight: g.stateTensor(`${name}.weight`),
      bias: g.stateTensor(`${name}.bias`),
      runningMean: g.stateTensor(`${name}.running_mean`),
      runningVar: g.stateTensor(`${name}.running_var`),
      eps,
    });
  };
  const branch = (input: string, name: string, first: number) => {
    const q = `${p}.aff.${name}`;
    const r = g.node("Relu", [bn(conv(input, `${q}.${first}`), `${q}.${first + 1}`)], `${q}.relu`);
    return bn(conv(r, `${q}.${first + 3}`), `${q}.${first + 4}`);
  };
  const local = branch(u, "local", 0);
  const global = branch(g.node("GlobalAveragePool", [u], `${p}.aff.pool`), "global", 1);
  const w = g.node("Sigmoid", [g.node("Add", [local, global], `${p}.aff.add`)], `${p}.aff.sigmoid`);
  const diff = g.node("Sub", [s, f], `${p}.aff.sub`);
  const mixed = g.node("Add", [f, g.node("Mul", [w, diff], `${p}.aff.mul`)], `${p}.aff.mix`);
  const scaled = blk.aff.scale === 1
    ? mixed
    : g.node("Mul", [mixed, g.scalar(blk.aff.scale)], `${p}.aff.scale`);
  return g.node("Relu", [scaled], `${p}.relu`);
}

/**
 * Encodes the network's eval-mode forward pass as the bytes of an `.onnx` file
 * ({@linkcode networkToOnnx}'s model).
 * @throws {Error} naming the task for an unknown or repeated task
 * @example Export a small network and check the file's outputs
 * ```ts
 * import { loadBackend, MultiTaskNet, parseNetworkConfig, setDefaultBackend } from "../../mod.ts";
 * import { exportOnnx } from "./onnx_graph.ts";
 * import { decodeOnnxModel } from "./onnx_proto.ts";
 * setDefaultBackend(await loadBackend("reference"));
 * const net = new MultiTaskNet(parseNetworkConfig({
 *   tasks: [{ name: "beauty", classes: 5, database: "scut" }], widths: [4, 4, 8, 8], imageSize: 32,
 * }));
 * const model = decodeOnnxModel(exportOnnx(net));
 * if (model.graph.outputs[0].name !== "beauty") throw new Error("expected output beauty");
 * net.dispose();
 * ```
 */
export function exportOnnx(net: MultiTaskNet, opts: OnnxExportOptions = {}): Uint8Array {
  return encodeOnnxModel(networkToOnnx(net, opts));
}
