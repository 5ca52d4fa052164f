/**
 * The whole multi-task network against an independent PyTorch implementation
 * (tests/testdata/network.safetensors, made by tasks/make_network_fixture.py): eval mode
 * with a fixed mixed policy and AFF on; training mode with batch statistics and a soft
 * Gumbel policy — logits, loss, and the gradients of every parameter (shared convs,
 * per-database BN, AFF, heads, policy logits).
 */
import assert from "node:assert/strict";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { backward } from "../../src/autograd/tape.ts";
import { add, crossEntropy, mul } from "../../src/ops/mod.ts";
import { scope, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { loadState } from "../../src/models/checkpoint.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { fixedGates, gumbelGates } from "../../src/models/policy.ts";
import type { Gate } from "../../src/models/basic_block.ts";
import { testBackends } from "../backends.ts";
import { assertClose } from "../ops/harness.ts";

const file = await readSafetensors(
  new URL("../testdata/network.safetensors", import.meta.url).pathname,
);
const config = parseNetworkConfig(JSON.parse(file.metadata.fbp));
const fixture = JSON.parse(file.metadata.fixture) as {
  policy: Record<string, number[]>;
  lambdas: Record<string, number>;
  tau: number;
};
const get = (k: string) => {
  const t = file.tensors.get(k);
  if (!t) throw new Error(`fixture is missing "${k}"`);
  return t;
};

for (const { name, backend } of await testBackends()) {
  const build = () => {
    const net = new MultiTaskNet(config, { backend });
    const keys = new Set(net.stateDict().keys());
    loadState(net, new Map([...file.tensors].filter(([k]) => keys.has(k))), "network.safetensors");
    return net;
  };
  const input = (k: string) => tensor(get(k).data, get(k).shape, { backend });
  /**
   * Runs every database's `<stage>.<db>.images` through `net` (in training mode for the
   * "train" stage), checks each task's logits against `<stage>.<task>.logits` and returns
   * them in order.
   */
  const checkedLogits = (
    net: MultiTaskNet,
    stage: "eval" | "train",
    gates: Map<string, Gate[]>,
  ) => {
    const all: [string, Tensor][] = [];
    const training = stage === "train";
    for (const db of config.databases) {
      const logits = net.forward(input(`${stage}.${db}.images`), db, { training, gates });
      for (const [task, out] of logits) {
        assertClose(
          `${stage} logits of ${task}`,
          out.toArray(),
          get(`${stage}.${task}.logits`).data,
          1e-4,
          1e-3,
        );
        all.push([task, out]);
      }
    }
    return all;
  };

  Deno.test(`network eval forward with a fixed mixed policy matches PyTorch (${name})`, () => {
    const net = build();
    scope(() => {
      const gates = new Map(Object.entries(fixture.policy).map(([t, p]) => [t, fixedGates(p)]));
      checkedLogits(net, "eval", gates);
    });
    net.dispose();
  });

  Deno.test(`network training forward and backward with a soft policy match PyTorch (${name})`, () => {
    const net = build();
    scope(() => {
      const perTask = gumbelGates(net.policy.logits, get("train.noise").data, { tau: fixture.tau });
      const gates = new Map<string, Gate[]>(config.tasks.map((t, i) => [t.name, perTask[i]]));
      let loss: Tensor | null = null;
      for (const [task, out] of checkedLogits(net, "train", gates)) {
        const ce = mul(crossEntropy(out, input(`train.${task}.targets`)), fixture.lambdas[task]);
        loss = loss ? add(loss, ce) : ce;
      }
      assertClose("loss", loss!.toArray(), get("train.loss").data, 1e-5, 1e-4);
      backward(loss!);
      let checked = 0;
      for (const [key, p] of net.namedParameters()) {
        assert.ok(p.grad, `parameter "${key}" got no gradient`);
        // Gradients pass through ~20 layers: float32 noise grows; compare with atol scaled
        // to the tensor's largest gradient.
        const want = get(`grad.${key}`).data;
        const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(`gradient of ${key}`, p.grad!.toArray(), want, 2e-3 * scale + 1e-6, 2e-3);
        checked++;
      }
      assert.equal(checked, [...file.tensors.keys()].filter((k) => k.startsWith("grad.")).length);
    });
    net.dispose();
  });
}
