/**
 * `deno task sweep-ratios`: trains the method for each λ1:λ2 ratio (and batch size) as
 * independent runs under one folder and prints the paper's Tables 9/10 (ACC and F1 per
 * task, best in bold), plus CSV and JSON files. Complete runs are reused, stopped ones
 * resumed.
 * @module
 */
import { join } from "node:path";
import { planSweep } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import { sweepCsv, sweepJson, sweepTable } from "../src/report/tables.ts";
import { sweepPlot } from "../src/report/plots.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import { runExperiment } from "./_cli/training.ts";

const HELP = `Usage: deno task sweep-ratios [--ratios 1:0.7,1:0.6,1:0.5] [--batches 32,16] [options]

Trains the method once per loss-weight ratio λ1:λ2 and batch size (the paper's Tables
9–10) under one folder (default runs/sweep-<preset>), then prints the table and writes
sweep.md, sweep.csv, sweep.json and a bar chart sweep.svg there. Runs already complete are reused; a stopped
sweep continues where it stopped.

  --ratios LIST            λ1:λ2 pairs, comma-separated (default 1:0.7,1:0.6,1:0.5)
  --batches LIST           batch sizes (default 32,16)
  --dir DIR                the sweep folder
  --json                   print the table as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run (data, tasks, method, schedule):
${RUN_HELP}

Example:
  deno task sweep-ratios --preset paper-scut --scut data/SCUT-FBP5500_v2`;

/** Parses "1:0.7,1:0.6" into pairs. */
function parseRatios(text: string): [number, number][] {
  return text.split(",").map((pair) => {
    const m = /^\s*([\d.]+)\s*:\s*([\d.]+)\s*$/.exec(pair);
    if (!m) throw new Error(`Cannot parse --ratios: "${pair}" is not of the form λ1:λ2`);
    return [Number(m[1]), Number(m[2])];
  });
}

/** Parses "32,16" into batch sizes. */
function parseBatches(text: string): number[] {
  return text.split(",").map((b) => {
    const n = Number(b);
    if (!Number.isInteger(n) || n < 2) {
      throw new Error(`Cannot parse --batches: "${b}" is not a batch size ≥ 2`);
    }
    return n;
  });
}

await runNetworkCli({
  help: HELP,
  options: {
    ...RUN_OPTIONS,
    ratios: { type: "string" },
    batches: { type: "string" },
    dir: { type: "string" },
  },
}, async ({ values }) => {
  const base = runConfigFromArgs(values);
  const ratios = parseRatios(values.ratios ?? "1:0.7,1:0.6,1:0.5");
  const batches = parseBatches(values.batches ?? "32,16");
  const dir = values.dir ?? join("runs", `sweep-${values.preset ?? "default"}`);
  await runExperiment(values, planSweep(base, ratios, batches, dir), {
    out: join(dir, "sweep"),
    describe: (run, how) => `${run.label}: ${how} (${run.config.out})`,
    tables: async (done) => ({
      table: sweepTable(done),
      csv: sweepCsv(done),
      json: sweepJson(done),
      more: { svg: await sweepPlot(done) },
    }),
  });
});
