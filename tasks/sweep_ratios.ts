/**
 * `deno task sweep-ratios`: trains the method for each λ1:λ2 ratio (and batch size) as
 * independent runs under one folder, optionally over cross-validation folds and seeds and
 * several runs at once, and prints the paper's Tables 9/10 (ACC and F1 per task, mean ±
 * std over repeats, best mean in bold), plus CSV and JSON files. Complete runs are reused,
 * stopped ones resumed.
 * @module
 */
import { join } from "node:path";
import { planSweep } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import { cellMeans, sweepCsv, sweepJson, sweepTable } from "../src/report/tables.ts";
import { sweepPlot } from "../src/report/plots.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import {
  EXPERIMENT_HELP,
  EXPERIMENT_OPTIONS,
  repeatRuns,
  runExperiment,
  runName,
  validatePlan,
} from "./_cli/training.ts";

const HELP = `Usage: deno task sweep-ratios [--ratios 1:0.7,1:0.6,1:0.5] [--batches 32,16] [options]

Trains the method once per loss-weight ratio λ1:λ2 and batch size (the paper's Tables
9–10) under one folder (default runs/sweep-<preset>), then prints the table and writes
sweep.md, sweep.csv, sweep.json and a bar chart sweep.svg there. Runs already complete
are reused; a stopped sweep continues where it stopped.

  --ratios LIST            λ1:λ2 pairs, comma-separated, weights 0–1000 (default
                           1:0.7,1:0.6,1:0.5)
  --batches LIST           batch sizes (default 32,16)
  --dir DIR                the sweep folder
${EXPERIMENT_HELP}
  --json                   print the table as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run (data, tasks, method, schedule):
${RUN_HELP}

Examples:
  deno task sweep-ratios --preset paper-scut --scut data/SCUT-FBP5500_v2
  deno task sweep-ratios --preset paper-scut --scut data/SCUT-FBP5500_v2 --batches 32 \\
    --folds 1-5 --jobs 2`;

/** Largest loss weight in --ratios: far above the paper's (≤ 1), a typo beyond it. */
const MAX_LAMBDA = 1000;

/** Parses "1:0.7,1:0.6" into pairs: decimal weights from 0 to MAX_LAMBDA, not both 0. */
function parseRatios(text: string): [number, number][] {
  const seen = new Set<string>();
  return text.split(",").map((pair) => {
    const m = /^\s*([\d.]+(?:e-?\d+)?)\s*:\s*([\d.]+(?:e-?\d+)?)\s*$/i.exec(pair);
    const l = m ? [Number(m[1]), Number(m[2])] : [];
    if (!m || !l.every(Number.isFinite)) {
      throw new Error(`Cannot parse --ratios: "${pair}" is not of the form λ1:λ2`);
    }
    if (l.some((v) => v > MAX_LAMBDA) || (l[0] === 0 && l[1] === 0)) {
      throw new Error(
        `Cannot parse --ratios: "${pair}": each weight must be from 0 to ${MAX_LAMBDA}, ` +
          "and not both 0",
      );
    }
    const key = `${l[0]}:${l[1]}`;
    if (seen.has(key)) throw new Error(`Cannot parse --ratios: ${key} is given twice`);
    seen.add(key);
    return [l[0], l[1]];
  });
}

/** Parses "32,16" into batch sizes (integers ≥ 2; the run config bounds the largest). */
function parseBatches(text: string): number[] {
  const seen = new Set<number>();
  return text.split(",").map((b) => {
    const n = /^\s*\d+\s*$/.test(b) ? Number(b) : NaN;
    if (!Number.isSafeInteger(n) || n < 2) {
      throw new Error(`Cannot parse --batches: "${b}" is not a batch size ≥ 2`);
    }
    if (seen.has(n)) throw new Error(`Cannot parse --batches: ${n} is given twice`);
    seen.add(n);
    return n;
  });
}

await runNetworkCli({
  help: HELP,
  options: {
    ...RUN_OPTIONS,
    ...EXPERIMENT_OPTIONS,
    ratios: { type: "string" },
    batches: { type: "string" },
    dir: { type: "string" },
  },
}, async ({ values }) => {
  if (values.batch !== undefined) {
    throw new Error("Cannot parse --batch: the sweep sets each run's batch: use --batches");
  }
  const base = runConfigFromArgs(values);
  const ratios = parseRatios(values.ratios ?? "1:0.7,1:0.6,1:0.5");
  const batches = parseBatches(values.batches ?? "32,16");
  const dir = values.dir ?? join("runs", `sweep-${values.preset ?? "default"}`);
  const runs = await repeatRuns(values, base, planSweep(base, ratios, batches, dir));
  validatePlan(runs);
  return await runExperiment(values, runs, {
    out: join(dir, "sweep"),
    describe: (run, how) => `${run.label}, ${runName(run)}: ${how}`,
    tables: async (done) => ({
      table: sweepTable(done),
      csv: sweepCsv(done),
      json: sweepJson(done),
      // One bar per row: the mean of its folds × seeds.
      more: { svg: await sweepPlot(cellMeans(done)) },
    }),
  });
});
