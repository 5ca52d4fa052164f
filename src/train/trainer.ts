/**
 * The trainer: AdaShare's three stages (warm-up with every block executed → policy
 * learning alternating weight epochs on train-w and logit epochs on train-p with a soft
 * Gumbel policy, decaying temperature, curriculum and regularisers → re-training of the
 * fixed policy from the initial weights), or a plain baseline; one batch per database per
 * step; validation each epoch; the best checkpoint by the first task's validation
 * accuracy; test metrics at the end.
 *
 * A run is a pipeline over one {@link RunState}: prepare the data, build the state (fresh
 * or from `last.safetensors`), run the planned epochs stage by stage (epoch.ts, with the
 * stages' differences in stages.ts), then measure the best checkpoint. Every random choice
 * is a function of (seed, epoch index, step), so a resumed run ends with the same numbers
 * as an uninterrupted one.
 * @module
 */
import { modelSummary } from "../models/summary.ts";
import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import {
  type HostTensor,
  loadState,
  readPretrainedWeights,
  readTorchvisionFile,
} from "../models/checkpoint.ts";
import { parseSafetensors } from "../io/safetensors.ts";
import {
  prepareData,
  type PreparedDatabase,
  type TaskClasses,
  type UsedSplit,
  usedSplits,
} from "./data_setup.ts";
import { runEpoch } from "./epoch.ts";
import { planEpochs } from "./plan.ts";
import type { HistoryEntry, RunResult, TaskWeightsResult } from "./result.ts";
import { finishedRun, readResume, readRunConfig, type Resume, resumeChanges } from "./resume.ts";
import {
  checkRunFolder,
  inspectRunFolder,
  missingFolders,
  removeEmptyFolder,
  RunLock,
  takeRunFolder,
  undoFailedStart,
  writeJsonAtomic,
  writeRunFile,
} from "./run_dir.ts";
import {
  availableMemory,
  checkRunMemory,
  resolveBnMode,
  type RunConfig,
  validateRunConfig,
} from "./run_config.ts";
import { openRunContext, type RunContext, type RunInputs } from "./run_context.ts";
import { createRunState, disposeRunState, type RunState } from "./run_state.ts";
import { STAGES } from "./stages.ts";
import { taskLosses } from "./class_balance.ts";
import { RunInterrupted, type TrainOptions } from "./train_options.ts";

export { type ProgressEvent, RunInterrupted, type TrainOptions } from "./train_options.ts";

/**
 * Trains per the config; returns the result (also written to the run folder).
 *
 * Everything is checked before the run folder is created or changed: the config (sizes
 * bounded), the folder (a new run needs a missing or empty one, `force` a run folder,
 * `resume` the run's own folder and options), the `--pretrained` file, the memory the run
 * needs (on the CPU: estimateRunMemory against the available memory), and every data
 * source. A refused run leaves nothing behind. Resuming a finished run returns its
 * metrics.json and changes nothing.
 * @param config the run (see presetConfig, runConfigFromArgs); `config.out` is its folder
 * @returns the run's result, also written as the folder's metrics.json
 * @throws {RunInterrupted} when `opts.signal` stopped the run (resume it with `resume: true`)
 * @example Train the default preset, stopping cleanly on Ctrl-C
 * ```ts ignore
 * import { loadBackend, presetConfig, RunInterrupted, setDefaultBackend } from "../../mod.ts";
 * import { train } from "./trainer.ts";
 * const backend = await loadBackend("auto");
 * setDefaultBackend(backend);
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGINT", () => controller.abort());
 * const config = { ...presetConfig("default"), name: "demo", out: "runs/demo", batch: 16 };
 * try {
 *   const result = await train(config, {
 *     backend,
 *     signal: controller.signal,
 *     onEpoch: (e) => console.log(e.stage, e.epoch, e.loss.toFixed(3)),
 *   });
 *   console.log(result.policy, result.tasks.beauty.test.f1_weighted);
 * } catch (e) {
 *   if (!(e instanceof RunInterrupted)) throw e;
 *   console.log(e.message); // continue later with { resume: true }
 * }
 * ```
 */
export async function train(config: RunConfig, opts: TrainOptions): Promise<RunResult> {
  validateRunConfig(config);
  if (opts.resume && opts.force) {
    throw new Error(
      `Cannot start run "${config.out}": resume and force both given: resume continues the run, force replaces it`,
    );
  }
  const mode = opts.resume ? "resume" : opts.force ? "force" : "new";
  await RunLock.checkFree(config.out);
  checkRunFolder(config.out, await inspectRunFolder(config.out), mode);
  const note = opts.onNote ?? (() => {});
  let resume: Resume | null = null;
  let changed: Record<string, [unknown, unknown]> = {};
  if (opts.resume) {
    changed = resumeChanges(await readRunConfig(config.out), config);
    const finished = await finishedRun(config);
    if (finished) {
      note(`${config.out} finished: ${finished.done} of ${finished.of} epochs, nothing to do`);
      return finished.result;
    }
    resume = await readResume(join(config.out, "last.safetensors"), config);
    // The best checkpoint is kept across the resume: a damaged one is refused now, not
    // after the remaining epochs (reading it verifies its checksum).
    const best = join(config.out, "checkpoint.safetensors");
    const bytes = await Deno.readFile(best).catch(() => null);
    if (bytes) parseSafetensors(bytes, { source: best });
  }
  // A bad --pretrained file fails now, before the run folder is touched or data is read.
  const pretrained = config.pretrained
    ? opts.pretrained ??
      (config.arch === "resnet18"
        ? await readPretrainedWeights(config.pretrained, config.widths)
        : await readTorchvisionFile(config.pretrained))
    : undefined;
  checkRunMemory(config, availableMemory(opts.backend.name));
  const data = await prepareData(config);
  if (opts.resume) await checkSameSplits(config.out, data.databases);
  const created = await missingFolders(config.out);
  const lock = await takeRunFolder(config.out, mode, opts.onRemoved);
  let undone = false;
  try {
    return await runLocked(config, opts, note, pretrained, data, resume, changed);
  } catch (e) {
    // A new run that fails before saving any progress leaves nothing behind; a failure to
    // clean up must not hide why the run failed.
    if (mode !== "resume" && !(e instanceof RunInterrupted)) {
      undone = await undoFailedStart(config.out).catch(() => false);
    }
    if (!undone) throw e;
    // Say so before the hint (and drop a hint to resume what no longer exists).
    const error = e as Error, kept = " Nothing of the run was kept.";
    const m = error.message.replace(/, then continue the run with --resume/, "");
    error.message = m.includes(" Hint: ") ? m.replace(" Hint: ", `${kept} Hint: `) : m + kept;
    throw error;
  } finally {
    await lock.release();
    if (undone) { for (const dir of created) await removeEmptyFolder(dir); }
  }
}

/**
 * A resumed run must train, validate and test on the images it started with: the split is
 * recomputed from the data and the seed, so a changed data folder (or split code) would
 * otherwise change it silently mid-run. Runs from before `splits.json` are not checked.
 * @throws {Error} naming the database, the part and an image that differs
 */
async function checkSameSplits(dir: string, databases: PreparedDatabase[]): Promise<void> {
  const path = join(dir, "splits.json");
  const text = await Deno.readTextFile(path).catch(() => null);
  if (text === null) return;
  let stored: Record<string, Partial<UsedSplit>>;
  try {
    stored = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot resume run "${dir}": "${path}" is not JSON: ${(e as Error).message}`);
  }
  const now = usedSplits(databases);
  for (const [db, used] of Object.entries(now)) {
    for (const part of ["train", "val", "test"] as const) {
      const before = Array.isArray(stored[db]?.[part]) ? stored[db][part] as string[] : [];
      const after = new Set(used[part]);
      const gone = before.find((f) => !after.has(f));
      const added = used[part].find((f) => !before.includes(f));
      if (gone !== undefined || added !== undefined || before.length !== used[part].length) {
        throw new Error(
          `Cannot resume run "${dir}": the ${part} images of database "${db}" differ from ` +
            `"${path}" (${before.length} then, ${used[part].length} now${
              gone !== undefined ? `; "${gone}" is gone` : ""
            }${added !== undefined ? `; "${added}" is new` : ""}). Hint: resume with the ` +
            `data the run started with, or start a new run`,
        );
      }
    }
  }
}

/** Tells the user about the first few problems found in each database. */
function noteDataProblems(databases: PreparedDatabase[], note: (m: string) => void): void {
  for (const d of databases) {
    for (const p of d.dataset.problems.slice(0, 5)) {
      note(`${d.name}: ${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);
    }
    if (d.dataset.problems.length > 5) {
      note(`${d.name}: … ${d.dataset.problems.length - 5} more problems (see deno task data info)`);
    }
  }
}

async function runLocked(
  config: RunConfig,
  opts: TrainOptions,
  note: (m: string) => void,
  pretrained: ReadonlyMap<string, HostTensor> | undefined,
  { databases, classes }: { databases: PreparedDatabase[]; classes: TaskClasses },
  resume: Resume | null,
  changed: Record<string, [unknown, unknown]>,
): Promise<RunResult> {
  const lastPath = join(config.out, "last.safetensors");
  if (!resume) {
    const path = join(config.out, "config.json");
    await writeRunFile(path, "run config", () => writeJsonAtomic(path, config));
    // Which images trained, validated and tested: a result traces back to its files.
    const splits = join(config.out, "splits.json");
    await writeRunFile(splits, "splits", () => writeJsonAtomic(splits, usedSplits(databases)));
  }
  noteDataProblems(databases, note);
  const inputs: RunInputs = {
    config,
    opts,
    note,
    pretrained,
    databases,
    classes,
    plan: planEpochs(config),
    lambdas: Object.fromEntries(config.tasks.map((t) => [t.name, t.lambda])),
    taskLosses: taskLosses(
      config,
      Object.fromEntries(databases.map((d) => [d.name, d.train])),
      classes,
    ),
    lastPath,
    bestPath: join(config.out, "checkpoint.safetensors"),
  };
  // A resumed re-training needs its fixed policy built into the network.
  const state = await createRunState(
    inputs,
    resume?.state.finalPolicy ?? config.fixedPolicy ?? undefined,
  );
  resume?.restoreInto(state);
  if (resume) {
    note(`resuming at epoch ${state.position + 1} of ${inputs.plan.length}, step ${state.step}`);
  }
  const ctx = await openRunContext(inputs, state.history);
  try {
    if (resume) {
      // What this part of the run ran on, and the options it changed (RESUME_MAY_CHANGE).
      await ctx.log.write({
        kind: "resume",
        position: state.position,
        step: state.step,
        device: opts.backend.name,
        ...opts.backend.math,
        ...(Object.keys(changed).length > 0 ? { changed } : {}),
      });
    }
    while (state.position < ctx.plan.length) {
      const ep = ctx.plan[state.position];
      await STAGES[ep.kind].enter?.(ctx, state);
      await runEpoch(ctx, state, ep);
    }
    return await finalResult(ctx, state, opts.backend);
  } finally {
    ctx.close();
    disposeRunState(state);
  }
}

/** The scheme, its options and the weights at the end of the run, for metrics.json. */
function taskWeightsResult(config: RunConfig, state: RunState): TaskWeightsResult {
  const scheme = state.taskWeights.scheme;
  return {
    scheme,
    final: state.taskWeights.current(),
    ...(scheme === "uncertainty" || scheme === "gradnorm" ? { lr: config.taskWeightsLr } : {}),
    ...(scheme === "gradnorm" ? { alpha: config.gradnormAlpha } : {}),
    ...(scheme === "dwa" ? { temperature: config.dwaTemperature } : {}),
  };
}

/** Test, validation and training-split metrics of the best checkpoint, as `metrics.json`. */
async function finalResult(
  ctx: RunContext,
  state: RunState,
  backend: Backend,
): Promise<RunResult> {
  const { config, bestPath } = ctx;
  const { net } = state;
  const best = parseSafetensors(await Deno.readFile(bestPath), { source: bestPath });
  loadState(net, best.tensors, bestPath);
  const gates = net.evalGates();
  const [test, val, trainEval] = [
    await ctx.evaluate(net, "test", gates),
    await ctx.evaluate(net, "val", gates),
    await ctx.evaluate(net, "trainEval", gates),
  ];
  const result: RunResult = {
    name: config.name,
    out: config.out,
    method: config.method,
    ...(config.arch !== "resnet18" ? { arch: config.arch, gates: [...net.gateNames] } : {}),
    aff: config.aff,
    bn: resolveBnMode(config),
    device: { backend: backend.name, ...backend.math },
    lambdas: ctx.lambdas,
    taskWeights: taskWeightsResult(config, state),
    batch: config.batch,
    tasks: Object.fromEntries(config.tasks.map((t) => [t.name, {
      test: test[t.name],
      val: val[t.name],
      train: { accuracy: trainEval[t.name].accuracy },
      gap: trainEval[t.name].accuracy - test[t.name].accuracy,
    }])),
    policy: net.evalPolicy(),
    ...(config.method === "adashare" && !config.fixedPolicy
      ? { policyProbabilities: net.policyProbabilities() }
      : {}),
    model: modelSummary(net, config.imageSize),
    trainImagesPerSecond: trainImages(state.history) /
      Math.max(1e-9, state.stages.reduce((a, s) => a + s.seconds, 0)),
    stages: state.stages,
    trainSeconds: state.stages.reduce((a, s) => a + s.seconds, 0),
    validationSeconds: state.stages.reduce((a, s) => a + (s.validationSeconds ?? 0), 0),
    history: state.history,
  };
  const metricsPath = join(config.out, "metrics.json");
  await writeRunFile(metricsPath, "metrics", () => writeJsonAtomic(metricsPath, result));
  return result;
}

/** Images trained over a run's epochs (a policy epoch's logit half counts as training). */
function trainImages(history: readonly HistoryEntry[]): number {
  return history.reduce((a, h) => a + (h.images ?? 0), 0);
}
