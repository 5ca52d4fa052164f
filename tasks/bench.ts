/**
 * `deno task bench`: micro-benchmarks of the backends.
 *
 * Sections run in order; each prints its lines and returns named figures that `--json`
 * gathers into one object printed as the last stdout line. Add a benchmark by appending
 * to SECTIONS.
 *
 * Usage: deno run -A tasks/bench.ts [--json] [--only name,...] [--reps n] [--help]
 * @module
 */
import { parseArgs } from "node:util";
import type { Backend, ConvSizes, Storage } from "../src/backend/backend.ts";
import { type CpuBackend, loadCpuBackend } from "../src/backend/cpu.ts";
import { ReferenceBackend } from "../src/backend/reference.ts";
import { benchPipeline } from "../src/data/pipeline_bench.ts";
import { parseNetworkConfig } from "../src/models/config.ts";
import { MultiTaskNet } from "../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../src/models/policy.ts";
import { Rng } from "../src/data/rng.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";
import { predictBatch, type StepBatch, trainStep } from "../src/train/step.ts";

/** Shared state handed to every section. */
interface Context {
  /** Timed repetitions per measurement (median reported). */
  reps: number;
  /** Prints a human-readable line (silenced by nothing; JSON goes last). */
  log(line: string): void;
  /** The CPU backend, loaded once. */
  cpu(): Promise<CpuBackend>;
}

/** A named benchmark section. */
interface Section {
  name: string;
  description: string;
  run(ctx: Context): Promise<Record<string, number | string>>;
}

/** Peak resident memory of this process so far (VmHWM), in MiB. */
function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Images/s of the multi-task network (2 tasks on 2 databases, AFF, DAB) at 224×224:
 * eval forward (all blocks) and a training step's forward + backward with the soft
 * Gumbel policy (every block computed), `batch` images per database.
 */
async function benchNetwork(ctx: Context, batch: number): Promise<Record<string, number>> {
  const cpu = await ctx.cpu();
  setDefaultBackend(cpu);
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks: [{ name: "beauty", classes: 5, database: "a" }, {
        name: "gender",
        classes: 2,
        database: "b",
      }],
      aff: true,
      dropout: 0,
    }),
    { backend: cpu },
  );
  const rng = new Rng(1);
  const side = 224, n = batch * 3 * side * side;
  const images = Float32Array.from({ length: n }, () => rng.normal());
  const batches: StepBatch[] = ["a", "b"].map((database, i) => ({
    database,
    images,
    size: side,
    targets: {
      [i === 0 ? "beauty" : "gender"]: Int32Array.from({ length: batch }, (_, j) => j % 2),
    },
  }));
  const noise = gumbelNoise(net.policy.logits.size, rng);
  const forward = () => {
    for (const b of batches) {
      predictBatch(net, b.images, side, b.database, {
        gates: net.allExecuteGates(),
        tasks: Object.keys(b.targets),
      });
    }
  };
  const step = () => {
    trainStep(net, batches, {
      lambdas: { beauty: 1, gender: 0.6 },
      dropoutSeed: 1,
      gates: () => {
        const g = gumbelGates(net.policy.logits, noise, { tau: 5 });
        return new Map([["beauty", g[0]], ["gender", g[1]]]);
      },
    });
    for (const p of net.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  const reps = Math.min(ctx.reps, 3);
  const fwdMs = timeMs(forward, reps, 1), stepMs = timeMs(step, reps, 1);
  const images2 = 2 * batch;
  const res = {
    forwardImagesPerSecond: images2 / (fwdMs / 1000),
    trainImagesPerSecond: images2 / (stepMs / 1000),
    peakRssMiB: peakRssMiB(),
  };
  ctx.log(
    `network batch ${batch}×2 @224: forward ${res.forwardImagesPerSecond.toFixed(1)} img/s, ` +
      `forward+backward ${res.trainImagesPerSecond.toFixed(1)} img/s, peak RSS ${
        res.peakRssMiB.toFixed(0)
      } MiB`,
  );
  net.dispose();
  return res;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median milliseconds of `fn` over `reps` runs after `warmup` runs. */
function timeMs(fn: () => void, reps: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

function convFlops(s: ConvSizes): number {
  const P = Math.floor((s.H + 2 * s.pad - s.R) / s.stride) + 1;
  const Q = Math.floor((s.W + 2 * s.pad - s.S) / s.stride) + 1;
  return 2 * s.N * s.K * s.C * s.R * s.S * P * Q;
}

function randomStorage(b: Backend, n: number, seed: number): Storage {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = ((x >>> 0) / 4294967296) * 2 - 1;
  }
  const s = b.alloc(n);
  b.copyIn(s, a);
  return s;
}

/** Times conv forward / backward-data / backward-weights on a backend. */
function benchConv(
  ctx: Context,
  b: Backend,
  s: ConvSizes,
  label: string,
  warmup: number,
): Record<string, number> {
  const P = Math.floor((s.H + 2 * s.pad - s.R) / s.stride) + 1;
  const Q = Math.floor((s.W + 2 * s.pad - s.S) / s.stride) + 1;
  const x = randomStorage(b, s.N * s.C * s.H * s.W, 1);
  const w = randomStorage(b, s.K * s.C * s.R * s.S, 2);
  const dy = randomStorage(b, s.N * s.K * P * Q, 3);
  const y = b.alloc(s.N * s.K * P * Q), dx = b.alloc(s.N * s.C * s.H * s.W);
  const dw = b.alloc(s.K * s.C * s.R * s.S);
  const flops = convFlops(s);
  const res: Record<string, number> = {};
  const runs: [string, () => void][] = [
    ["forward", () => b.conv2dForward(y, x, w, null, s)],
    ["backwardData", () => b.conv2dBackwardData(dx, dy, w, s)],
    ["backwardWeights", () => b.conv2dBackwardWeights(dw, null, dy, x, s)],
  ];
  for (const [name, fn] of runs) {
    const ms = timeMs(fn, ctx.reps, warmup);
    const gflops = flops / (ms * 1e6);
    res[`${name}Ms`] = ms;
    res[`${name}Gflops`] = gflops;
    ctx.log(
      `  ${label} ${name.padEnd(16)} ${ms.toFixed(2).padStart(9)} ms ` +
        `${gflops.toFixed(2).padStart(8)} GFLOP/s`,
    );
  }
  for (const st of [x, w, dy, y, dx, dw]) b.free(st);
  return res;
}

const SECTIONS: Section[] = [
  {
    name: "conv",
    description: "cpu conv 3×3 64→64 pad 1 stride 1 on 32×64×56×56\n" +
      "             (FBP_CONV_LAYOUT=plain|blocked overrides the library's per-shape rule)",
    async run(ctx) {
      const cpu = await ctx.cpu();
      const s = { N: 32, C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, stride: 1, pad: 1 };
      const layout = Deno.env.get("FBP_CONV_LAYOUT") || "auto";
      ctx.log(`conv 3x3 64->64 on 32x64x56x56 (${cpu.info}, layout ${layout})`);
      return { layout, ...benchConv(ctx, cpu, s, "cpu", 3) };
    },
  },
  {
    name: "ffi",
    description: "FFI call overhead: fill_forward with n = 1, 1e6 calls",
    async run(ctx) {
      const cpu = await ctx.cpu();
      const buf = cpu.alloc(1);
      const calls = 1_000_000;
      const loop = () => {
        for (let i = 0; i < calls; i++) cpu.fill(buf, 1, 1);
      };
      const ms = timeMs(loop, 3, 1);
      cpu.free(buf);
      const ns = (ms * 1e6) / calls;
      ctx.log(`ffi: fill_forward(n=1) ${ns.toFixed(1)} ns per call`);
      return { nsPerCall: ns };
    },
  },
  {
    name: "reference",
    description: "reference (pure TS) conv 3×3 16→16 pad 1 on 2×16×28×28, for scale",
    run(ctx) {
      const ref = new ReferenceBackend();
      const s = { N: 2, C: 16, H: 28, W: 28, K: 16, R: 3, S: 3, stride: 1, pad: 1 };
      ctx.log("reference conv 3x3 16->16 on 2x16x28x28");
      return Promise.resolve(benchConv(ctx, ref, s, "ref", 1));
    },
  },
  {
    name: "network",
    description: "multi-task net (2 tasks, 2 databases, AFF, DAB) at 224×224, batch 8 and 32\n" +
      "             per database: eval forward and training forward+backward images/s",
    async run(ctx) {
      const out: Record<string, number> = {};
      for (const batch of [8, 32]) {
        for (const [k, v] of Object.entries(await benchNetwork(ctx, batch))) {
          out[`batch${batch}_${k}`] = v;
        }
      }
      return out;
    },
  },
  {
    name: "pipeline",
    description: "input pipeline: 350×350 JPEG → 224 batch, inline, 1 and 2 workers, cache",
    async run(ctx) {
      const r = await benchPipeline();
      ctx.log(
        `pipeline: inline ${r.inline.toFixed(0)}, 1 worker ${r.workers1.toFixed(0)}, ` +
          `2 workers ${r.workers2.toFixed(0)}, cached ${r.cached.toFixed(0)} images/s`,
      );
      return { inline: r.inline, workers1: r.workers1, workers2: r.workers2, cached: r.cached };
    },
  },
];

const HELP = `Micro-benchmarks of the fbp backends.

Usage: deno task bench [--json] [--only name,...] [--reps n]

  --json        print one JSON object with every figure as the last stdout line
  --only names  run only these sections (comma-separated)
  --reps n      timed repetitions per measurement (default 5; the median is reported)
  --help        show this help

Sections:
${SECTIONS.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join("\n")}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      only: { type: "string" },
      reps: { type: "string", default: "5" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    throw new Error(`--reps must be >= 1, got ${values.reps}`);
  }
  const only = values.only?.split(",").map((s) => s.trim()).filter((s) => s);
  for (const name of only ?? []) {
    if (!SECTIONS.some((s) => s.name === name)) {
      throw new Error(
        `Unknown section "${name}"; known: ${SECTIONS.map((s) => s.name).join(", ")}`,
      );
    }
  }
  let cpu: Promise<CpuBackend> | undefined;
  const ctx: Context = {
    reps,
    log: (line) => console.log(line),
    cpu: () => cpu ??= loadCpuBackend(),
  };
  const results: Record<string, Record<string, number | string>> = {};
  for (const section of SECTIONS) {
    if (only && !only.includes(section.name)) continue;
    results[section.name] = await section.run(ctx);
  }
  if (values.json) console.log(JSON.stringify(results));
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
