/**
 * Whole-run parity of fbp with PyTorch on real images (docs/parity.md): exports the
 * scikit-learn handwritten digits as a manifest database (tasks/make_digits.py), trains the
 * single-task ResNet18 baseline with fbp (`tasks/train.ts`) and with an independent
 * PyTorch script of the same recipe (tasks/parity_torch.py) for each seed, AFF off and on,
 * and prints a markdown table of test accuracy (mean ± sample std, and per seed).
 *
 * It needs Debian's PyTorch (python3-torch, python3-torchvision, python3-sklearn), so it is
 * a benchmark to run by hand, not a test. Runs go one at a time, each on `--threads`
 * threads (OMP_NUM_THREADS for fbp's oneDNN/OpenMP, torch.set_num_threads for PyTorch) and
 * fbp decodes inline (`--workers 0`), so the two sides get the same cores.
 *
 * Usage: deno run -A tasks/parity.ts [--seeds 3] [--epochs 10] [--python python3]
 *          [--threads 1] [--out DIR] [--aff off,on] [--frameworks fbp,torch]
 *          [--torch-args="..."] [--precision fp32,bf16] [--json]
 * Each run's result is kept as DIR/<framework>-aff-<off|on>-seed<S>.json (bf16 runs:
 * DIR/<framework>-bf16-aff-…); a run whose file is already there (same options) is not run
 * again, so an interrupted comparison resumes and a bf16 comparison reuses fp32 runs.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "./_cli/main.ts";
import { numberFlag, parseFlags } from "./_cli/options.ts";

const HELP = `Usage: deno run -A tasks/parity.ts [options]

Trains the single-task ResNet18 baseline on the scikit-learn digits (32×32, seeded 6:2:2
split) with fbp and with PyTorch (tasks/parity_torch.py), AFF off and on, one run at a
time, and prints test accuracy as a markdown table.

  --seeds N           seeds 0..N-1 (3)
  --epochs N          epochs of every run (10)
  --python EXE        Python with torch, torchvision, sklearn (python3; Debian: /usr/bin/python3)
  --threads N         threads of each run (1)
  --out DIR           where the digits, runs and results go (default: a new temporary folder)
  --aff LIST          off,on (default both)
  --frameworks LIST   fbp,torch (default both)
  --torch-args="..."  extra flags for parity_torch.py (ablations), e.g.
                      --torch-args="--global-bn off" (write it with "=")
  --precision LIST    fp32,bf16 (default fp32): bf16 trains fbp with --precision bf16 and
                      PyTorch under torch.autocast(bfloat16); the table compares each with
                      the other framework and with fp32
  --json              also print all results as one JSON line (last line of stdout)
  -h, --help          this help`;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Recipe flags both sides share: 32-px digits as they are (no flip, no crop room). */
const RECIPE = ["--image-size", "32", "--resize", "32", "--no-flip"];

type Framework = "fbp" | "torch";
type Precision = "fp32" | "bf16";

/** One finished run. */
interface RunRecord {
  framework: Framework;
  /** Absent in records written before the precision dimension: fp32. */
  precision?: Precision;
  aff: boolean;
  seed: number;
  epochs: number;
  testAccuracy: number;
  /** Training time the run reports (excludes start-up and the final test). */
  trainSeconds: number;
  /** Wall time of the whole process. */
  wallSeconds: number;
  /** The command, for the record. */
  command: string[];
  /** The run's own JSON result (PyTorch: with the per-epoch history). */
  result: Record<string, unknown>;
}

/** Runs a command, returns its stdout; throws with the tail of stderr on failure. */
async function run(cmd: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-15).join("\n");
    throw new Error(`Cannot run ${cmd.slice(0, 4).join(" ")} …: exit code ${out.code}\n${err}`);
  }
  return stdout;
}

/** The last line of `text` that parses as a JSON object. */
function lastJson(text: string): Record<string, unknown> {
  const lines = text.trim().split("\n").reverse();
  for (const l of lines) {
    if (!l.startsWith("{")) continue;
    try {
      return JSON.parse(l);
    } catch { /* not JSON: keep looking */ }
  }
  throw new Error(`Cannot find a JSON result in the output: ${text.slice(-500)}`);
}

/** Mean and sample standard deviation (n − 1). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const ss = xs.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : NaN };
}

const pct = (x: number) => (100 * x).toFixed(2);

/** The markdown table and the verdict lines. */
function table(records: readonly RunRecord[], seeds: number[], testImages: number): string {
  const lines = [
    "| framework | precision | AFF | test accuracy % (mean ± std) | " +
    seeds.map((s) => `seed ${s}`).join(" | ") + " | train s/run |",
    `|---|---|---|--:|${seeds.map(() => "--:|").join("")}--:|`,
  ];
  const key = (fw: Framework, p: Precision, aff: boolean) => `${fw}|${p}|${aff}`;
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const k = key(r.framework, r.precision ?? "fp32", r.aff);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const name = (fw: Framework) => fw === "fbp" ? "fbp" : "PyTorch";
  const stats = new Map<string, { mean: number; std: number }>();
  for (const fw of ["fbp", "torch"] as const) {
    for (const p of ["fp32", "bf16"] as const) {
      for (const aff of [false, true]) {
        const rs = groups.get(key(fw, p, aff));
        if (!rs) continue;
        const s = meanStd(rs.map((r) => r.testAccuracy));
        stats.set(key(fw, p, aff), s);
        const bySeed = seeds.map((seed) => rs.find((r) => r.seed === seed));
        const secs = meanStd(rs.map((r) => r.trainSeconds)).mean;
        lines.push(
          `| ${name(fw)} | ${p} | ${aff ? "on" : "off"} | ` +
            `${pct(s.mean)} ± ${rs.length > 1 ? pct(s.std) : "–"} | ` +
            bySeed.map((r) => (r ? pct(r.testAccuracy) : "–")).join(" | ") +
            ` | ${secs.toFixed(0)} |`,
        );
      }
    }
  }
  lines.push("");
  // A std from 3 seeds is itself uncertain: each verdict is given against both sides'.
  const within = (d: number, std: number) =>
    Number.isNaN(std) ? "no std (one seed)" : Math.abs(d) <= std ? "yes" : "no";
  const verdict = (what: string, a: string, b: string) => {
    const x = stats.get(a), y = stats.get(b);
    if (!x || !y) return;
    const d = x.mean - y.mean;
    const [an, bn] = [a, b].map((k) => {
      const [fw, p] = k.split("|");
      return `${name(fw as Framework)} ${p}`;
    });
    lines.push(
      `${what}: ${an} − ${bn} = ${d >= 0 ? "+" : ""}${pct(d)} points ` +
        `(one test image = ${pct(1 / testImages)}); within ${bn}'s std (${pct(y.std)}): ` +
        `${within(d, y.std)}; within ${an}'s std (${pct(x.std)}): ${within(d, x.std)}`,
    );
  };
  for (const aff of [false, true]) {
    const what = `AFF ${aff ? "on" : "off"}`;
    for (const p of ["fp32", "bf16"] as const) {
      verdict(what, key("fbp", p, aff), key("torch", p, aff));
    }
    verdict(what, key("fbp", "bf16", aff), key("fbp", "fp32", aff));
    verdict(what, key("fbp", "bf16", aff), key("torch", "fp32", aff));
  }
  for (const fw of ["fbp", "torch"] as const) {
    for (const p of ["fp32", "bf16"] as const) {
      const off = stats.get(key(fw, p, false)), on = stats.get(key(fw, p, true));
      if (!off || !on) continue;
      const d = on.mean - off.mean;
      lines.push(`${name(fw)} ${p}: AFF on − off = ${d >= 0 ? "+" : ""}${pct(d)} points`);
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseFlags({
    args: Deno.args,
    options: {
      seeds: { type: "string" },
      epochs: { type: "string" },
      python: { type: "string" },
      threads: { type: "string" },
      out: { type: "string" },
      aff: { type: "string" },
      frameworks: { type: "string" },
      "torch-args": { type: "string" },
      precision: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const nSeeds = numberFlag(values.seeds, "seeds", { integer: true, min: 1, max: 100 }) ?? 3;
  const epochs = numberFlag(values.epochs, "epochs", { integer: true, min: 1, max: 1000 }) ??
    10;
  const threads = numberFlag(values.threads, "threads", { integer: true, min: 1, max: 256 }) ??
    1;
  const python = values.python ?? "python3";
  const list = <T extends string>(v: string | undefined, all: readonly T[], flag: string) => {
    const items = (v ?? all.join(",")).split(",");
    for (const i of items) {
      if (!all.includes(i as T)) {
        throw new Error(`Cannot parse --${flag}: expected a list of ${all.join(", ")}: "${v}"`);
      }
    }
    return items as T[];
  };
  const affs = list(values.aff, ["off", "on"] as const, "aff").map((a) => a === "on");
  const frameworks = list(values.frameworks, ["fbp", "torch"] as const, "frameworks");
  const precisions = values.precision === undefined
    ? ["fp32" as const]
    : list(values.precision, ["fp32", "bf16"] as const, "precision");
  const torchExtra = (values["torch-args"] ?? "").split(/\s+/).filter((a) => a !== "");
  const out = resolve(values.out ?? await Deno.makeTempDir({ prefix: "fbp-parity-" }));
  await Deno.mkdir(out, { recursive: true });
  const seeds = Array.from({ length: nSeeds }, (_, i) => i);
  const env = { OMP_NUM_THREADS: `${threads}` };

  const manifest = join(out, "digits", "digits.csv");
  try {
    await Deno.stat(manifest);
  } catch {
    const made = lastJson(
      await run([python, "tasks/make_digits.py", "--out", join(out, "digits")], env),
    );
    console.error(
      `digits: ${made.images} images, train ${made.train} / val ${made.val} / test ${made.test}`,
    );
  }
  // Build (or check) the native library once, not before every run.
  await run([Deno.execPath(), "run", "-A", "tasks/build.ts", "--quiet"], env);

  const records: RunRecord[] = [];
  const t0 = performance.now();
  for (const seed of seeds) {
    for (const aff of affs) {
      for (const framework of frameworks) {
        for (const precision of precisions) {
          // fp32 keeps the names (and commands) of runs made before --precision existed.
          const bf16 = precision === "bf16" ? ["--precision", "bf16"] : [];
          const tag = `${framework}${bf16.length ? "-bf16" : ""}-aff-${
            aff ? "on" : "off"
          }-seed${seed}`;
          const cmd = framework === "fbp"
            ? [
              Deno.execPath(),
              ...["run", "-A", "tasks/train.ts", "--db", `digits=csv:${manifest}@manifest`],
              ...["--task", "digit=digits:digit:1:10", "--policy", "none"],
              aff ? "--aff" : "--no-aff",
              ...["--epochs", `${epochs}`, ...RECIPE, "--seed", `${seed}`, "--workers", "0"],
              ...["--out", join(out, "runs", tag), "--force", "--json"],
              ...bf16,
            ]
            : [
              python,
              ...["tasks/parity_torch.py", "--manifest", manifest, "--label", "digit"],
              ...(aff ? ["--aff"] : []),
              ...["--epochs", `${epochs}`, ...RECIPE, "--seed", `${seed}`],
              ...["--threads", `${threads}`, ...torchExtra, ...bf16],
            ];
          const file = join(out, `${tag}.json`);
          let rec: RunRecord | null = null;
          try {
            const old = JSON.parse(await Deno.readTextFile(file)) as RunRecord;
            if (JSON.stringify(old.command) === JSON.stringify(cmd)) rec = old;
          } catch { /* not run yet */ }
          if (rec) {
            console.error(`${tag}: kept from ${file}`);
          } else {
            const start = performance.now();
            const res = lastJson(await run(cmd, env));
            const wallSeconds = (performance.now() - start) / 1000;
            const testAccuracy = framework === "fbp"
              ? (res.tasks as Record<string, { test: { accuracy: number } }>).digit.test.accuracy
              : res.test_accuracy as number;
            const trainSeconds =
              (framework === "fbp" ? res.trainSeconds : res.train_seconds) as number;
            rec = {
              framework,
              precision,
              aff,
              seed,
              epochs,
              testAccuracy,
              trainSeconds,
              wallSeconds,
              command: cmd,
              result: res,
            };
            await Deno.writeTextFile(file, JSON.stringify(rec) + "\n");
          }
          records.push(rec);
          console.error(
            `${tag}: test ${pct(rec.testAccuracy)}%, train ${rec.trainSeconds.toFixed(0)} s, ` +
              `wall ${rec.wallSeconds.toFixed(0)} s`,
          );
        }
      }
    }
  }
  const minutes = (performance.now() - t0) / 60000;
  console.log(
    `ResNet18 baseline, scikit-learn digits 32×32, ${epochs} epochs, ` +
      `${threads} thread${threads === 1 ? "" : "s"}, seeds ${seeds.join(",")}` +
      (torchExtra.length ? `, PyTorch extra: ${torchExtra.join(" ")}` : "") + "\n",
  );
  const testImages = (await Deno.readTextFile(manifest)).split("\n")
    .filter((l) => l.endsWith(",test")).length;
  console.log(table(records, seeds, testImages));
  console.log(`\nresults: ${out} (this invocation: ${minutes.toFixed(1)} min)`);
  if (values.json) console.log(JSON.stringify({ epochs, threads, seeds, records }));
}

if (import.meta.main) await runCli(main);
