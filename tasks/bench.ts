/**
 * `deno task bench`: micro-benchmarks of the backends.
 *
 * Sections run in order; each prints its lines and returns named figures that `--json`
 * gathers into one object printed as the last stdout line. Add a benchmark by appending
 * to SECTIONS.
 *
 * Usage: deno run -A tasks/bench.ts [--json] [--only name,...] [--reps n] [--device d] [--help]
 * @module
 */
import type { Backend, ConvSizes, Storage } from "../src/backend/backend.ts";
import { type CpuBackend, loadCpuBackend } from "../src/backend/cpu.ts";
import { applyMath, loadBackend, type PrecisionChoice } from "../src/backend/load.ts";
import { FBP_ABI_SYMBOLS, type NativeStorage } from "../src/backend/native.ts";
import { ReferenceBackend } from "../src/backend/reference.ts";
import { benchPipeline } from "../src/data/pipeline_bench.ts";
import { parseNetworkConfig } from "../src/models/config.ts";
import { MultiTaskNet } from "../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../src/models/policy.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { Rng } from "../src/random/rng.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";
import { predictBatch, type StepBatch, trainStep } from "../src/train/step.ts";
import { runCli } from "./_cli/main.ts";
import { numberFlag, parseFlags } from "./_cli/options.ts";
import { precisionChoice } from "./_cli/device.ts";
import { type ArchFigures, benchArch, torchArchFigures } from "./_bench/arch_bench.ts";
import { archNames } from "../src/models/archs/registry.ts";

/** Shared state handed to every section. */
interface Context {
  /** Timed repetitions per measurement (median reported). */
  reps: number;
  /** Prints a human-readable line (silenced by nothing; JSON goes last). */
  log(line: string): void;
  /** The CPU backend, loaded once, computing in `--precision` ("auto" resolved). */
  cpu(): Promise<CpuBackend>;
  /** The precision the CPU backend computes in, once `cpu()` has loaded it. */
  precision: string;
  /** The `--device` backend (default cpu) that the network sections run on, loaded once. */
  device(): Promise<Backend>;
  /** The `--device` flag as given. */
  deviceName: string;
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
 * Resets this process's peak resident memory (VmHWM) so the next phase measures its own:
 * first the backend's allocator returns the blocks it cached for reuse in earlier phases
 * (otherwise they would count against this one, as PyTorch's freed memory does not).
 */
function resetPeakRss(backend: Backend): void {
  backend.releaseCache();
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  } catch {
    // Not Linux, or not permitted: peaks then accumulate over the run.
  }
}

/** What benchNet builds and times. */
interface NetBenchOptions {
  /** Images per database per step. */
  batch: number;
  /** "multi": 2 tasks on 2 databases, AFF, DAB; "resnet18": one task, no AFF, shared BN. */
  net: "multi" | "resnet18";
  /** Time the eval forward (all blocks). */
  infer: boolean;
  /** Time the training step (soft Gumbel policy for "multi"). */
  train: boolean;
  /** Include an AdamW update in the timed training step. */
  optimizer: boolean;
  /** Backend to run on (default: the CPU backend); a wrapper such as a timing proxy. */
  backend?: Backend;
}

/** The network, batches and step closures of one benchmark configuration. */
function buildNetBench(backend: Backend, o: NetBenchOptions) {
  setDefaultBackend(backend);
  const multi = o.net === "multi";
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks: multi
        ? [{ name: "beauty", classes: 5, database: "a" }, {
          name: "gender",
          classes: 2,
          database: "b",
        }]
        : [{ name: "beauty", classes: 5, database: "a" }],
      aff: multi,
      bn: multi ? "per-database" : "shared",
      dropout: 0,
    }),
    { backend },
  );
  const rng = new Rng(1);
  const side = 224, n = o.batch * 3 * side * side;
  const images = Float32Array.from({ length: n }, () => rng.normal());
  const names = multi ? ["beauty", "gender"] : ["beauty"];
  const batches: StepBatch[] = names.map((task, i) => ({
    database: i === 0 ? "a" : "b",
    images,
    size: side,
    targets: { [task]: Int32Array.from({ length: o.batch }, (_, j) => j % 2) },
  }));
  const noise = gumbelNoise(net.policy.logits.size, rng);
  const opt = o.optimizer ? new AdamW(net.weightParameters()) : null;
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
        if (!multi) return net.allExecuteGates();
        const g = gumbelGates(net.policy.logits, noise, { tau: 5 });
        return new Map([["beauty", g[0]], ["gender", g[1]]]);
      },
    });
    opt?.step();
    for (const p of net.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  return { net, forward, step, images: batches.length * o.batch };
}

/**
 * Images/s of a network at 224×224: eval forward (all blocks) and/or a training step
 * (forward + backward, optionally AdamW), with the peak RSS of each phase.
 */
async function benchNet(ctx: Context, o: NetBenchOptions): Promise<Record<string, number>> {
  const backend = o.backend ?? await ctx.device();
  const { net, forward, step, images } = buildNetBench(backend, o);
  const reps = ctx.reps;
  const res: Record<string, number> = {};
  // sync: a GPU backend queues work; time it until it has run (a no-op on the CPU).
  if (o.infer) {
    resetPeakRss(backend);
    res.forwardImagesPerSecond = images /
      (timeMs(() => (forward(), backend.sync()), reps, 1) / 1000);
    res.forwardPeakRssMiB = peakRssMiB();
  }
  if (o.train) {
    resetPeakRss(backend);
    res.trainImagesPerSecond = images / (timeMs(() => (step(), backend.sync()), reps, 1) / 1000);
    res.trainPeakRssMiB = peakRssMiB();
  }
  net.dispose();
  return res;
}

/**
 * Images/s of the multi-task network (2 tasks on 2 databases, AFF, DAB) at 224×224:
 * eval forward (all blocks) and a training step's forward + backward with the soft
 * Gumbel policy (every block computed), `batch` images per database.
 */
async function benchNetwork(ctx: Context, batch: number): Promise<Record<string, number>> {
  const r = await benchNet(ctx, {
    batch,
    net: "multi",
    infer: true,
    train: true,
    optimizer: false,
  });
  const res = {
    forwardImagesPerSecond: r.forwardImagesPerSecond,
    trainImagesPerSecond: r.trainImagesPerSecond,
    peakRssMiB: Math.max(r.forwardPeakRssMiB, r.trainPeakRssMiB),
  };
  ctx.log(
    `network batch ${batch}×2 @224: forward ${res.forwardImagesPerSecond.toFixed(1)} img/s, ` +
      `forward+backward ${res.trainImagesPerSecond.toFixed(1)} img/s, peak RSS ${
        res.peakRssMiB.toFixed(0)
      } MiB`,
  );
  return res;
}

/**
 * Images/s and peak RSS of a training step with AdamW, `batch` 32 per database at
 * 224×224 (and of the eval forward with `infer`), logged as `<label>: train … img/s
 * (peak RSS … MiB)[, infer …]`.
 */
async function benchTraining(
  ctx: Context,
  label: string,
  net: NetBenchOptions["net"],
  infer: boolean,
): Promise<Record<string, number>> {
  const r = await benchNet(ctx, { batch: 32, net, infer, train: true, optimizer: true });
  const rate = (what: string, imagesPerSecond: number, peakRssMiB: number) =>
    `${what} ${imagesPerSecond.toFixed(1)} img/s (peak RSS ${peakRssMiB.toFixed(0)} MiB)`;
  const rates = [rate("train", r.trainImagesPerSecond, r.trainPeakRssMiB)];
  if (infer) rates.push(rate("infer", r.forwardImagesPerSecond, r.forwardPeakRssMiB));
  ctx.log(`${label}: ${rates.join(", ")}`);
  return r;
}

/** Milliseconds and calls per backend method, plus the FLOPs of the conv calls. */
interface KernelTimes {
  ms: Map<string, number>;
  calls: Map<string, number>;
  convFlops: number;
}

/**
 * Wraps `inner` so that every method call is timed (like tests/counting_backend.ts counts
 * them). Conv calls are split by kind: `conv2d*:1x1+bias` are AFF's point-wise convs.
 */
function timingBackend(inner: Backend): { backend: Backend; times: KernelTimes } {
  const times: KernelTimes = { ms: new Map(), calls: new Map(), convFlops: 0 };
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      return (...args: unknown[]) => {
        let name = prop;
        // Kernels take one object of named arguments (contract.ts).
        const a = args[0] as Record<string, unknown>;
        if (prop.startsWith("conv2d")) {
          const s = a as unknown as ConvSizes;
          // conv2d_backward_data has neither a bias nor a dbias.
          const hasBias = (a.bias ?? a.dbias ?? null) !== null;
          name = `${prop}:${s.R}x${s.S}${hasBias ? "+bias" : ""}`;
          times.convFlops += convFlops(s);
        } else if (prop === "binaryForward") {
          const [as, bs] = [a.aShape as number[], a.bShape as number[]];
          name = `${prop}:${a.op}${as.join() === bs.join() ? "" : " (broadcast)"}`;
        }
        const t = performance.now();
        const r = value.apply(target, args);
        const dt = performance.now() - t;
        times.ms.set(name, (times.ms.get(name) ?? 0) + dt);
        times.calls.set(name, (times.calls.get(name) ?? 0) + 1);
        return r;
      };
    },
  });
  return { backend, times };
}

let fmaCeilingCache: number | undefined;

/** Builds and runs native/dev/fma_peak.c once; its fp32 GFLOP/s with 2 threads. */
async function fmaCeiling(): Promise<number> {
  if (fmaCeilingCache !== undefined) return fmaCeilingCache;
  const src = new URL("../native/dev/fma_peak.c", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "fbp_fma_" });
  const exe = `${dir}/fma_peak`;
  try {
    const cc = Deno.env.get("CC") || "cc";
    const build = await new Deno.Command(cc, {
      args: ["-O3", "-march=native", "-fopenmp", src, "-o", exe],
    }).output();
    if (!build.success) {
      throw new Error(`Cannot build ${src}: ${new TextDecoder().decode(build.stderr)}`);
    }
    const run = await new Deno.Command(exe, { args: ["2"] }).output();
    fmaCeilingCache = JSON.parse(new TextDecoder().decode(run.stdout)).gflops as number;
    return fmaCeilingCache;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
  return 2 * s.N * s.K * (s.C / s.G) * s.R * s.S * P * Q;
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
  const w = randomStorage(b, s.K * (s.C / s.G) * s.R * s.S, 2);
  const dy = randomStorage(b, s.N * s.K * P * Q, 3);
  const y = b.alloc(s.N * s.K * P * Q), dx = b.alloc(s.N * s.C * s.H * s.W);
  const dw = b.alloc(s.K * (s.C / s.G) * s.R * s.S);
  const flops = convFlops(s);
  const res: Record<string, number> = {};
  const runs: [string, () => void][] = [
    ["forward", () => b.conv2dForward({ out: y, inp: x, weight: w, bias: null, ...s })],
    ["backwardData", () => b.conv2dBackwardData({ dinp: dx, dout: dy, weight: w, ...s })],
    [
      "backwardWeights",
      () => b.conv2dBackwardWeights({ dweight: dw, dbias: null, dout: dy, inp: x, ...s }),
    ],
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
      const s = { N: 32, C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, G: 1, stride: 1, pad: 1 };
      const layout = Deno.env.get("FBP_CONV_LAYOUT") || "auto";
      ctx.log(
        `conv 3x3 64->64 on 32x64x56x56 (${cpu.info}, ${ctx.precision}, layout ${layout})`,
      );
      return { layout, ...benchConv(ctx, cpu, s, "cpu", 3) };
    },
  },
  {
    name: "ffi",
    description: "FFI call overhead: fill_forward with n = 1, 1e6 calls, through the " +
      "Backend and as a bare FFI call",
    async run(ctx) {
      const cpu = await ctx.cpu();
      const buf = cpu.alloc(1) as NativeStorage;
      const calls = 1_000_000;
      const loop = () => {
        for (let i = 0; i < calls; i++) cpu.fillForward({ out: buf, value: 1, n: 1 });
      };
      const ns = (timeMs(loop, 3, 1) * 1e6) / calls;
      // The bare symbol, for the cost of the binding itself (named arguments, BigInt).
      const lib = Deno.dlopen(cpu.libraryPath, { fill_forward: FBP_ABI_SYMBOLS.fill_forward });
      const rawLoop = () => {
        for (let i = 0; i < calls; i++) lib.symbols.fill_forward(buf.ptr, 1, BigInt(1));
      };
      const rawNs = (timeMs(rawLoop, 3, 1) * 1e6) / calls;
      lib.close();
      cpu.free(buf);
      ctx.log(
        `ffi: fill_forward(n=1) ${ns.toFixed(1)} ns per call (bare FFI symbol ${
          rawNs.toFixed(1)
        } ns)`,
      );
      return { nsPerCall: ns, rawNsPerCall: rawNs };
    },
  },
  {
    name: "reference",
    description: "reference (pure TS) conv 3×3 16→16 pad 1 on 2×16×28×28, for scale",
    run(ctx) {
      const ref = new ReferenceBackend();
      const s = { N: 2, C: 16, H: 28, W: 28, K: 16, R: 3, S: 3, G: 1, stride: 1, pad: 1 };
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
    name: "ceiling",
    description:
      "FMA ceiling of the cores: native/dev/fma_peak.c (cc -march=native), 2 threads;\n" +
      "             and oneDNN sgemm 2048³ through linear_forward, for comparison",
    async run(ctx) {
      const ceiling = await fmaCeiling();
      const cpu = await ctx.cpu();
      const n = 2048;
      const a = randomStorage(cpu, n * n, 1), w = randomStorage(cpu, n * n, 2);
      const out = cpu.alloc(n * n);
      const ms = timeMs(
        () => cpu.linearForward({ out, inp: a, weight: w, bias: null, N: n, I: n, O: n }),
        ctx.reps,
        1,
      );
      for (const st of [a, w, out]) cpu.free(st);
      const gemm = (2 * n ** 3) / (ms * 1e6);
      const what = ctx.precision === "bf16" ? "bf16 matmul" : "sgemm";
      ctx.log(
        `ceiling: FMA ${ceiling.toFixed(1)} GFLOP/s (2 threads, fp32); ${what} ${n}³ ${
          gemm.toFixed(1)
        } GFLOP/s (${(100 * gemm / ceiling).toFixed(0)} % of it)`,
      );
      return { fmaGflops: ceiling, sgemmGflops: gemm };
    },
  },
  {
    name: "resnet18",
    description: "plain ResNet18 (one task, no AFF, shared BN), batch 32 @224: training step\n" +
      "             (forward + backward + AdamW) and eval forward images/s",
    run: (ctx) => benchTraining(ctx, "resnet18 batch 32 @224", "resnet18", true),
  },
  {
    name: "full",
    description: "full method: 2 tasks × 32 images from 2 databases, DAB, AFF, soft Gumbel\n" +
      "             policy, AdamW: training step images/s (64 images per step)",
    run: (ctx) => benchTraining(ctx, "full method 2×32 @224", "multi", false),
  },
  {
    name: "profile",
    description: "where a full-method training step's time goes: every backend call timed\n" +
      "             (a proxy like tests/counting_backend.ts); conv GFLOP/s vs the FMA ceiling",
    async run(ctx) {
      const { backend, times } = timingBackend(await ctx.cpu());
      // FBP_PROFILE=resnet18 | resnet18-infer | full-infer profiles another phase.
      const what = Deno.env.get("FBP_PROFILE") ?? "full";
      const o = {
        batch: 32,
        net: what.startsWith("resnet18") ? "resnet18" : "multi",
        infer: false,
        train: true,
        optimizer: true,
      } as const;
      const built = buildNetBench(backend, o);
      const net = built.net, step = what.endsWith("-infer") ? built.forward : built.step;
      step();
      times.ms.clear();
      times.calls.clear();
      times.convFlops = 0;
      const steps = 2;
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      const wall = (performance.now() - t0) / steps;
      net.dispose();
      const rows = [...times.ms].map(([k, ms]) => [k, ms / steps] as const).sort((a, b) =>
        b[1] - a[1]
      );
      const kernels = rows.reduce((s, [, ms]) => s + ms, 0);
      const group = (re: RegExp) => rows.filter(([k]) => re.test(k)).reduce((s, [, m]) => s + m, 0);
      const res: Record<string, number> = {
        stepMs: wall,
        convMs: group(/^conv2d/),
        affConvMs: group(/^conv2d.*\+bias/),
        batchnormMs: group(/^batchnorm/),
        elementwiseMs: group(/^(unary|binary|scale|sumTo|broadcastTo|copy|fill)/),
        poolMs: group(/pool/),
        allocFreeMs: group(/^(alloc|free)$/),
        otherKernelsMs: 0,
        jsMs: wall - kernels,
      };
      res.otherKernelsMs = kernels - res.convMs - res.batchnormMs - res.elementwiseMs -
        res.poolMs - res.allocFreeMs;
      const ceiling = await fmaCeiling();
      res.convGflops = times.convFlops / steps / (res.convMs * 1e6);
      res.convFmaFraction = res.convGflops / ceiling;
      res.stepConvFmaFraction = times.convFlops / steps / (wall * 1e6) / ceiling;
      ctx.log(
        `profile of one step of "${what}" (batch 32 per database @224, ${ctx.precision}): ${
          wall.toFixed(0)
        } ms`,
      );
      for (const [k, ms] of rows.slice(0, 16)) {
        ctx.log(
          `  ${k.padEnd(30)} ${ms.toFixed(1).padStart(8)} ms ${
            (100 * ms / wall).toFixed(1).padStart(5)
          } %  ${String((times.calls.get(k) ?? 0) / steps).padStart(5)} calls`,
        );
      }
      for (
        const k of [
          "convMs",
          "affConvMs",
          "batchnormMs",
          "elementwiseMs",
          "poolMs",
          "allocFreeMs",
          "otherKernelsMs",
          "jsMs",
        ]
      ) {
        ctx.log(
          `  = ${k.padEnd(28)} ${res[k].toFixed(1).padStart(8)} ms ${
            (100 * res[k] / wall).toFixed(1).padStart(5)
          } %`,
        );
      }
      ctx.log(
        `  conv: ${res.convGflops.toFixed(1)} GFLOP/s = ${
          (100 * res.convFmaFraction).toFixed(0)
        } % ` +
          `of the ${ceiling.toFixed(0)} GFLOP/s FMA ceiling (whole step: ${
            (100 * res.stepConvFmaFraction).toFixed(0)
          } %)`,
      );
      ctx.log(
        ctx.precision === "bf16"
          ? "  (bf16: every convolution is direct, and the bf16 dot-product instruction\n" +
            "   (vdpbf16ps) does twice the FLOPs of an fp32 FMA: its ceiling is 2× the FMA's)"
          : "  (FLOPs of direct convolution; the 3×3 stride-1 forward and backward-data run as\n" +
            "   Winograd, which does fewer: FBP_CONV_ALGO=direct measures the direct kernels)",
      );
      return res;
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

/** Timed repetitions allowed: a median needs one, and 1000 of the slowest section take hours. */
const REPS_RANGE = { integer: true, min: 1, max: 1000 };

/** Sections `--vs-torch` runs when `--only` is not given. */
const VS_TORCH_SECTIONS = ["ceiling", "resnet18", "full", "profile"];

const HELP = `Micro-benchmarks of the fbp backends.

Usage: deno task bench [--json] [--only name,...] [--reps n] [--vs-torch] [--device d]
                       [--precision p]
       deno task bench --arch A,B,… [--batch n] [--vs-torch] [--reps n] [--json] [--device d]

  --json        print one JSON object with every figure as the last stdout line:
                {"fbp": {resnet18_train, resnet18_infer, full_train, peak_rss_mib, …},
                 "torch": {…}, "ratio": {…}, "sections": {…}} (images/s; ratio = fbp ÷ torch)
  --vs-torch    also run tasks/torch_bench.py (Debian's /usr/bin/python3 with torch) and
                print both sides and their ratio; without --only it runs the sections
                ${VS_TORCH_SECTIONS.join(", ")}
  --only names  run only these sections (comma-separated)
  --reps n      timed repetitions per measurement, 1–1000 (default 5; the median is reported)
  --device d    backend of the sections that run the network (network, resnet18, full):
                cpu (default), cuda or auto
  --precision p how convolutions and linear layers compute: fp32 (default), bf16 (bfloat16
                inputs, float32 accumulation; CPUs with avx512_bf16) or auto. With bf16,
                --vs-torch runs PyTorch twice, fp32 and bf16 under torch.autocast, and
                prints the ratio to each ({"torchBf16", "ratioBf16"} in --json)
  --arch A,B,…  instead of the sections: training step (forward + backward + AdamW) and
                eval forward images/s of each architecture as a single-task network at
                224² (see deno task train --help, --arch); with --vs-torch beside
                torchvision's model in PyTorch (tasks/torch_arch_bench.py) and the ratio
  --batch n     images per step of --arch (default 32)
  --help        show this help

Sections:
${SECTIONS.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join("\n")}`;

async function main(): Promise<void> {
  const { values } = parseFlags({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      only: { type: "string" },
      reps: { type: "string", default: "5" },
      help: { type: "boolean", default: false },
      "vs-torch": { type: "boolean", default: false },
      device: { type: "string", default: "cpu" },
      precision: { type: "string", default: "fp32" },
      arch: { type: "string" },
      batch: { type: "string", default: "32" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const reps = numberFlag(values.reps, "reps", REPS_RANGE)!;
  const precision: PrecisionChoice = precisionChoice(values.precision);
  if (!["cpu", "cuda", "auto"].includes(values.device)) {
    throw new Error(
      `Cannot parse --device: expected one of cpu, cuda, auto: current value is "${values.device}"`,
    );
  }
  const only = values.only?.split(",").map((s) => s.trim()).filter((s) => s) ??
    (values["vs-torch"] ? VS_TORCH_SECTIONS : undefined);
  const known = SECTIONS.map((s) => s.name).join(", ");
  if (only?.length === 0) {
    throw new Error(`Cannot parse --only: expected section names (${known}): none given`);
  }
  for (const name of only ?? []) {
    if (!SECTIONS.some((s) => s.name === name)) {
      throw new Error(
        `Cannot parse --only: unknown section "${name}": known are ${known}`,
      );
    }
  }
  let cpu: Promise<CpuBackend> | undefined;
  let device: Promise<Backend> | undefined;
  const ctx: Context = {
    reps,
    deviceName: values.device,
    log: (line) => console.log(line),
    precision: "fp32",
    cpu: () =>
      cpu ??= loadCpuBackend().then((b) => {
        ctx.precision = applyMath(b, { precision }).precision;
        return b;
      }),
    device: () =>
      device ??= values.device === "cpu" ? ctx.cpu() : loadBackend(values.device, {
        onNote: (line) => console.error(line),
        math: { precision },
      }).then((b) => {
        ctx.precision = b.math.precision;
        return b;
      }),
  };
  if (values.arch !== undefined) {
    const batch = numberFlag(values.batch, "batch", { integer: true, min: 1, max: 4096 })!;
    await benchArchs(ctx, String(values.arch), batch, values["vs-torch"], values.json);
    return;
  }
  const results: Record<string, Record<string, number | string>> = {};
  for (const section of SECTIONS) {
    if (only && !only.includes(section.name)) continue;
    results[section.name] = await section.run(ctx);
  }
  const fbp = summary(results);
  // Which math fbp ran in: every ratio below is fbp at this precision ÷ the PyTorch side.
  const report: Record<string, unknown> = { precision: ctx.precision, fbp };
  if (values["vs-torch"]) {
    // bf16 is compared with PyTorch both ways: fp32, and bf16 under autocast.
    const modes: ("fp32" | "bf16")[] = ctx.precision === "bf16" ? ["fp32", "bf16"] : ["fp32"];
    const sides: [string, Record<string, number>][] = [];
    for (const mode of modes) {
      const torch = await runTorchBench(reps, mode);
      if (!torch) break;
      sides.push([mode === "bf16" ? "torch bf16 autocast" : "torch fp32", torch]);
      const ratio: Record<string, number> = {};
      for (const k of COMPARED) {
        if (typeof fbp[k] === "number" && typeof torch[k] === "number") {
          ratio[k] = fbp[k] / torch[k];
        }
      }
      report[mode === "bf16" ? "torchBf16" : "torch"] = torch;
      report[mode === "bf16" ? "ratioBf16" : "ratio"] = ratio;
    }
    if (sides.length > 0) printVsTorch(fbp, ctx.precision, sides);
  }
  report.sections = results;
  if (values.json) console.log(JSON.stringify(report));
}

/** `--arch`: each architecture's images/s, and PyTorch's beside them with `--vs-torch`. */
async function benchArchs(
  ctx: Context,
  list: string,
  batch: number,
  vsTorch: boolean,
  json: boolean,
): Promise<void> {
  const archs = list.split(",").map((a) => a.trim()).filter((a) => a);
  const known = archNames();
  for (const a of archs) {
    if (!known.includes(a)) {
      throw new Error(`Cannot parse --arch: unknown architecture "${a}": known are ${known}`);
    }
  }
  if (archs.length === 0) throw new Error("Cannot parse --arch: no architecture given");
  if (vsTorch && ctx.deviceName !== "cpu") {
    throw new Error(
      "Cannot compare --arch with PyTorch on --device " + ctx.deviceName +
        ": tasks/torch_arch_bench.py runs on the CPU; use --device cpu",
    );
  }
  const size = 224;
  // PyTorch first: its process ends before fbp allocates (both sides of regnet_y_128gf
  // training hold ~12 GiB, and the two together do not fit a 24 GiB machine).
  const torch = vsTorch
    ? await torchArchFigures(archs, { batch, size, reps: Math.min(ctx.reps, 3), threads: 2 })
    : null;
  const backend = await ctx.device();
  const fbp: Record<string, ArchFigures> = {};
  for (const arch of archs) {
    fbp[arch] = benchArch(backend, arch, { batch, size, reps: ctx.reps });
    ctx.log(
      `${arch} batch ${batch} @${size} (${backend.name}, ${ctx.precision}): train ${
        fbp[arch].train.toFixed(1)
      } img/s, infer ${fbp[arch].infer.toFixed(1)} img/s`,
    );
  }
  if (torch) {
    const header = [
      "arch",
      "fbp train",
      "torch train",
      "ratio",
      "fbp infer",
      "torch infer",
      "ratio",
    ];
    const rows = archs.map((a) => [
      a,
      fbp[a].train.toFixed(1),
      torch[a].train.toFixed(1),
      (fbp[a].train / torch[a].train).toFixed(2) + "×",
      fbp[a].infer.toFixed(1),
      torch[a].infer.toFixed(1),
      (fbp[a].infer / torch[a].infer).toFixed(2) + "×",
    ]);
    ctx.log(`\nimages/s, batch ${batch} @${size}, fp32 (torch: eager, 2 threads):`);
    ctx.log(`| ${header.join(" | ")} |\n|---|${"--:|".repeat(header.length - 1)}`);
    for (const r of rows) ctx.log(`| ${r.join(" | ")} |`);
  }
  if (json) {
    console.log(
      JSON.stringify({ precision: ctx.precision, batch, fbp, ...(torch ? { torch } : {}) }),
    );
  }
}

/**
 * The fbp figures beside each PyTorch side's and their ratios (fbp ÷ torch: above 1 means
 * more images/s, or for the peaks more memory).
 */
function printVsTorch(
  fbp: Record<string, number>,
  precision: string,
  sides: [string, Record<string, number>][],
): void {
  const t = sides[0][1];
  console.log(
    `fbp ${precision} vs PyTorch ${t.version} (${t.threads} threads), same machine:`,
  );
  const head = sides.map(([name]) => `${name.padStart(20)} ${"ratio".padStart(7)}`).join(" ");
  console.log(`  ${"".padEnd(28)} ${`fbp ${precision}`.padStart(9)} ${head}`);
  for (const k of COMPARED) {
    if (typeof fbp[k] !== "number") continue;
    const cells = sides.map(([, torch]) =>
      typeof torch[k] === "number"
        ? `${torch[k].toFixed(1).padStart(20)} ${(fbp[k] / torch[k]).toFixed(2).padStart(6)}×`
        : `${"".padStart(20)} ${"".padStart(7)}`
    );
    console.log(`  ${k.padEnd(28)} ${fbp[k].toFixed(1).padStart(9)} ${cells.join(" ")}`);
  }
}

/** Figures both sides report (images/s, or MiB for the peaks). */
const COMPARED = [
  "resnet18_train",
  "resnet18_infer",
  "full_train",
  "resnet18_train_peak_rss_mib",
  "full_train_peak_rss_mib",
  "peak_rss_mib",
];

/** The headline figures of the fbp side, in the torch script's names. */
function summary(results: Record<string, Record<string, number | string>>) {
  const out: Record<string, number> = {};
  const r = results.resnet18, f = results.full, p = results.profile, c = results.ceiling;
  if (r) {
    out.resnet18_train = r.trainImagesPerSecond as number;
    out.resnet18_infer = r.forwardImagesPerSecond as number;
    out.resnet18_train_peak_rss_mib = r.trainPeakRssMiB as number;
    out.resnet18_infer_peak_rss_mib = r.forwardPeakRssMiB as number;
  }
  if (f) {
    out.full_train = f.trainImagesPerSecond as number;
    out.full_train_peak_rss_mib = f.trainPeakRssMiB as number;
  }
  const peaks = Object.entries(out).filter(([k]) => k.endsWith("_peak_rss_mib"));
  if (peaks.length) out.peak_rss_mib = Math.max(...peaks.map(([, v]) => v));
  if (c) out.fma_ceiling_gflops = c.fmaGflops as number;
  if (p) {
    out.conv_gflops = p.convGflops as number;
    out.conv_fma_fraction = p.convFmaFraction as number;
  }
  return out;
}

/**
 * Runs tasks/torch_bench.py with Debian's python; null (and a line saying so) when that
 * python or its torch is missing.
 */
async function runTorchBench(
  reps: number,
  precision: "fp32" | "bf16",
): Promise<Record<string, number> | null> {
  const python = "/usr/bin/python3";
  const script = new URL("./torch_bench.py", import.meta.url).pathname;
  let probe;
  try {
    probe = await new Deno.Command(python, { args: ["-c", "import torch"], stderr: "null" })
      .output();
  } catch {
    probe = null;
  }
  if (!probe?.success) {
    console.log(`torch: skipped (${python} cannot import torch)`);
    return null;
  }
  const r = await new Deno.Command(python, {
    args: [
      script,
      "--reps",
      String(Math.min(reps, 3)),
      "--threads",
      "2",
      "--precision",
      precision,
    ],
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error(`Cannot run ${script}: exit code ${r.code}`);
  const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

if (import.meta.main) await runCli(main);
