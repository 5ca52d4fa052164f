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
import { planArchComparison, planComparison } from "../src/train/experiments.ts";
import { archCsv, archJson, archTable } from "../src/report/arch_table.ts";
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
       deno task compare --table 11 --archs A,B,… [--dir DIR] [options]

Trains, under one folder (default runs/compare-<preset>): ResNet18 and ResNet18 + AFF on
each task alone (--epochs sets their length), and the method with and without AFF on all
tasks; then prints the ablation table (the paper's Tables 3–8) and writes compare.md,
compare.csv and compare.json. Complete runs are reused; a stopped comparison continues.

With --table 11 (default folder runs/table11-<preset>): each architecture of --archs as a
single-task baseline on the first task (no AFF, no policy; --epochs sets their length, and
--pretrained is not passed to them), and the method on all tasks; prints the paper's
Table 11 (ACC, F1, parameters, GFLOPs, training images/s) and writes table11.md/.csv/.json.

  --dir DIR                the comparison folder
  --table 3-8|11           which table (default 3-8, the ablation)
  --archs A,B,…            Table 11's architectures (e.g. mobilenet_v3_small,resnet18;
                           see deno task train --help, --arch)
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
  {
    help: HELP,
    options: {
      ...RUN_OPTIONS,
      ...EXPERIMENT_OPTIONS,
      dir: { type: "string" },
      table: { type: "string" },
      archs: { type: "string" },
    },
  },
  async ({ values }) => {
    const table = values.table ?? "3-8";
    if (table !== "3-8" && table !== "11") {
      throw new Error(`Cannot parse --table: expected 3-8 or 11: current value is "${table}"`);
    }
    if (table === "11") {
      // Table 11: the backbones as baselines beside the method.
      for (const flag of ["policy", "aff", "no-aff", "arch"] as const) {
        if (values[flag] !== undefined) {
          throw new Error(
            `Cannot parse --${flag}: Table 11 trains each of --archs as a baseline without AFF ` +
              "and the method with AFF",
          );
        }
      }
      if (!values.archs) {
        throw new Error("Cannot run Table 11: --archs A,B,… is required (see --help)");
      }
      const archs = String(values.archs).split(",").map((a) => a.trim());
      if (archs.some((a) => !a) || new Set(archs).size !== archs.length) {
        throw new Error(
          `Cannot parse --archs "${values.archs}": expected distinct architecture names, ` +
            "comma-separated",
        );
      }
      const base = runConfigFromArgs(values);
      const dir = values.dir ?? join("runs", `table11-${values.preset ?? "default"}`);
      // Pretrained files are ResNet18 weights; other backbones start from their own init.
      const planned = planArchComparison(base, dir, archs, values.dropout !== undefined).map((
        run,
      ) =>
        run.config.arch === "resnet18"
          ? run
          : { ...run, config: { ...run.config, pretrained: undefined } }
      );
      const runs = await repeatRuns(values, base, planned);
      validatePlan(runs);
      const task = base.tasks[0].name;
      return await runExperiment(values, runs, {
        out: join(dir, "table11"),
        describe: (run, how) => `${run.label} (${runName(run)}): ${how}`,
        tables: (done) => ({
          table: archTable(done, task),
          csv: archCsv(done, task),
          json: archJson(done, task),
        }),
      });
    }
    if (values.archs !== undefined) {
      throw new Error("Cannot parse --archs: it chooses Table 11's models (--table 11)");
    }
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
