/**
 * The Deno side of tasks/gpu_check.sh, run on a machine with an NVIDIA GPU:
 *
 *   bench OUT.json    fbp on CUDA, fp32 and tf32: ResNet18 (one task, no AFF, shared BN)
 *                     training step with AdamW and eval forward at batch 32 and 128, the
 *                     full method (2 tasks on 2 databases, AFF, DAB, soft Gumbel gates,
 *                     AdamW) at 32 images per database, 224×224; images/s (median of
 *                     --reps after 2 warm-up steps, which build the cuDNN plans) and the
 *                     allocator's peak (reset before each phase, as the PyTorch side
 *                     does with reset_peak_memory_stats) — tasks/gpu_torch_bench.py
 *                     measures the same on PyTorch + cuDNN.
 *   train DIR OUT.json  short real trainings on the built-in synthetic set with
 *                     --device cuda: the loss falls and both tasks beat chance; the same
 *                     run interrupted (SIGINT) after its first epoch and resumed; and two
 *                     runs with --deterministic whose logs and weights are identical.
 *   summary DIR       joins the test log (DIR/logs/tests.txt), DIR/{fbp_bench,torch_bench,
 *                     train}.json and what gpu_check.sh passes in FBP_CHECK_* variables
 *                     into one JSON object (printed, and written to DIR/gpu_check.json)
 *                     with fbp ÷ PyTorch ratios and the targets checked. Exit
 *                     status 1 when a test, the training, the resume or the determinism
 *                     check failed (the speed and memory targets are reported, not fatal).
 * Child Deno processes get `--lock=$FBP_DENO_LOCK` when it is set (the bundle's cut-down
 * lockfile, see tasks/gpu_bundle.ts).
 * @module
 */
import { join } from "node:path";
import type { Backend } from "../src/backend/backend.ts";
import { type CudaBackend, loadCudaBackend } from "../src/backend/cuda.ts";
import { parseNetworkConfig } from "../src/models/config.ts";
import { MultiTaskNet } from "../src/models/network.ts";
import { gumbelGates, gumbelNoise } from "../src/models/policy.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { Rng } from "../src/random/rng.ts";
import { setDefaultBackend } from "../src/tensor/tensor.ts";
import { predictBatch, type StepBatch, trainStep } from "../src/train/step.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// ---- bench ---------------------------------------------------------------------------------

/** One measured configuration. */
interface NetCase {
  net: "resnet18" | "full";
  /** Images per database per step. */
  batch: number;
  train: boolean;
}

/** A network, its batches and the closures that run one step of each kind. */
function buildNet(backend: Backend, c: NetCase) {
  setDefaultBackend(backend);
  const full = c.net === "full";
  const net = new MultiTaskNet(
    parseNetworkConfig({
      tasks: full
        ? [{ name: "beauty", classes: 5, database: "a" }, {
          name: "gender",
          classes: 2,
          database: "b",
        }]
        : [{ name: "beauty", classes: 5, database: "a" }],
      aff: full,
      bn: full ? "per-database" : "shared",
      dropout: 0,
    }),
    { backend },
  );
  const rng = new Rng(1), side = 224;
  const images = Float32Array.from({ length: c.batch * 3 * side * side }, () => rng.normal());
  const names = full ? ["beauty", "gender"] : ["beauty"];
  const batches: StepBatch[] = names.map((task, i) => ({
    database: i === 0 ? "a" : "b",
    images,
    size: side,
    targets: { [task]: Int32Array.from({ length: c.batch }, (_, j) => j % 2) },
  }));
  const noise = gumbelNoise(net.policy.logits.size, rng);
  const opt = new AdamW(net.weightParameters());
  const infer = () => {
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
        if (!full) return net.allExecuteGates();
        const g = gumbelGates(net.policy.logits, noise, { tau: 5 });
        return new Map([["beauty", g[0]], ["gender", g[1]]]);
      },
    });
    opt.step();
    for (const p of net.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  return { net, run: c.train ? step : infer, images: batches.length * c.batch };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Images/s and peak MiB of one case (the peak counted from a released cache). */
function measure(backend: CudaBackend, c: NetCase, reps: number) {
  backend.releaseCache();
  const { net, run, images } = buildNet(backend, c);
  for (let i = 0; i < 2; i++) run();
  backend.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    run();
    backend.sync();
    times.push(performance.now() - t);
  }
  const peakMiB = backend.memory().peakMiB;
  net.dispose();
  return { imagesPerSecond: images / (median(times) / 1000), peakMiB };
}

/** The bench cases, in the names tasks/gpu_torch_bench.py uses. */
const CASES: [string, NetCase][] = [
  ["resnet18_train_b32", { net: "resnet18", batch: 32, train: true }],
  ["resnet18_infer_b32", { net: "resnet18", batch: 32, train: false }],
  ["resnet18_train_b128", { net: "resnet18", batch: 128, train: true }],
  ["resnet18_infer_b128", { net: "resnet18", batch: 128, train: false }],
  ["full_train_b32", { net: "full", batch: 32, train: true }],
];

async function bench(out: string, reps: number): Promise<void> {
  const backend = await loadCudaBackend();
  const res: Record<string, unknown> = { device: backend.info.replace(/;.*$/, "") };
  for (const precision of ["fp32", "tf32"] as const) {
    backend.setMath({ precision, deterministic: false });
    const r: Record<string, number> = {};
    for (const [name, c] of CASES) {
      const m = measure(backend, c, reps);
      r[name] = m.imagesPerSecond;
      r[`${name}_peak_mib`] = m.peakMiB;
      console.error(
        `fbp ${precision} ${name}: ${m.imagesPerSecond.toFixed(1)} img/s, peak ${
          m.peakMiB.toFixed(0)
        } MiB`,
      );
    }
    res[precision] = r;
  }
  await Deno.writeTextFile(out, JSON.stringify(res, null, 1) + "\n");
}

// ---- train -----------------------------------------------------------------------------------

/** Short runs of the default preset (synthetic, 2 × 400 images at 64×64) on CUDA. */
const TRAIN_ARGS = ["--device", "cuda", "--workers", "2", "--seed", "1", "--json"];
/** Epochs of the checked training (long enough to beat chance) and of the resume run. */
const LONG = ["--warmup-epochs", "3", "--policy-epochs", "2", "--retrain-epochs", "8"];
const SHORT = ["--warmup-epochs", "1", "--policy-epochs", "1", "--retrain-epochs", "2"];

interface RunOutcome {
  code: number;
  seconds: number;
  /** The --json summary (last stdout line), when the run finished. */
  result: Record<string, unknown> | null;
  stderrTail: string;
}

function lockFlag(): string[] {
  const lock = Deno.env.get("FBP_DENO_LOCK");
  return lock ? [`--lock=${lock}`] : [];
}

async function train(args: string[], stopAfterFirstEpoch = ""): Promise<RunOutcome> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--cached-only", ...lockFlag(), join(ROOT, "tasks/train.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stopAfterFirstEpoch) {
    // Interrupt once log.jsonl holds an epoch: the trainer finishes the step, saves
    // last.safetensors and exits with 130.
    (async () => {
      const log = join(stopAfterFirstEpoch, "log.jsonl");
      for (let i = 0; i < 1200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const text = await Deno.readTextFile(log).catch(() => "");
        if (text.trim()) {
          child.kill("SIGINT");
          return;
        }
      }
    })();
  }
  const out = await child.output();
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
    stderrTail: dec.decode(out.stderr).split("\n").slice(-8).join("\n"),
  };
}

interface Entry {
  stage: string;
  epoch: number;
  loss: number;
  tasks: Record<string, unknown>;
}

async function history(dir: string): Promise<Entry[]> {
  const text = await Deno.readTextFile(join(dir, "log.jsonl")).catch(() => "");
  return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

/** SHA-256 of every .safetensors file in a run folder, by name. */
async function weightHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".safetensors")) {
        const h = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(p)));
        out[p.slice(dir.length + 1)] = Array.from(h, (b) => b.toString(16).padStart(2, "0"))
          .join("");
      }
    }
  };
  await walk(dir).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err; // a run that never started
  });
  return out;
}

/** Test accuracy per task and whether it beats chance (1/K: 5 grades, 2 genders). */
function aboveChance(result: Record<string, unknown> | null) {
  const classes: Record<string, number> = { beauty: 5, gender: 2 };
  const tasks = (result?.tasks ?? {}) as Record<string, { test: { accuracy: number } }>;
  const acc = Object.fromEntries(Object.entries(tasks).map(([t, m]) => [t, m.test.accuracy]));
  const ok = Object.keys(tasks).length >= 2 &&
    Object.entries(acc).every(([t, a]) => a > 1 / (classes[t] ?? 2) + 0.05);
  return { accuracy: acc, ok };
}

async function trainCheck(dir: string, out: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const res: Record<string, unknown> = {};
  const withOut = (name: string, extra: string[] = []) => [
    ...TRAIN_ARGS,
    ...extra,
    "--out",
    join(dir, name),
  ];

  // 1. A real training, deterministic (it is also the first of the two identical runs).
  const a = await train(withOut("det-a", [...LONG, "--deterministic"]));
  const hist = await history(join(dir, "det-a"));
  const warm = hist.filter((h) => h.stage === "warmup"),
    re = hist.filter((h) => h.stage === "retrain");
  const losses = hist.map((h) => h.loss);
  const falls = warm.length > 0 && re.length > 1 && re[re.length - 1].loss < warm[0].loss &&
    re[re.length - 1].loss < re[0].loss;
  const chance = aboveChance(a.result);
  res.training = {
    ok: a.code === 0 && falls && chance.ok,
    exitCode: a.code,
    seconds: a.seconds,
    lossFalls: falls,
    losses,
    testAccuracy: chance.accuracy,
    aboveChance: chance.ok,
    ...(a.code !== 0 ? { stderr: a.stderrTail } : {}),
  };

  // 2. The same run again: identical history (losses, accuracies) and weights.
  const b = await train(withOut("det-b", [...LONG, "--deterministic"]));
  const strip = (h: Entry[]) =>
    JSON.stringify(h.map(({ stage, epoch, loss, tasks }) => ({ stage, epoch, loss, tasks })));
  const [ha, hb] = [strip(hist), strip(await history(join(dir, "det-b")))];
  const [wa, wb] = [await weightHashes(join(dir, "det-a")), await weightHashes(join(dir, "det-b"))];
  const sameWeights = Object.keys(wa).length > 0 && JSON.stringify(wa) === JSON.stringify(wb);
  res.deterministic = {
    ok: a.code === 0 && b.code === 0 && ha === hb && sameWeights,
    identicalHistory: ha === hb,
    identicalWeights: sameWeights,
    files: Object.keys(wa).length,
    ...(b.code !== 0 ? { stderr: b.stderrTail } : {}),
  };

  // 3. Interrupted after its first epoch, then resumed on the GPU.
  const stopped = join(dir, "resume");
  const s = await train(withOut("resume", SHORT), stopped);
  const r = await train(["--resume", stopped, "--device", "cuda", "--json"]);
  res.resume = {
    ok: s.code === 130 && r.code === 0 && r.result !== null,
    interruptedExitCode: s.code,
    resumedExitCode: r.code,
    testAccuracy: aboveChance(r.result).accuracy,
    ...(r.code !== 0 ? { stderr: r.stderrTail } : {}),
  };
  await Deno.writeTextFile(out, JSON.stringify(res, null, 1) + "\n");
}

// ---- summary ---------------------------------------------------------------------------------

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** The targets on the same GPU and precision: ratios fbp ÷ PyTorch. */
function targets(fbp: Record<string, unknown> | null, torch: Record<string, unknown> | null) {
  const out: Record<string, unknown> = {};
  let ok = fbp !== null && torch !== null;
  for (const precision of ["fp32", "tf32"]) {
    const f = (fbp?.[precision] ?? {}) as Record<string, number>;
    const t = (torch?.[precision] ?? {}) as Record<string, number>;
    const rows: Record<string, unknown> = {};
    for (const [name] of CASES) {
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
        pass,
      };
    }
    out[precision] = rows;
  }
  return { ok, ...out };
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

/** FBP_CHECK_<KEY> variables as { key: value } (gpu, build, backend, steps …). */
function checkInfo(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (k.startsWith("FBP_CHECK_")) out[k.slice(10).toLowerCase()] = v;
  }
  return out;
}

async function summary(dir: string): Promise<boolean> {
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
  console.log(text);
  return Object.values(report.pass).slice(0, 4).every((v) => v);
}

// ---- main ------------------------------------------------------------------------------------

if (import.meta.main) {
  const [cmd, a, b] = Deno.args;
  if (cmd === "bench" && a) {
    await bench(a, Number(Deno.env.get("FBP_GPU_REPS") ?? "10"));
  } else if (cmd === "train" && a && b) {
    await trainCheck(a, b);
  } else if (cmd === "summary" && a) {
    if (!await summary(a)) Deno.exitCode = 1;
  } else {
    console.error(
      "Usage: deno run -A tasks/gpu_check.ts bench OUT.json | train DIR OUT.json | summary DIR",
    );
    Deno.exitCode = 2;
  }
}
