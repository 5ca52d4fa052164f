/**
 * Op test cases shared by the finite-difference tests (reference backend, float64) and
 * the backend parity tests (every native backend against the reference): odd shapes on
 * purpose — batch 1, 1×1 spatial, non-square, stride 2 with odd sizes, channel counts
 * that are not multiples of 8.
 */
import * as ops from "../../src/ops/mod.ts";
import { ones, type Tensor, zeros } from "../../src/tensor/tensor.ts";
import { sharingLoss, sparsityLoss } from "../../src/train/policy_loss.ts";

/** How to fill an input. */
export type Fill = "normal" | "positive" | { classes: number } | "unit";

/** One input of a case. */
export interface InputSpec {
  shape: number[];
  fill?: Fill;
  /** Whether the gradient of this input is checked (default true). */
  grad?: boolean;
}

/** An op case: inputs and the function under test. */
export interface OpCase {
  name: string;
  inputs: InputSpec[];
  fn: (x: Tensor[]) => Tensor;
  /** Skip finite differences (e.g. a kink is too near). */
  noFiniteDifferences?: boolean;
}

const conv = (
  name: string,
  x: number[],
  w: number[],
  stride: number,
  padding: number,
  bias: boolean,
  groups = 1,
): OpCase => ({
  name: `conv2d ${name}`,
  inputs: [{ shape: x }, { shape: w }, ...(bias ? [{ shape: [w[0]] }] : [])],
  fn: ([a, b, c]) => ops.conv2d(a, b, { bias: c ?? null, stride, padding, groups }),
});

/** Every differentiable op over odd shapes. */
export const opCases: OpCase[] = [
  conv("3x3 pad 1 bias", [2, 3, 5, 4], [5, 3, 3, 3], 1, 1, true),
  conv("stride 2 odd sizes", [1, 4, 7, 5], [3, 4, 3, 3], 2, 1, false),
  conv("1x1 stride 2", [2, 5, 5, 5], [6, 5, 1, 1], 2, 0, false),
  conv("7x7 stride 2 pad 3", [1, 3, 9, 11], [4, 3, 7, 7], 2, 3, false),
  conv("1x1 spatial", [3, 9, 1, 1], [2, 9, 1, 1], 1, 0, true),
  // ---- grouped and depthwise convolutions (weight (K, C/groups, R, S)) ----
  conv("2 groups bias", [2, 4, 5, 4], [6, 2, 3, 3], 1, 1, true, 2),
  conv("depthwise 3x3/2 pad 1 bias", [2, 5, 7, 6], [5, 1, 3, 3], 2, 1, true, 5),
  conv("depthwise 7x7 pad 3", [1, 3, 9, 9], [3, 1, 7, 7], 1, 3, false, 3),
  conv("1x1 3 groups", [2, 6, 3, 2], [9, 2, 1, 1], 1, 0, false, 3),
  // ---- end of grouped convolutions ----
  {
    name: "batchNorm training",
    inputs: [{ shape: [3, 5, 2, 3] }, { shape: [5], fill: "positive" }, { shape: [5] }],
    fn: ([x, g, b]) =>
      ops.batchNorm(x, g, b, {
        runningMean: zeros([x.shape[1]], { backend: x.backend }),
        runningVar: ones([x.shape[1]], { backend: x.backend }),
        training: true,
      }),
  },
  {
    name: "batchNorm eval",
    inputs: [
      { shape: [2, 3, 3, 1] },
      { shape: [3], fill: "positive" },
      { shape: [3] },
      { shape: [3], grad: false },
      { shape: [3], fill: "positive", grad: false },
    ],
    fn: ([x, g, b, m, v]) =>
      ops.batchNorm(x, g, b, { runningMean: m, runningVar: v, training: false }),
  },
  {
    name: "maxPool2d 3x3/2 pad 1 odd sizes",
    inputs: [{ shape: [2, 3, 7, 6] }],
    fn: ([x]) => ops.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }),
  },
  {
    name: "maxPool2d 2x2/2 no pad",
    inputs: [{ shape: [1, 2, 4, 5] }],
    fn: ([x]) => ops.maxPool2d(x, { kernel: 2, stride: 2, padding: 0 }),
  },
  // ---- ceil-mode max pooling and average pooling ----
  {
    name: "maxPool2d 3x3/2 ceil mode",
    inputs: [{ shape: [2, 3, 10, 9] }],
    fn: ([x]) => ops.maxPool2d(x, { kernel: 3, stride: 2, padding: 0, ceilMode: true }),
  },
  {
    name: "maxPool2d 2x2/2 ceil mode on 5x5",
    inputs: [{ shape: [1, 2, 5, 5] }],
    fn: ([x]) => ops.maxPool2d(x, { kernel: 2, stride: 2, padding: 0, ceilMode: true }),
  },
  {
    name: "maxPool2d 3x3/1 pad 1 ceil mode",
    inputs: [{ shape: [1, 2, 5, 4] }],
    fn: ([x]) => ops.maxPool2d(x, { kernel: 3, stride: 1, padding: 1, ceilMode: true }),
  },
  {
    name: "avgPool2d 2x2/2 odd sizes",
    inputs: [{ shape: [2, 3, 5, 7] }],
    fn: ([x]) => ops.avgPool2d(x, { kernel: 2, stride: 2 }),
  },
  {
    name: "avgPool2d 3x3/2",
    inputs: [{ shape: [1, 2, 7, 6] }],
    fn: ([x]) => ops.avgPool2d(x, { kernel: 3, stride: 2 }),
  },
  // ---- end of ceil-mode and average pooling ----
  { name: "globalAvgPool", inputs: [{ shape: [2, 5, 3, 2] }], fn: ([x]) => ops.globalAvgPool(x) },
  {
    name: "linear with bias",
    inputs: [{ shape: [3, 7] }, { shape: [4, 7] }, { shape: [4] }],
    fn: ([x, w, b]) => ops.linear(x, w, b),
  },
  {
    name: "linear batch 1",
    inputs: [{ shape: [1, 5] }, { shape: [2, 5] }],
    fn: ([x, w]) => ops.linear(x, w),
  },
  { name: "relu", inputs: [{ shape: [2, 3, 4, 5] }], fn: ([x]) => ops.relu(x) },
  { name: "sigmoid", inputs: [{ shape: [3, 7] }], fn: ([x]) => ops.sigmoid(x) },
  { name: "log", inputs: [{ shape: [9], fill: "positive" }], fn: ([x]) => ops.log(x) },
  { name: "exp", inputs: [{ shape: [2, 4] }], fn: ([x]) => ops.exp(x) },
  { name: "abs", inputs: [{ shape: [11] }], fn: ([x]) => ops.abs(x) },
  // The vision-model activations, inputs scaled past their kinks (−3, 0, 3, 6).
  { name: "silu", inputs: [{ shape: [2, 3, 4, 5] }], fn: ([x]) => ops.silu(ops.mul(x, 4)) },
  {
    name: "hardswish",
    inputs: [{ shape: [3, 4, 5] }],
    fn: ([x]) => ops.hardswish(ops.mul(x, 3)),
  },
  {
    name: "hardsigmoid",
    inputs: [{ shape: [3, 4, 5] }],
    fn: ([x]) => ops.hardsigmoid(ops.mul(x, 3)),
  },
  { name: "gelu", inputs: [{ shape: [2, 3, 7] }], fn: ([x]) => ops.gelu(ops.mul(x, 3)) },
  { name: "relu6", inputs: [{ shape: [4, 5, 3] }], fn: ([x]) => ops.relu6(ops.mul(x, 5)) },
  {
    name: "concatChannels of three",
    inputs: [{ shape: [2, 3, 4, 5] }, { shape: [2, 1, 4, 5] }, { shape: [2, 2, 4, 5] }],
    fn: (xs) => ops.concatChannels(xs),
  },
  {
    name: "splitChannels, both parts used",
    inputs: [{ shape: [2, 5, 3, 2] }],
    fn: ([x]) => {
      const [a, b] = ops.splitChannels(x, [2, 3]);
      return ops.concatChannels([b, ops.mul(a, -2)]);
    },
  },
  {
    name: "splitChannels, one part used",
    inputs: [{ shape: [3, 4, 1, 3] }],
    fn: ([x]) => ops.splitChannels(x, [1, 3])[1],
  },
  {
    name: "channelShuffle 3 groups",
    inputs: [{ shape: [2, 6, 3, 1] }],
    fn: ([x]) => ops.channelShuffle(x, 3),
  },
  {
    name: "channelShuffle 2 groups",
    inputs: [{ shape: [1, 8, 2, 2] }],
    fn: ([x]) => ops.channelShuffle(x, 2),
  },
  {
    name: "layerNormChannels",
    inputs: [{ shape: [2, 5, 3, 2] }, { shape: [5], fill: "positive" }, { shape: [5] }],
    fn: ([x, w, b]) => ops.layerNormChannels(x, w, b, 1e-5),
  },
  {
    name: "layerNormChannels 1x1 spatial, C 3",
    inputs: [{ shape: [3, 3, 1, 1] }, { shape: [3], fill: "positive" }, { shape: [3] }],
    fn: ([x, w, b]) => ops.layerNormChannels(x, w, b, 1e-6),
  },
  {
    name: "stochasticDepth p=0.4 training",
    inputs: [{ shape: [6, 2, 2, 3] }],
    fn: ([x]) => ops.stochasticDepth(x, 0.4, true, 7),
  },
  {
    name: "add broadcast (N,C,H,W)+(1,C,1,1)",
    inputs: [{ shape: [2, 3, 4, 5] }, { shape: [1, 3, 1, 1] }],
    fn: ([a, b]) => ops.add(a, b),
  },
  {
    name: "sub broadcast (N,C,1,1)",
    inputs: [{ shape: [2, 3, 4, 5] }, { shape: [2, 3, 1, 1] }],
    fn: ([a, b]) => ops.sub(a, b),
  },
  {
    name: "mul broadcast both sides",
    inputs: [{ shape: [2, 1, 4, 1] }, { shape: [1, 3, 1, 5] }],
    fn: ([a, b]) => ops.mul(a, b),
  },
  {
    name: "div broadcast",
    inputs: [{ shape: [2, 3, 2, 2] }, { shape: [3, 1, 1], fill: "positive" }],
    fn: ([a, b]) => ops.div(a, b),
  },
  { name: "affine", inputs: [{ shape: [3, 4] }], fn: ([x]) => ops.affine(x, -1.5, 0.25) },
  { name: "add scalar", inputs: [{ shape: [5] }], fn: ([x]) => ops.add(x, 3) },
  { name: "mul scalar", inputs: [{ shape: [5] }], fn: ([x]) => ops.mul(x, -2) },
  { name: "sum", inputs: [{ shape: [2, 3, 4] }], fn: ([x]) => ops.sum(x) },
  { name: "mean", inputs: [{ shape: [4, 3] }], fn: ([x]) => ops.mean(x) },
  {
    name: "sumTo (C,1,1)",
    inputs: [{ shape: [2, 3, 4, 5] }],
    fn: ([x]) => ops.sumTo(x, [3, 1, 1]),
  },
  { name: "broadcastTo", inputs: [{ shape: [3, 1] }], fn: ([x]) => ops.broadcastTo(x, [2, 3, 4]) },
  { name: "softmax rows", inputs: [{ shape: [4, 2, 3] }], fn: ([x]) => ops.softmax(x) },
  {
    name: "crossEntropy",
    inputs: [{ shape: [5, 4] }, { shape: [5], fill: { classes: 4 }, grad: false }],
    fn: ([x, t]) => ops.crossEntropy(x, t),
  },
  {
    name: "crossEntropy weighted batch 1",
    inputs: [
      { shape: [1, 3] },
      { shape: [1], fill: { classes: 3 }, grad: false },
      { shape: [1], fill: "positive", grad: false },
    ],
    fn: ([x, t, w]) => ops.crossEntropy(x, t, { weights: w }),
  },
  { name: "dropout p=0.3", inputs: [{ shape: [4, 6] }], fn: ([x]) => ops.dropout(x, 0.3, 1234) },
  { name: "reshape", inputs: [{ shape: [2, 6] }], fn: ([x]) => ops.reshape(x, [3, 4]) },
  { name: "slice", inputs: [{ shape: [3, 4] }], fn: ([x]) => ops.slice(x, 4, [2, 2]) },
  {
    name: "concat",
    inputs: [{ shape: [1, 3] }, { shape: [2, 3] }],
    fn: ([a, b]) => ops.concat([a, b]),
  },
  {
    name: "sparsityLoss window 3",
    inputs: [{ shape: [2, 8, 2] }],
    fn: ([x]) => sparsityLoss(x, 3),
  },
  { name: "sharingLoss 3 tasks", inputs: [{ shape: [3, 8, 2] }], fn: ([x]) => sharingLoss(x)! },
];
