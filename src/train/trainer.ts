/**
 * The trainer: AdaShare's three stages (warm-up with every block executed → policy
 * learning alternating weight epochs on train-w and logit epochs on train-p with a soft
 * Gumbel policy, decaying temperature, curriculum and regularisers → re-training of the
 * fixed policy from the initial weights), or a plain baseline; one batch per database per
 * step; validation each epoch; the best checkpoint by the first task's validation
 * accuracy; test metrics at the end.
 *
 * Every random choice is a function of (seed, epoch index, step), so a run resumed from
 * `last.safetensors` ends with the same numbers as an uninterrupted one.
 * @module
 */
import { join } from "node:path";
import type { Backend } from "../backend/backend.ts";
import { BatchLoader } from "../data/loader.ts";
import type { Batch } from "../data/loader.ts";
import type { ImageRecord } from "../data/records.ts";
import { mix32, Rng } from "../data/rng.ts";
import { DecodePool } from "../data/worker_pool.ts";
import { add, mul } from "../ops/elementwise.ts";
import type { Gate } from "../models/basic_block.ts";
import { BLOCKS, type NetworkConfig } from "../models/config.ts";
import {
  type HostTensor,
  importTorchvisionResnet18,
  loadState,
  readPretrainedWeights,
  saveCheckpoint,
} from "../models/checkpoint.ts";
import { MultiTaskNet } from "../models/network.ts";
import { argmaxPolicy, gumbelGates, gumbelNoise, samplePolicy } from "../models/policy.ts";
import { parseSafetensors } from "../io/safetensors.ts";
import { AdamW } from "../optim/adamw.ts";
import { curriculumWindow, learningRate, temperature } from "../optim/schedule.ts";
import { evaluateParts } from "./evaluate.ts";
import { prepareData, type PreparedDatabase, type TaskClasses } from "./data_setup.ts";
import { isFinalStage, planEpochs, type PlannedEpoch } from "./plan.ts";
import { sharingLoss, sparsityLoss } from "./policy_loss.ts";
import type { HistoryEntry, RunResult, StageTime } from "./result.ts";
import { type EpochAccumulator, readResume, type ResumeState, writeResume } from "./resume.ts";
import { RunLock, RunLog, writeJsonAtomic, writeRunFile } from "./run_dir.ts";
import { type RunConfig, validateRunConfig } from "./run_config.ts";
import {
  BadBatchError,
  NonFiniteInputError,
  NonFiniteLossError,
  type StepBatch,
  trainStep,
} from "./step.ts";

/** Progress of the running epoch, for progress bars. */
export interface ProgressEvent {
  kind: PlannedEpoch["kind"];
  epoch: number;
  of: number;
  step: number;
  steps: number;
  /** Images processed in this epoch so far. */
  images: number;
  /** Seconds spent in this epoch so far. */
  seconds: number;
  /** Running mean loss of the epoch. */
  loss: number;
}

/** Options of train(). */
export interface TrainOptions {
  backend: Backend;
  /** Continue from `last.safetensors` in the run folder. */
  resume?: boolean;
  /** Called after every step. */
  onProgress?: (e: ProgressEvent) => void;
  /** Called after every epoch with its history entry. */
  onEpoch?: (e: HistoryEntry) => void;
  /** Messages for the user (data problems, stage changes). */
  onNote?: (message: string) => void;
  /** When aborted: finish the step, write `last.safetensors`, throw RunInterrupted. */
  signal?: AbortSignal;
  /**
   * The `--pretrained` tensors when the caller already read and checked them with
   * readPretrainedWeights (the CLI does, before loading a backend); read here otherwise.
   */
  pretrained?: ReadonlyMap<string, HostTensor>;
  /** Test hook: may alter a batch before its step (e.g. inject a NaN), by plan position and step. */
  transformBatch?: (position: number, step: number, batch: StepBatch) => void;
}

/** The run stopped on request; `last.safetensors` holds where it was. */
export class RunInterrupted extends Error {
  constructor(readonly lastPath: string) {
    super(`Run interrupted: its state is in "${lastPath}". Hint: continue with --resume`);
    this.name = "RunInterrupted";
  }
}

/** Task config of the network, from the run's tasks and the data's classes. */
function networkConfig(
  c: RunConfig,
  classes: TaskClasses,
  policy?: Record<string, number[]>,
): NetworkConfig {
  return {
    arch: "resnet18",
    tasks: c.tasks.map((t) => ({
      name: t.name,
      classes: classes[t.name].length,
      database: t.database,
    })),
    databases: c.databases.map((d) => d.name),
    aff: c.aff,
    affScale: c.affScale,
    affReduction: c.affReduction,
    bn: c.bn,
    policy,
    dropout: c.dropout,
    widths: c.widths,
    imageSize: c.imageSize,
  };
}

async function buildNet(
  c: RunConfig,
  nc: NetworkConfig,
  backend: Backend,
  pretrained: ReadonlyMap<string, HostTensor> | undefined,
): Promise<MultiTaskNet> {
  const net = new MultiTaskNet(nc, { seed: c.seed, backend });
  if (c.pretrained) await importTorchvisionResnet18(net, c.pretrained, pretrained);
  return net;
}

/** Key of the first network tensor holding NaN or ±Infinity, or undefined. */
function firstNonFiniteTensor(net: MultiTaskNet): string | undefined {
  for (const [key, t] of net.stateDict()) {
    const a = t.toArray();
    for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return key;
  }
  return undefined;
}

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

/** Trains per the config; returns the result (also written to the run folder). */
export async function train(config: RunConfig, opts: TrainOptions): Promise<RunResult> {
  validateRunConfig(config);
  // A bad --pretrained file fails now, before the run folder is touched or data is read.
  const pretrained = config.pretrained
    ? opts.pretrained ?? await readPretrainedWeights(config.pretrained, config.widths)
    : undefined;
  const note = opts.onNote ?? (() => {});
  const lock = await RunLock.acquire(config.out);
  try {
    return await runLocked(config, opts, note, pretrained);
  } finally {
    await lock.release();
  }
}

async function runLocked(
  config: RunConfig,
  opts: TrainOptions,
  note: (m: string) => void,
  pretrained: ReadonlyMap<string, HostTensor> | undefined,
): Promise<RunResult> {
  const { backend } = opts;
  const lastPath = join(config.out, "last.safetensors");
  const bestPath = join(config.out, "checkpoint.safetensors");
  const resume = opts.resume ? await readResume(lastPath, config) : null;
  if (!opts.resume) {
    const path = join(config.out, "config.json");
    await writeRunFile(path, "run config", () => writeJsonAtomic(path, config));
  }
  const { databases, classes } = await prepareData(config);
  for (const d of databases) {
    for (const p of d.dataset.problems.slice(0, 5)) {
      note(`${d.name}: ${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`);
    }
    if (d.dataset.problems.length > 5) {
      note(`${d.name}: … ${d.dataset.problems.length - 5} more problems (see deno task data info)`);
    }
  }
  const plan = planEpochs(config);
  const lambdas = Object.fromEntries(config.tasks.map((t) => [t.name, t.lambda]));
  const firstTask = config.tasks[0].name;

  const state: ResumeState = resume?.state ?? {
    position: 0,
    step: 0,
    partial: null,
    finalPolicy: null,
    bestVal: -1,
    bestEpoch: 0,
    history: [],
    stages: [],
    weightSteps: 0,
    policySteps: 0,
  };
  let net = await buildNet(
    config,
    networkConfig(config, classes, state.finalPolicy ?? undefined),
    backend,
    pretrained,
  );
  let weightsOpt = new AdamW(net.weightParameters(), {
    lr: config.lr,
    weightDecay: config.weightDecay,
  });
  const policyOpt = new AdamW([net.policy.logits], {
    lr: config.policyLr,
    weightDecay: config.policyWeightDecay,
  });
  if (resume) {
    loadState(net, resume.weights, lastPath);
    resume.restoreOptimizer("weights", weightsOpt, net);
    resume.restoreOptimizer("policy", policyOpt, net);
    weightsOpt.stepCount = state.weightSteps;
    policyOpt.stepCount = state.policySteps;
    note(`resuming at epoch ${state.position + 1} of ${plan.length}, step ${state.step}`);
  }

  const pool = new DecodePool({ workers: config.workers });
  const loaderOpts = (train: boolean) => ({
    batchSize: config.batch,
    train,
    size: config.imageSize,
    resize: config.resize,
    seed: config.seed,
    pool,
    cacheDir: config.cacheDir || undefined,
    onBadImage: config.onBadImage,
    labels: [...new Set(config.tasks.map((t) => t.label))],
  });
  const loaders = new Map<string, BatchLoader>();
  const loader = (
    db: PreparedDatabase,
    part: "train" | "trainW" | "trainP" | "val" | "test" | "trainEval",
  ) => {
    const key = `${db.name}/${part}`;
    let l = loaders.get(key);
    if (!l) {
      const records: ImageRecord[] = part === "trainEval" ? db.train : db[part];
      l = new BatchLoader(
        records,
        loaderOpts(part === "train" || part === "trainW" || part === "trainP"),
      );
      loaders.set(key, l);
    }
    return l;
  };
  const log = await RunLog.open(config.out, !opts.resume);
  const runStart = performance.now() - (state.history.at(-1)?.seconds ?? 0) * 1000;

  const evaluate = (
    part: "val" | "test" | "trainEval",
    gates: ReadonlyMap<string, readonly Gate[]>,
  ) =>
    evaluateParts(
      net,
      databases.map((db) => ({ database: db.name, loader: loader(db, part), tasks: db.tasks })),
      classes,
      gates,
    );

  const lastGood = () => Deno.stat(bestPath).then(() => `"${bestPath}"`, () => "none yet");

  const stageTime = (stage: string): StageTime => {
    let s = state.stages.find((x) => x.stage === stage);
    if (!s) {
      s = { stage, epochs: 0, seconds: 0 };
      state.stages.push(s);
    }
    return s;
  };

  try {
    for (; state.position < plan.length; state.position++) {
      const ep = plan[state.position];
      // Entering re-training: fix the policy, restart from the initial weights.
      if (ep.kind === "retrain" && !state.finalPolicy) {
        const logits = net.policy.logits.toArray();
        const T = config.tasks.length;
        const p = config.finalPolicy === "argmax"
          ? argmaxPolicy(logits, T, BLOCKS)
          : samplePolicy(logits, T, BLOCKS, new Rng(config.seed, 0xf1a1));
        state.finalPolicy = Object.fromEntries(config.tasks.map((t, i) => [t.name, p[i]]));
        const fresh = await buildNet(
          config,
          networkConfig(config, classes, state.finalPolicy),
          backend,
          pretrained,
        );
        backend.copy(
          fresh.policy.logits.storage,
          0,
          net.policy.logits.storage,
          0,
          logits.length,
          false,
        );
        weightsOpt.dispose();
        net.dispose();
        net = fresh;
        weightsOpt = new AdamW(net.weightParameters(), {
          lr: config.lr,
          weightDecay: config.weightDecay,
        });
        note(
          `policy fixed: ${
            Object.entries(state.finalPolicy).map(([t, v]) => `${t} ${v.join("")}`).join(", ")
          }`,
        );
      }
      await runEpoch(ep);
      state.step = 0;
      state.partial = null;
    }
    // Final metrics with the best checkpoint's weights.
    const best = parseSafetensors(await Deno.readFile(bestPath), { source: bestPath });
    loadState(net, best.tensors, bestPath);
    const gates = net.evalGates();
    const [test, val, trainEval] = [
      await evaluate("test", gates),
      await evaluate("val", gates),
      await evaluate("trainEval", gates),
    ];
    const result: RunResult = {
      name: config.name,
      out: config.out,
      method: config.method,
      aff: config.aff,
      lambdas,
      batch: config.batch,
      tasks: Object.fromEntries(config.tasks.map((t) => [t.name, {
        test: test[t.name],
        val: val[t.name],
        train: { accuracy: trainEval[t.name].accuracy },
        gap: trainEval[t.name].accuracy - test[t.name].accuracy,
      }])),
      policy: net.evalPolicy(),
      stages: state.stages,
      trainSeconds: state.stages.reduce((a, s) => a + s.seconds, 0),
      history: state.history,
    };
    const metricsPath = join(config.out, "metrics.json");
    await writeRunFile(metricsPath, "metrics", () => writeJsonAtomic(metricsPath, result));
    return result;
  } finally {
    log.close();
    for (const l of loaders.values()) l.close();
    pool.close();
    weightsOpt.dispose();
    policyOpt.dispose();
    net.dispose();
  }

  async function runEpoch(ep: PlannedEpoch): Promise<void> {
    const t0 = performance.now();
    const part = ep.kind === "policy-weights"
      ? "trainW"
      : ep.kind === "policy-logits"
      ? "trainP"
      : "train";
    const streams = databases.map((db) => ({ db, it: cycle(loader(db, part), state.position) }));
    const steps = Math.max(...databases.map((db) => loader(db, part).batchesPerEpoch));
    const acc: EpochAccumulator = state.partial ??
      { loss: 0, steps: 0, images: 0, correct: {}, count: {}, taskLoss: {}, taskSteps: {} };
    const tau = temperature(config.tau, config.tauDecay, ep.policyEpochsBefore);
    const window = curriculumWindow(BLOCKS, config.curriculumSpeed, ep.policyEpochsBefore);
    const policyPhase = ep.kind === "policy-weights" || ep.kind === "policy-logits";
    // Which leaves learn: weight epochs freeze the logits; logit epochs freeze the weights.
    net.policy.logits.requiresGrad = ep.kind === "policy-logits";
    for (const p of net.weightParameters()) p.requiresGrad = ep.kind !== "policy-logits";

    for (let step = 0; step < steps; step++) {
      const batches: StepBatch[] = [];
      for (const { db, it } of streams) {
        const r = await it.next();
        const b = r.value as Batch;
        batches.push({
          database: db.name,
          images: b.images,
          size: config.imageSize,
          targets: Object.fromEntries(db.tasks.map((t) => [t.name, b.labels[t.label]])),
          paths: b.paths,
        });
      }
      if (step < state.step) continue; // resumed mid-epoch: these steps are done
      const stepSeed = mix32(mix32(config.seed ^ mix32(state.position)) ^ step);
      // Gates hold tensors, so the step builds them inside its own scope.
      let gates: () => ReadonlyMap<string, readonly Gate[]>;
      if (policyPhase) {
        const noise = gumbelNoise(net.policy.logits.size, new Rng(stepSeed, 0x6b));
        gates = () => {
          const perTask = gumbelGates(net.policy.logits, noise, {
            tau,
            hard: config.hardGumbel,
            window,
          });
          return new Map(config.tasks.map((t, i) => [t.name, perTask[i]]));
        };
      } else if (ep.kind === "retrain") {
        gates = () => net.evalGates();
      } else {
        gates = () => net.allExecuteGates();
      }
      if (!policyPhase) {
        const total = ep.of * steps;
        weightsOpt.hyper.lr = learningRate(
          config.lrSchedule,
          config.lr,
          (ep.epoch - 1) * steps + step,
          total,
        );
      }
      for (const b of batches) opts.transformBatch?.(state.position, step, b);
      let stats;
      try {
        stats = trainStep(net, batches, {
          lambdas,
          gates,
          dropoutSeed: stepSeed,
          extraLoss: ep.kind !== "policy-logits" ? undefined : () => {
            const logits = net.policy.logits;
            const sparse = mul(sparsityLoss(logits, window), config.sparsityWeight);
            const share = sharingLoss(logits);
            return share ? add(sparse, mul(share, config.shareWeight)) : sparse;
          },
        });
      } catch (e) {
        const lr = ep.kind === "policy-logits" ? config.policyLr : weightsOpt.hyper.lr;
        const why = e instanceof NonFiniteLossError
          ? `the loss diverged: ${e.message} with finite inputs (learning rate ${lr})`
          : e instanceof NonFiniteInputError
          ? `non-finite input: ${e.message}`
          : e instanceof BadBatchError
          ? `bad batch: ${e.message}`
          : undefined;
        if (!why) throw e;
        const hint = e instanceof NonFiniteLossError
          ? `lower ${ep.kind === "policy-logits" ? "--policy-lr" : "--lr"}`
          : "check the data and any batch transform";
        throw new Error(
          `Training stopped: ${why} at ${ep.kind} epoch ${ep.epoch}, step ${step + 1}. ` +
            `Last good checkpoint: ${await lastGood()}. Hint: ${hint}`,
          { cause: e },
        );
      }
      if (ep.kind === "policy-logits") policyOpt.step();
      else weightsOpt.step();
      weightsOpt.zeroGrad();
      policyOpt.zeroGrad();
      state.weightSteps = weightsOpt.stepCount;
      state.policySteps = policyOpt.stepCount;
      acc.loss += stats.loss;
      acc.steps++;
      acc.images += batches.reduce(
        (a, b) => a + b.images.length / (3 * config.imageSize * config.imageSize),
        0,
      );
      for (const [t, s] of Object.entries(stats.tasks)) {
        acc.correct[t] = (acc.correct[t] ?? 0) + s.correct;
        acc.count[t] = (acc.count[t] ?? 0) + s.count;
        acc.taskLoss[t] = (acc.taskLoss[t] ?? 0) + s.loss;
        acc.taskSteps[t] = (acc.taskSteps[t] ?? 0) + 1;
      }
      await log.write({
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
        stageTime(ep.stage).seconds += (performance.now() - t0) / 1000;
        await writeRunFile(
          lastPath,
          "resume state",
          () => writeResume(lastPath, net, { weights: weightsOpt, policy: policyOpt }, state),
        );
        throw new RunInterrupted(lastPath);
      }
    }
    for (const s of streams) await s.it.return(undefined);
    // The last step's update may have blown the weights up: never save or validate those.
    const bad = firstNonFiniteTensor(net);
    if (bad) {
      throw new Error(
        `Training stopped: the loss diverged: tensor "${bad}" holds NaN or Infinity after ` +
          `${ep.kind} epoch ${ep.epoch} (learning rate ${
            ep.kind === "policy-logits" ? config.policyLr : config.lr
          }). Last good checkpoint: ${await lastGood()}. ` +
          `Hint: lower --lr`,
      );
    }
    // Validation with the epoch's own evaluation policy.
    const evalGates = ep.kind === "warmup" || ep.kind === "baseline"
      ? net.allExecuteGates()
      : net.evalGates();
    const val = await evaluate("val", evalGates);
    const st = stageTime(ep.stage);
    st.seconds += (performance.now() - t0) / 1000;
    if (ep.kind !== "policy-logits") st.epochs++;
    const entry: HistoryEntry = {
      stage: ep.kind,
      epoch: ep.epoch,
      loss: acc.loss / Math.max(1, acc.steps),
      tasks: Object.fromEntries(config.tasks.map((t) => [t.name, {
        trainAccuracy: acc.count[t.name] ? acc.correct[t.name] / acc.count[t.name] : undefined,
        valAccuracy: val[t.name].accuracy,
        loss: acc.taskSteps[t.name] ? acc.taskLoss[t.name] / acc.taskSteps[t.name] : undefined,
      }])),
      seconds: (performance.now() - runStart) / 1000,
      ...(policyPhase ? { tau } : {}),
    };
    state.history.push(entry);
    await log.write({ kind: "epoch", ...entry });
    opts.onEpoch?.(entry);
    if (isFinalStage(ep.kind) && val[firstTask].accuracy > state.bestVal) {
      state.bestVal = val[firstTask].accuracy;
      state.bestEpoch = ep.epoch;
      const provenance = JSON.stringify({
        stage: ep.kind,
        epoch: ep.epoch,
        valAccuracy: state.bestVal,
      });
      await writeRunFile(
        bestPath,
        "checkpoint",
        () => saveCheckpoint(bestPath, net, { provenance }),
      );
    }
    const next = { ...state, position: state.position + 1, step: 0, partial: null };
    await writeRunFile(
      lastPath,
      "resume state",
      () => writeResume(lastPath, net, { weights: weightsOpt, policy: policyOpt }, next),
    );
    if (opts.signal?.aborted && state.position + 1 < plan.length) {
      state.position++;
      throw new RunInterrupted(lastPath);
    }
  }
}
