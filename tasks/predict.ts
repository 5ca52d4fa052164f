/**
 * `deno task predict --checkpoint FILE [--json] IMAGE...`: class and probability of every
 * task for each image, with the checkpoint's fixed policy. `--arch NAME --weights FILE`
 * runs a bare torchvision classifier instead (its own head, task "output").
 * @module
 */
import {
  networkFromCheckpoint,
  readCheckpointFile,
  readTorchvisionFile,
} from "../src/models/checkpoint.ts";
import { classifierNetwork } from "../src/models/classifier.ts";
import { archFamily, archNames } from "../src/models/archs/registry.ts";
import { importTorchvisionWeights } from "../src/models/torchvision_import.ts";
import type { MultiTaskNet } from "../src/models/network.ts";
import { predictImages } from "../src/train/predict.ts";
import { DEVICE_HELP, requiredCheckpoint, runNetworkCli, useDevice } from "./_cli/device.ts";
import { numberFlag } from "./_cli/options.ts";

/** Names joined by ", " in lines of at most 64 characters, indented as the help's text. */
function wrapNames(names: readonly string[]): string {
  const lines: string[] = [];
  let line = "";
  for (const n of names) {
    if (line && line.length + n.length + 2 > 64) {
      lines.push(line + ",");
      line = n;
    } else line = line ? `${line}, ${n}` : n;
  }
  lines.push(line);
  return lines.join("\n                           ");
}

const HELP = `Usage: deno task predict --checkpoint FILE [--json] IMAGE...
       deno task predict --arch NAME --weights FILE [--image-size N] [--resize N] [--json] IMAGE...

Predicts every task of a trained network for each image (JPEG or PNG); or, with --arch and
--weights, runs a torchvision classifier with its own head (task "output", as many classes
as the weights hold): the quick way to confirm that torchvision weights import.

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
  --arch NAME              with --checkpoint: must be the checkpoint's architecture; with
                           --weights: the torchvision builder the file is from, one of
                           ${wrapNames(archNames())}
  --weights FILE           torchvision weights (.pth or .safetensors) of --arch
  --image-size N           the network's input side (default: the checkpoint's, else 224)
  --resize N               resize the shorter side to N, then crop the centre square of
                           --image-size (default: --image-size; an image of that size
                           passes through unchanged)
  --json                   print [{"image", "tasks": {task: {"label", "probabilities"}}}];
                           score and dist tasks add "score" (the predicted mean rating
                           1–5), their "label" is the grade 0–4 it implies, a dist task's
                           "probabilities" are its rating histogram (ratings 1–5) and a
                           score task's are empty
${DEVICE_HELP}
  -h, --help               this help

Example:
  deno task predict --checkpoint runs/adashare-aff-default/checkpoint.safetensors face.jpg`;

await runNetworkCli({
  help: HELP,
  positionals: true,
  options: {
    checkpoint: { type: "string" },
    arch: { type: "string" },
    weights: { type: "string" },
    "image-size": { type: "string" },
    resize: { type: "string" },
  },
}, async ({ values, positionals }) => {
  if (positionals.length === 0) throw new Error("Cannot predict: no image given (see --help)");
  const size = numberFlag(values["image-size"], "image-size", { integer: true, min: 16 });
  const resize = numberFlag(values.resize, "resize", { integer: true, min: 16 });
  if (size !== undefined && resize !== undefined && resize < size) {
    throw new Error(`Cannot predict: --resize ${resize} is smaller than --image-size ${size}`);
  }
  let net: MultiTaskNet;
  if (values.weights !== undefined) {
    if (values.checkpoint !== undefined) {
      throw new Error("Cannot predict: give --checkpoint or --weights, not both");
    }
    if (values.arch === undefined) {
      throw new Error("Cannot predict: --weights needs --arch NAME, the file's architecture");
    }
    const arch = String(values.arch);
    archFamily(arch);
    // The file is read and checked before the backend is loaded.
    const tensors = await readTorchvisionFile(String(values.weights));
    const classes = classifierClasses(arch, tensors, String(values.weights));
    const backend = await useDevice(values);
    net = classifierNetwork(arch, { classes, backend });
    importTorchvisionWeights(net, tensors, { source: String(values.weights), bare: true });
  } else {
    const file = requiredCheckpoint(values, "predict");
    // The checkpoint is validated first (format, config), before the backend is loaded;
    // its tensor shapes are checked against the config before any image is read.
    const checkpoint = await readCheckpointFile(file);
    if (values.arch !== undefined && values.arch !== checkpoint.config.arch) {
      throw new Error(
        `Cannot predict: "${file}" is a ${checkpoint.config.arch} network, --arch says ${values.arch}`,
      );
    }
    const backend = await useDevice(values);
    net = networkFromCheckpoint(checkpoint, { backend });
  }
  const results = await predictImages(net, positionals, { size, resize });
  if (values.json) {
    console.log(JSON.stringify(results));
  } else {
    for (const r of results) {
      const parts = Object.entries(r.tasks).map(([task, p]) =>
        p.score !== undefined
          ? `${task}: score ${p.score.toFixed(2)} (grade ${p.label})`
          : `${task}: ${p.label} (${(100 * p.probabilities[p.label]).toFixed(1)}%)`
      );
      console.log(`${r.image}  ${parts.join("  ")}`);
    }
  }
  net.dispose();
});

/**
 * The class count of a torchvision classifier file: the rows of its last Linear's weight.
 * @throws {Error} naming the file when that tensor is absent
 */
function classifierClasses(
  arch: string,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  file: string,
): number {
  const key = `${archFamily(arch).classifier}.weight`;
  const w = tensors.get(key);
  if (!w || w.shape.length !== 2) {
    throw new Error(
      `Cannot predict: "${file}" has no classifier weight "${key}" (rows = classes): is it ` +
        `a torchvision ${arch} state dict?`,
    );
  }
  return w.shape[0];
}
