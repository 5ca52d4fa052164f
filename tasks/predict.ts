/**
 * `deno task predict --checkpoint FILE [--json] IMAGE...`: class and probability of every
 * task for each image, with the checkpoint's fixed policy.
 * @module
 */
import { networkFromCheckpoint, readCheckpointFile } from "../src/models/checkpoint.ts";
import { predictImages } from "../src/train/predict.ts";
import { DEVICE_HELP, requiredCheckpoint, runNetworkCli, useDevice } from "./_cli/device.ts";

const HELP = `Usage: deno task predict --checkpoint FILE [--json] IMAGE...

Predicts every task of a trained network for each image (JPEG or PNG).

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
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
  options: { checkpoint: { type: "string" } },
}, async ({ values, positionals }) => {
  const file = requiredCheckpoint(values, "predict");
  if (positionals.length === 0) throw new Error("Cannot predict: no image given (see --help)");
  // The checkpoint is validated first (format, config), before the backend is loaded;
  // its tensor shapes are checked against the config before any image is read.
  const checkpoint = await readCheckpointFile(file);
  const backend = await useDevice(values);
  const net = networkFromCheckpoint(checkpoint, { backend });
  const results = await predictImages(net, positionals);
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
