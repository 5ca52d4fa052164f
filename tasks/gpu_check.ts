/**
 * The Deno side of tasks/gpu_check.sh, run on a machine with an NVIDIA GPU:
 *
 *   bench OUT.json    fbp on CUDA, fp32 and tf32: ResNet18 (one task, no AFF, shared BN)
 *                     training step with AdamW and eval forward at batch 32 and 128, the
 *                     full method (2 tasks on 2 databases, AFF, DAB, soft Gumbel gates,
 *                     AdamW) at 32 images per database, 224×224. Measured as
 *                     tasks/gpu_torch_bench.py measures PyTorch + cuDNN: the input and the
 *                     targets are uploaded once and stay on the device (PyTorch keeps x on
 *                     the device), a training step is forward, loss, backward and AdamW
 *                     with no loss read-back, an inference step is the eval forward under
 *                     no-grad; images/s = the median of up to --reps synchronised steps
 *                     after 2 warm-up steps (which build the cuDNN plans). Peak memory: the
 *                     cache is released after the warm-up (fbp_release_cache frees the
 *                     cached blocks and cuDNN's workspace; PyTorch: empty_cache and
 *                     reset_peak_memory_stats) and the allocator's peak over one step read
 *                     (in use + cached, workspace included). Only inference cases have no
 *                     optimiser; each case's optimiser state is disposed with its network.
 *   train WORK OUT.json [COPY]  short real trainings on the built-in synthetic set with
 *                     --device cuda, their run folders under WORK (not copied back whole:
 *                     only each run's log.jsonl and metrics.json go to COPY/<run>/): the
 *                     loss falls (epoch means) and both tasks beat always answering their
 *                     largest test class; the same run interrupted (SIGINT) after its first
 *                     epoch and resumed (the resume line's position > 0, every epoch logged
 *                     once); and two runs with --deterministic whose epoch logs (losses,
 *                     accuracies) and checkpoint tensors are identical.
 *   summary DIR       joins the test log (DIR/logs/tests.txt), DIR/{fbp_bench,torch_bench,
 *                     train}.json and what gpu_check.sh passes in FBP_CHECK_* variables
 *                     into one JSON object (printed unless --quiet, and written to
 *                     DIR/gpu_check.json) with fbp ÷ PyTorch ratios and the targets
 *                     checked. Exit status 1 when a test, the training, the resume or the
 *                     determinism check failed or did not run (the speed and memory targets
 *                     are reported, not fatal).
 *
 * Time: `FBP_CHECK_DEADLINE` (Unix seconds, set by gpu_check.sh to the end of the step) is
 * when bench and train must be done: bench shortens its repetitions and skips the cases
 * that no longer fit, train skips the sub-checks that no longer fit and stops a training
 * that runs past it. Both write their JSON after every case or sub-check, so a step cut
 * short keeps what it measured. Child Deno processes run with `--cached-only --no-check`
 * and `--lock=$FBP_DENO_LOCK` when it is set (the bundle's cut-down lockfile, see
 * tasks/gpu_bundle.ts; the bundle was type-checked when it was made).
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { backward } from "../src/autograd/tape.ts";
import { type CudaBackend, loadCudaBackend } from "../src/backend/cuda.ts";
import { parseSafetensors } from "../src/io/safetensors.ts";
import { parseNetworkConfig } from "../src/models/config.ts";
import { MultiTaskNet } from "../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../src/models/policy.ts";
import { crossEntropy } from "../src/ops/softmax.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { Rng } from "../src/random/rng.ts";
import { noGrad } from "../src/tensor/grad_mode.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "../src/tensor/tensor.ts";
import { weightedLoss } from "../src/train/step.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Milliseconds left before FBP_CHECK_DEADLINE (Infinity when it is not set). */
function msLeft(): number {
  const d = Number(Deno.env.get("FBP_CHECK_DEADLINE") ?? "");
  return Number.isFinite(d) && d > 0 ? d * 1000 - Date.now() : Infinity;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 1) + "\n");
}

// ---- bench ---------------------------------------------------------------------------------

/** One measured configuration. */
interface NetCase {
  net: "resnet18" | "full";
  /** Images per database per step. */
  batch: number;
  train: boolean;
}

/** A network with its device-resident batch, the step of its case, and its disposal. */
interface BenchNet {
  run: () => void;
  /** Images per step. */
  images: number;
  dispose: () => void;
}

/** The network of a case, its input and targets on the device (uploaded once). */
function buildNet(backend: CudaBackend, c: NetCase): BenchNet {
  setDefaultBackend(backend);
  const full = c.net === "full";
  const tasks = full
    ? [{ name: "beauty", classes: 5, database: "a" }, {
      name: "gender",
      classes: 2,
      database: "b",
    }]
    : [{ name: "beauty", classes: 5, database: "a" }];
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks,
      aff: full,
      bn: full ? "per-database" : "shared",
      dropout: 0,
    }),
    { backend },
  );
  const rng = new Rng(1), side = 224;
  const images = Float32Array.from({ length: c.batch * 3 * side * side }, () => rng.normal());
  // Both tasks see the same images, as in the PyTorch bench (one x for both).
  const x = tensor(images, [c.batch, 3, side, side], { backend });
  const y = tensor(Float32Array.from({ length: c.batch }, (_, j) => j % 2), [c.batch], {
    backend,
  });
  const lambdas = { beauty: 1, gender: 0.6 };
  let opt: AdamW | null = null;
  let run: () => void;
  if (c.train) {
    // Every parameter, as torch.optim.AdamW(net.parameters()); those without a gradient
    // (the policy logits of the ResNet18 case) are skipped by both.
    opt = new AdamW(net.parameters());
    const noise = gumbelNoise(net.policy.logits.size, rng);
    run = () => {
      scope(() => {
        const gates = full
          ? (() => {
            const g = gumbelGates(net.policy.logits, noise, { tau: 5 });
            return new Map([["beauty", g[0]], ["gender", g[1]]]);
          })()
          : net.allExecuteGates();
        const losses: [string, Tensor][] = [];
        for (const t of tasks) {
          const logits = net.forward(x, t.database, {
            training: true,
            gates,
            dropoutSeed: 1,
            tasks: [t.name],
          }).get(t.name)!;
          losses.push([t.name, crossEntropy(logits, y)]);
        }
        backward(weightedLoss(losses, lambdas));
      });
      opt!.step();
      opt!.zeroGrad();
    };
  } else {
    const gates = net.allExecuteGates();
    run = () =>
      noGrad(() =>
        scope(() => {
          for (const t of tasks) net.forward(x, t.database, { gates, tasks: [t.name] });
        })
      );
  }
  return {
    run,
    images: tasks.length * c.batch,
    dispose: () => {
      opt?.dispose();
      net.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A case measured: images/s, the peak of one step from a released cache, reps run. */
interface Measured {
  imagesPerSecond: number;
  peakMiB: number;
  /** In use after releasing the cache before the step: the network, its state, x. */
  baseMiB: number;
  reps: number;
  seconds: number;
}

/** Measures one case within `budgetMs` (fewer reps, at least 3, when time is short). */
function measure(backend: CudaBackend, c: NetCase, reps: number, budgetMs: number): Measured {
  const start = performance.now();
  backend.releaseCache();
  const n = buildNet(backend, c);
  try {
    for (let i = 0; i < 2; i++) n.run(); // warm-up: builds (and times) the cuDNN plans
    backend.sync();
    // Memory of the steady state: one step from a released cache.
    backend.releaseCache();
    const baseMiB = backend.memory().inUseMiB;
    let t = performance.now();
    n.run();
    backend.sync();
    const stepMs = performance.now() - t;
    const peakMiB = backend.memory().peakMiB;
    const left = budgetMs - (performance.now() - start);
    const count = Math.max(3, Math.min(reps, Math.floor((0.8 * left) / Math.max(stepMs, 1))));
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      t = performance.now();
      n.run();
      backend.sync();
      times.push(performance.now() - t);
    }
    return {
      imagesPerSecond: n.images / (median(times) / 1000),
      peakMiB,
      baseMiB,
      reps: count,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    n.dispose();
    backend.releaseCache();
  }
}

/** The bench cases, in the names tasks/gpu_torch_bench.py uses. */
const CASES: [string, NetCase][] = [
  ["resnet18_train_b32", { net: "resnet18", batch: 32, train: true }],
  ["resnet18_infer_b32", { net: "resnet18", batch: 32, train: false }],
  ["resnet18_train_b128", { net: "resnet18", batch: 128, train: true }],
  ["resnet18_infer_b128", { net: "resnet18", batch: 128, train: false }],
  ["full_train_b32", { net: "full", batch: 32, train: true }],
];
const PRECISIONS = ["fp32", "tf32"] as const;

/** How both benches time and count memory (also in the summary). */
export const BENCH_METHOD = {
  timing: "input and targets uploaded once and kept on the device (no host-to-device copy " +
    "in the timed steps, as PyTorch's x); train = forward, loss, backward, AdamW, no loss " +
    "read-back; infer = eval forward without gradients; images/s from the median of the " +
    "synchronised steps after 2 warm-up steps",
  memory: "peak of in use + cached (fbp: its caching allocator, cuDNN workspace included; " +
    "PyTorch: max_memory_reserved) over one step after the warm-up, from a released cache " +
    "(fbp_release_cache / empty_cache + reset_peak_memory_stats); inference cases have no " +
    "optimiser",
};

async function bench(out: string, reps: number): Promise<void> {
  const backend = await loadCudaBackend();
  const res: Record<string, unknown> = {
    device: backend.info.replace(/;.*$/, ""),
    method: BENCH_METHOD,
    complete: false,
  };
  const todo = PRECISIONS.flatMap((p) => CASES.map(([name, c]) => ({ p, name, c })));
  const skipped: string[] = [];
  const results: Record<string, Record<string, number>> = {};
  let lastSeconds = 0;
  for (const [i, { p, name, c }] of todo.entries()) {
    const left = msLeft() - 3000;
    // Skip what no longer fits: a case needs roughly what the last one took (at least 5 s).
    if (left < Math.max(5000, 0.6 * lastSeconds * 1000)) {
      skipped.push(`${p} ${name}`);
      continue;
    }
    backend.setMath({ precision: p, deterministic: false });
    const budget = Number.isFinite(left) ? left / (todo.length - i) : Infinity;
    const m = measure(backend, c, reps, budget);
    lastSeconds = m.seconds;
    const r = results[p] ??= {};
    r[name] = m.imagesPerSecond;
    r[`${name}_peak_mib`] = m.peakMiB;
    r[`${name}_base_mib`] = m.baseMiB;
    r[`${name}_reps`] = m.reps;
    console.error(
      `fbp ${p} ${name}: ${m.imagesPerSecond.toFixed(1)} img/s, peak ${
        m.peakMiB.toFixed(0)
      } MiB (${m.reps} reps, ${m.seconds.toFixed(1)} s)`,
    );
    await writeJson(out, { ...res, ...results }); // kept if the step is cut short
  }
  await writeJson(out, {
    ...res,
    ...results,
    complete: skipped.length === 0,
    ...(skipped.length ? { skipped: `out of time: ${skipped.join(", ")}` } : {}),
  });
}

// ---- train -----------------------------------------------------------------------------------

/**
 * FBP_CHECK_DRY_RUN=1: the train sub-command's own logic checked where there is no GPU —
 * on the CPU, every run as short as the resume run (too short to beat chance).
 */
const DRY = Deno.env.get("FBP_CHECK_DRY_RUN") === "1";
const DEVICE = DRY ? "cpu" : "cuda";
/** Short runs of the default preset (synthetic, 2 × 400 images at 64×64) on CUDA. */
const TRAIN_ARGS = ["--device", DEVICE, "--workers", "2", "--seed", "1", "--json"];
/** Epochs of the resume run and of the checked training (long enough to beat chance). */
const SHORT = ["--warmup-epochs", "1", "--policy-epochs", "1", "--retrain-epochs", "2"];
const LONG = DRY
  ? SHORT
  : ["--warmup-epochs", "3", "--policy-epochs", "2", "--retrain-epochs", "8"];

/** `deno run` flags of the child trainings (the bundle is type-checked already). */
function denoRunFlags(): string[] {
  const lock = Deno.env.get("FBP_DENO_LOCK");
  return ["run", "-A", "--cached-only", "--no-check", ...(lock ? [`--lock=${lock}`] : [])];
}

interface RunOutcome {
  code: number;
  seconds: number;
  /** The --json summary (last stdout line), when the run finished. */
  result: Record<string, unknown> | null;
  /** Stopped at the deadline. */
  timedOut: boolean;
  stderrTail: string;
}

/** One line of log.jsonl (kind "epoch", "step" or "resume", and their fields). */
type LogLine = Record<string, unknown> & { kind?: string };

/** Every complete line of a run's log.jsonl (a half-written last line is left out). */
async function logLines(dir: string): Promise<LogLine[]> {
  const text = await Deno.readTextFile(join(dir, "log.jsonl")).catch(() => "");
  const out: LogLine[] = [];
  for (const l of text.split("\n")) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      // being written
    }
  }
  return out;
}

/** A history entry of log.jsonl. */
interface Entry extends LogLine {
  stage: string;
  epoch: number;
  loss: number;
  tasks: Record<string, unknown>;
}

/** The epoch lines of a run's log (its step and resume lines left out). */
async function history(dir: string): Promise<Entry[]> {
  return (await logLines(dir)).filter((l): l is Entry => l.kind === "epoch");
}

/**
 * Runs tasks/train.ts. With `stopAfterFirstEpoch` (the run folder), SIGINT once its
 * log.jsonl holds an epoch line: the trainer finishes the step it is in, saves
 * last.safetensors and exits with 130. SIGINT too at the deadline, then SIGKILL 8 s later.
 */
async function train(args: string[], stopAfterFirstEpoch = ""): Promise<RunOutcome> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...denoRunFlags(), join(ROOT, "tasks/train.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let done = false, timedOut = false;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  const left = msLeft();
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (Number.isFinite(left)) {
    timers.push(setTimeout(() => {
      timedOut = true;
      kill("SIGINT");
      timers.push(setTimeout(() => kill("SIGKILL"), 8000));
    }, Math.max(0, left - 10_000)));
  }
  if (stopAfterFirstEpoch) {
    (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 250));
        if ((await history(stopAfterFirstEpoch)).length > 0) {
          if (!done) kill("SIGINT");
          return;
        }
      }
    })();
  }
  const out = await child.output();
  done = true;
  for (const t of timers) clearTimeout(t);
  const dec = new TextDecoder();
  const lines = dec.decode(out.stdout).trim().split("\n");
  let result: Record<string, unknown> | null = null;
  try {
    result = JSON.parse(lines[lines.length - 1]);
  } catch {
    result = null;
  }
  return {
    code: out.code,
    seconds: (performance.now() - start) / 1000,
    result,
    timedOut,
    stderrTail: dec.decode(out.stderr).split("\n").slice(-8).join("\n"),
  };
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** Test metrics of metrics.json as far as the chance check needs them. */
type TestMetrics = Record<string, { test: { accuracy: number; confusion: number[][] } }>;

/**
 * Whether every task beats always answering its largest test class (by 2 points): the
 * accuracy and that class's share of the test split (from the confusion matrix's rows).
 */
function aboveChance(metrics: Record<string, unknown> | null) {
  const tasks = (metrics?.tasks ?? {}) as TestMetrics;
  const rows: Record<string, { accuracy: number; largestClassShare: number }> = {};
  let ok = Object.keys(tasks).length >= 2;
  for (const [t, m] of Object.entries(tasks)) {
    const support = (m.test.confusion ?? []).map((r) => r.reduce((a, b) => a + b, 0));
    const total = support.reduce((a, b) => a + b, 0);
    const share = total > 0 ? Math.max(...support) / total : 1;
    rows[t] = { accuracy: m.test.accuracy, largestClassShare: share };
    ok &&= m.test.accuracy > share + 0.02;
  }
  return { tasks: rows, ok };
}

/** Every tensor of a .safetensors file by name (metadata, which holds times, left out). */
async function tensorsOf(path: string): Promise<Map<string, Float32Array> | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  const { tensors } = parseSafetensors(bytes, { source: path });
  return new Map([...tensors].map(([k, t]) => [k, t.data]));
}

/** Names of the tensors that differ bit for bit (or exist in one file only). */
function differingTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>) {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k), y = b.get(k);
    if (!x || !y || x.length !== y.length) {
      out.push(k);
      continue;
    }
    const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const v = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < u.length; i++) {
      if (u[i] !== v[i]) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

/**
 * Compares the tensors of two runs' checkpoint.safetensors (required) and
 * last.safetensors (when both have one).
 */
async function compareWeights(dirA: string, dirB: string) {
  const files: Record<string, unknown> = {};
  let ok = true;
  for (const name of ["checkpoint.safetensors", "last.safetensors"]) {
    const [a, b] = [await tensorsOf(join(dirA, name)), await tensorsOf(join(dirB, name))];
    if (!a || !b) {
      if (name === "checkpoint.safetensors" || a || b) {
        ok = false;
        files[name] = { missing: !a ? dirA : dirB };
      }
      continue;
    }
    const diff = differingTensors(a, b);
    ok &&= diff.length === 0 && a.size > 0;
    files[name] = { tensors: a.size, differing: diff.length, firstDiffering: diff.slice(0, 10) };
  }
  return { ok, files };
}

/** An epoch line without its wall-clock field: what two deterministic runs share. */
function comparable(h: Entry[]): string {
  return JSON.stringify(h.map(({ seconds: _s, ...rest }) => rest));
}

/** Copies a run's log.jsonl and metrics.json (if any) to copyDir/<its name>/. */
async function copyRunFiles(runDir: string, copyDir: string, name: string): Promise<void> {
  if (!copyDir) return;
  const to = join(copyDir, name);
  await Deno.mkdir(to, { recursive: true });
  for (const f of ["log.jsonl", "metrics.json"]) {
    await Deno.copyFile(join(runDir, f), join(to, f)).catch(() => {});
  }
}

/** Whether `needSeconds` fit before the deadline; else the reason it is skipped. */
function tooLate(needSeconds: number): string | null {
  const left = msLeft() / 1000 - 5;
  return left >= needSeconds
    ? null
    : `skipped: ${Math.max(0, left).toFixed(0)} s left before the deadline, needs about ${
      needSeconds.toFixed(0)
    } s`;
}

async function trainCheck(work: string, out: string, copyDir: string): Promise<void> {
  await Deno.mkdir(work, { recursive: true });
  const res: Record<string, unknown> = {};
  const save = () => writeJson(out, res);
  const withOut = (name: string, extra: string[] = []) => [
    ...TRAIN_ARGS,
    ...extra,
    "--out",
    join(work, name),
  ];

  // 1. A real training, deterministic (it is also the first of the two identical runs).
  const skipA = tooLate(30);
  if (skipA) {
    res.training = res.resume = res.deterministic = { ok: false, skipped: skipA };
    return await save();
  }
  const a = await train(withOut("det-a", [...LONG, "--deterministic"]));
  await copyRunFiles(join(work, "det-a"), copyDir, "det-a");
  const hist = await history(join(work, "det-a"));
  const warm = hist.filter((h) => h.stage === "warmup"),
    re = hist.filter((h) => h.stage === "retrain");
  // Epoch means (log.jsonl's epoch lines; its step lines are single steps).
  const falls = warm.length > 0 && re.length > 1 && re[re.length - 1].loss < warm[0].loss &&
    re[re.length - 1].loss < re[0].loss;
  const chance = aboveChance(await readJson(join(work, "det-a", "metrics.json")));
  res.training = {
    ok: a.code === 0 && falls && chance.ok,
    exitCode: a.code,
    seconds: a.seconds,
    ...(a.timedOut ? { timedOut: true } : {}),
    lossFalls: falls,
    epochLosses: hist.map((h) => ({ stage: h.stage, epoch: h.epoch, loss: h.loss })),
    test: chance.tasks,
    aboveLargestClass: chance.ok,
    ...(a.code !== 0 ? { stderr: a.stderrTail } : {}),
  };
  await save();

  // 2. Interrupted after its first epoch, then resumed on the GPU.
  const skipR = tooLate(0.6 * a.seconds + 15);
  if (skipR) {
    res.resume = { ok: false, skipped: skipR };
  } else {
    const stopped = join(work, "resume");
    const s = await train(withOut("resume", SHORT), stopped);
    const r = await train(["--resume", stopped, "--device", DEVICE, "--json"]);
    await copyRunFiles(stopped, copyDir, "resume");
    const lines = await logLines(stopped);
    const resumes = lines.filter((l) => l.kind === "resume");
    const at = lines.findIndex((l) => l.kind === "resume");
    const epochs = lines.filter((l): l is Entry => l.kind === "epoch");
    const before = at < 0 ? epochs.length : lines.slice(0, at).filter((l) => l.kind === "epoch")
      .length;
    const keys = epochs.map((e) => `${e.stage} ${e.epoch}`);
    const repeated = keys.filter((k, i) => keys.indexOf(k) !== i);
    const position = Number(resumes[0]?.position ?? -1);
    const planned = (((await readJson(join(stopped, "metrics.json")))?.history ?? []) as unknown[])
      .length;
    const continued = resumes.length === 1 && position > 0 && before === position;
    res.resume = {
      ok: s.code === 130 && r.code === 0 && r.result !== null && continued &&
        repeated.length === 0 && planned > 0 && epochs.length === planned,
      interruptedExitCode: s.code,
      resumedExitCode: r.code,
      ...(s.timedOut || r.timedOut ? { timedOut: true } : {}),
      resumedAtPosition: position,
      epochsBeforeResume: before,
      resumeLines: resumes.length,
      epochsLogged: epochs.length,
      epochsPlanned: planned,
      repeatedEpochs: repeated,
      ...(r.code !== 0 ? { stderr: r.stderrTail } : s.code !== 130 ? { stderr: s.stderrTail } : {}),
    };
  }
  await save();

  // 3. The first run again: identical epoch logs (losses, accuracies) and tensors.
  const skipB = tooLate(a.seconds * 1.1 + 10);
  if (skipB) {
    res.deterministic = { ok: false, skipped: skipB };
  } else {
    const b = await train(withOut("det-b", [...LONG, "--deterministic"]));
    await copyRunFiles(join(work, "det-b"), copyDir, "det-b");
    const hb = await history(join(work, "det-b"));
    const sameLog = hist.length > 0 && comparable(hist) === comparable(hb);
    const weights = await compareWeights(join(work, "det-a"), join(work, "det-b"));
    res.deterministic = {
      ok: a.code === 0 && b.code === 0 && sameLog && weights.ok,
      identicalEpochLogs: sameLog,
      epochLosses: { a: hist.map((h) => h.loss), b: hb.map((h) => h.loss) },
      identicalTensors: weights.ok,
      files: weights.files,
      ...(b.timedOut ? { timedOut: true } : {}),
      ...(b.code !== 0 ? { stderr: b.stderrTail } : {}),
    };
  }
  await save();
}

// ---- summary ---------------------------------------------------------------------------------

/** The targets on the same GPU and precision: ratios fbp ÷ PyTorch. */
function targets(fbp: Record<string, unknown> | null, torch: Record<string, unknown> | null) {
  const out: Record<string, unknown> = {};
  let ok = fbp !== null && torch !== null;
  const missing: string[] = [];
  for (const precision of PRECISIONS) {
    const f = (fbp?.[precision] ?? {}) as Record<string, number>;
    const t = (torch?.[precision] ?? {}) as Record<string, number>;
    const rows: Record<string, unknown> = {};
    for (const [name] of CASES) {
      if (f[name] === undefined || t[name] === undefined) {
        missing.push(`${precision} ${name} (${f[name] === undefined ? "fbp" : "PyTorch"})`);
        rows[name] = { pass: null, missing: f[name] === undefined ? "fbp" : "PyTorch" };
        ok = false;
        continue;
      }
      const want = name.startsWith("full") ? 1.5 : 1.0;
      const speed = f[name] / t[name], mem = f[`${name}_peak_mib`] / t[`${name}_peak_mib`];
      const pass = speed >= want && mem <= 1;
      ok &&= pass;
      rows[name] = {
        fbp: f[name],
        torch: t[name],
        ratio: speed,
        target: want,
        fbpPeakMiB: f[`${name}_peak_mib`],
        torchPeakMiB: t[`${name}_peak_mib`],
        memoryRatio: mem,
        reps: { fbp: f[`${name}_reps`], torch: t[`${name}_reps`] },
        pass,
      };
    }
    out[precision] = rows;
  }
  return {
    ok,
    method: (fbp?.method as unknown) ?? BENCH_METHOD,
    ...(missing.length ? { missing } : {}),
    ...out,
  };
}

/** The test run's summary line and failed test names, from deno test's output. */
async function testResults(log: string): Promise<Record<string, unknown>> {
  // gpu_check.sh runs the tests under NO_COLOR: no escapes to strip.
  const text = await Deno.readTextFile(log).catch(() => "");
  const line = text.split("\n").filter((l) => /^(ok|FAILED) \| /.test(l)).pop() ?? "";
  const count = (what: string) => Number(new RegExp(`(\\d+) ${what}`).exec(line)?.[1] ?? 0);
  const failed = text.split("\n").filter((l) => / \.\.\. FAILED/.test(l)).map((l) =>
    l.replace(/ \.\.\. FAILED.*/, "")
  );
  return {
    ok: line.startsWith("ok") && count("passed") > 0,
    passed: count("passed"),
    failed: count("failed"),
    ignored: count("ignored"),
    failedNames: failed.slice(0, 30),
    ...(line ? {} : { error: `no test summary in ${log}` }),
  };
}

/** FBP_CHECK_<KEY> variables as { key: value } (gpu, build, backend, steps, notes …). */
function checkInfo(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (k.startsWith("FBP_CHECK_") && k !== "FBP_CHECK_DEADLINE") {
      out[k.slice(10).toLowerCase()] = v;
    }
  }
  return out;
}

async function summary(dir: string, quiet: boolean): Promise<boolean> {
  const [fbp, torch, trainRes] = await Promise.all(
    ["fbp_bench", "torch_bench", "train"].map((n) => readJson(join(dir, `${n}.json`))),
  );
  const info = checkInfo();
  const tests = await testResults(join(dir, "logs", "tests.txt"));
  const t = targets(fbp, torch);
  const check = (x: Record<string, unknown> | null, k: string) =>
    (x?.[k] as { ok?: boolean } | undefined)?.ok === true;
  const report = {
    ...info,
    tests,
    training: trainRes?.training ?? null,
    resume: trainRes?.resume ?? null,
    deterministic: trainRes?.deterministic ?? null,
    benchmark: t,
    pass: {
      tests: tests?.ok === true,
      training: check(trainRes, "training"),
      resume: check(trainRes, "resume"),
      deterministic: check(trainRes, "deterministic"),
      targets: t.ok,
    },
  };
  const text = JSON.stringify(report, null, 1);
  await Deno.writeTextFile(join(dir, "gpu_check.json"), text + "\n");
  if (!quiet) console.log(text);
  return Object.values(report.pass).slice(0, 4).every((v) => v);
}

// ---- main ------------------------------------------------------------------------------------

if (import.meta.main) {
  const [cmd, a, b, c] = Deno.args;
  if (cmd === "bench" && a) {
    await bench(a, Number(Deno.env.get("FBP_GPU_REPS") ?? "10"));
  } else if (cmd === "train" && a && b) {
    await trainCheck(a, b, c ?? "");
  } else if (cmd === "summary" && a) {
    if (!await summary(a, b === "--quiet")) Deno.exitCode = 1;
  } else {
    console.error(
      "Usage: deno run -A tasks/gpu_check.ts bench OUT.json | train WORK OUT.json [COPY] | " +
        "summary DIR [--quiet]",
    );
    Deno.exitCode = 2;
  }
}
