/**
 * `deno task serve --checkpoint FILE [--port N]`: a local web page to try a trained
 * network: drop or pick a face photo, see each task's prediction, the policy map and the
 * run summary.
 * @module
 */
import { networkFromCheckpoint, readCheckpointFile } from "../src/models/checkpoint.ts";
import { serveModel } from "../src/serve/server.ts";
import { DEVICE_HELP, requiredCheckpoint, useDevice } from "./_cli/device.ts";
import { runCli } from "./_cli/main.ts";
import { HELP_OPTION, numberFlag, parseFlags } from "./_cli/options.ts";

const HELP = `Usage: deno task serve --checkpoint FILE [--port N]

Serves a page on this machine (127.0.0.1) where you drop or pick a face photo (JPEG or
PNG, up to 20 MB) and see, per task, the predicted class with its probabilities, plus the
model's policy map and the run summary (metrics.json beside the checkpoint). Images are
prepared exactly as deno task predict prepares them. Stop it with Ctrl-C.

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
  --port N                 port to listen on, 0–65535 (default 8000; 0 = any free port)
${DEVICE_HELP}
  -h, --help               this help

Example:
  deno task serve --checkpoint runs/adashare-aff-default/checkpoint.safetensors`;

await runCli(async () => {
  const { values } = parseFlags({
    args: Deno.args,
    options: {
      checkpoint: { type: "string" },
      port: { type: "string" },
      device: { type: "string" },
      precision: { type: "string" },
      deterministic: { type: "boolean" },
      ...HELP_OPTION,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const checkpoint = requiredCheckpoint(values, "serve");
  const port = numberFlag(values.port, "port", { integer: true, min: 0, max: 65535 }) ?? 8000;
  // The checkpoint is checked before the backend is loaded, as predict does, and a network
  // the page cannot show is refused then: no device is opened for nothing.
  const file = await readCheckpointFile(checkpoint);
  const scoreTask = file.config.tasks.find((t) => t.kind === "score");
  if (scoreTask) {
    throw new Error(
      `Cannot serve "${checkpoint}": task "${scoreTask.name}" is a score task, and the page ` +
        `shows class probabilities only: expected class or dist tasks. Hint: deno task ` +
        `predict --json prints its score`,
    );
  }
  const backend = await useDevice(values);
  const net = networkFromCheckpoint(file, { backend });
  let server;
  try {
    server = await serveModel(net, checkpoint, {
      port,
      onListen: (url) => console.log(`Serving ${url} (Ctrl-C to stop)`),
    });
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`Cannot serve on port ${port}: it is in use (choose another with --port)`);
    }
    throw e;
  }
  await server.finished;
});
