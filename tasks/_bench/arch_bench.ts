/**
 * `deno task bench --arch A,B`: training and inference images/s of any architecture as a
 * single-task network (5 classes, one BN copy, no AFF, no dropout) at 224×224, and with
 * `--vs-torch` the same figures from torchvision's model in PyTorch on this machine
 * (tasks/torch_arch_bench.py), side by side.
 * @module
 */
import type { Backend } from "../../src/backend/backend.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { Rng } from "../../src/random/rng.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { predictBatch, type StepBatch, trainStep } from "../../src/train/step.ts";

/** One architecture's figures (images/s). */
export interface ArchFigures {
  train: number;
  infer: number;
}

/** Median milliseconds of `reps` timed calls after one warm-up call. */
function medianMs(fn: () => void, reps: number): number {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[ms.length >> 1];
}

/** fbp's train (forward + backward + AdamW) and eval-forward images/s of `arch`. */
export function benchArch(
  backend: Backend,
  arch: string,
  opts: { batch: number; size: number; reps: number },
): ArchFigures {
  setDefaultBackend(backend);
  const net = new MultiTaskNet(
    parseNetworkConfig({
      arch,
      tasks: [{ name: "beauty", classes: 5, database: "a" }],
      aff: false,
      bn: "shared",
      dropout: 0,
    }),
    { backend },
  );
  try {
    const { batch, size } = opts;
    const rng = new Rng(1);
    const images = Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal());
    const batches: StepBatch[] = [{
      database: "a",
      images,
      size,
      targets: { beauty: Int32Array.from({ length: batch }, (_, j) => j % 5) },
    }];
    const opt = new AdamW(net.weightParameters());
    const gates = net.allExecuteGates();
    const step = () => {
      trainStep(net, batches, { lambdas: { beauty: 1 }, dropoutSeed: 1, gates: () => gates });
      opt.step();
      for (const p of net.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
      backend.sync();
    };
    const infer = () => {
      predictBatch(net, images, size, "a", { gates, tasks: ["beauty"] });
      backend.sync();
    };
    const train = batch / (medianMs(step, opts.reps) / 1000);
    const inferRate = batch / (medianMs(infer, opts.reps) / 1000);
    return { train, infer: inferRate };
  } finally {
    net.dispose();
    // Cached blocks of this architecture's sizes would otherwise stay with the next one.
    backend.releaseCache();
  }
}

/**
 * PyTorch's figures for the same architectures (tasks/torch_arch_bench.py with Debian's
 * python), or null with a line saying why when torch is missing.
 */
export async function torchArchFigures(
  archs: readonly string[],
  opts: { batch: number; size: number; reps: number; threads: number },
): Promise<Record<string, ArchFigures> | null> {
  const python = "/usr/bin/python3";
  const script = new URL("../torch_arch_bench.py", import.meta.url).pathname;
  const probe = await new Deno.Command(python, {
    args: ["-c", "import torchvision"],
    stderr: "null",
  }).output().catch(() => null);
  if (!probe?.success) {
    console.log(`torch: skipped (${python} cannot import torchvision)`);
    return null;
  }
  const r = await new Deno.Command(python, {
    args: [
      script,
      "--archs",
      archs.join(","),
      "--batch",
      String(opts.batch),
      "--size",
      String(opts.size),
      "--reps",
      String(opts.reps),
      "--threads",
      String(opts.threads),
    ],
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`Cannot run ${script}: exit code ${r.code}`);
  const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}
