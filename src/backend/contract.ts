/**
 * The kernel contract, declared once: every kernel of the native C ABI with its
 * arguments, in C order (outputs first, then inputs, then sizes: llm.c style), and the
 * rules its arguments must satisfy. Everything else is derived from this table:
 *
 * - the typed `Kernels` interface (one method per kernel, camelCase of the C name,
 *   taking one object of named arguments) that ops call and every backend implements,
 *   written out in kernel_types.ts;
 * - the Deno FFI symbols and the argument marshalling of the native backends (native.ts);
 * - the argument checks: in TypeScript for the reference backend ({@link checkKernelArgs}),
 *   and in C for the cpu and cuda libraries, through `native/include/fbp.h` and
 *   `native/common/abi.inc`.
 * `tasks/_build/abi_codegen.ts` writes the generated files from this table (`deno task
 * build`); a test fails when the committed files and the table disagree.
 *
 * Why TypeScript and not a C header as the source: TypeScript derives types from a
 * `const` table with no build step, and generators and tests can walk it as data.
 *
 * Legend: N batch, C input channels, K output channels (conv) or classes (loss), H×W input
 * (P×Q output) spatial size, R×S kernel, I/O linear in/out features, n element count.
 * @module
 */

import {
  contractDigest,
  count,
  d4,
  type EnumArg,
  eps,
  f32,
  inp,
  type KernelSpec,
  nullable,
  optionalUnless,
  out,
  type Rule,
  s4,
  size,
} from "./kernel_spec.ts";
import type { KernelName } from "./kernel_types.ts";

export type { Shape4, Storage } from "./kernel_spec.ts";
export type { KernelArgs, KernelName, Kernels } from "./kernel_types.ts";

const nchw = ["N", "C", "H", "W"] as const;
const nkpq = ["N", "K", "P", "Q"] as const;
const nchwSizes = { N: size, C: size, H: size, W: size } as const;
const convSizes = { ...nchwSizes, K: size, R: size, S: size, G: size } as const;
const stridePad = { stride: size, pad: { kind: "int", c: "int", min: 0 } } as const;
const window = (k: string, l: string, ceil?: string): readonly Rule[] =>
  ceil
    ? [["window", "P", "H", k, "stride", "pad", ceil], [
      "window",
      "Q",
      "W",
      l,
      "stride",
      "pad",
      ceil,
    ]]
    : [["window", "P", "H", k, "stride", "pad"], ["window", "Q", "W", l, "stride", "pad"]];
/** AFF's inputs: shortcut S, residual F, local L and global G attention logits, scale. */
const affInputs = {
  S: inp(...nchw),
  F: inp(...nchw),
  L: inp(...nchw),
  G: inp("N", "C"),
  scale: f32,
  ...nchwSizes,
} as const;
const convRules: readonly Rule[] = [["groups", "Cg", "C", "K", "G"], ...window("R", "S")];
const poolRules: readonly Rule[] = window("kernel", "kernel", "ceil");

/** Elementwise unary functions (codes of `enum fbp_unary_op`). */
export const UnaryOp = {
  relu: 0,
  sigmoid: 1,
  log: 2,
  abs: 3,
  exp: 4,
  silu: 5,
  hardswish: 6,
  hardsigmoid: 7,
  gelu: 8,
  relu6: 9,
} as const;
/** A unary function name. */
export type UnaryOpName = keyof typeof UnaryOp;

/** Broadcasting binary functions (codes of `enum fbp_binary_op`). */
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3 } as const;
/** A binary function name. */
export type BinaryOpName = keyof typeof BinaryOp;

/**
 * Math of convolutions and matrix products (codes of `enum fbp_precision`), set per process
 * with `fbp_set_math`. Tensors stay float32 in every case: the precision is how a kernel
 * computes, not how buffers are stored.
 */
export const Precision = { fp32: 0, tf32: 1, bf16: 2 } as const;
/** A precision name. */
export type PrecisionName = keyof typeof Precision;

/** The C enums of the ABI: name, C prefix of the codes, and a comment per code. */
export const ENUMS = {
  fbp_unary_op: {
    prefix: "FBP_",
    values: UnaryOp,
    docs: {
      relu: "max(x, 0), NaN propagates; gradient 0 at x <= 0",
      sigmoid: "1/(1+e^-x); backward uses out",
      log: "ln x",
      abs: "|x|; gradient sign(x), 0 at 0",
      exp: "e^x; backward uses out",
      silu: "x·sigmoid(x)",
      hardswish: "x·min(max(x + 3, 0), 6)/6; gradient (2x + 3)/6 on (−3, 3), 0 below −3, 1 from 3",
      hardsigmoid: "min(max(x + 3, 0), 6)/6; gradient 1/6 on (−3, 3), else 0",
      gelu: "x·Φ(x) = x·(1 + erf(x/√2))/2 (exact, not the tanh approximation)",
      relu6: "min(max(x, 0), 6), NaN propagates; gradient 1 on (0, 6), else 0",
    },
  },
  fbp_binary_op: { prefix: "FBP_", values: BinaryOp, docs: {} },
  fbp_precision: {
    prefix: "FBP_",
    values: Precision,
    docs: {
      fp32: "float32 math (no tensor-op shortcuts)",
      tf32: "CUDA only: tensor cores with TF32 inputs, float32 accumulation",
      bf16: "bfloat16 inputs, float32 accumulation and outputs",
    },
  },
} as const;

const unaryOp: EnumArg = { kind: "enum", cType: "fbp_unary_op", values: UnaryOp };
const binaryOp: EnumArg = { kind: "enum", cType: "fbp_binary_op", values: BinaryOp };

/**
 * Every kernel: C name → arguments (in C parameter order) and rules. Argument names are
 * the C parameter names, so the TypeScript side uses them as written here (`out_off`,
 * `weight_decay`); 4-D shapes are one argument (`aShape`) for the C ints `a0..a3`.
 */
export const KERNELS: Readonly<Record<KernelName, KernelSpec>> = {
  fill_forward: {
    section: "memory",
    doc: "out[i] = value, i < n",
    args: { out: out("n"), value: f32, n: count },
    emptyIf: "n",
  },
  copy_forward: {
    section: "memory",
    doc: "out[out_off + i] (=|+=) inp[in_off + i], i < n; accumulate selects +=. The two\n" +
      "ranges may overlap when out and inp are the same buffer (then as memmove, or in order).",
    args: {
      out: out(),
      out_off: count,
      inp: inp(),
      in_off: count,
      n: count,
      accumulate: { kind: "bool" },
    },
    rules: [["span", "out_off", "n", "out"], ["span", "in_off", "n", "inp"]],
    emptyIf: "n",
  },
  conv2d_forward: {
    section: "convolution",
    doc: "out (N,K,P,Q) = inp (N,C,H,W) * weight (K,Cg,R,S) + bias (K) [nullable], in G groups\n" +
      "(Cg = C/G; output channels k·K/G… read input channels of group k·G/K; G = C = K is\n" +
      "depthwise). P = (H + 2*pad - R)/stride + 1, Q = (W + 2*pad - S)/stride + 1",
    args: {
      out: out(...nkpq),
      inp: inp(...nchw),
      weight: inp("K", "Cg", "R", "S"),
      bias: nullable(inp("K")),
      ...convSizes,
      ...stridePad,
    },
    rules: convRules,
  },
  conv2d_backward_data: {
    section: "convolution",
    doc: "dinp (N,C,H,W) from dout (N,K,P,Q) and weight (K,Cg,R,S)",
    args: {
      dinp: out(...nchw),
      dout: inp(...nkpq),
      weight: inp("K", "Cg", "R", "S"),
      ...convSizes,
      ...stridePad,
    },
    rules: convRules,
  },
  conv2d_backward_weights: {
    section: "convolution",
    doc: "dweight (K,Cg,R,S) and dbias (K) [nullable] from dout (N,K,P,Q) and inp (N,C,H,W)",
    args: {
      dweight: out("K", "Cg", "R", "S"),
      dbias: nullable(out("K")),
      dout: inp(...nkpq),
      inp: inp(...nchw),
      ...convSizes,
      ...stridePad,
    },
    rules: convRules,
  },
  batchnorm_forward_train: {
    section: "batch normalization (per channel C over N×H×W)",
    doc: "Training: out (N,C,H,W); mean (C) and var (C) receive the batch statistics (var is\n" +
      "the biased variance, as used for normalisation).",
    args: {
      out: out(...nchw),
      mean: out("C"),
      var: out("C"),
      inp: inp(...nchw),
      weight: inp("C"),
      bias: inp("C"),
      ...nchwSizes,
      eps,
    },
  },
  batchnorm_forward_infer: {
    section: "batch normalization (per channel C over N×H×W)",
    doc: "Inference with given statistics mean (C), var (C).",
    args: {
      out: out(...nchw),
      inp: inp(...nchw),
      weight: inp("C"),
      bias: inp("C"),
      mean: inp("C"),
      var: inp("C"),
      ...nchwSizes,
      eps,
    },
  },
  batchnorm_backward: {
    section: "batch normalization (per channel C over N×H×W)",
    doc: "Backward of the training forward (statistics are functions of inp).",
    args: {
      dinp: out(...nchw),
      dweight: out("C"),
      dbias: out("C"),
      dout: inp(...nchw),
      inp: inp(...nchw),
      mean: inp("C"),
      var: inp("C"),
      weight: inp("C"),
      ...nchwSizes,
      eps,
    },
  },
  maxpool2d_forward: {
    section: "pooling",
    doc: "Max pool, square window `kernel`, padding counts as -inf. out (N,C,P,Q).\n" +
      "ceil: P = ceil((H + 2*pad - kernel)/stride) + 1, less one when that last window would\n" +
      "start in the right padding (PyTorch's ceil_mode); the windows past the input are cut.",
    args: {
      out: out("N", "C", "P", "Q"),
      inp: inp(...nchw),
      ...nchwSizes,
      kernel: size,
      ...stridePad,
      ceil: { kind: "bool" },
    },
    rules: poolRules,
  },
  maxpool2d_backward: {
    section: "pooling",
    doc: "dinp (N,C,H,W): dout routed to the first maximum of each window (recomputed from inp).",
    args: {
      dinp: out(...nchw),
      dout: inp("N", "C", "P", "Q"),
      inp: inp(...nchw),
      ...nchwSizes,
      kernel: size,
      ...stridePad,
      ceil: { kind: "bool" },
    },
    rules: poolRules,
  },
  avgpool_global_forward: {
    section: "pooling",
    doc: "Global average pool: out (N,C) = mean over H×W of inp (N,C,H,W).",
    args: { out: out("N", "C"), inp: inp(...nchw), ...nchwSizes },
  },
  avgpool_global_backward: {
    section: "pooling",
    doc: "dinp (N,C,H,W) = dout (N,C) / (H·W) at every position.",
    args: { dinp: out(...nchw), dout: inp("N", "C"), ...nchwSizes },
  },
  linear_forward: {
    section: "linear",
    doc: "out (N,O) = inp (N,I) · weight (O,I)^T + bias (O) [nullable]",
    args: {
      out: out("N", "O"),
      inp: inp("N", "I"),
      weight: inp("O", "I"),
      bias: nullable(inp("O")),
      N: size,
      I: size,
      O: size,
    },
  },
  linear_backward: {
    section: "linear",
    doc: "dinp (N,I) [nullable], dweight (O,I), dbias (O) [nullable]",
    args: {
      dinp: nullable(out("N", "I")),
      dweight: out("O", "I"),
      dbias: nullable(out("O")),
      dout: inp("N", "O"),
      inp: inp("N", "I"),
      weight: inp("O", "I"),
      N: size,
      I: size,
      O: size,
    },
  },
  unary_forward: {
    section: "elementwise",
    doc: "out[i] = f(inp[i])",
    args: { out: out("n"), inp: inp("n"), n: count, op: unaryOp },
    emptyIf: "n",
  },
  unary_backward: {
    section: "elementwise",
    doc: "dinp[i] = dout[i] * f'(inp[i]) (out = the forward result, used by sigmoid/exp;\n" +
      "only the operand the derivative needs is required)",
    args: {
      dinp: out("n"),
      dout: inp("n"),
      inp: optionalUnless(inp("n"), "op", [
        "relu",
        "log",
        "abs",
        "silu",
        "hardswish",
        "hardsigmoid",
        "gelu",
        "relu6",
      ]),
      out: optionalUnless(inp("n"), "op", ["sigmoid", "exp"]),
      n: count,
      op: unaryOp,
    },
    emptyIf: "n",
  },
  scale_forward: {
    section: "elementwise",
    doc: "out[i] = alpha * inp[i] + beta",
    args: { out: out("n"), inp: inp("n"), alpha: f32, beta: f32, n: count },
    emptyIf: "n",
  },
  binary_forward: {
    section: "elementwise",
    doc: "4-D broadcasting: a is (a0,a1,a2,a3), b is (b0,b1,b2,b3); each dim pair is equal or\n" +
      "one of them is 1; out has the larger of each pair.",
    args: {
      out: out("o0", "o1", "o2", "o3"),
      a: inp(...d4("a")),
      b: inp(...d4("b")),
      aShape: s4("a"),
      bShape: s4("b"),
      op: binaryOp,
    },
    rules: [
      ["broadcast", "a", "b"],
      ["max", "o0", "a0", "b0"],
      ["max", "o1", "a1", "b1"],
      ["max", "o2", "a2", "b2"],
      ["max", "o3", "a3", "b3"],
    ],
  },
  sum_to_forward: {
    section: "elementwise",
    doc: "Sums inp (i0,i1,i2,i3) down to (o0,o1,o2,o3), each o_k equal to i_k or 1.",
    args: { out: out(...d4("o")), inp: inp(...d4("i")), inShape: s4("i"), outShape: s4("o") },
    rules: [["reduce", "i", "o"]],
  },
  broadcast_forward: {
    section: "elementwise",
    doc: "Repeats inp (i0,i1,i2,i3) up to (o0,o1,o2,o3), each i_k equal to o_k or 1.",
    args: { out: out(...d4("o")), inp: inp(...d4("i")), inShape: s4("i"), outShape: s4("o") },
    rules: [["reduce", "o", "i"]],
  },
  softmax_forward: {
    section: "elementwise",
    doc: "Row softmax: out (rows, cols) = softmax(inp) along cols.",
    args: { out: out("rows", "cols"), inp: inp("rows", "cols"), rows: size, cols: size },
  },
  softmax_backward: {
    section: "elementwise",
    doc: "dinp = out ⊙ (dout − Σ_cols dout ⊙ out)",
    args: {
      dinp: out("rows", "cols"),
      dout: inp("rows", "cols"),
      out: inp("rows", "cols"),
      rows: size,
      cols: size,
    },
  },
  channel_copy: {
    section: "channels (concat, split, shuffle)",
    doc: "For n < N, j < cn, i < HW: out[n, out_off + j*out_step, i] (=|+=)\n" +
      "inp[n, in_off + j*in_step, i]; accumulate selects +=. out (N,Co,HW), inp (N,Ci,HW):\n" +
      "a channel concat, split or shuffle is one call per part.",
    args: {
      out: out("N", "Co", "HW"),
      inp: inp("N", "Ci", "HW"),
      N: size,
      Co: size,
      Ci: size,
      HW: size,
      out_off: count,
      out_step: size,
      in_off: count,
      in_step: size,
      cn: count,
      accumulate: { kind: "bool" },
    },
    rules: [["strided", "out_off", "out_step", "cn", "Co"], [
      "strided",
      "in_off",
      "in_step",
      "cn",
      "Ci",
    ]],
    emptyIf: "cn",
  },
  layernorm_channels_forward: {
    section: "channels (concat, split, shuffle)",
    doc: "LayerNorm over the channels of each position (ConvNeXt's LayerNorm2d):\n" +
      "out[n,c,i] = (inp[n,c,i] − mean[n,i]) · rstd[n,i] · weight[c] + bias[c], mean and\n" +
      "rstd = 1/sqrt(biased var + eps) over c (N,HW) written for the backward.",
    args: {
      out: out("N", "C", "HW"),
      mean: out("N", "HW"),
      rstd: out("N", "HW"),
      inp: inp("N", "C", "HW"),
      weight: inp("C"),
      bias: inp("C"),
      N: size,
      C: size,
      HW: size,
      eps,
    },
  },
  layernorm_channels_backward: {
    section: "channels (concat, split, shuffle)",
    doc: "Backward of layernorm_channels_forward: dinp (N,C,HW), and dweight (C), dbias (C)\n" +
      "(summed over N and HW, overwritten).",
    args: {
      dinp: out("N", "C", "HW"),
      dweight: out("C"),
      dbias: out("C"),
      dout: inp("N", "C", "HW"),
      inp: inp("N", "C", "HW"),
      mean: inp("N", "HW"),
      rstd: inp("N", "HW"),
      weight: inp("C"),
      N: size,
      C: size,
      HW: size,
    },
  },
  aff_fuse_forward: {
    section: "attentional feature fusion (AFF, DESIGN.md §3)",
    doc: "out (N,C,H,W) = relu(scale · (F + w ⊙ (S − F))), w = sigmoid(L + G) with G (N,C)\n" +
      "broadcast over H×W: S the shortcut, F the residual, L / G the local / global attention\n" +
      "logits. ReLU as in unary_forward (NaN propagates).",
    args: { out: out(...nchw), ...affInputs },
  },
  aff_fuse_backward: {
    section: "attentional feature fusion (AFF, DESIGN.md §3)",
    doc: "Backward of aff_fuse_forward, recomputing w and v = scale·(F + w⊙(S − F)) from the\n" +
      "inputs; with d = (v > 0 ? scale·dout : 0):\n" +
      "  dS = d·w,  dF = d·(1 − w),  dL = d·(S − F)·w·(1 − w)  (all (N,C,H,W)),\n" +
      "  dG (N,C) = Σ over H×W of dL.",
    args: {
      dS: out(...nchw),
      dF: out(...nchw),
      dL: out(...nchw),
      dG: out("N", "C"),
      dout: inp(...nchw),
      ...affInputs,
    },
  },
  cross_entropy_forward: {
    section: "loss",
    doc: "loss (1) = (1/N) Σ_i w_i · (−log softmax(logits_i)[target_i]);\n" +
      "probs (N,K) receives softmax(logits); targets (N) hold class indices as floats;\n" +
      "weights (N) nullable (all 1). A target outside 0..K-1 is an error.",
    args: {
      loss: out(),
      probs: out("N", "K"),
      logits: inp("N", "K"),
      targets: inp("N"),
      weights: nullable(inp("N")),
      N: size,
      K: size,
    },
  },
  cross_entropy_backward: {
    section: "loss",
    doc: "dlogits (N,K) = dloss[0] · w_i · (probs − onehot(target_i)) / N",
    args: {
      dlogits: out("N", "K"),
      dloss: inp(),
      probs: inp("N", "K"),
      targets: inp("N"),
      weights: nullable(inp("N")),
      N: size,
      K: size,
    },
  },
  dropout_forward: {
    section: "dropout",
    doc:
      "mask[i] = keep ? 1/(1-p) : 0, out = inp ⊙ mask. keep ⇔ fbp_hash_uniform(seed, i) >= p,\n" +
      "where the hash (identical in every backend, so runs reproduce across them):\n" +
      "  h = (uint32)(i * 0x9E3779B9u + seed); h ^= h >> 16; h *= 0x85EBCA6Bu;\n" +
      "  h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16; u = (h >> 8) / 16777216.0f\n" +
      "with i taken modulo 2^32.",
    args: {
      out: out("n"),
      mask: out("n"),
      inp: inp("n"),
      n: count,
      p: { kind: "float", min: 0, max: 1 },
      seed: { kind: "u32" },
    },
    emptyIf: "n",
  },
  adamw_update: {
    section: "optimizer",
    doc: "AdamW (decoupled weight decay, PyTorch semantics), step >= 1:\n" +
      "  param *= 1 − lr·wd; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²;\n" +
      "  param −= lr · (m / (1−b1^step)) / (sqrt(v / (1−b2^step)) + eps)",
    args: {
      param: out("n"),
      m: out("n"),
      v: out("n"),
      grad: inp("n"),
      n: count,
      lr: f32,
      beta1: f32,
      beta2: f32,
      eps: f32,
      weight_decay: f32,
      step: { kind: "int", c: "int", min: 1 },
    },
    emptyIf: "n",
  },
};

/** Every kernel name, in declaration order. */
export const KERNEL_NAMES: readonly KernelName[] = Object.keys(KERNELS) as KernelName[];

/** The digest of this contract (kernels and enum codes) that generated libraries carry. */
export const CONTRACT_DIGEST: string = contractDigest({ KERNELS, ENUMS });
