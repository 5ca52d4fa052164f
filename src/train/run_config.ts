/**
 * The run config: what to train on, which tasks, the method and every stage length and
 * weight (DESIGN.md §4 defaults), validated before any work so a config that cannot work
 * is refused with a message that names the field.
 * @module
 */
import { archIsGateable, archNames, archTable, isResNet } from "../models/archs/registry.ts";
import { knownGateCount } from "../models/config.ts";
import type { BnMode } from "../nn/batch_norm.ts";
import {
  type Balance,
  BALANCES,
  DIST_LABEL,
  SCORE_LABEL,
  SCORE_LOSSES,
  type ScoreLoss,
  TASK_KINDS,
  type TaskKind,
} from "./option_names.ts";

/** One database: a name used in parameter keys and a data source spec. */
export interface DatabaseSpec {
  /** Name (letters, digits, "_" or "-"); BN copies are keyed by it. */
  name: string;
  /** Source spec: `scut:<dir>`, `csv:<file>`, `folders:<dir>`, `list:<file>[@root]`, `synthetic[:…]`. */
  source: string;
  /** Split: "stratified" (seeded 6:2:2, default) or a split shipped with the source ("official", "cv1"…). */
  split?: string;
  /**
   * Validation share carved out of the training list of a shipped split that has no
   * validation part (SCUT-FBP5500's official 60/40 and cv1–cv5), in (0, 0.5]; default 0.1.
   * Stratified by the labels of the database's tasks, seeded by the run's seed.
   */
  valFraction?: number;
}

/** One task: a head trained on one label of one database. */
export interface TaskSpec {
  /** Task name (head key). */
  name: string;
  /** Database name. */
  database: string;
  /** Label name in that database's records (default: the task name). */
  label: string;
  /** Loss weight λ ≥ 0. */
  lambda: number;
  /**
   * Classes the task declares (`--task NAME=DB:LABEL:λ:K`): labels must be ids 0..K−1 or
   * exactly K names (src/data/classes.ts); absent: the label's own table is checked.
   */
  classes?: number;
  /**
   * What the task learns (src/train/task_kinds.ts): "class" (absent: the label's classes,
   * cross-entropy), "score" (the mean rating, LABEL "score") or "dist" (the raters' rating
   * histogram, LABEL "ratings").
   */
  kind?: TaskKind;
}

/** Stage lengths in epochs. */
export interface StageEpochs {
  /** AdaShare warm-up: all blocks execute. */
  warmup: number;
  /** Policy learning rounds: each is one weight epoch on train-w and one logit epoch on train-p. */
  policy: number;
  /** Re-training with the fixed policy from the initial weights. */
  retrain: number;
  /** Baseline training (method "baseline"). */
  baseline: number;
}

/** Everything a run needs. */
export interface RunConfig {
  /** Run name (folder under `runsDir`). */
  name: string;
  /** Run folder. */
  out: string;
  /** The databases to read (names distinct; each used by at least one task). */
  databases: DatabaseSpec[];
  /** The tasks, one head each (a "baseline" run has exactly one). */
  tasks: TaskSpec[];
  /** "adashare": warm-up → policy → re-train; "baseline": plain training, all blocks. */
  method: "adashare" | "baseline";
  /**
   * The trunk, a torchvision builder name (default "resnet18", the paper's); others are
   * the Table 11 backbones (src/models/archs/). AdaShare needs one with residual blocks.
   */
  arch: string;
  /** AFF at every block's skip connection (default true; ResNet trunks only). */
  aff: boolean;
  /** AFF fusion scale s > 0 (default 2, the authors' code; 1 = the paper's formula). */
  affScale: number;
  /** AFF channel reduction r, a positive integer (default 4). */
  affReduction: number;
  /**
   * Which BN copy each task's path uses: "auto" (default) is one per database, and one per
   * task where tasks share a database (the paper: "different tasks use different BN");
   * see resolveBnMode.
   */
  bn: BnMode | "auto";
  /** Optional torchvision ResNet18 weights (.pth / .safetensors). */
  pretrained?: string;
  /** Input side after crop. */
  imageSize: number;
  /** Shorter side before the training crop (default imageSize·256/224). */
  resize: number;
  /** Images per database in each step (≥ 2, batch norm needs two; default 32). */
  batch: number;
  /** Learning rate of the weights' AdamW at the start of each stage (default 1e-3). */
  lr: number;
  /** AdamW decoupled weight decay of the weights (default 0.01). */
  weightDecay: number;
  /** Learning-rate schedule within each stage. */
  lrSchedule: "cosine" | "constant";
  /** Epochs of each stage. */
  epochs: StageEpochs;
  /** Logit optimiser (policy epochs): Adam lr and weight decay. */
  policyLr: number;
  /** Weight decay of the logit optimiser (default 5e-4). */
  policyWeightDecay: number;
  /** Gumbel temperature at the start of policy learning and its decay per policy epoch. */
  tau: number;
  /** Factor in (0, 1] applied to tau after each policy epoch (default 0.965). */
  tauDecay: number;
  /**
   * Policy epochs per extra block in the curriculum window (AdaShare's curriculum_speed);
   * below 1 opens several blocks per epoch (0.5: two).
   */
  curriculumSpeed: number;
  /** Regulariser weights of the policy epochs: of L_sparse (default 0.05)… */
  sparsityWeight: number;
  /** …and of L_share, which pulls tasks towards the same decisions (default 0.05). */
  shareWeight: number;
  /** Straight-through hard Gumbel samples instead of soft. */
  hardGumbel: boolean;
  /** How the final policy is fixed: sampled from softmax(logits) (seeded) or argmax. */
  finalPolicy: "sample" | "argmax";
  /**
   * Re-train this policy (task → 1 execute / 0 skip per block) instead of learning one:
   * warm-up and policy learning are skipped (ablations: a random or hand-made policy
   * against the learnt one, trained the same way).
   */
  fixedPolicy?: Record<string, number[]>;
  /** Training augmentation: mirror half the images left–right. */
  flip: boolean;
  /** Training augmentation: a random crop of the resized image, or its centre. */
  crop: "random" | "center";
  /** Head dropout. */
  dropout: number;
  /** Trunk widths (ResNet18: 64,128,256,512). */
  widths: [number, number, number, number];
  /** Seed of the run: every random draw (weights, splits, batches, noise) derives from it. */
  seed: number;
  /** Decode workers. */
  workers: number;
  /** Folder of the decoded-image cache ("" = off). */
  cacheDir: string;
  /** An image that cannot be decoded: "skip" it (counted and reported) or "fail" the run. */
  onBadImage: "skip" | "fail";
  // --- Task kinds and class balance (src/train/task_kinds.ts, class_balance.ts) ---
  /** Loss of score tasks on the normalised score: "mse" (default) or "l1". */
  scoreLoss: ScoreLoss;
  /**
   * Class balance of class tasks: "none" (default), "weights" (inverse-frequency
   * cross-entropy weights), "sampler" (class-balanced training draws) or "focal".
   */
  balance: Balance;
  /** γ of `balance: "focal"` (default 2). */
  focalGamma: number;
  // --- Task weights (src/train/task_weights.ts) ---
  /**
   * How the task losses are weighted: "fixed" λ of each task (default), or adapted while
   * training, starting from λ: "uncertainty" (Kendall et al. 2018), "gradnorm" (Chen et
   * al. 2018), "dwa" (Liu et al. 2019). Runs whose config.json predates the option are
   * "fixed" (PRE_TASK_WEIGHT_FIELDS).
   */
  taskWeights: TaskWeightScheme;
  /** Adam learning rate of uncertainty's log σ² and GradNorm's weights (default 0.01). */
  taskWeightsLr: number;
  /** GradNorm's asymmetry α ≥ 0 (default 1.5, the paper's). */
  gradnormAlpha: number;
  /** DWA's temperature τ > 0 (default 2, the paper's). */
  dwaTemperature: number;
}

/** The task-weight schemes (RunConfig.taskWeights; src/train/task_weights.ts). */
export const TASK_WEIGHT_SCHEMES = ["fixed", "uncertainty", "gradnorm", "dwa"] as const;

/** A task-weight scheme: fixed λ, or one that adapts the weights while training. */
export type TaskWeightScheme = typeof TASK_WEIGHT_SCHEMES[number];

/**
 * The task-weight options' defaults, and what a run whose config.json predates them did:
 * the fixed λ (the other values are unused by "fixed").
 */
export const PRE_TASK_WEIGHT_FIELDS: Pick<
  RunConfig,
  "taskWeights" | "taskWeightsLr" | "gradnormAlpha" | "dwaTemperature"
> = { taskWeights: "fixed", taskWeightsLr: 0.01, gradnormAlpha: 1.5, dwaTemperature: 2 };

/** Defaults of the paper's method (DESIGN.md §4). */
export const RUN_DEFAULTS: Omit<RunConfig, "name" | "out" | "databases" | "tasks"> = {
  method: "adashare",
  arch: "resnet18",
  aff: true,
  affScale: 2,
  affReduction: 4,
  bn: "auto",
  imageSize: 224,
  resize: 256,
  batch: 32,
  lr: 1e-3,
  weightDecay: 0.01,
  lrSchedule: "cosine",
  epochs: { warmup: 5, policy: 10, retrain: 20, baseline: 30 },
  policyLr: 0.01,
  policyWeightDecay: 5e-4,
  tau: 5,
  tauDecay: 0.965,
  curriculumSpeed: 1,
  sparsityWeight: 0.05,
  shareWeight: 0.05,
  hardGumbel: false,
  finalPolicy: "sample",
  flip: true,
  crop: "random",
  dropout: 0.5,
  widths: [64, 128, 256, 512],
  seed: 0,
  workers: 2,
  cacheDir: "",
  onBadImage: "skip",
  scoreLoss: "mse",
  balance: "none",
  focalGamma: 2,
  ...PRE_TASK_WEIGHT_FIELDS,
};

/**
 * The BN mode a run uses: "auto" is per task when two tasks share a database (each task
 * then keeps its own statistics, as the paper says), else per database (DAB: with one task
 * per database the two are the same split, keyed by database).
 */
export function resolveBnMode(c: Pick<RunConfig, "bn" | "tasks">): BnMode {
  if (c.bn !== "auto") return c.bn;
  const dbs = c.tasks.map((t) => t.database);
  return new Set(dbs).size < dbs.length ? "per-task" : "per-database";
}

const NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Upper bounds of the size options: far above any run this trainer is meant for, low
 * enough that a typo (`--image-size 100000`) is refused by name instead of failing inside
 * an allocation. The memory a run needs is checked separately (checkRunMemory).
 */
export const RUN_LIMITS = {
  imageSize: 4096,
  resize: 8192,
  batch: 4096,
  width: 4096,
  epochs: 100_000,
  workers: 256,
  seed: 0xffff_ffff,
  /** Learning rates (weights and policy logits): far above any that learns (1e-3 default). */
  lr: 1000,
  /** Loss weights (λ, sparsity, share) and weight decay. */
  weight: 1000,
  /** Gumbel-Softmax temperature. */
  tau: 1000,
  /** AFF scale s (2 by default; the weights then sum to s). */
  affScale: 100,
} as const;

/**
 * Checks a config's own consistency (what needs no data): names, references, ranges.
 * @throws {Error} `Cannot start the run: <field> …` naming the field and value
 */
export function validateRunConfig(c: RunConfig): void {
  const fail = (msg: string): never => {
    throw new Error(`Cannot start the run: ${msg}`);
  };
  if (c.databases.length === 0) fail("no database given");
  if (c.tasks.length === 0) fail("no task given");
  const dbNames = new Set<string>();
  for (const d of c.databases) {
    if (!NAME.test(d.name)) {
      fail(`database name ${JSON.stringify(d.name)} must use letters, digits, "_" or "-"`);
    }
    if (dbNames.has(d.name)) fail(`database "${d.name}" is given twice`);
    dbNames.add(d.name);
    if (d.valFraction !== undefined) {
      if (!(typeof d.valFraction === "number" && d.valFraction > 0 && d.valFraction <= 0.5)) {
        fail(
          `validation fraction of database "${d.name}" must be in (0, 0.5]: current value is ${d.valFraction}`,
        );
      }
      if ((d.split ?? "stratified") === "stratified") {
        fail(
          `validation fraction of database "${d.name}" applies to a shipped split without ` +
            `validation (official, cv1…cv5): the stratified split has its own (6:2:2)`,
        );
      }
    }
  }
  const taskNames = new Set<string>();
  for (const t of c.tasks) {
    if (!NAME.test(t.name)) {
      fail(`task name ${JSON.stringify(t.name)} must use letters, digits, "_" or "-"`);
    }
    if (taskNames.has(t.name)) fail(`task "${t.name}" is given twice`);
    taskNames.add(t.name);
    if (!dbNames.has(t.database)) {
      fail(
        `task "${t.name}" uses unknown database "${t.database}": known are ${
          [...dbNames].map((d) => `"${d}"`).join(", ")
        }`,
      );
    }
    if (!(Number.isFinite(t.lambda) && t.lambda >= 0 && t.lambda <= RUN_LIMITS.weight)) {
      fail(
        `λ of task "${t.name}" must be from 0 to ${RUN_LIMITS.weight}: current value is ${t.lambda}`,
      );
    }
    checkTaskKind(t, fail);
  }
  for (const d of dbNames) {
    if (!c.tasks.some((t) => t.database === d)) fail(`database "${d}" is used by no task`);
  }
  if (c.method === "baseline" && c.tasks.length !== 1) {
    fail(`the baseline trains a single task: ${c.tasks.length} tasks given`);
  }
  if (!archNames().includes(c.arch)) {
    fail(`arch "${c.arch}" is unknown: expected one of ${archNames().join(", ")}`);
  }
  if (c.method === "adashare" && !archIsGateable(c.arch)) {
    fail(
      `AdaShare gates residual blocks, and "${c.arch}" has none (no block with a skip ` +
        `path): train it as a single-task baseline (--policy none)`,
    );
  }
  if (c.aff && !isResNet(c.arch)) {
    fail(
      `AFF replaces the addition at a ResNet block's skip connection: "${c.arch}" is not a ` +
        `ResNet; turn it off (--no-aff)`,
    );
  }
  const positiveInt = (v: number, what: string) => {
    if (!(Number.isInteger(v) && v >= 1)) {
      fail(`${what} must be a positive integer: current value is ${v}`);
    }
  };
  const atMost = (v: number, max: number, what: string) => {
    if (v > max) fail(`${what} must be at most ${max}: current value is ${v}`);
  };
  if (typeof c.out !== "string" || c.out === "") fail("the run folder (out) is empty");
  positiveInt(c.batch, "batch");
  if (c.batch < 2) {
    fail("batch must be at least 2 (batch norm needs two images): current value is 1");
  }
  atMost(c.batch, RUN_LIMITS.batch, "batch");
  positiveInt(c.imageSize, "image size");
  if (c.imageSize < 32) fail(`image size must be at least 32: current value is ${c.imageSize}`);
  atMost(c.imageSize, RUN_LIMITS.imageSize, "image size");
  positiveInt(c.resize, "resize");
  if (c.resize < c.imageSize) {
    fail(`resize (${c.resize}) must be at least the image size (${c.imageSize})`);
  }
  atMost(c.resize, RUN_LIMITS.resize, "resize");
  if (
    !Array.isArray(c.widths) || c.widths.length !== 4 ||
    c.widths.some((w) => !(Number.isInteger(w) && w >= 1 && w <= RUN_LIMITS.width))
  ) {
    fail(
      `widths must be 4 integers from 1 to ${RUN_LIMITS.width}: current value is ${
        JSON.stringify(c.widths)
      }`,
    );
  }
  if (!(Number.isInteger(c.workers) && c.workers >= 0)) {
    fail(`workers must be an integer ≥ 0: current value is ${c.workers}`);
  }
  atMost(c.workers, RUN_LIMITS.workers, "workers");
  if (!(Number.isInteger(c.seed) && c.seed >= 0 && c.seed <= RUN_LIMITS.seed)) {
    fail(`seed must be an integer from 0 to ${RUN_LIMITS.seed}: current value is ${c.seed}`);
  }
  if (!(Number.isInteger(c.affReduction) && c.affReduction >= 1)) {
    fail(`AFF reduction must be a positive integer: current value is ${c.affReduction}`);
  }
  if (!(c.affScale > 0 && Number.isFinite(c.affScale))) {
    fail(`AFF scale must be > 0: current value is ${c.affScale}`);
  }
  atMost(c.affScale, RUN_LIMITS.affScale, "AFF scale");
  for (const [k, v] of Object.entries(c.epochs)) {
    if (!(Number.isInteger(v) && v >= 0)) {
      fail(`epochs.${k} must be an integer ≥ 0: current value is ${v}`);
    }
    atMost(v, RUN_LIMITS.epochs, `epochs.${k}`);
  }
  if (c.method === "adashare" && c.epochs.retrain < 1) {
    fail("epochs.retrain must be ≥ 1 for the adashare method");
  }
  if (c.method === "baseline" && c.epochs.baseline < 1) fail("epochs.baseline must be ≥ 1");
  for (
    const [k, v, max] of [
      ["lr", c.lr, RUN_LIMITS.lr],
      ["policy lr", c.policyLr, RUN_LIMITS.lr],
      ["tau", c.tau, RUN_LIMITS.tau],
    ] as const
  ) {
    if (!(v > 0 && Number.isFinite(v))) fail(`${k} must be > 0: current value is ${v}`);
    atMost(v, max, k);
  }
  if (!(c.tauDecay > 0 && c.tauDecay <= 1)) {
    fail(`tau decay must be in (0, 1]: current value is ${c.tauDecay}`);
  }
  const oneOf = (v: unknown, allowed: readonly unknown[], what: string) => {
    if (!allowed.includes(v)) {
      fail(`${what} must be one of ${allowed.join(", ")}: current value is ${JSON.stringify(v)}`);
    }
  };
  oneOf(c.bn, ["auto", "per-database", "per-task", "shared"], "bn");
  if (c.fixedPolicy !== undefined) {
    if (c.method !== "adashare") {
      fail(`--fixed-policy needs the method (--policy adashare): the run is a ${c.method}`);
    }
    const given = Object.keys(c.fixedPolicy);
    const missing = c.tasks.filter((t) => !given.includes(t.name)).map((t) => t.name);
    const unknown = given.filter((t) => !taskNames.has(t));
    if (missing.length > 0 || unknown.length > 0) {
      fail(
        `the fixed policy must give every task's blocks: ${
          missing.length ? `missing ${missing.join(", ")}` : ""
        }${missing.length && unknown.length ? "; " : ""}${
          unknown.length ? `unknown task ${unknown.join(", ")}` : ""
        }`,
      );
    }
    // ResNets' gate count is known from the table; other archs check it when built.
    const gates = knownGateCount(c.arch, archTable(c.arch, undefined, "the arch"));
    for (const [t, bits] of Object.entries(c.fixedPolicy)) {
      if (
        !Array.isArray(bits) || (gates !== undefined && bits.length !== gates) ||
        bits.length === 0 || bits.some((b) => b !== 0 && b !== 1)
      ) {
        fail(
          `the fixed policy of task "${t}" must be ${
            gates ?? "one per gated block:"
          } values 0 or 1 (one per ${c.arch} block with a residual path): ` +
            `current value is ${JSON.stringify(bits)}`,
        );
      }
    }
  }
  oneOf(c.crop, ["random", "center"], "crop");
  oneOf(c.flip, [true, false], "flip");
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    fail(`dropout must be in [0, 1): current value is ${c.dropout}`);
  }
  if (!(c.curriculumSpeed > 0 && Number.isFinite(c.curriculumSpeed))) {
    fail(`curriculum speed must be > 0: current value is ${c.curriculumSpeed}`);
  }
  atMost(c.curriculumSpeed, RUN_LIMITS.epochs, "curriculum speed");
  for (
    const [k, v] of [["weight decay", c.weightDecay], ["sparsity weight", c.sparsityWeight], [
      "share weight",
      c.shareWeight,
    ]] as const
  ) {
    if (!(v >= 0)) fail(`${k} must be ≥ 0: current value is ${v}`);
    atMost(v, RUN_LIMITS.weight, k);
  }
  validateKindOptions(c, fail);
  validateTaskWeights(c, fail);
}

/**
 * Checks the task-weight options: a known scheme, its rates in range, and λ > 0 for every
 * task when the weights adapt (they start from λ).
 */
function validateTaskWeights(c: RunConfig, fail: (msg: string) => never): void {
  const scheme = c.taskWeights ?? "fixed";
  if (!(TASK_WEIGHT_SCHEMES as readonly string[]).includes(scheme)) {
    fail(
      `task weights must be one of ${TASK_WEIGHT_SCHEMES.join(", ")}: current value is ${
        JSON.stringify(scheme)
      }`,
    );
  }
  if (scheme === "fixed") return;
  for (
    const [k, v, max, zero] of [
      ["task weights lr", c.taskWeightsLr, RUN_LIMITS.lr, false],
      ["GradNorm alpha", c.gradnormAlpha, RUN_LIMITS.weight, true],
      ["DWA temperature", c.dwaTemperature, RUN_LIMITS.tau, false],
    ] as const
  ) {
    if (!(typeof v === "number" && (zero ? v >= 0 : v > 0) && v <= max)) {
      fail(`${k} must be ${zero ? "≥ 0" : "> 0"} and at most ${max}: current value is ${v}`);
    }
  }
  const off = c.tasks.find((t) => !(t.lambda > 0));
  if (off) {
    fail(
      `task weights ${scheme} start from each task's λ and need λ > 0: task "${off.name}" ` +
        `has λ ${off.lambda}`,
    );
  }
}

/** A task's kind and the label it needs (score: "score", dist: "ratings"). */
function checkTaskKind(t: TaskSpec, fail: (msg: string) => never): void {
  const kind = t.kind ?? "class";
  if (!(TASK_KINDS as readonly string[]).includes(kind)) {
    fail(
      `kind of task "${t.name}" must be one of ${TASK_KINDS.join(", ")}: current value is ${
        JSON.stringify(t.kind)
      }`,
    );
  }
  const label = kind === "score" ? SCORE_LABEL : kind === "dist" ? DIST_LABEL : undefined;
  if (label !== undefined && t.label !== label) {
    fail(
      `task "${t.name}" of kind ${kind} learns ${
        kind === "score" ? "the mean rating" : "the raters' histogram"
      }: its LABEL must be "${label}": current value is "${t.label}"`,
    );
  }
  if (label !== undefined && t.classes !== undefined) {
    fail(
      `task "${t.name}" of kind ${kind} has no classes to declare: current value is ${t.classes}`,
    );
  }
}

/**
 * Checks the task-kind and class-balance options (a block of their own).
 * @throws {Error} `Cannot start the run: …` naming the option and value
 */
function validateKindOptions(c: RunConfig, fail: (msg: string) => never): void {
  if (!(SCORE_LOSSES as readonly string[]).includes(c.scoreLoss)) {
    fail(
      `unknown score loss: expected one of ${SCORE_LOSSES.join(", ")}: current value is ${
        JSON.stringify(c.scoreLoss)
      }`,
    );
  }
  if (!(BALANCES as readonly string[]).includes(c.balance)) {
    fail(
      `unknown balance: expected one of ${BALANCES.join(", ")}: current value is ${
        JSON.stringify(c.balance)
      }`,
    );
  }
  if (!(Number.isFinite(c.focalGamma) && c.focalGamma >= 0 && c.focalGamma <= 100)) {
    fail(
      `focal gamma out of range: expected a number from 0 to 100: current value is ${c.focalGamma}`,
    );
  }
  if (c.balance !== "none" && !c.tasks.some((t) => (t.kind ?? "class") === "class")) {
    fail(
      `--balance ${c.balance} balances class tasks: the run has none (kinds ${
        c.tasks.map((t) => t.kind).join(", ")
      }): expected --balance none, or a class task`,
    );
  }
}

/** Bytes as "812 MiB", "1.8 TiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/**
 * A rough estimate of the memory one training step of the run needs, in bytes — a lower
 * estimate on purpose, for refusing runs that cannot fit (an image size of 100000 asks for
 * terabytes), not for predicting the peak. It counts:
 * - activations kept for backward, per image of every task's batch (each task runs the
 *   network on its database's batch): the stem's convolution, norm and ReLU outputs at
 *   S/2 × S/2 (S the image size) and the max-pool output at S/4, then 8 tensors per basic
 *   block (12 with AFF), two blocks per layer, layer i at S/2^(i+1) with widths[i]
 *   channels;
 * - the decoded input batches (3 × S × S per image);
 * - the weights with their gradients and two Adam moments (4 floats per weight).
 * Floats are 4 bytes. Against measured peaks (README, "Speed and memory": ResNet18 at
 * 224², batch 32: 1.42 GiB; the method, two tasks with AFF: 3.23 GiB) it gives 1.2 and
 * 3.0 GiB.
 */
export function estimateRunMemory(c: RunConfig): number {
  const s = c.imageSize;
  const [w1, w2, w3, w4] = c.widths;
  const area = (div: number) => Math.ceil(s / div) ** 2;
  const perBlock = c.aff ? 12 : 8;
  const activations = 3 * w1 * area(2) + w1 * area(4) +
    2 * perBlock * (w1 * area(4) + w2 * area(8) + w3 * area(16) + w4 * area(32));
  const images = c.batch * c.tasks.length;
  // ResNet18's convolutions: the 7×7 stem, 3×3 convs (4 per layer), 1×1 downsamples.
  const weights = 3 * 49 * w1 + 4 * 9 * w1 * w1 +
    [[w1, w2], [w2, w3], [w3, w4]].reduce((a, [i, o]) => a + 9 * i * o + 27 * o * o + i * o, 0);
  return 4 * (images * (activations + 3 * s * s) + 4 * weights);
}

/**
 * The memory a run on the named backend may use, for checkRunMemory: what the host has
 * available; unbounded on CUDA, whose activations live in GPU memory that the host cannot
 * see (the CUDA backend reports an allocation that fails there), and where the process
 * may not read the system's memory figures (no --allow-sys).
 */
export function availableMemory(backend: string): number {
  if (backend === "cuda") return Infinity;
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return Infinity;
  }
}

/**
 * Refuses a ResNet18 run whose estimated memory (estimateRunMemory) exceeds `available`
 * bytes; runs of other architectures are not checked.
 * @throws {Error} naming the estimate, what is available and the options that drive it
 */
export function checkRunMemory(c: RunConfig, available: number): void {
  // The estimate models ResNet18's activations; other trunks are not estimated (their
  // allocation fails with its own error when memory runs out).
  if (c.arch !== "resnet18") return;
  const need = estimateRunMemory(c);
  if (need > available) {
    throw new Error(
      `Cannot start the run: it needs about ${formatBytes(need)} of memory (image size ` +
        `${c.imageSize}, batch ${c.batch} × ${c.tasks.length} task${
          c.tasks.length === 1 ? "" : "s"
        }, widths ${c.widths.join(",")}) and ${formatBytes(available)} is available. ` +
        `Hint: lower --image-size or --batch`,
    );
  }
}

/** Whether a parsed JSON value looks like a RunConfig (a run folder's config.json). */
export function isRunConfig(v: unknown): v is RunConfig {
  if (typeof v !== "object" || v === null) return false;
  const c = v as Record<string, unknown>;
  return typeof c.name === "string" && Array.isArray(c.databases) && Array.isArray(c.tasks) &&
    (c.method === "adashare" || c.method === "baseline");
}

/** JSON text with object keys sorted, undefined members left out: equal configs, equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
    return `{${
      keys.sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
        .join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * The fields in which two run configs differ, as dotted paths ("batch", "epochs.retrain"),
 * in `a`'s key order; fields in `ignore` are left out.
 */
export function configDifferences(
  a: RunConfig,
  b: RunConfig,
  ignore: readonly string[] = [],
): string[] {
  const out: string[] = [];
  const ra = a as unknown as Record<string, unknown>, rb = b as unknown as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  for (const k of keys) {
    if (ignore.includes(k)) continue;
    const [x, y] = [ra[k], rb[k]];
    if (k === "epochs" && typeof x === "object" && typeof y === "object" && x && y) {
      for (const e of [...new Set([...Object.keys(x), ...Object.keys(y)])]) {
        const [ex, ey] = [(x as Record<string, unknown>)[e], (y as Record<string, unknown>)[e]];
        if (canonical(ex) !== canonical(ey)) out.push(`epochs.${e}`);
      }
    } else if (canonical(x) !== canonical(y)) {
      out.push(k);
    }
  }
  return out;
}
