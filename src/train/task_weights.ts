/**
 * Task weights: how a step's per-task losses L_t (unweighted, from step.ts) become the
 * loss that trains the network, and how those weights move during a run
 * (`--task-weights`, RunConfig.taskWeights):
 *
 * - **fixed** — Σ_t λ_t·L_t with each task's λ (`--task NAME=DB:LABEL:λ`): the step's own
 *   path (step.ts weightedLoss), the same ops in the same order as before this option.
 * - **uncertainty** (Kendall, Gal & Cipolla, CVPR 2018, arXiv:1705.07115) — a learnt
 *   s_t = log σ_t² per task and Σ_t (exp(−s_t)·L_t + s_t). Kendall's classification term
 *   is exp(−s)·L + s/2 and his regression term half of exp(−s)·L + s; this uses
 *   exp(−s)·L + s for every task kind, as most implementations do: its minimum over s is
 *   at exp(s_t) = L_t, so the weights tend to 1/L_t whatever the kind. λ does not
 *   multiply: it sets the start, s_t(0) = −ln λ_t (weight exp(−s_t) = λ_t; λ = 1 is the
 *   paper's s = 0). The weight logged is exp(−s_t). After each Adam step s_t is clamped to
 *   [−{@link UNCERTAINTY_S_BOUND}, +{@link UNCERTAINTY_S_BOUND}] (weights e^∓5, about
 *   0.0067–148), widened to include its start −ln λ_t: the optimum exp(s_t) = L_t sends
 *   s_t → −∞ and the weight → ∞ as a task's loss goes to 0 (an overfitted or trivial
 *   task), which would swamp the other tasks' gradients. s_t moves only in a step whose
 *   backward ran (Adam's step count included).
 * - **gradnorm** (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, arXiv:1711.02257) —
 *   weights w_t, Σ_t w_t = T, start T·λ_t/Σλ (1 each for equal λ, the paper's), each weight
 *   step moved by Adam on L_grad = Σ_t |G_t − Ḡ·r_t^α| with the target Ḡ·r_t^α held
 *   constant, G_t = ‖∇_W w_t·L_t‖, Ḡ = mean G_t, r_t = L̃_t / mean L̃, L̃_t = L_t / L_t(0)
 *   (L_t(0): the loss of the first weight step), then w_t ≥ 10⁻³ and renormalised to sum
 *   T. ∂L_grad/∂w_t = sign(G_t − target_t)·‖∇_W L_t‖ ({@link gradNormGradient}). A step
 *   whose norms, losses, targets or gradient are not all finite (e.g. every L_t exactly 0:
 *   mean r = 0 and the targets 0/0) leaves the weights and Adam's state as they were, and a
 *   step that would make a weight non-finite is undone: the weights are never NaN.
 *   W, "the last shared layer", is {@link sharedLayer}: layer4.0's downsample conv.
 * - **dwa** (Liu, Johns & Davison, CVPR 2019, arXiv:1803.10704) — constant within an
 *   epoch: λ_t(e) = T·exp(r_t/τ) / Σ_i exp(r_i/τ), r_t = L_t(e−1)/L_t(e−2), the mean
 *   training losses of the two weight epochs before ({@link dwaWeights}); the first two
 *   weight epochs use T·λ_t/Σλ (the paper's 1 each for equal λ).
 *
 * Stages (stages.ts): weight steps (warm-up, policy weights, re-training, baseline) use the
 * weights and move them; logit steps (the weights frozen) use them as constants and move
 * nothing, and DWA counts only weight epochs. Re-training restarts the network from its
 * initial weights with a new optimiser, so it restarts the scheme too (start weights, Adam
 * moments, GradNorm's L(0), DWA's epoch losses): it trains as a fresh run would.
 *
 * The learnt values (s_t, w_t) are fp32 tensors with their own AdamW (weight decay 0,
 * constant rate `--task-weights-lr`, default 0.01): the weights' rate is 10× smaller and
 * decays along a cosine, too slow for a balance that must settle within a short run.
 * What a step reports as `loss` is Σ_t λ_t·L_t with the fixed λ in every scheme, so the
 * curves of runs with different schemes compare. Each history entry holds the mean
 * weights the epoch's steps used; the state (values, moments, L(0), epoch losses) goes into
 * the resume file ({@link TaskWeightsState}), so a resumed run ends as one never stopped.
 * @module
 */
import { backward, gradientAt } from "../autograd/tape.ts";
import type { Backend } from "../backend/backend.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { ResNetBackbone } from "../models/archs/resnet.ts";
import type { Downsample } from "../models/basic_block.ts";
import { add, exp, mul, neg } from "../ops/elementwise.ts";
import { AdamW } from "../optim/adamw.ts";
import { keep, type Tensor, tensor } from "../tensor/tensor.ts";
import type { RunConfig, TaskWeightScheme } from "./run_config.ts";
import { type LossWeighting, weightedLoss } from "./step.ts";

/** GradNorm's floor on a weight before renormalising: no task's loss is switched off. */
export const GRADNORM_MIN_WEIGHT = 1e-3;

/**
 * Uncertainty's bound on |s_t| (weights exp(−s_t) within e^∓5, about 0.0067–148); a start
 * −ln λ_t outside it widens that task's range to include it.
 */
export const UNCERTAINTY_S_BOUND = 5;

/**
 * DWA's weights for the next epoch (Liu et al. 2019, eq. 7): T·softmax(r/τ), with
 * r_t = last_t / before_t.
 * @param last mean training loss per task of the last epoch, L_t(e−1)
 * @param before the epoch before it, L_t(e−2)
 * @param temperature τ > 0 (the paper's 2); large τ gives equal weights
 * @returns weight per task (of `last`), summing to the number of tasks
 * @throws {RangeError} when a task lacks a positive loss in either epoch
 * @example Equal rates give equal weights
 * ```ts
 * import assert from "node:assert/strict";
 * import { dwaWeights } from "./task_weights.ts";
 * assert.deepEqual(dwaWeights({ a: 1, b: 2 }, { a: 2, b: 4 }, 2), { a: 1, b: 1 });
 * ```
 */
export function dwaWeights(
  last: Readonly<Record<string, number>>,
  before: Readonly<Record<string, number>>,
  temperature: number,
): Record<string, number> {
  const tasks = Object.keys(last);
  const e = tasks.map((t) => {
    const [l, b] = [last[t], before[t]];
    if (!(l >= 0 && b > 0)) {
      throw new RangeError(
        `Cannot compute DWA weights: task "${t}" needs a loss ≥ 0 and one > 0 in the two ` +
          `epochs before: current values are ${l} and ${b}`,
      );
    }
    return (l / b) / temperature;
  });
  // Softmax after subtracting the largest exponent: the same value, no overflow.
  const top = Math.max(...e);
  const z = e.map((x) => Math.exp(x - top));
  const sum = z.reduce((a, x) => a + x, 0);
  return Object.fromEntries(tasks.map((t, i) => [t, (tasks.length * z[i]) / sum]));
}

/** What {@link gradNormGradient} needs of one step, per task in one order. */
export interface GradNormInputs {
  /** G_t = ‖∇_W w_t·L_t‖, the weighted loss's gradient norm at the shared layer. */
  norms: readonly number[];
  /** w_t used by the step (> 0). */
  weights: readonly number[];
  /** L_t of the step. */
  losses: readonly number[];
  /** L_t(0), the first weight step's losses (> 0). */
  initialLosses: readonly number[];
  /** α ≥ 0: how hard slow tasks are pushed (the paper's default 1.5). */
  alpha: number;
}

/**
 * GradNorm's gradient of L_grad = Σ_t |G_t − Ḡ·r_t^α| with respect to the weights, the
 * target Ḡ·r_t^α held constant (Chen et al. 2018, Algorithm 1): since G_t = w_t·‖∇_W L_t‖,
 * ∂L_grad/∂w_t = sign(G_t − target_t)·G_t/w_t.
 * @returns the gradient per task and the targets Ḡ·r_t^α
 * @example Two tasks: the one training slower (larger L/L(0)) is pushed up
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradNormGradient } from "./task_weights.ts";
 * const { gradient } = gradNormGradient({
 *   norms: [2, 2], weights: [1, 1], losses: [1, 3], initialLosses: [2, 2], alpha: 1,
 * });
 * assert.deepEqual(gradient, [2, -2]); // targets 1 and 3: lower w_0, raise w_1
 * ```
 */
export function gradNormGradient(
  o: GradNormInputs,
): { gradient: number[]; targets: number[] } {
  const T = o.norms.length;
  const mean = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const meanNorm = mean(o.norms);
  const rates = o.losses.map((l, t) => l / o.initialLosses[t]);
  const meanRate = mean(rates);
  const targets = rates.map((r) => meanNorm * (r / meanRate) ** o.alpha);
  const gradient = Array.from(
    { length: T },
    (_, t) => Math.sign(o.norms[t] - targets[t]) * o.norms[t] / o.weights[t],
  );
  return { gradient, targets };
}

/**
 * GradNorm's W: the weight of layer4.0's downsample conv (1×1, widths[2] → widths[3]).
 * GradNorm takes the last layer all tasks share; in this network the last conv every
 * task's path runs in every stage and under every policy. AdaShare may skip any residual
 * block for a task, and a skipped block still runs its downsample (basic_block.ts), so
 * layer4.0's downsample is always on the path while layer4.1's convs are not; the heads
 * are per task. Each task's gradient there comes from the graph above it (gradientAt:
 * layer4 and the task's head, a small share of a backward), before the one backward of
 * Σ w_t·L_t that the step runs anyway.
 */
export function sharedLayer(net: MultiTaskNet): Tensor {
  const bb = net.backbone;
  if (bb instanceof ResNetBackbone) {
    // The last projection shortcut: layer4.0's in ResNet18, run under every policy.
    const ds = bb.units.findLast((u) => (u as { downsample?: Downsample | null }).downsample);
    const conv = (ds as { downsample?: Downsample | null } | undefined)?.downsample?.conv;
    if (!conv) {
      throw new Error("Cannot find GradNorm's shared layer: the ResNet has no projection shortcut");
    }
    return conv.weight;
  }
  // Elsewhere: the deepest convolution outside every gated block (no policy can skip it).
  const gated = net.blocks.filter((b) => b.gateable).map((b) => `${b.name}.`);
  const convs = bb.namedParameters().filter(([k, t]) =>
    t.rank === 4 && !gated.some((p) => k.startsWith(p))
  );
  if (convs.length === 0) {
    throw new Error(`Cannot find GradNorm's shared layer in "${net.config.arch}"`);
  }
  return convs[convs.length - 1][1];
}

/** The scheme's state in the resume file (`resume.taskWeights`), JSON numbers. */
export interface TaskWeightsState {
  /** The scheme that wrote it. */
  scheme: TaskWeightScheme;
  /** Uncertainty's s_t or GradNorm's w_t (fp32 values), by task. */
  params?: Record<string, number>;
  /** Their Adam first moments… */
  m?: Record<string, number>;
  /** …second moments… */
  v?: Record<string, number>;
  /** …and step count. */
  steps?: number;
  /** GradNorm: L_t(0) of the tasks seen so far. */
  initialLosses?: Record<string, number>;
  /** DWA: the weights of the current epoch… */
  weights?: Record<string, number>;
  /** …and the mean task losses of the last two weight epochs, oldest first. */
  epochLosses?: Record<string, number>[];
}

/** A run's task weights (one per RunState): used by epoch.ts around each step. */
export interface TaskWeighting {
  /** The scheme. */
  readonly scheme: TaskWeightScheme;
  /** The weights the next step uses, by task (uncertainty: exp(−s_t)). */
  current(): Record<string, number>;
  /**
   * The step's loss weighting, or undefined for the step's own Σ λ_t·L_t (fixed).
   * @param net the network the step trains (GradNorm reads its shared layer)
   * @param trainsWeights the step trains the network weights (not the policy logits)
   */
  forStep(net: MultiTaskNet, trainsWeights: boolean): LossWeighting | undefined;
  /** After the step's optimiser step: the scheme's own update (weight steps only). */
  afterStep(trainsWeights: boolean): void;
  /**
   * At the end of an epoch, with its mean training loss per task (DWA's next weights).
   * @param trainsWeights the epoch trained the network weights
   */
  endEpoch(losses: Readonly<Record<string, number | undefined>>, trainsWeights: boolean): void;
  /** Back to the start (re-training restarts from the initial weights). */
  restart(): void;
  /** The state to resume from; null when there is none (fixed). */
  save(): TaskWeightsState | null;
  /** Puts a saved state back. @throws {Error} when it is another scheme's */
  restore(state: TaskWeightsState): void;
  /** Frees its tensors. */
  dispose(): void;
}

/** The options a scheme reads. */
export type TaskWeightConfig = Pick<
  RunConfig,
  "tasks" | "taskWeights" | "taskWeightsLr" | "gradnormAlpha" | "dwaTemperature"
>;

/**
 * The task weighting of a run config (`taskWeights` absent: fixed).
 * @param config the run (its tasks' λ and the task-weight options)
 * @param backend where the learnt values live
 */
export function createTaskWeighting(config: TaskWeightConfig, backend: Backend): TaskWeighting {
  const lambdas = Object.fromEntries(config.tasks.map((t) => [t.name, t.lambda]));
  const scheme = config.taskWeights ?? "fixed";
  switch (scheme) {
    case "fixed":
      return new Fixed(lambdas);
    case "uncertainty":
      return new Uncertainty(lambdas, config.taskWeightsLr, backend);
    case "gradnorm":
      return new GradNorm(lambdas, config.taskWeightsLr, config.gradnormAlpha, backend);
    case "dwa":
      return new Dwa(lambdas, config.dwaTemperature);
    default:
      throw new Error(
        `Cannot weight the tasks: unknown scheme ${JSON.stringify(scheme)}: expected fixed, ` +
          `uncertainty, gradnorm or dwa`,
      );
  }
}

/** λ scaled to sum to the number of tasks (GradNorm's and DWA's start). */
function normalised(lambdas: Readonly<Record<string, number>>): Record<string, number> {
  const tasks = Object.keys(lambdas);
  const sum = tasks.reduce((a, t) => a + lambdas[t], 0);
  return Object.fromEntries(tasks.map((t) => [t, (tasks.length * lambdas[t]) / sum]));
}

function checkScheme(scheme: TaskWeightScheme, state: TaskWeightsState): void {
  if (state.scheme !== scheme) {
    throw new Error(
      `Cannot restore task weights: the resume file holds scheme "${state.scheme}", ` +
        `expected "${scheme}"`,
    );
  }
}

/** The fixed λ: the step's own weighted sum, nothing to learn or save. */
class Fixed implements TaskWeighting {
  readonly scheme = "fixed";
  constructor(readonly lambdas: Readonly<Record<string, number>>) {}
  current(): Record<string, number> {
    return { ...this.lambdas };
  }
  forStep(): undefined {
    return undefined;
  }
  afterStep(): void {}
  endEpoch(): void {}
  restart(): void {}
  save(): null {
    return null;
  }
  restore(state: TaskWeightsState): void {
    checkScheme(this.scheme, state);
  }
  dispose(): void {}
}

/** One learnt fp32 scalar per task ([1] tensors) and their AdamW. */
class LearntScalars {
  values!: Map<string, Tensor>;
  opt!: AdamW;
  constructor(
    readonly start: Readonly<Record<string, number>>,
    readonly lr: number,
    readonly backend: Backend,
  ) {
    this.reset();
  }
  reset(): void {
    if (this.values) this.dispose();
    this.values = new Map(
      Object.entries(this.start).map(([t, v]) => [
        t,
        keep(tensor([v], [1], { backend: this.backend, requiresGrad: true })),
      ]),
    );
    this.opt = new AdamW([...this.values.values()], { lr: this.lr, weightDecay: 0 });
  }
  read(): Record<string, number> {
    return Object.fromEntries([...this.values].map(([t, v]) => [t, v.toArray()[0]]));
  }
  write(values: Readonly<Record<string, number>>): void {
    for (const [t, v] of this.values) v.backend.copyIn(v.storage, Float32Array.of(values[t]));
  }
  save(scheme: TaskWeightScheme): TaskWeightsState {
    const tasks = [...this.values.keys()];
    const { m, v } = this.opt.moments;
    const byTask = (ts: readonly Tensor[]) =>
      Object.fromEntries(tasks.map((t, i) => [t, ts[i].toArray()[0]]));
    return { scheme, params: this.read(), m: byTask(m), v: byTask(v), steps: this.opt.stepCount };
  }
  restore(s: TaskWeightsState): void {
    const tasks = [...this.values.keys()];
    const { m, v } = this.opt.moments;
    for (
      const [what, from, to] of [["params", s.params, null], ["m", s.m, m], ["v", s.v, v]] as const
    ) {
      tasks.forEach((t, i) => {
        const x = from?.[t];
        if (typeof x !== "number" || !Number.isFinite(x)) {
          throw new Error(
            `Cannot restore task weights: the resume file's "${what}" has no finite value ` +
              `for task "${t}": current value is ${JSON.stringify(x ?? null)}`,
          );
        }
        const dst = to ? to[i] : this.values.get(t)!;
        dst.backend.copyIn(dst.storage, Float32Array.of(x));
      });
    }
    this.opt.stepCount = s.steps ?? 0;
  }
  dispose(): void {
    this.opt.dispose();
    for (const v of this.values.values()) {
      v.grad?.dispose();
      v.dispose();
    }
  }
}

/** Kendall et al.'s homoscedastic uncertainty: Σ exp(−s_t)·L_t + s_t, s_t learnt. */
class Uncertainty implements TaskWeighting {
  readonly scheme = "uncertainty";
  readonly #s: LearntScalars;
  /** Per task, the range s_t is clamped to: ±UNCERTAINTY_S_BOUND, widened to its start. */
  readonly #range: Record<string, readonly [number, number]>;
  /** A backward ran since forStep, so s_t have gradients to step with. */
  #ran = false;
  constructor(lambdas: Readonly<Record<string, number>>, lr: number, backend: Backend) {
    const start = Object.fromEntries(Object.entries(lambdas).map(([t, l]) => [t, -Math.log(l)]));
    this.#s = new LearntScalars(start, lr, backend);
    const bound = UNCERTAINTY_S_BOUND;
    this.#range = Object.fromEntries(
      Object.entries(start).map(([t, s0]) => [t, [Math.min(-bound, s0), Math.max(bound, s0)]]),
    );
  }
  current(): Record<string, number> {
    const s = this.#s.read();
    return Object.fromEntries(Object.entries(s).map(([t, v]) => [t, Math.exp(-v)]));
  }
  forStep(_net: MultiTaskNet, trainsWeights: boolean): LossWeighting {
    // Logit steps: s_t are constants (no gradient, no update).
    for (const s of this.#s.values.values()) s.requiresGrad = trainsWeights;
    this.#ran = false;
    return {
      backward: (losses, extra) => {
        let total: Tensor | null = null;
        for (const [task, l] of losses) {
          const s = this.#s.values.get(task)!;
          const term = add(mul(l, exp(neg(s))), s);
          total = total ? add(total, term) : term;
        }
        backward(extra ? add(total!, extra) : total!);
        this.#ran = true;
      },
    };
  }
  afterStep(trainsWeights: boolean): void {
    // A step without a backward (no task had a labelled image) leaves Adam's state alone.
    const ran = this.#ran;
    this.#ran = false;
    if (trainsWeights && ran) {
      this.#s.opt.step();
      const s = this.#s.read();
      const clamp = (t: string, v: number) =>
        Math.min(this.#range[t][1], Math.max(this.#range[t][0], v));
      const clamped = Object.fromEntries(Object.entries(s).map(([t, v]) => [t, clamp(t, v)]));
      if (Object.keys(s).some((t) => clamped[t] !== s[t])) this.#s.write(clamped);
    }
    this.#s.opt.zeroGrad();
  }
  endEpoch(): void {}
  restart(): void {
    this.#s.reset();
    this.#ran = false;
  }
  save(): TaskWeightsState {
    return this.#s.save(this.scheme);
  }
  restore(state: TaskWeightsState): void {
    checkScheme(this.scheme, state);
    this.#s.restore(state);
  }
  dispose(): void {
    this.#s.dispose();
  }
}

/** What GradNorm's backward measured in a step, for its update after the step. */
interface GradNormStep {
  tasks: string[];
  norms: number[];
  weights: number[];
  losses: number[];
}

/** Chen et al.'s GradNorm: weights moved towards equal relative training rates. */
class GradNorm implements TaskWeighting {
  readonly scheme = "gradnorm";
  readonly #w: LearntScalars;
  readonly #alpha: number;
  #initial: Record<string, number> = {};
  #measured: GradNormStep | null = null;
  constructor(
    lambdas: Readonly<Record<string, number>>,
    lr: number,
    alpha: number,
    backend: Backend,
  ) {
    this.#w = new LearntScalars(normalised(lambdas), lr, backend);
    this.#alpha = alpha;
  }
  current(): Record<string, number> {
    return this.#w.read();
  }
  forStep(net: MultiTaskNet, trainsWeights: boolean): LossWeighting {
    const weights = this.current();
    this.#measured = null;
    if (!trainsWeights) {
      return { backward: (losses, extra) => backward(weightedLoss(losses, weights, extra)) };
    }
    const W = sharedLayer(net);
    return {
      backward: (losses, extra) => {
        // G_t = ‖∇_W w_t·L_t‖ from the part of the graph above W (layer4 and the heads),
        // then one backward of Σ w_t·L_t as the fixed path does with λ.
        const norms = losses.map(([t, l]) => {
          const g = gradientAt(mul(l, weights[t]), W);
          if (!g) return 0;
          const v = g.toArray();
          g.dispose();
          return Math.sqrt(v.reduce((a, x) => a + x * x, 0));
        });
        backward(weightedLoss(losses, weights, extra));
        this.#measured = {
          tasks: losses.map(([t]) => t),
          norms,
          weights: losses.map(([t]) => weights[t]),
          losses: losses.map(([, l]) => l.item()),
        };
      },
    };
  }
  afterStep(trainsWeights: boolean): void {
    const m = this.#measured;
    this.#measured = null;
    // A step missing a task (no labelled image of it in its batch) moves nothing.
    if (!trainsWeights || !m || m.tasks.length !== this.#w.values.size) return;
    m.tasks.forEach((t, i) => this.#initial[t] ??= m.losses[i]);
    // L̃ = L/L(0) needs L(0) > 0 (a cross-entropy of exactly 0 at the first step): none.
    if (m.tasks.some((t) => !(this.#initial[t] > 0))) return;
    const { gradient, targets } = gradNormGradient({
      ...m,
      initialLosses: m.tasks.map((t) => this.#initial[t]),
      alpha: this.#alpha,
    });
    // Non-finite figures (every L_t exactly 0 gives mean r = 0 and targets 0/0; a norm that
    // overflowed): skip the update, weights and Adam's state untouched.
    const finite = (xs: readonly number[]) => xs.every(Number.isFinite);
    if (![m.norms, m.losses, m.weights, targets, gradient].every(finite)) return;
    const before = this.#w.save(this.scheme);
    m.tasks.forEach((t, i) => {
      const w = this.#w.values.get(t)!;
      w.grad = keep(tensor([gradient[i]], [1], { backend: w.backend }));
    });
    this.#w.opt.step();
    this.#w.opt.zeroGrad();
    const w = this.#w.read();
    const tasks = Object.keys(w);
    const floored = tasks.map((t) => Math.max(w[t], GRADNORM_MIN_WEIGHT));
    const sum = floored.reduce((a, x) => a + x, 0);
    const next = floored.map((x) => (tasks.length * x) / sum);
    // An Adam step that still made a weight non-finite (overflow) is undone.
    if (!finite(next)) this.#w.restore(before);
    else this.#w.write(Object.fromEntries(tasks.map((t, i) => [t, next[i]])));
  }
  endEpoch(): void {}
  restart(): void {
    this.#w.reset();
    this.#initial = {};
    this.#measured = null;
  }
  save(): TaskWeightsState {
    return { ...this.#w.save(this.scheme), initialLosses: { ...this.#initial } };
  }
  restore(state: TaskWeightsState): void {
    checkScheme(this.scheme, state);
    this.#w.restore(state);
    this.#initial = { ...state.initialLosses };
  }
  dispose(): void {
    this.#w.dispose();
  }
}

/** Liu et al.'s Dynamic Weight Average: weights from the last two epochs' loss ratios. */
class Dwa implements TaskWeighting {
  readonly scheme = "dwa";
  readonly #start: Record<string, number>;
  readonly #temperature: number;
  #weights: Record<string, number>;
  #epochs: Record<string, number>[] = [];
  constructor(lambdas: Readonly<Record<string, number>>, temperature: number) {
    this.#start = normalised(lambdas);
    this.#weights = { ...this.#start };
    this.#temperature = temperature;
  }
  current(): Record<string, number> {
    return { ...this.#weights };
  }
  forStep(): LossWeighting {
    const weights = this.current();
    return { backward: (losses, extra) => backward(weightedLoss(losses, weights, extra)) };
  }
  afterStep(): void {}
  endEpoch(losses: Readonly<Record<string, number | undefined>>, trainsWeights: boolean): void {
    if (!trainsWeights) return;
    const tasks = Object.keys(this.#start);
    // An epoch without a task's loss (none of its images labelled) breaks the ratios.
    if (tasks.some((t) => !((losses[t] ?? 0) > 0))) {
      this.#epochs = [];
      return;
    }
    this.#epochs = [...this.#epochs, Object.fromEntries(tasks.map((t) => [t, losses[t]!]))]
      .slice(-2);
    if (this.#epochs.length === 2) {
      this.#weights = dwaWeights(this.#epochs[1], this.#epochs[0], this.#temperature);
    }
  }
  restart(): void {
    this.#weights = { ...this.#start };
    this.#epochs = [];
  }
  save(): TaskWeightsState {
    return { scheme: this.scheme, weights: { ...this.#weights }, epochLosses: this.#epochs };
  }
  restore(state: TaskWeightsState): void {
    checkScheme(this.scheme, state);
    const { weights, epochLosses } = state;
    if (!weights || !Array.isArray(epochLosses)) {
      const missing = [
        ...(weights ? [] : ['"weights"']),
        ...(Array.isArray(epochLosses) ? [] : ['"epochLosses"']),
      ];
      throw new Error(
        `Cannot restore task weights: the resume file's DWA state has no ${
          missing.join(" and ")
        }: expected the current weights and the last epochs' losses`,
      );
    }
    this.#weights = { ...weights };
    this.#epochs = epochLosses.map((e) => ({ ...e }));
  }
  dispose(): void {}
}
