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
import { parseBatches, parseRatios } from "./_cli/sweep_args.ts";
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
are reused; a stopped sweep continues where it stopped. Any number of tasks: each
weight vector gives one λ per task, in --task order.

  --ratios LIST            weight vectors λ1:λ2[:λ3…], comma-separated, one weight per
                           task, 0–1000 each (default 1:0.7,1:0.6,1:0.5 for two tasks;
                           e.g. 1:0.6:0.3,1:1:1 for three); with --task-weights
                           gradnorm or dwa λ only sets the start weights T·λ/Σλ, so
                           vectors that are multiples of each other (1:0.5, 2:1) are
                           refused
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
    --folds 1-5 --jobs 2
  deno task sweep-ratios --db s=scut:data/SCUT-FBP5500_v2 --task beauty=s:beauty:1:5 \\
    --task gender=s:gender --task race=s:race --ratios 1:0.6:0.3,1:1:1 --batches 32`;

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
  // The paper's λ1:λ2 pairs by default; with more tasks --ratios gives one λ per task.
  if (values.ratios === undefined && base.tasks.length !== 2) {
    throw new Error(
      `Cannot plan the ratio sweep: the default ratios are λ1:λ2 pairs and the run has ` +
        `${base.tasks.length} tasks. Hint: give --ratios with one weight per task, e.g. ${
          base.tasks.map((_, i) => (i === 0 ? "1" : "0.6")).join(":")
        },${base.tasks.map(() => "1").join(":")}`,
    );
  }
  const ratios = parseRatios(values.ratios ?? "1:0.7,1:0.6,1:0.5", base.tasks.length);
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
