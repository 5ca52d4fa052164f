/**
 * The run config: what to train on, which tasks, the method and every stage length and
 * weight (DESIGN.md §4 defaults), validated before any work so a config that cannot work
 * is refused with a message that names the field.
 * @module
 */
import type { BnMode } from "../nn/batch_norm.ts";

/** One database: a name used in parameter keys and a data source spec. */
export interface DatabaseSpec {
  /** Name (letters, digits, "_" or "-"); BN copies are keyed by it. */
  name: string;
  /** Source spec: `scut:<dir>`, `csv:<file>`, `folders:<dir>`, `list:<file>[@root]`, `synthetic[:…]`. */
  source: string;
  /** Split: "stratified" (seeded 6:2:2, default) or a split shipped with the source ("official", "cv1"…). */
  split?: string;
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
  databases: DatabaseSpec[];
  tasks: TaskSpec[];
  /** "adashare": warm-up → policy → re-train; "baseline": plain training, all blocks. */
  method: "adashare" | "baseline";
  aff: boolean;
  affScale: number;
  affReduction: number;
  bn: BnMode;
  /** Optional torchvision ResNet18 weights (.pth / .safetensors). */
  pretrained?: string;
  /** Input side after crop. */
  imageSize: number;
  /** Shorter side before the training crop (default imageSize·256/224). */
  resize: number;
  batch: number;
  lr: number;
  weightDecay: number;
  /** Learning-rate schedule within each stage. */
  lrSchedule: "cosine" | "constant";
  epochs: StageEpochs;
  /** Logit optimiser (policy epochs): Adam lr and weight decay. */
  policyLr: number;
  policyWeightDecay: number;
  /** Gumbel temperature at the start of policy learning and its decay per policy epoch. */
  tau: number;
  tauDecay: number;
  /** Policy epochs per extra block in the curriculum window. */
  curriculumSpeed: number;
  /** Regulariser weights of the policy epochs. */
  sparsityWeight: number;
  shareWeight: number;
  /** Straight-through hard Gumbel samples instead of soft. */
  hardGumbel: boolean;
  /** How the final policy is fixed: sampled from softmax(logits) (seeded) or argmax. */
  finalPolicy: "sample" | "argmax";
  /** Head dropout. */
  dropout: number;
  /** Trunk widths (ResNet18: 64,128,256,512). */
  widths: [number, number, number, number];
  seed: number;
  /** Decode workers. */
  workers: number;
  /** Folder of the decoded-image cache ("" = off). */
  cacheDir: string;
  onBadImage: "skip" | "fail";
}

/** Defaults of the paper's method (DESIGN.md §4). */
export const RUN_DEFAULTS: Omit<RunConfig, "name" | "out" | "databases" | "tasks"> = {
  method: "adashare",
  aff: true,
  affScale: 2,
  affReduction: 4,
  bn: "per-database",
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
  dropout: 0.5,
  widths: [64, 128, 256, 512],
  seed: 0,
  workers: 2,
  cacheDir: "",
  onBadImage: "skip",
};

const NAME = /^[A-Za-z0-9_-]+$/;

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
    if (!(Number.isFinite(t.lambda) && t.lambda >= 0)) {
      fail(`λ of task "${t.name}" must be ≥ 0: current value is ${t.lambda}`);
    }
  }
  for (const d of dbNames) {
    if (!c.tasks.some((t) => t.database === d)) fail(`database "${d}" is used by no task`);
  }
  if (c.method === "baseline" && c.tasks.length !== 1) {
    fail(`the baseline trains a single task: ${c.tasks.length} tasks given`);
  }
  const positiveInt = (v: number, what: string) => {
    if (!(Number.isInteger(v) && v >= 1)) {
      fail(`${what} must be a positive integer: current value is ${v}`);
    }
  };
  positiveInt(c.batch, "batch");
  if (c.batch < 2) {
    fail("batch must be at least 2 (batch norm needs two images): current value is 1");
  }
  positiveInt(c.imageSize, "image size");
  if (c.imageSize < 32) fail(`image size must be at least 32: current value is ${c.imageSize}`);
  if (c.resize < c.imageSize) {
    fail(`resize (${c.resize}) must be at least the image size (${c.imageSize})`);
  }
  for (const [k, v] of Object.entries(c.epochs)) {
    if (!(Number.isInteger(v) && v >= 0)) {
      fail(`epochs.${k} must be an integer ≥ 0: current value is ${v}`);
    }
  }
  if (c.method === "adashare" && c.epochs.retrain < 1) {
    fail("epochs.retrain must be ≥ 1 for the adashare method");
  }
  if (c.method === "baseline" && c.epochs.baseline < 1) fail("epochs.baseline must be ≥ 1");
  for (const [k, v] of [["lr", c.lr], ["policy lr", c.policyLr], ["tau", c.tau]] as const) {
    if (!(v > 0 && Number.isFinite(v))) fail(`${k} must be > 0: current value is ${v}`);
  }
  if (!(c.tauDecay > 0 && c.tauDecay <= 1)) {
    fail(`tau decay must be in (0, 1]: current value is ${c.tauDecay}`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    fail(`dropout must be in [0, 1): current value is ${c.dropout}`);
  }
  positiveInt(c.curriculumSpeed, "curriculum speed");
  for (
    const [k, v] of [["weight decay", c.weightDecay], ["sparsity weight", c.sparsityWeight], [
      "share weight",
      c.shareWeight,
    ]] as const
  ) {
    if (!(v >= 0)) fail(`${k} must be ≥ 0: current value is ${v}`);
  }
}
