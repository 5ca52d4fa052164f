/**
 * Bad numbers (issue 8): NaN or ±Infinity in the inputs, a learning rate that diverges
 * (1e6), empty or inconsistent batches, and non-finite weights in a checkpoint or a
 * --pretrained file. Each stops with an Error that names the cause, the place (database,
 * image, task, stage, epoch, step) and a hint; none crashes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import {
  readCheckpointFile,
  readPretrainedWeights,
  saveCheckpoint,
  stateToHost,
} from "../../src/models/checkpoint.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { readPth } from "../../src/io/pth.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { BadBatchError, NonFiniteInputError, trainStep } from "../../src/train/step.ts";
import { train, type TrainOptions } from "../../src/train/trainer.ts";
import { genderBaseline, tinyRun } from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-numbers-" });
const people = `synthetic:dir=${root}/people,count=60,size=40,seed=4,labels=gender,labelNoise=0`;

function tiny(name: string, over: Partial<RunConfig> = {}): RunConfig {
  return tinyRun(name, join(root, name), {
    ...genderBaseline(people, 2),
    batch: 6,
    lr: 3e-3,
    ...over,
  });
}

async function stops(
  config: RunConfig,
  message: RegExp,
  opts: Partial<TrainOptions> = {},
): Promise<void> {
  await assert.rejects(train(config, { backend, ...opts }), (e: unknown) => {
    assert.ok(e instanceof Error, String(e));
    assert.equal(e.constructor, Error);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("NaN and ±Infinity in an input image stop the run naming the image", async () => {
  for (const [value, shown] of [[NaN, "NaN"], [Infinity, "Infinity"], [-Infinity, "-Infinity"]]) {
    await stops(
      tiny(`input-${shown}`),
      new RegExp(
        `^Training stopped: non-finite input: Image 2 \\(".*people/Images/.*\\.jpg"\\) of the batch of ` +
          `database "people" holds ${shown} at baseline epoch 1, step 2\\. Last good checkpoint: none yet\\. ` +
          `Nothing of the run was kept\\. ` +
          `Hint: check the data`,
      ),
      {
        transformBatch: (_position, step, b) => {
          if (step === 1) b.images[2 * 3 * 32 * 32 + 17] = value as number;
        },
      },
    );
  }
});

Deno.test("a learning rate of 1000 stops the run as a diverged loss, naming the rate", async () => {
  await stops(
    tiny("lr", { lr: 1000 }),
    /^Training stopped: the loss diverged: Loss of task "gender" is [\d.]+e\+\d+, at least 1000000 with finite inputs \(learning rate [\d.e+]+\) at baseline epoch 1, step \d\. Last good checkpoint: none yet\. Nothing of the run was kept\. Hint: lower --lr$/,
  );
});

Deno.test("an empty or inconsistent batch stops the run naming the database", async () => {
  await stops(
    tiny("empty"),
    /^Training stopped: bad batch: The batch of database "people" is empty \(0 images\) at baseline epoch 1, step 1\. Last good checkpoint: none yet\. Nothing of the run was kept\. Hint: check the data/,
    {
      transformBatch: (_p, _s, b) => {
        b.images = new Float32Array(0);
      },
    },
  );
  await stops(
    tiny("ragged"),
    /bad batch: The batch of database "people" holds 3071 values, not a whole number of 3×32×32 images/,
    {
      transformBatch: (_p, _s, b) => {
        b.images = b.images.subarray(0, 3071);
      },
    },
  );
});

Deno.test("trainStep() checks its batches before any kernel runs", () => {
  const net = new MultiTaskNet(
    parseNetworkConfig({
      arch: "resnet18",
      tasks: [{ name: "g", classes: 2, database: "d" }],
      widths: [4, 4, 8, 8],
    }, "c"),
    { backend },
  );
  const step = (images: Float32Array, targets: Int32Array) =>
    trainStep(net, [{ database: "d", images, size: 32, targets: { g: targets } }], {
      lambdas: { g: 1 },
      gates: () => net.allExecuteGates(),
      dropoutSeed: 1,
    });
  const per = 3 * 32 * 32;
  assert.throws(() => step(new Float32Array(0), new Int32Array(0)), BadBatchError);
  assert.throws(
    () => step(new Float32Array(2 * per), new Int32Array(3)),
    /The batch of database "d" has 2 images but 3 targets of "g"/,
  );
  const x = new Float32Array(2 * per);
  x[per + 5] = NaN;
  assert.throws(() => step(x, new Int32Array(2)), NonFiniteInputError);
  net.dispose();
});

Deno.test("NaN weights in a checkpoint or a --pretrained file are refused, naming the tensor", async () => {
  const config = parseNetworkConfig({
    arch: "resnet18",
    tasks: [{ name: "g", classes: 2, database: "d" }],
    widths: [4, 4, 8, 8],
  }, "c");
  const net = new MultiTaskNet(config, { backend });
  const tensors = stateToHost(net);
  tensors.get("layer2.0.conv1.weight")!.data[3] = NaN;
  const ckpt = join(root, "nan.safetensors");
  await writeSafetensors(ckpt, tensors, { metadata: { fbp: JSON.stringify(config) } });
  await assert.rejects(
    readCheckpointFile(ckpt),
    /Cannot load checkpoint ".*nan\.safetensors": tensor "layer2\.0\.conv1\.weight" holds NaN \(element 3\)/,
  );
  const good = join(root, "good.safetensors");
  await saveCheckpoint(good, net);
  assert.equal((await readCheckpointFile(good)).config.widths[3], 8);
  net.dispose();

  const tv = await readPth(new URL("../testdata/resnet18_narrow.pth", import.meta.url).pathname);
  tv.get("bn1.running_var")!.data[1] = Infinity;
  const pretrained = join(root, "inf.safetensors");
  await writeSafetensors(pretrained, tv);
  await assert.rejects(
    readPretrainedWeights(pretrained, [4, 4, 8, 8]),
    /Cannot import ".*inf\.safetensors": tensor "bn1\.running_var" holds Infinity \(element 1\)/,
  );
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
