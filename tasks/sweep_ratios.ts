/**
 * `deno task sweep-ratios`: trains the method for each λ1:λ2 ratio (and batch size) as
 * independent runs under one folder and prints the paper's Tables 9/10 (ACC and F1 per
 * task, best in bold), plus CSV and JSON files. Complete runs are reused, stopped ones
 * resumed.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { planSweep, runAll } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "../src/train/run_args.ts";
import { sweepCsv, sweepJson, sweepTable } from "../src/train/tables.ts";
import { sweepPlot } from "../src/train/plots.ts";
import { writeFileAtomic } from "../src/io/atomic_write.ts";
import { DEVICE_HELP, NETWORK_CLI_OPTIONS, useDevice } from "./_cli/device.ts";
import { runCli } from "./_cli/main.ts";
import { ProgressBar } from "./_cli/progress.ts";
import { trainingOptions } from "./_cli/training.ts";

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

await runCli(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...NETWORK_CLI_OPTIONS,
      ...RUN_OPTIONS,
      ratios: { type: "string" },
      batches: { type: "string" },
      dir: { type: "string" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const base = runConfigFromArgs(values);
  const ratios = parseRatios(values.ratios ?? "1:0.7,1:0.6,1:0.5");
  const batches = (values.batches ?? "32,16").split(",").map((b) => {
    const n = Number(b);
    if (!Number.isInteger(n) || n < 2) {
      throw new Error(`Cannot parse --batches: "${b}" is not a batch size ≥ 2`);
    }
    return n;
  });
  const dir = values.dir ?? join("runs", `sweep-${values.preset ?? "default"}`);
  const runs = planSweep(base, ratios, batches, dir);
  const backend = await useDevice(values.device);
  const bar = new ProgressBar();
  const done = await runAll(runs, {
    ...trainingOptions(bar),
    backend,
    onRun: (i, run, how) =>
      bar.note(`[${i + 1}/${runs.length}] ${run.label}: ${how} (${run.config.out})`),
  });
  const table = sweepTable(done);
  await writeFileAtomic(join(dir, "sweep.md"), new TextEncoder().encode(table + "\n"));
  await writeFileAtomic(join(dir, "sweep.csv"), new TextEncoder().encode(sweepCsv(done)));
  await writeFileAtomic(join(dir, "sweep.json"), new TextEncoder().encode(sweepJson(done)));
  await writeFileAtomic(join(dir, "sweep.svg"), new TextEncoder().encode(await sweepPlot(done)));
  console.log(table);
  if (values.json) console.log(JSON.stringify(JSON.parse(sweepJson(done))));
});
