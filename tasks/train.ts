/**
 * `deno task train`: trains the method (or a baseline) and prints the paper-style table.
 * With no arguments it trains the full method on the built-in synthetic two-database set.
 * @module
 */
import { join } from "node:path";
import { readPretrainedWeights, readTorchvisionFile } from "../src/models/checkpoint.ts";
import { writeReport } from "../src/report/report.ts";
import { resumedRunConfig, RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import {
  availableMemory,
  checkRunMemory,
  type RunConfig,
  validateRunConfig,
} from "../src/train/run_config.ts";
import { runTable } from "../src/report/tables.ts";
import { finishedRun, readRunConfig } from "../src/train/resume.ts";
import { checkRunFolder, freeRunFolder, inspectRunFolder } from "../src/train/run_dir.ts";
import { isScoreMetrics, type RunResult } from "../src/train/result.ts";
import { DEVICE_HELP, runNetworkCli, useDevice } from "./_cli/device.ts";
import { ProgressBar } from "./_cli/progress.ts";
import { trainWithProgress } from "./_cli/training.ts";

const HELP = `Usage: deno task train [options]

Trains ResNet18 + AdaShare + DAB + AFF on two tasks (or a single-task baseline), writes
runs/<name>/ (config.json, log.jsonl, metrics.json, report.md, plots, checkpoints) and
prints the paper-style table. With no options: the built-in synthetic two-database set at
64×64 (beauty on a female-only database, gender on a mixed one), a few minutes on 2 cores.

${RUN_HELP}
Run control:
  --resume DIR             continue the stopped run in DIR (it reads and writes DIR only);
                           run options given must match the run's, except --workers
  --force                  replace the run in --out: deletes the files a run writes
                           there (only those), after every option and data source is checked
  --json                   print the result as one JSON object (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help

Examples:
  deno task train
  deno task train --preset paper-scut --scut data/SCUT-FBP5500_v2 --pretrained resnet18.pth
  deno task train --db scut=scut:data/SCUT-FBP5500_v2 --task beauty=scut:beauty:1 \\
    --task gender=scut:gender:0.6 --no-aff --out runs/no-aff
  deno task train --policy none --task beauty=scut:beauty --db scut=scut:data/SCUT-FBP5500_v2`;

/** The JSON object printed with --json. */
export function resultSummary(r: RunResult): Record<string, unknown> {
  return {
    tasks: Object.fromEntries(
      Object.entries(r.tasks).map(([t, m]) => [t, {
        test: {
          accuracy: m.test.accuracy,
          f1_macro: m.test.f1_macro,
          f1_weighted: m.test.f1_weighted,
          // Score and dist tasks: the predicted score's figures (accuracy: implied grade).
          ...(isScoreMetrics(m.test) ? { pc: m.test.pc, mae: m.test.mae, rmse: m.test.rmse } : {}),
        },
        train: { accuracy: m.train.accuracy },
        gap: m.gap,
      }]),
    ),
    policy: r.policy,
    ...(r.policyProbabilities ? { policyProbabilities: r.policyProbabilities } : {}),
    ...(r.taskWeights ? { taskWeights: r.taskWeights } : {}),
    out: r.out,
    trainSeconds: r.trainSeconds,
    ...(r.validationSeconds !== undefined ? { validationSeconds: r.validationSeconds } : {}),
  };
}

await runNetworkCli({
  help: HELP,
  options: { ...RUN_OPTIONS, resume: { type: "string" }, force: { type: "boolean" } },
}, async ({ values }) => {
  let config: RunConfig;
  if (values.resume !== undefined) {
    if (values.force) {
      throw new Error(
        `Cannot use --force with --resume: --resume continues the run in "${values.resume}", --force replaces it`,
      );
    }
    const dir = values.resume;
    checkRunFolder(dir, await inspectRunFolder(dir), "resume");
    config = resumedRunConfig(await readRunConfig(dir), values, dir);
    validateRunConfig(config);
    const finished = await finishedRun(config);
    if (finished) {
      // Killed between its metrics and its report: the report is all that is left to do.
      const reportMissing = await Deno.stat(join(dir, "report.md")).then(() => false, () => true);
      if (reportMissing) await writeReport(dir, finished.result);
      console.log(
        `${dir} finished: ${finished.done} of ${finished.of} epochs, ${
          reportMissing ? "wrote its missing report.md" : "nothing to do"
        }`,
      );
      if (values.json) console.log(JSON.stringify(resultSummary(finished.result)));
      return 0;
    }
  } else {
    config = runConfigFromArgs(values);
    // A default folder that holds a run (or anything) is kept: the run goes to <name>-2, …
    if (values.out === undefined && !values.force) config.out = await freeRunFolder(config.out);
    validateRunConfig(config);
    checkRunFolder(
      config.out,
      await inspectRunFolder(config.out),
      values.force ? "force" : "new",
    );
  }
  // A bad --pretrained file fails first: before a backend is loaded (or built) or data read.
  const pretrained = config.pretrained
    ? config.arch === "resnet18"
      ? await readPretrainedWeights(config.pretrained, config.widths)
      : await readTorchvisionFile(config.pretrained)
    : undefined;
  const backend = await useDevice(values);
  checkRunMemory(config, availableMemory(backend.name));
  const bar = new ProgressBar();
  bar.note(`run ${config.name} → ${config.out} (${backend.name} backend)`);
  const controller = new AbortController();
  const onSignal = () => {
    bar.note("interrupt: finishing the step and saving last.safetensors …");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  let result: RunResult | null;
  try {
    result = await trainWithProgress(config, {
      backend,
      pretrained,
      resume: values.resume !== undefined,
      force: Boolean(values.force),
      signal: controller.signal,
    }, bar);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (!result) return 130;
  await writeReport(config.out, result);
  console.log(runTable(result));
  console.log(`\nreport: ${join(config.out, "report.md")}`);
  if (values.json) console.log(JSON.stringify(resultSummary(result)));
});
