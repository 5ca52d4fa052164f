/**
 * One planned epoch of any stage (stages.ts says what differs): steps over the stage's
 * training split with one batch per database each, then a guard against blown-up
 * weights, validation, the history entry, the best checkpoint and the resume file.
 * Every draw is a function of (seed, plan position, step), so an epoch resumed mid-way
 * skips the steps done and sees the same batches, noise and dropout as one never stopped.
 * @module
 */
import type { Batch, BatchLoader } from "../data/loader.ts";
import { saveCheckpoint } from "../models/checkpoint.ts";
import { curriculumWindow, temperature } from "../optim/schedule.ts";
import { mix32 } from "../random/rng.ts";
import type { PreparedDatabase } from "./data_setup.ts";
import { isFinalStage, type PlannedEpoch } from "./plan.ts";
import { policyRegularisers } from "./policy_loss.ts";
import { type HistoryEntry, isScoreMetrics, type ScoreTaskMetrics } from "./result.ts";
import { writeResume } from "./resume.ts";
import type { RunContext } from "./run_context.ts";
import { writeRunFile } from "./run_dir.ts";
import { type EpochAccumulator, type RunState, stageTime } from "./run_state.ts";
import { STAGES } from "./stages.ts";
import { type StepBatch, type StepStats, trainStep } from "./step.ts";
import { checkWeightsFinite, stepFailure } from "./training_stopped.ts";
import { RunInterrupted } from "./train_options.ts";

/** Batches of one database across an epoch, cycling its (smaller) loader as needed. */
async function* cycle(loader: BatchLoader, epochIndex: number): AsyncGenerator<Batch> {
  for (let round = 0;; round++) {
    let any = false;
    for await (const b of loader.epoch(epochIndex * 1000 + round)) {
      any = true;
      yield b;
    }
    if (!any) throw new Error("Cannot draw a batch: every image of a database is bad");
  }
}

type Stream = { db: PreparedDatabase; it: AsyncGenerator<Batch> };

/** The next batch of every database, with its targets per task. */
async function nextBatches(streams: readonly Stream[], size: number): Promise<StepBatch[]> {
  const batches: StepBatch[] = [];
  for (const { db, it } of streams) {
    const b = (await it.next()).value as Batch;
    batches.push({
      database: db.name,
      images: b.images,
      size,
      targets: Object.fromEntries(db.tasks.map((t) => [t.name, b.labels[t.label]])),
      values: scoreTargets(db, b),
      paths: b.paths,
    });
  }
  return batches;
}

/** The values score and dist tasks learn (mean scores, rating histograms), by task name. */
function scoreTargets(db: PreparedDatabase, b: Batch): Record<string, Float32Array> | undefined {
  const out: Record<string, Float32Array> = {};
  for (const t of db.tasks) {
    const v = t.kind === "score" ? b.scores : t.kind === "dist" ? b.histograms : undefined;
    if (v) out[t.name] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Adds a step's figures to the epoch's. */
function addStep(acc: EpochAccumulator, stats: StepStats, batches: StepBatch[], size: number) {
  acc.loss += stats.loss;
  acc.steps++;
  acc.images += batches.reduce((a, b) => a + b.images.length / (3 * size * size), 0);
  for (const [t, s] of Object.entries(stats.tasks)) {
    acc.correct[t] = (acc.correct[t] ?? 0) + s.correct;
    acc.count[t] = (acc.count[t] ?? 0) + s.count;
    acc.taskLoss[t] = (acc.taskLoss[t] ?? 0) + s.loss;
    acc.taskSteps[t] = (acc.taskSteps[t] ?? 0) + 1;
  }
}

function saveResume(ctx: RunContext, state: RunState): Promise<void> {
  return writeRunFile(ctx.lastPath, "resume state", () => writeResume(ctx.lastPath, state));
}

/**
 * Runs the epoch `ep` at the state's plan position and moves the state on to the next.
 * @throws {RunInterrupted} when the signal aborted it (its state saved first)
 */
export async function runEpoch(ctx: RunContext, state: RunState, ep: PlannedEpoch): Promise<void> {
  const t0 = performance.now();
  const { config, opts } = ctx;
  const { net, weightsOpt, policyOpt } = state;
  const rules = STAGES[ep.kind];
  const streams = ctx.databases.map((db) => ({
    db,
    it: cycle(ctx.loader(db, rules.part), ep.draws),
  }));
  const steps = Math.max(...ctx.databases.map((db) => ctx.loader(db, rules.part).batchesPerEpoch));
  const acc: EpochAccumulator = state.partial ??
    { loss: 0, steps: 0, images: 0, correct: {}, count: {}, taskLoss: {}, taskSteps: {} };
  const tau = temperature(config.tau, config.tauDecay, ep.policyEpochsBefore);
  const window = curriculumWindow(net.gateCount, config.curriculumSpeed, ep.policyEpochsBefore);
  // Which leaves learn: weight epochs freeze the logits; logit epochs freeze the weights.
  net.policy.logits.requiresGrad = rules.learnsLogits;
  for (const p of net.weightParameters()) p.requiresGrad = !rules.learnsLogits;

  for (let step = 0; step < steps; step++) {
    const batches = await nextBatches(streams, config.imageSize);
    if (step < state.step) continue; // resumed mid-epoch: these steps are done
    const seed = mix32(mix32(config.seed ^ mix32(ep.draws)) ^ step);
    const gates = rules.stepGates(net, { seed, tau, window, config });
    weightsOpt.hyper.lr = rules.weightsLr(config, (ep.epoch - 1) * steps + step, ep.of * steps);
    for (const b of batches) opts.transformBatch?.(state.position, step, b);
    // Adaptive task weights: the step's weighting, and the weights it uses (their mean
    // over the epoch goes into the history).
    const weighting = state.taskWeights.forStep(net, !rules.learnsLogits);
    if (state.taskWeights.scheme !== "fixed") {
      const sums = acc.taskWeights ??= {};
      for (const [t, w] of Object.entries(state.taskWeights.current())) {
        sums[t] = (sums[t] ?? 0) + w;
      }
    }
    let stats;
    try {
      stats = trainStep(net, batches, {
        lambdas: ctx.lambdas,
        gates,
        dropoutSeed: seed,
        extraLoss: rules.learnsLogits
          ? () => policyRegularisers(net.policy.logits, window, config)
          : undefined,
        weighting,
        losses: ctx.taskLosses,
      });
    } catch (e) {
      const lr = rules.learnsLogits ? config.policyLr : weightsOpt.hyper.lr;
      throw await stepFailure(e, ep, step, lr, ctx.bestPath);
    }
    (rules.learnsLogits ? policyOpt : weightsOpt).step();
    state.taskWeights.afterStep(!rules.learnsLogits);
    weightsOpt.zeroGrad();
    policyOpt.zeroGrad();
    addStep(acc, stats, batches, config.imageSize);
    await ctx.log.write({
      kind: "step",
      stage: ep.kind,
      epoch: ep.epoch,
      step: step + 1,
      loss: stats.loss,
    });
    opts.onProgress?.({
      kind: ep.kind,
      epoch: ep.epoch,
      of: ep.of,
      step: step + 1,
      steps,
      images: acc.images,
      seconds: (performance.now() - t0) / 1000,
      loss: acc.loss / acc.steps,
    });
    if (opts.signal?.aborted && step + 1 < steps) {
      state.step = step + 1;
      state.partial = acc;
      stageTime(state, ep.stage).seconds += (performance.now() - t0) / 1000;
      await saveResume(ctx, state);
      throw new RunInterrupted(ctx.lastPath);
    }
  }
  for (const s of streams) await s.it.return(undefined);
  await finishEpoch(ctx, state, ep, acc, t0, tau);
}

/** The mean task weights of an epoch's steps from their sums. */
function meanWeights(sums: Record<string, number>, steps: number): Record<string, number> {
  return Object.fromEntries(Object.entries(sums).map(([t, w]) => [t, w / Math.max(1, steps)]));
}

/** After the last step: guard, validate, record, keep the best weights, move on, save. */
async function finishEpoch(
  ctx: RunContext,
  state: RunState,
  ep: PlannedEpoch,
  acc: EpochAccumulator,
  t0: number,
  tau: number,
): Promise<void> {
  const { config, opts } = ctx;
  const rules = STAGES[ep.kind];
  const lr = rules.learnsLogits ? config.policyLr : config.lr;
  await checkWeightsFinite(state.net, ep, lr, ctx.bestPath);
  const st = stageTime(state, ep.stage);
  const valStart = performance.now();
  st.seconds += (valStart - t0) / 1000;
  // Validation with the epoch's own evaluation policy, timed apart from training.
  const val = await ctx.evaluate(state.net, "val", rules.evalGates(state.net));
  st.validationSeconds = (st.validationSeconds ?? 0) + (performance.now() - valStart) / 1000;
  if (!rules.learnsLogits) st.epochs++; // a policy epoch's weight and logit halves count once
  const entry: HistoryEntry = {
    stage: ep.kind,
    epoch: ep.epoch,
    loss: acc.loss / Math.max(1, acc.steps),
    images: acc.images,
    tasks: Object.fromEntries(config.tasks.map((t) => [t.name, {
      trainAccuracy: acc.count[t.name] ? acc.correct[t.name] / acc.count[t.name] : undefined,
      valAccuracy: val[t.name].accuracy,
      loss: acc.taskSteps[t.name] ? acc.taskLoss[t.name] / acc.taskSteps[t.name] : undefined,
      ...(isScoreMetrics(val[t.name]) ? { valPc: (val[t.name] as ScoreTaskMetrics).pc } : {}),
    }])),
    seconds: (performance.now() - ctx.runStart) / 1000,
    ...(rules.policyPhase ? { tau, policyProbabilities: state.net.policyProbabilities() } : {}),
    ...(acc.taskWeights ? { taskWeights: meanWeights(acc.taskWeights, acc.steps) } : {}),
  };
  // DWA's weights for the next epoch come from this one's task losses.
  state.taskWeights.endEpoch(
    Object.fromEntries(Object.entries(entry.tasks).map(([t, v]) => [t, v.loss])),
    !rules.learnsLogits,
  );
  state.history.push(entry);
  await ctx.log.write({ kind: "epoch", ...entry });
  opts.onEpoch?.(entry);
  // The best checkpoint: the first task's validation accuracy, or its PC for a score or
  // dist task (the grade accuracy of a score is coarse: PC ranks the scores themselves).
  const firstVal = val[config.tasks[0].name];
  const figure = isScoreMetrics(firstVal) ? firstVal.pc : firstVal.accuracy;
  if (isFinalStage(ep.kind) && figure > state.bestVal) {
    state.bestVal = figure;
    state.bestEpoch = ep.epoch;
    const provenance = JSON.stringify({
      stage: ep.kind,
      epoch: ep.epoch,
      [isScoreMetrics(firstVal) ? "valPc" : "valAccuracy"]: state.bestVal,
    });
    const path = ctx.bestPath;
    await writeRunFile(path, "checkpoint", () => saveCheckpoint(path, state.net, { provenance }));
  }
  state.position++;
  state.step = 0;
  state.partial = null;
  await saveResume(ctx, state);
  if (opts.signal?.aborted && state.position < ctx.plan.length) {
    throw new RunInterrupted(ctx.lastPath);
  }
}
