/**
 * `deno task compare`: single-task ResNet18 baselines with and without AFF and the method
 * with and without AFF, as independent runs under one folder; prints the paper's
 * Tables 3–8 (ACC, F1, training time, training ACC, test ACC, difference) and writes
 * compare.md / .csv / .json. Complete runs are reused, stopped ones resumed.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { planComparison, runAll } from "../src/train/experiments.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "../src/train/run_args.ts";
import { comparisonCsv, comparisonJson, comparisonTable } from "../src/train/tables.ts";
import { writeFileAtomic } from "../src/io/atomic_write.ts";
import { DEVICE_HELP, NETWORK_CLI_OPTIONS, useDevice } from "./_cli/device.ts";
import { runCli } from "./_cli/main.ts";
import { ProgressBar } from "./_cli/progress.ts";
import { trainingOptions } from "./_cli/training.ts";

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

await runCli(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...NETWORK_CLI_OPTIONS,
      ...RUN_OPTIONS,
      dir: { type: "string" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const base = runConfigFromArgs(values);
  const dir = values.dir ?? join("runs", `compare-${values.preset ?? "default"}`);
  const runs = planComparison(base, dir);
  const backend = await useDevice(values.device);
  const bar = new ProgressBar();
  const done = await runAll(runs, {
    ...trainingOptions(bar),
    backend,
    onRun: (i, run, how) =>
      bar.note(`[${i + 1}/${runs.length}] ${run.label} (${run.config.name}): ${how}`),
  });
  const table = comparisonTable(done);
  await writeFileAtomic(join(dir, "compare.md"), new TextEncoder().encode(table + "\n"));
  await writeFileAtomic(join(dir, "compare.csv"), new TextEncoder().encode(comparisonCsv(done)));
  await writeFileAtomic(join(dir, "compare.json"), new TextEncoder().encode(comparisonJson(done)));
  console.log(table);
  if (values.json) console.log(JSON.stringify(JSON.parse(comparisonJson(done))));
});
