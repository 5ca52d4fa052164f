/**
 * `deno task compare`: single-task ResNet18 baselines with and without AFF and the method
 * with and without AFF, as independent runs under one folder, optionally over
 * cross-validation folds and seeds and several runs at once; prints the paper's
 * Tables 3–8 (ACC, F1, training time, training ACC, test ACC, difference; mean ± std over
 * repeats) and writes compare.md / .csv / .json. Complete runs are reused, stopped ones
 * resumed.
 * @module
 */
import { join } from "node:path";
import { planComparison } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import { comparisonCsv, comparisonJson, comparisonTable } from "../src/report/tables.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import {
  EXPERIMENT_HELP,
  EXPERIMENT_OPTIONS,
  repeatRuns,
  runExperiment,
  runName,
  validatePlan,
} from "./_cli/training.ts";

const HELP = `Usage: deno task compare [--dir DIR] [options]

Trains, under one folder (default runs/compare-<preset>): ResNet18 and ResNet18 + AFF on
each task alone (--epochs sets their length), and the method with and without AFF on all
tasks; then prints the ablation table (the paper's Tables 3–8) and writes compare.md,
compare.csv and compare.json. Complete runs are reused; a stopped comparison continues.

  --dir DIR                the comparison folder
${EXPERIMENT_HELP}
  --json                   print the table as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run:
${RUN_HELP}

Examples:
  deno task compare --preset paper-scut --scut data/SCUT-FBP5500_v2 --pretrained resnet18.pth
  deno task compare --preset paper-scut --scut data/SCUT-FBP5500_v2 --folds 1-5 --seeds 2 \\
    --jobs 2`;

await runNetworkCli(
  { help: HELP, options: { ...RUN_OPTIONS, ...EXPERIMENT_OPTIONS, dir: { type: "string" } } },
  async ({ values }) => {
    for (const flag of ["policy", "aff", "no-aff"] as const) {
      if (values[flag] !== undefined) {
        throw new Error(
          `Cannot parse --${flag}: the comparison trains the baselines and the method, ` +
            "each with and without AFF",
        );
      }
    }
    const base = runConfigFromArgs(values);
    const dir = values.dir ?? join("runs", `compare-${values.preset ?? "default"}`);
    const runs = await repeatRuns(values, base, planComparison(base, dir));
    validatePlan(runs);
    return await runExperiment(values, runs, {
      out: join(dir, "compare"),
      describe: (run, how) => `${run.label} (${runName(run)}): ${how}`,
      tables: (done) => ({
        table: comparisonTable(done),
        csv: comparisonCsv(done),
        json: comparisonJson(done),
      }),
    });
  },
);
