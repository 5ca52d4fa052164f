/**
 * `deno task export --checkpoint FILE --onnx OUT.onnx [--task NAME…]`: the trained network
 * in eval mode as an ONNX graph (opset 17) for ONNX Runtime and other runtimes.
 * @module
 */
import { dirname, resolve } from "node:path";
import { ReferenceBackend } from "../src/backend/reference.ts";
import { IMAGENET_MEAN, IMAGENET_STD } from "../src/data/augment.ts";
import { exportOnnx, ONNX_OPSET } from "../src/export/onnx_graph.ts";
import { writeFileAtomic } from "../src/io/atomic_write.ts";
import { networkFromCheckpoint, readCheckpointFile } from "../src/models/checkpoint.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";
import { requiredCheckpoint } from "./_cli/device.ts";
import { runCli } from "./_cli/main.ts";
import { HELP_OPTION, parseFlags } from "./_cli/options.ts";

const HELP = `Usage: deno task export --checkpoint FILE --onnx OUT.onnx [--task NAME...]

Writes a trained network in eval mode as an ONNX model (opset ${ONNX_OPSET}), with its fixed
policy baked in (skipped blocks left out, prefixes that tasks share computed once).

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
  --onnx OUT.onnx          the file to write (replaced atomically if it exists)
  --task NAME              export only this task (repeat, or NAME,NAME; default: all)
  -h, --help               this help

The model's input "image" is (N, 3, S, S) float32: RGB resized to the network's input
side S (its training size; predict resizes the same way), each channel (v/255 - mean)/std
with the ImageNet mean ${IMAGENET_MEAN.join(",")} and std ${
  IMAGENET_STD.join(",")
}. Each task is one
output of the same name holding its softmax probabilities (N, classes); a dist task's
are its rating histogram (N, 5), ratings 1–5. Score tasks cannot be exported (pick the
others with --task).

Example:
  deno task export --checkpoint runs/adashare-aff-default/checkpoint.safetensors \\
    --onnx fbp.onnx`;

await runCli(async () => {
  const { values } = parseFlags({
    args: Deno.args,
    options: {
      checkpoint: { type: "string" },
      onnx: { type: "string" },
      task: { type: "string", multiple: true },
      ...HELP_OPTION,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const checkpoint = requiredCheckpoint(values, "export");
  if (!values.onnx) throw new Error("Cannot export: --onnx OUT.onnx is required (see --help)");
  const out = values.onnx;
  if (resolve(out) === resolve(checkpoint)) {
    throw new Error(`Cannot export: --onnx "${out}" is the checkpoint itself`);
  }
  const tasks = values.task?.flatMap((t) => t.split(",")).map((t) => t.trim());
  if (tasks?.some((t) => t === "")) {
    throw new Error(`Cannot parse --task: expected task names: current value is "${values.task}"`);
  }
  // The checkpoint is read and checked before anything is built; the graph needs no native
  // library, so the network lives on the pure-TypeScript reference backend.
  const file = await readCheckpointFile(checkpoint);
  const backend = new ReferenceBackend();
  setDefaultBackend(backend);
  const net = networkFromCheckpoint(file, { backend });
  const bytes = exportOnnx(net, { tasks });
  const chosen = tasks ?? net.config.tasks.map((t) => t.name);
  // A dist head's output is its rating histogram (5 bins), a class head's its classes.
  const outputs = chosen.map((name) => {
    const t = net.task(name);
    return t.kind === "dist"
      ? `${name} (histogram of ${t.classes} bins, ratings 1–${t.classes})`
      : `${name} (${t.classes} classes)`;
  });
  const size = net.config.imageSize ?? 224;
  net.dispose();
  try {
    await writeFileAtomic(out, bytes);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `folder "${dirname(out)}" does not exist`
      : (e as Error).message;
    throw new Error(`Cannot write "${out}": ${why}`);
  }
  console.log(
    `Wrote ${out} (${
      (bytes.length / 2 ** 20).toFixed(1)
    } MiB, ONNX opset ${ONNX_OPSET}): input image ` +
      `(N, 3, ${size}, ${size}); outputs ${outputs.join(", ")}`,
  );
});
