/**
 * Network behaviour that the PyTorch fixture does not cover: Gumbel policy gradients
 * against finite differences, skipped blocks computing nothing, shared prefixes computed
 * once, checkpoint round trips and rejected files, torchvision import.
 */
import assert from "node:assert/strict";
import { ReferenceBackend, type ReferenceStorage } from "../../src/backend/reference.ts";
import { backward } from "../../src/autograd/tape.ts";
import { add, crossEntropy, mul } from "../../src/ops/mod.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "../../src/tensor/tensor.ts";
import { type NetworkConfig, parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { fixedGates, gumbelGates, gumbelNoise } from "../../src/models/policy.ts";
import {
  importTorchvisionResnet18,
  loadCheckpoint,
  saveCheckpoint,
  stateToHost,
} from "../../src/models/checkpoint.ts";
import { serializeSafetensors } from "../../src/io/safetensors.ts";
import { Rng } from "../../src/random/rng.ts";
import type { Gate } from "../../src/models/basic_block.ts";
import { countingBackend } from "../counting_backend.ts";
import { assertClose } from "../ops/harness.ts";

setDefaultBackend(new ReferenceBackend());

const tiny = (over: Partial<NetworkConfig> = {}): NetworkConfig =>
  parseNetworkConfig({
    tasks: [{ name: "beauty", classes: 5, database: "a" }, {
      name: "gender",
      classes: 2,
      database: "a",
    }],
    databases: ["a"],
    widths: [4, 4, 8, 8],
    dropout: 0,
    ...over,
  });

/** {@link tiny} with beauty on database "a" and gender on "b". */
const twoDatabases = (): NetworkConfig =>
  tiny({
    tasks: [{ name: "beauty", classes: 5, database: "a" }, {
      name: "gender",
      classes: 2,
      database: "b",
    }],
    databases: ["a", "b"],
  });

function images(
  n: number,
  size: number,
  seed: number,
  backend = undefined as ReferenceBackend | undefined,
): Tensor {
  const rng = new Rng(seed);
  return tensor(Float32Array.from({ length: n * 3 * size * size }, () => rng.normal()), [
    n,
    3,
    size,
    size,
  ], { backend });
}

Deno.test("policy logits gradient through Gumbel-Softmax matches finite differences", () => {
  const f64 = new ReferenceBackend({ precision: "f64" });
  const net = new MultiTaskNet(tiny(), { backend: f64, seed: 3 });
  const x = images(2, 16, 1, f64);
  const targets = {
    beauty: tensor([1, 4], [2], { backend: f64 }),
    gender: tensor([0, 1], [2], { backend: f64 }),
  };
  const noise = gumbelNoise(net.policy.logits.size, new Rng(5));
  const lossOf = (): Tensor => {
    const perTask = gumbelGates(net.policy.logits, noise, { tau: 1.5 });
    const gates = new Map<string, Gate[]>([["beauty", perTask[0]], ["gender", perTask[1]]]);
    const out = net.forward(x, "a", { training: true, gates });
    return add(
      crossEntropy(out.get("beauty")!, targets.beauty),
      mul(crossEntropy(out.get("gender")!, targets.gender), 0.6),
    );
  };
  scope(() => backward(lossOf()));
  const analytic = net.policy.logits.grad!.toArray();
  const data = (net.policy.logits.storage as ReferenceStorage).data;
  const h = 1e-6, numeric = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x0 = data[i];
    data[i] = x0 + h;
    const up = scope(() => f64.copyOut64(lossOf().storage)[0]);
    data[i] = x0 - h;
    const down = scope(() => f64.copyOut64(lossOf().storage)[0]);
    data[i] = x0;
    numeric[i] = (up - down) / (2 * h);
  }
  assert.ok(numeric.some((v) => Math.abs(v) > 1e-4), "the loss must depend on the policy");
  assertClose("d loss / d policy logits", analytic, numeric, 1e-6, 1e-4);
  net.dispose();
});

Deno.test("a skipped block calls no convolution kernel", () => {
  const { backend, counts } = countingBackend(new ReferenceBackend());
  const net = new MultiTaskNet(tiny({ aff: true }), { backend });
  const x = images(1, 16, 2, backend as ReferenceBackend);
  const convCalls = (policy: number[]) => {
    counts.clear();
    scope(() =>
      net.forward(x, "a", { tasks: ["beauty"], gates: new Map([["beauty", fixedGates(policy)]]) })
    );
    return counts.get("conv2dForward") ?? 0;
  };
  const all = convCalls([1, 1, 1, 1, 1, 1, 1, 1]);
  // Per executed block: 2 convs + 4 AFF 1×1 convs; the stem 1; downsamples (blocks 2, 4, 6) 1 each.
  assert.equal(all, 1 + 8 * 6 + 3);
  // Skip blocks 1, 3, 5, 7 (none of them has a downsample): 4 × 6 fewer convs.
  assert.equal(convCalls([1, 0, 1, 0, 1, 0, 1, 0]), all - 4 * 6);
  // Skip blocks 2, 4, 6 too: their downsample still runs (shapes stay valid).
  assert.equal(convCalls([1, 0, 0, 0, 0, 0, 0, 0]), 1 + 6 + 3);
  net.dispose();
});

Deno.test("two tasks on one database with the same hard policy share one trunk", () => {
  const { backend, counts } = countingBackend(new ReferenceBackend());
  const net = new MultiTaskNet(tiny({ aff: false }), { backend });
  const x = images(2, 16, 3, backend as ReferenceBackend);
  scope(() => net.forward(x, "a", { training: true, gates: net.allExecuteGates() }));
  // One trunk: stem + 8 blocks × 2 + 3 downsamples; two heads.
  assert.equal(counts.get("conv2dForward"), 1 + 16 + 3);
  assert.equal(counts.get("linearForward"), 2);
  counts.clear();
  // Policies that diverge at block 4 share blocks 0–3 only.
  const gates = new Map([["beauty", fixedGates([1, 1, 1, 1, 1, 1, 1, 1])], [
    "gender",
    fixedGates([1, 1, 1, 1, 0, 1, 1, 1]),
  ]]);
  scope(() => net.forward(x, "a", { gates }));
  assert.equal(counts.get("conv2dForward"), (1 + 8 + 1) + (8 + 2) + (6 + 2));
  net.dispose();
});

Deno.test("per-task BN copies named t and t1 never share a path (prefix memo keys)", () => {
  // Before the fix, copy "t" after executing block 0 and copy "t1" at the stem had the same
  // memo key, so t1 silently ran on t's stem output.
  const net = new MultiTaskNet(
    tiny({
      bn: "per-task",
      tasks: [{ name: "t", classes: 3, database: "a" }, { name: "t1", classes: 3, database: "a" }],
    }),
    { seed: 4 },
  );
  // Different BN statistics per copy, so sharing a path changes the numbers.
  for (const [name, p] of net.namedParameters()) {
    if (name.startsWith("bn1.t1.")) p.backend.copyIn(p.storage, p.toArray().map((v) => v + 0.7));
  }
  const x = images(2, 16, 5);
  const together = scope(() => net.forward(x, "a").get("t1")!.toArray());
  const alone = scope(() => net.forward(x, "a", { tasks: ["t1"] }).get("t1")!.toArray());
  assertClose("t1's logits with and without t", together, alone, 0, 0);
  net.dispose();
});

Deno.test("a checkpoint round trip gives identical outputs", async () => {
  const net = new MultiTaskNet(
    tiny({ policy: { beauty: [1, 0, 1, 1, 0, 1, 1, 1], gender: [1, 1, 1, 1, 1, 1, 0, 1] } }),
    { seed: 9 },
  );
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await saveCheckpoint(path, net);
  const loaded = await loadCheckpoint(path);
  assert.deepEqual(loaded.config.policy, net.config.policy);
  const x = images(2, 16, 4);
  scope(() => {
    const a = net.forward(x, "a"), b = loaded.forward(x, "a");
    for (const [task, out] of a) assert.deepEqual(b.get(task)!.toArray(), out.toArray());
  });
  net.dispose();
  loaded.dispose();
  await Deno.remove(path);
});

Deno.test("loadCheckpoint() rejects broken and mismatched files with the reason", async () => {
  const net = new MultiTaskNet(tiny());
  const dir = await Deno.makeTempDir();
  const good = `${dir}/good.safetensors`;
  await saveCheckpoint(good, net);
  const bytes = await Deno.readFile(good);
  await Deno.writeFile(`${dir}/truncated.safetensors`, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadCheckpoint(`${dir}/truncated.safetensors`), /truncated\.safetensors/);
  const huge = bytes.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  await Deno.writeFile(`${dir}/huge.safetensors`, huge);
  await assert.rejects(loadCheckpoint(`${dir}/huge.safetensors`), /header/i);
  // A config whose widths disagree with the stored tensors: the key is named.
  const state = stateToHost(net);
  const cfg = { ...net.config, widths: [4, 4, 8, 16] };
  await Deno.writeFile(
    `${dir}/mismatch.safetensors`,
    serializeSafetensors(state, { metadata: { fbp: JSON.stringify(cfg) } }),
  );
  await assert.rejects(
    loadCheckpoint(`${dir}/mismatch.safetensors`),
    /tensor "layer4\.0\.conv1\.weight" has shape \[8, 8, 3, 3\], the config expects \[16, 8, 3, 3\]/,
  );
  await Deno.writeFile(
    `${dir}/arch.safetensors`,
    serializeSafetensors(state, { metadata: { fbp: JSON.stringify({ ...cfg, arch: "vgg16" }) } }),
  );
  await assert.rejects(
    loadCheckpoint(`${dir}/arch.safetensors`),
    /Unknown architecture "vgg16": expected one of resnet18, resnet34/,
  );
  await Deno.writeFile(`${dir}/plain.safetensors`, serializeSafetensors(state));
  await assert.rejects(loadCheckpoint(`${dir}/plain.safetensors`), /no "fbp" metadata entry/);
  net.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a minimal config from another tool loads with defaults", () => {
  const c = parseNetworkConfig({
    arch: "resnet18",
    tasks: [{ name: "beauty", classes: 5, database: "scut" }],
  });
  assert.deepEqual(c.databases, ["scut"]);
  assert.equal(c.aff, true);
  assert.equal(c.affScale, 2);
  assert.equal(c.bn, "per-database");
  assert.throws(
    () =>
      parseNetworkConfig({ tasks: [{ name: "b", classes: 5, database: "x" }], databases: ["y"] }),
    /task "b" uses database "x", which is not in "databases"/,
  );
  assert.throws(
    () =>
      parseNetworkConfig({
        tasks: [{ name: "b", classes: 5, database: "x" }],
        policy: { b: [1, 0] },
      }),
    /"policy\.b" must be 8 values of 0 or 1/,
  );
});

Deno.test("importTorchvisionResnet18() copies each BN into every database copy and drops fc", async () => {
  // A torchvision-layout state dict made from a plain single-database network.
  const source = new MultiTaskNet(tiny({ aff: false, databases: ["a"], bn: "shared" }), {
    seed: 1,
  });
  const tv = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of stateToHost(source)) {
    if (k.startsWith("heads.") || k.startsWith("policy.")) continue;
    tv.set(k.replace(".shared.", "."), v);
  }
  tv.set("fc.weight", { shape: [1000, 8], data: new Float32Array(8000) });
  tv.set("bn1.num_batches_tracked", { shape: [], data: new Float32Array([1]) });
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await Deno.writeFile(path, serializeSafetensors(tv));
  const target = new MultiTaskNet(twoDatabases(), { seed: 2 });
  const copied = await importTorchvisionResnet18(target, path);
  const t = target.stateDict();
  assert.deepEqual(
    t.get("layer2.0.bn1.b.running_var")!.toArray(),
    tv.get("layer2.0.bn1.running_var")!.data,
  );
  assert.deepEqual(t.get("layer2.0.bn1.a.weight")!.toArray(), tv.get("layer2.0.bn1.weight")!.data);
  assert.deepEqual(
    t.get("layer3.0.downsample.1.b.bias")!.toArray(),
    tv.get("layer3.0.downsample.1.bias")!.data,
  );
  assert.deepEqual(t.get("conv1.weight")!.toArray(), tv.get("conv1.weight")!.data);
  const bnTensors =
    [...tv.keys()].filter((k) => /bn\d|downsample\.1/.test(k) && !k.includes("num_batches")).length;
  assert.equal(copied, (tv.size - 2 - bnTensors) + 2 * bnTensors);
  source.dispose();
  target.dispose();
  await Deno.remove(path);
});

Deno.test("importTorchvisionResnet18() reads a torch.save .pth (int64 counters, fc head)", async () => {
  const path = new URL("../testdata/resnet18_narrow.pth", import.meta.url).pathname;
  const net = new MultiTaskNet(twoDatabases());
  // 20 convs, 20 BNs × 4 tensors × 2 databases.
  assert.equal(await importTorchvisionResnet18(net, path), 20 + 20 * 4 * 2);
  const { readPth } = await import("../../src/io/pth.ts");
  const tv = await readPth(path);
  const state = net.stateDict();
  assert.deepEqual(
    state.get("layer4.1.bn2.b.running_mean")!.toArray(),
    tv.get("layer4.1.bn2.running_mean")!.data,
  );
  assert.deepEqual(
    state.get("layer4.0.downsample.0.weight")!.toArray(),
    tv.get("layer4.0.downsample.0.weight")!.data,
  );
  const wrong = new MultiTaskNet(tiny({ widths: [8, 8, 8, 8] }));
  await assert.rejects(
    importTorchvisionResnet18(wrong, path),
    /tensor "conv1\.weight" has shape \[4, 3, 7, 7\], expected \[8, 3, 7, 7\]/,
  );
  net.dispose();
  wrong.dispose();
});
