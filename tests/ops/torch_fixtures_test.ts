/**
 * Ops against PyTorch: tests/testdata/ops.safetensors holds PyTorch 1.13's values and
 * gradients (made by tasks/make_op_fixtures.py); every backend must reproduce them.
 */
import assert from "node:assert/strict";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/mod.ts";
import { scope, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { testBackends } from "../backends.ts";
import { assertClose } from "./harness.ts";

const file = await readSafetensors(
  new URL("../testdata/ops.safetensors", import.meta.url).pathname,
);
const get = (k: string) => {
  const t = file.tensors.get(k);
  if (!t) throw new Error(`fixture is missing "${k}"`);
  return t;
};

interface FixtureCase {
  name: string;
  op: string;
  args: Record<string, number | boolean>;
  inputs: number;
  grads: boolean[];
}
const cases: FixtureCase[] = JSON.parse(file.metadata.cases);

/** The part sizes of torch's `x.chunk(chunks, dim=1)`: ceil(C/chunks) each, the last less. */
function chunkSizes(C: number, chunks: number): number[] {
  const size = Math.ceil(C / chunks), sizes: number[] = [];
  for (let left = C; left > 0; left -= size) sizes.push(Math.min(size, left));
  return sizes;
}

function apply(
  c: FixtureCase,
  x: Tensor[],
  extra: { runningMean?: Tensor; runningVar?: Tensor },
): Tensor {
  const a = c.args;
  switch (c.op) {
    case "conv2d":
      return ops.conv2d(x[0], x[1], {
        bias: x[2] ?? null,
        stride: a.stride as number,
        padding: a.padding as number,
        groups: (a.groups as number | undefined) ?? 1,
      });
    case "batchNorm":
      return a.training
        ? ops.batchNorm(x[0], x[1], x[2], {
          runningMean: extra.runningMean!,
          runningVar: extra.runningVar!,
          training: true,
        })
        : ops.batchNorm(x[0], x[1], x[2], { runningMean: x[3], runningVar: x[4], training: false });
    case "maxPool2d":
      return ops.maxPool2d(x[0], {
        kernel: a.kernel as number,
        stride: a.stride as number,
        padding: a.padding as number,
        ceilMode: a.ceilMode === true,
      });
    case "avgPool2d":
      return ops.avgPool2d(x[0], { kernel: a.kernel as number, stride: a.stride as number });
    case "globalAvgPool":
      return ops.globalAvgPool(x[0]);
    case "linear":
      return ops.linear(x[0], x[1], x[2]);
    case "crossEntropy":
      return ops.crossEntropy(x[0], x[1], { weights: x[2] ?? null });
    case "softmax":
      return ops.softmax(x[0]);
    case "sigmoid":
      return ops.sigmoid(x[0]);
    // Activations and channel ops (the block "activations of the vision models" of
    // tasks/make_op_fixtures.py).
    case "silu":
      return ops.silu(x[0]);
    case "hardswish":
      return ops.hardswish(x[0]);
    case "hardsigmoid":
      return ops.hardsigmoid(x[0]);
    case "gelu":
      return ops.gelu(x[0]);
    case "relu6":
      return ops.relu6(x[0]);
    case "concatChannels":
      return ops.concatChannels(x);
    case "chunk":
      return ops.splitChannels(x[0], chunkSizes(x[0].shape[1], a.chunks as number))[
        a.index as number
      ];
    case "channelShuffle":
      return ops.channelShuffle(x[0], a.groups as number);
    case "layerNormChannels":
      return ops.layerNormChannels(x[0], x[1], x[2], a.eps as number);
  }
  throw new Error(`unknown fixture op ${c.op}`);
}

for (const { name: backendName, backend } of await testBackends()) {
  for (const c of cases) {
    Deno.test(`${c.name} matches PyTorch on the ${backendName} backend`, () => {
      scope(() => {
        const inputs = Array.from({ length: c.inputs }, (_, i) => {
          const t = get(`${c.name}.in${i}`);
          return tensor(t.data, t.shape, { backend, requiresGrad: c.grads[i] });
        });
        const extra = c.op === "batchNorm" && c.args.training
          ? {
            runningMean: ops.mul(
              tensor(new Float32Array(inputs[0].shape[1]), [inputs[0].shape[1]], { backend }),
              1,
            ),
            runningVar: ops.add(
              tensor(new Float32Array(inputs[0].shape[1]), [inputs[0].shape[1]], { backend }),
              1,
            ),
          }
          : {};
        const out = apply(c, inputs, extra);
        const want = get(`${c.name}.out`);
        assert.deepEqual([...out.shape], want.shape);
        assertClose(`${c.name} output`, out.toArray(), want.data, 1e-4, 1e-4);
        if (extra.runningMean) {
          assertClose(
            `${c.name} running mean`,
            extra.runningMean.toArray(),
            get(`${c.name}.running_mean`).data,
            1e-5,
            1e-5,
          );
          assertClose(
            `${c.name} running var`,
            extra.runningVar!.toArray(),
            get(`${c.name}.running_var`).data,
            1e-5,
            1e-5,
          );
        }
        const r = get(`${c.name}.r`);
        backward(ops.sum(ops.mul(out, tensor(r.data, r.shape, { backend }))));
        inputs.forEach((t, i) => {
          if (!c.grads[i]) return;
          assertClose(
            `${c.name} grad of input ${i}`,
            t.grad!.toArray(),
            get(`${c.name}.grad${i}`).data,
            1e-4,
            1e-3,
          );
          t.grad!.dispose();
        });
      });
    });
  }

  Deno.test(`AdamW matches torch.optim.AdamW on the ${backendName} backend`, () => {
    const h = JSON.parse(file.metadata.adamw);
    const p0 = get("adamw.p0"), grads = get("adamw.grads");
    const param = tensor(p0.data, p0.shape, { backend, requiresGrad: true });
    const opt = new AdamW([param], h);
    for (let s = 0; s < h.steps; s++) {
      param.grad = tensor(
        grads.data.subarray(s * p0.data.length, (s + 1) * p0.data.length),
        p0.shape,
        { backend },
      );
      opt.step();
      opt.zeroGrad();
    }
    assertClose("AdamW after 3 steps", param.toArray(), get("adamw.p3").data, 1e-6, 1e-5);
    opt.dispose();
    param.dispose();
  });
}
