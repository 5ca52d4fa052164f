/**
 * `deno task compare`: single-task ResNet18 baselines with and without AFF and the method
 * with and without AFF, as independent runs under one folder; prints the paper's
 * Tables 3–8 (ACC, F1, training time, training ACC, test ACC, difference) and writes
 * compare.md / .csv / .json. Complete runs are reused, stopped ones resumed.
 * @module
 */
import { join } from "node:path";
import { planComparison } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import { comparisonCsv, comparisonJson, comparisonTable } from "../src/report/tables.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import { runExperiment, validatePlan } from "./_cli/training.ts";

const HELP = `Usage: deno task compare [--dir DIR] [options]

Trains, under one folder (default runs/compare-<preset>): ResNet18 and ResNet18 + AFF on
each task alone (--epochs sets their length), and the method with and without AFF on all
tasks; then prints the ablation table (the paper's Tables 3–8) and writes compare.md,
compare.csv and compare.json. Complete runs are reused; a stopped comparison continues.

  --dir DIR                the comparison folder
  --json                   print the table as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run:
${RUN_HELP}

Example:
  deno task compare --preset paper-scut --scut data/SCUT-FBP5500_v2 --pretrained resnet18.pth`;

await runNetworkCli(
  { help: HELP, options: { ...RUN_OPTIONS, dir: { type: "string" } } },
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
    const runs = planComparison(base, dir);
    validatePlan(runs);
    await runExperiment(values, runs, {
      out: join(dir, "compare"),
      describe: (run, how) => `${run.label} (${run.config.name}): ${how}`,
      tables: (done) => ({
        table: comparisonTable(done),
        csv: comparisonCsv(done),
        json: comparisonJson(done),
      }),
    });
  },
);
