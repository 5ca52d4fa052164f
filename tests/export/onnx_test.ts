/**
 * ONNX export checked by a real runtime: small networks with random weights and random BN
 * running statistics are saved as checkpoints, read back, exported, and run in ONNX Runtime
 * (onnxruntime-node); every task's probabilities must equal fbp's own eval-mode prediction
 * (predictBatch, as `deno task predict` runs it) within 1e-4, on every test backend. A graph
 * the runtime refuses fails the test. Also: the graph's structure (skipped blocks absent,
 * shared prefixes computed once, BN copies "d" and "d1" kept apart), the file's metadata, the
 * decoder's length check, and the CLI (`deno task export`) with its errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import protobuf from "protobufjs";
import { exportOnnx, networkToOnnx, ONNX_OPSET } from "../../src/export/onnx_graph.ts";
import { decodeOnnxModel } from "../../src/export/onnx_proto.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import {
  loadState,
  networkFromCheckpoint,
  readCheckpointFile,
  saveCheckpoint,
  stateToHost,
} from "../../src/models/checkpoint.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { Rng } from "../../src/random/rng.ts";
import { predictBatch } from "../../src/train/step.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { testBackends } from "../backends.ts";
import { runTask } from "../_run_helpers.ts";

const SIZE = 32;
const WIDTHS = [8, 8, 16, 16];
const TOLERANCE = 1e-4;
const dir = await Deno.makeTempDir({ prefix: "fbp-export-" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/**
 * A network of `config` (narrow, 32×32) with random weights: BN affine and running
 * statistics far from (1, 0, 0, 1) so that using the wrong copy or the batch statistics
 * shows; conv biases and, when `logits` is set, the policy logits random too.
 */
function randomNet(raw: Record<string, unknown>, seed: number, logits = false): MultiTaskNet {
  const config = parseNetworkConfig({ widths: WIDTHS, imageSize: SIZE, ...raw });
  const net = new MultiTaskNet(config, { seed });
  const rng = new Rng(seed, 77);
  const state = stateToHost(net);
  for (const [key, t] of state) {
    const fill = (lo: number, hi: number) =>
      t.data.forEach((_, i) => t.data[i] = rng.uniform(lo, hi));
    if (key.endsWith(".running_var")) fill(0.3, 2.5);
    else if (key.endsWith(".running_mean")) fill(-0.6, 0.6);
    else if (/(^|\.)(bn\d|downsample\.1|aff\.\w+\.\d)\.[\w-]+\.weight$/.test(key)) fill(0.5, 1.1);
    else if (key.endsWith(".bias")) fill(-0.4, 0.4);
    else if (key === "policy.logits" && logits) fill(-1, 1);
  }
  loadState(net, state, "random weights");
  return net;
}

/** Images (N, 3, 32, 32) of standard-normal-like values. */
function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed, 5);
  return Float32Array.from({ length: n * 3 * SIZE * SIZE }, () => rng.uniform(-2, 2));
}

/** Runs `fn` on a {@linkcode randomNet} of `raw` and frees the network after it. */
async function withNet<R>(
  raw: Record<string, unknown>,
  seed: number,
  fn: (net: MultiTaskNet) => R | Promise<R>,
): Promise<R> {
  const net = randomNet(raw, seed);
  try {
    return await fn(net);
  } finally {
    net.dispose();
  }
}

/** Saves a {@linkcode randomNet} of `raw` to `path` (and frees it). */
function saveRandom(path: string, raw: Record<string, unknown>, seed: number): Promise<void> {
  return withNet(raw, seed, (net) => saveCheckpoint(path, net));
}

/** Saves `net`, reads the checkpoint back onto `backend`, as `predict` and `export` do. */
async function roundTrip(net: MultiTaskNet, name: string, backend: Backend): Promise<MultiTaskNet> {
  const path = join(dir, `${name}.safetensors`);
  await saveCheckpoint(path, net);
  net.dispose();
  return networkFromCheckpoint(await readCheckpointFile(path), { backend });
}

/** fbp's eval-mode probabilities of every task for `x`, by task (predictImages' loop). */
function fbpProbabilities(net: MultiTaskNet, x: Float32Array): Map<string, Float32Array> {
  const gates = net.evalGates();
  const out = new Map<string, Float32Array>();
  for (const db of net.config.databases) {
    const tasks = net.config.tasks.filter((t) => t.database === db).map((t) => t.name);
    if (tasks.length === 0) continue;
    for (const [task, r] of predictBatch(net, x, SIZE, db, { gates, tasks })) {
      out.set(task, r.probabilities);
    }
  }
  return out;
}

/** Runs the model in ONNX Runtime and returns each output's values by name. */
async function runOnnx(bytes: Uint8Array, x: Float32Array): Promise<Map<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const n = x.length / (3 * SIZE * SIZE);
    const result = await session.run({ image: new ort.Tensor("float32", x, [n, 3, SIZE, SIZE]) });
    return new Map(
      Object.entries(result).map(([k, t]) => [k, t.data as Float32Array]),
    );
  } finally {
    await session.release();
  }
}

/** Asserts ONNX Runtime's outputs equal fbp's within TOLERANCE. */
async function assertSame(net: MultiTaskNet, bytes: Uint8Array, batch: number, label: string) {
  const x = images(batch, batch * 13 + 1);
  const want = fbpProbabilities(net, x);
  const got = await runOnnx(bytes, x);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${label}: output names`);
  for (const [task, w] of want) {
    const g = got.get(task)!;
    assert.equal(g.length, w.length, `${label}: ${task} has ${g.length} values, want ${w.length}`);
    for (let i = 0; i < w.length; i++) {
      const d = Math.abs(g[i] - w[i]);
      assert.ok(
        d <= TOLERANCE,
        `${label}: task "${task}" value ${i}: ONNX Runtime ${g[i]}, fbp ${w[i]} (|Δ| ${d})`,
      );
    }
  }
}

const TWO_DATABASES = {
  tasks: [
    { name: "beauty", classes: 5, database: "scut" },
    { name: "gender", classes: 2, database: "scut" },
    { name: "grade", classes: 3, database: "lsafbd" },
  ],
  databases: ["scut", "lsafbd"],
  // beauty and gender share blocks 0–2, then differ; grade has its own BN copy.
  policy: {
    beauty: [1, 1, 0, 1, 1, 0, 1, 1],
    gender: [1, 1, 0, 0, 1, 1, 0, 1],
    grade: [0, 1, 1, 1, 0, 1, 1, 0],
  },
};

const ALL = [1, 1, 1, 1, 1, 1, 1, 1];

/**
 * Databases "d" and "d1", every block executed, per-database BN: the path signature of copy
 * "d" after one executed block must not be mistaken for copy "d1"'s stem.
 */
const D_AND_D1 = {
  tasks: [
    { name: "a", classes: 3, database: "d" },
    { name: "b", classes: 4, database: "d1" },
  ],
  databases: ["d", "d1"],
  policy: { a: ALL, b: ALL },
  aff: false,
};

const CASES: { name: string; raw: Record<string, unknown>; logits?: boolean }[] = [
  { name: "aff-mixed-policy", raw: { ...TWO_DATABASES, aff: true } },
  { name: "plain-mixed-policy", raw: { ...TWO_DATABASES, aff: false } },
  {
    name: "aff-scale-1-per-task-bn",
    raw: { ...TWO_DATABASES, aff: true, affScale: 1, bn: "per-task" },
  },
  { name: "aff-shared-bn", raw: { ...TWO_DATABASES, aff: true, bn: "shared" } },
  {
    // No fixed policy: the argmax of (random) logits, as evaluation takes it.
    name: "aff-policy-from-logits",
    raw: { ...TWO_DATABASES, policy: undefined, aff: true },
    logits: true,
  },
  {
    // A single-task baseline: no policy, untouched logits, so every block executes.
    name: "baseline-single-task",
    raw: { tasks: [{ name: "beauty", classes: 5, database: "scut" }], aff: false },
  },
  {
    name: "baseline-single-task-aff",
    raw: { tasks: [{ name: "beauty", classes: 5, database: "scut" }], aff: true },
  },
  { name: "per-database-bn-d-and-d1", raw: D_AND_D1 },
];

for (const { name: backendName, backend } of await testBackends()) {
  for (const [i, c] of CASES.entries()) {
    Deno.test(`exportOnnx() runs in ONNX Runtime and equals predict: ${c.name} (${backendName})`, async () => {
      const net = await roundTrip(
        randomNet(c.raw, 100 + i, c.logits),
        `${c.name}-${backendName}`,
        backend,
      );
      try {
        const bytes = exportOnnx(net);
        for (const batch of [1, 6]) {
          await assertSame(net, bytes, batch, `${c.name}, batch ${batch}`);
        }
      } finally {
        net.dispose();
      }
    });
  }
}

Deno.test("networkToOnnx() leaves skipped blocks out and computes a shared prefix once", () => {
  const one = { name: "a", classes: 3, database: "d" };
  const graphOf = (raw: Record<string, unknown>) => {
    const net = randomNet(raw, 1);
    try {
      return networkToOnnx(net).graph;
    } finally {
      net.dispose();
    }
  };
  const build = (tasks: object[], policy: Record<string, number[]>) =>
    graphOf({ tasks, databases: ["d"], policy, aff: false });
  const count = (g: { nodes: readonly { op: string }[] }, op: string) =>
    g.nodes.filter((n) => n.op === op).length;
  // Every block skipped: the stem conv and the three downsample convs remain.
  const skipAll = build([one], { a: [0, 0, 0, 0, 0, 0, 0, 0] });
  assert.equal(count(skipAll, "Conv"), 4);
  // Every block executed: stem + 2 per block + 3 downsamples.
  const all = build([one], { a: [1, 1, 1, 1, 1, 1, 1, 1] });
  assert.equal(count(all, "Conv"), 1 + 16 + 3);
  // A second task with the same policy on the same database adds only its head.
  const twin = build([one, { ...one, name: "b" }], {
    a: [1, 1, 1, 1, 1, 1, 1, 1],
    b: [1, 1, 1, 1, 1, 1, 1, 1],
  });
  assert.equal(twin.nodes.length, all.nodes.length + 2);
  // Diverging after block 5: blocks 6–7 twice (4 more convs); block 6's shortcut is shared.
  const split = build([one, { ...one, name: "b" }], {
    a: [1, 1, 1, 1, 1, 1, 1, 1],
    b: [1, 1, 1, 1, 1, 1, 0, 1],
  });
  assert.equal(count(split, "Conv"), 1 + 16 + 3 + 2);
  // Copies "d" and "d1" share only the stem conv: each path has its own 1 + 16 + 3 BNs.
  const twoCopies = graphOf(D_AND_D1);
  assert.equal(count(twoCopies, "Conv"), 1 + 2 * (16 + 3));
  const bnOf = (copy: string) =>
    twoCopies.nodes.filter((n) => n.op === "BatchNormalization" && n.inputs[1].includes(copy));
  assert.equal(bnOf(".d.").length, 1 + 16 + 3);
  assert.equal(bnOf(".d1.").length, 1 + 16 + 3);
});

Deno.test("networkToOnnx() writes opset 17, a dynamic batch, the config and the policy", () =>
  withNet({ ...TWO_DATABASES, aff: true }, 3, async (net) => {
    const model = decodeOnnxModel(exportOnnx(net, { tasks: ["grade", "beauty"] }));
    assert.equal(model.opset, ONNX_OPSET);
    assert.deepEqual(model.graph.inputs.map((v) => [v.name, v.shape]), [["image", [
      "N",
      3,
      32,
      32,
    ]]]);
    assert.deepEqual(model.graph.outputs.map((v) => [v.name, v.shape]), [
      ["grade", ["N", 3]],
      ["beauty", ["N", 5]],
    ]);
    assert.deepEqual(JSON.parse(model.metadata.policy), {
      grade: TWO_DATABASES.policy.grade,
      beauty: TWO_DATABASES.policy.beauty,
    });
    assert.deepEqual(JSON.parse(model.metadata.fbp).tasks, TWO_DATABASES.tasks);
    assert.equal(model.metadata.image_size, "32");
    // The BN nodes of the grade path read the lsafbd copy, beauty's the scut copy, never both.
    const bnInputs = model.graph.nodes.filter((n) => n.op === "BatchNormalization")
      .map((n) => n.inputs[1]);
    assert.ok(
      bnInputs.some((k) => k.includes(".lsafbd.")) && bnInputs.some((k) => k.includes(".scut.")),
    );
    // Only the chosen tasks' heads are stored; gender's is not.
    const names = model.graph.initializers.map((t) => t.name);
    assert.ok(names.includes("heads.grade.weight") && !names.includes("heads.gender.weight"));
    // The runtime accepts the subset too.
    const session = await ort.InferenceSession.create(exportOnnx(net, { tasks: ["gender"] }));
    try {
      assert.deepEqual(session.outputNames, ["gender"]);
    } finally {
      await session.release();
    }
  }));
Deno.test("decodeOnnxModel() refuses an initializer whose data disagrees with its dims, naming it", () => {
  // A ModelProto with one float initializer, written with the ONNX field numbers directly.
  const root = protobuf.parse(
    `
    syntax = "proto2";
    message ModelProto { optional GraphProto graph = 7; }
    message GraphProto { repeated TensorProto initializer = 5; }
    message TensorProto {
      repeated int64 dims = 1; optional int32 data_type = 2; repeated float float_data = 4;
      optional string name = 8; optional bytes raw_data = 9;
    }
  `,
    { keepCase: true },
  ).root;
  const type = root.lookupType("ModelProto");
  const model = (tensor: Record<string, unknown>) =>
    type.encode(type.fromObject({ graph: { initializer: [{ data_type: 1, ...tensor }] } }))
      .finish();
  const ok = decodeOnnxModel(model({ name: "w", dims: [2], raw_data: new Uint8Array(8) }));
  assert.deepEqual([...ok.graph.initializers[0].data], [0, 0]);
  assert.throws(
    () => decodeOnnxModel(model({ name: "w", dims: [2, 3], raw_data: new Uint8Array(8) })),
    /Cannot decode ONNX initializer "w": it holds 8 bytes, its shape \[2, 3\] needs 24/,
  );
  assert.throws(
    () => decodeOnnxModel(model({ name: "b", dims: [3], float_data: [1, 2] })),
    /Cannot decode ONNX initializer "b": it holds 2 values, its shape \[3\] needs 3/,
  );
});

Deno.test("networkToOnnx() refuses an unknown, repeated or input-named task, naming it", async () => {
  await withNet({ ...TWO_DATABASES, aff: false }, 4, (net) => {
    assert.throws(
      () => networkToOnnx(net, { tasks: ["age"] }),
      /Cannot find task "age": the network has "beauty", "gender", "grade"/,
    );
    assert.throws(
      () => networkToOnnx(net, { tasks: ["beauty", "beauty"] }),
      /task "beauty" given twice/,
    );
  });
  await withNet({ tasks: [{ name: "image", classes: 2, database: "d" }] }, 5, (net) => {
    assert.throws(
      () => networkToOnnx(net),
      /Cannot export task "image" to ONNX: the graph's input is named "image"/,
    );
  });
});

/** `deno task export` with `args`, in a child process. */
const runExport = (args: string[]) => runTask("export", args);

Deno.test("deno task export writes a file ONNX Runtime runs, equal to predict", async () => {
  const ckpt = join(dir, "cli.safetensors");
  await saveRandom(ckpt, { ...TWO_DATABASES, aff: true }, 9);
  const onnx = join(dir, "cli.onnx");
  const r = await runExport([
    "--checkpoint",
    ckpt,
    "--onnx",
    onnx,
    "--task",
    "beauty",
    "--task",
    "grade",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cli\.onnx/);
  // The first backend under test (the reference unless FBP_TEST_BACKENDS leaves it out).
  const backend = (await testBackends())[0]?.backend ?? new ReferenceBackend();
  const net = networkFromCheckpoint(await readCheckpointFile(ckpt), { backend });
  try {
    const x = images(3, 99);
    const got = await runOnnx(await Deno.readFile(onnx), x);
    assert.deepEqual([...got.keys()].sort(), ["beauty", "grade"]);
    const want = fbpProbabilities(net, x);
    for (const task of ["beauty", "grade"]) {
      const d = Math.max(...want.get(task)!.map((v, i) => Math.abs(v - got.get(task)![i])));
      assert.ok(d <= TOLERANCE, `${task}: |Δ| ${d}`);
    }
  } finally {
    net.dispose();
  }
});

Deno.test("deno task export: --help, and one clear error line for a bad path, task or flag", async () => {
  const help = await runExport(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: deno task export --checkpoint FILE --onnx OUT\.onnx/);
  const ckpt = join(dir, "errors.safetensors");
  await saveRandom(ckpt, { ...TWO_DATABASES, aff: false }, 10);
  const notOnnx = join(dir, "not-a-checkpoint.safetensors");
  await Deno.writeTextFile(notOnnx, "hello");
  const cases: [string[], RegExp][] = [
    [
      ["--checkpoint", join(dir, "missing.safetensors"), "--onnx", join(dir, "m.onnx")],
      /Cannot read checkpoint ".*missing\.safetensors": file not found/,
    ],
    [["--checkpoint", notOnnx, "--onnx", join(dir, "m.onnx")], /not-a-checkpoint\.safetensors/],
    [
      ["--checkpoint", ckpt, "--onnx", join(dir, "m.onnx"), "--task", "age"],
      /Cannot find task "age": the network has "beauty", "gender", "grade"/,
    ],
    [["--checkpoint", ckpt], /Cannot export: --onnx OUT\.onnx is required/],
    [["--onnx", join(dir, "m.onnx")], /Cannot export: --checkpoint FILE is required/],
    [
      ["--checkpoint", ckpt, "--onnx", join(dir, "no-such-dir", "m.onnx")],
      /Cannot write ".*no-such-dir\/m\.onnx"/,
    ],
    [["--checkpoint", ckpt, "--onnx", join(dir, "m.onnx"), "--bogus"], /unknown option --bogus/],
  ];
  for (const [args, message] of cases) {
    const r = await runExport(args);
    assert.equal(r.code, 1, `${args.join(" ")}: exit ${r.code}\n${r.stdout}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  }
  // Nothing is written for a refused export.
  await assert.rejects(Deno.stat(join(dir, "m.onnx")), Deno.errors.NotFound);
});
