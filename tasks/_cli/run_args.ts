/**
 * Command-line flags → RunConfig, shared by `train`, `sweep-ratios` and `compare` so the
 * three accept the same vocabulary.
 * @module
 */
import { join, resolve } from "node:path";
import { MAX_CLASSES } from "../../src/data/classes.ts";
import { quote } from "../../src/data/problems.ts";
import { presetConfig, type PresetName, PRESETS } from "../../src/train/presets.ts";
import { RESUME_MAY_CHANGE } from "../../src/train/resume.ts";
import {
  configDifferences,
  type DatabaseSpec,
  type RunConfig,
  TASK_WEIGHT_SCHEMES,
  type TaskSpec,
} from "../../src/train/run_config.ts";
import { numberFlag, stringOptions } from "./options.ts";
import { isResNet, torchvisionDropout } from "../../src/models/archs/registry.ts";
import { BALANCES, DIST_LABEL, SCORE_LABEL, SCORE_LOSSES } from "../../src/train/option_names.ts";

/** node:util parseArgs option table of the run flags. */
export const RUN_OPTIONS = {
  ...stringOptions("preset", "scut", "lsafbd"),
  db: { type: "string", multiple: true },
  task: { type: "string", multiple: true },
  aff: { type: "boolean" },
  "no-aff": { type: "boolean" },
  ...stringOptions(
    "arch",
    "policy",
    "pretrained",
    "warmup-epochs",
    "policy-epochs",
    "retrain-epochs",
    "epochs",
    "batch",
    "lr",
    "lr-schedule",
    "weight-decay",
    "seed",
    "image-size",
    "resize",
    "tau",
    "tau-decay",
    "curriculum-speed",
    "sparsity-weight",
    "share-weight",
    "policy-lr",
  ),
  "hard-gumbel": { type: "boolean" },
  flip: { type: "boolean" },
  "no-flip": { type: "boolean" },
  "from-scratch": { type: "boolean" },
  ...stringOptions(
    "final-policy",
    "fixed-policy",
    "bn",
    "crop",
    "aff-scale",
    "dropout",
    "widths",
    "workers",
    "cache",
    "on-bad-image",
    "out",
    "name",
  ),
  // Task kinds and class balance (src/train/task_kinds.ts, class_balance.ts).
  ...stringOptions("score-loss", "balance", "focal-gamma"),
  // Task weights (src/train/task_weights.ts).
  ...stringOptions("task-weights", "task-weights-lr", "gradnorm-alpha", "dwa-temperature"),
} as const;

/** Help text of the run flags. */
export const RUN_HELP = `Data and tasks (default: the built-in synthetic two-database set):
  --preset NAME            default | paper-scut | paper-lsafbd (the paper's two settings)
  --scut DIR               SCUT-FBP5500 folder (the one holding Images/) for the paper presets
  --lsafbd SOURCE          LSAFBD source for paper-lsafbd, e.g. list:train.txt@images
  --db NAME=SOURCE[@SPLIT[:val=F]]  a database (repeatable); SOURCE: scut:DIR, csv:FILE,
                           folders:DIR, list:FILE[@ROOT], synthetic[:OPTIONS]; SPLIT:
                           stratified (seeded 6:2:2, default), official (60/40), cv1..cv5;
                           official and cvK keep their test list and carve validation out
                           of their train list: F of it (0.1; at most 0.5), stratified by
                           the database's task labels, seeded by --seed
                           (e.g. s=scut:DIR@cv3, s=scut:DIR@official:val=0.15)
  --task NAME=DB:LABEL[:λ[:KIND]]  a task (repeatable), e.g. beauty=scut:beauty:1:5; λ:
                           loss weight (1, may be left empty: beauty=scut:beauty::5);
                           KIND: class (default: the label's classes, cross-entropy), K or
                           classK (a class task declaring K classes, checked before the
                           run starts: ids 0..K-1 or exactly K names; the paper presets
                           declare theirs), score (regression on the mean rating; LABEL
                           score) or dist (the raters' rating histogram, KL divergence;
                           LABEL ratings, SCUT folders with All_Ratings only); an empty
                           LABEL is the kind's (score, ratings; class: NAME), e.g.
                           s=scut::1:score or s=scut:score::score. A whole-number λ of 2 or
                           more needs a KIND (b=scut:beauty:2:class; b=scut:beauty:5 is
                           refused as the old class-count place), and LABEL score or
                           ratings needs its KIND
  --score-loss l1|mse      loss of score tasks on the score scaled to -1..1 (mse); only
                           with a score task
  --balance MODE           class tasks: none (default) | weights (inverse-frequency CE
                           weights from the training split) | sampler (class-balanced
                           training draws for the first class task of each database) |
                           focal (focal loss, --focal-gamma G, default 2)
Method:
  --arch NAME              the trunk (default resnet18, the paper's): resnet18|34|50,
                           googlenet, mobilenet_v2, mobilenet_v3_small|large,
                           shufflenet_v2_x0_5…x2_0, densenet121|161|169|201,
                           efficientnet_b0…b7, regnet_{x,y}_400mf…, convnext_tiny…large
                           (AFF is off by default on the non-ResNet ones)
  --policy adashare|none   AdaShare (default) or the single-task baseline
  --aff / --no-aff         attentional feature fusion at every skip connection (default on)
  --aff-scale S            AFF fusion scale: 2 (AFF authors' code, default) or 1 (paper formula)
  --bn MODE                auto (default: one BN per database, and per task where tasks
                           share a database) | per-database (DAB) | per-task | shared
  --pretrained FILE        torchvision ResNet18 weights (.pth or .safetensors); the paper
                           presets need them (ImageNet initialisation)
  --from-scratch           train a paper preset without --pretrained, from random weights
Schedule (epochs; DESIGN.md §4):
  --warmup-epochs N  --policy-epochs N  --retrain-epochs N  --epochs N (baseline)
  --batch N (32)  --lr X (1e-3)  --lr-schedule cosine|constant  --weight-decay X (0.01)
  --tau X (5)  --tau-decay X (0.965)  --policy-lr X (0.01)
  --curriculum-speed X (1) policy epochs per block added to the curriculum (0.5: two blocks
                           per epoch)
  --sparsity-weight X (0.05)  --share-weight X (0.05)  --hard-gumbel
Task weights (how the task losses are summed; docs in src/train/task_weights.ts):
  --task-weights SCHEME    fixed (default: each task's λ) | uncertainty (learnt log σ²,
                           Kendall et al. 2018) | gradnorm (Chen et al. 2018, on layer4.0's
                           downsample conv) | dwa (dynamic weight average, Liu et al. 2019);
                           the adaptive ones start from λ (λ > 0) and log each epoch's
                           weights (report: task-weights.svg)
  --task-weights-lr X (0.01)  Adam rate of uncertainty's log σ² and GradNorm's weights
  --gradnorm-alpha X (1.5)    --dwa-temperature X (2)
  (Defaults are the paper presets'; the default preset trains 5+6+15 epochs with
  --policy-lr 0.1 --curriculum-speed 0.5 --sparsity-weight 0.005 --share-weight 0.005,
  see docs/adashare.md)
  --final-policy sample|argmax (sample)  --dropout P (0.5)  --seed N (0)
  --fixed-policy T=BITS,…  re-train a given policy instead of learning one (no warm-up or
                           policy stage), e.g. beauty=11011010,gender=11110000 (1 = execute)
Input:
  --image-size N (224)  --resize N (256)  --widths a,b,c,d (64,128,256,512)
  --crop random|center     training crop of the resized image (random)
  --flip / --no-flip       training: mirror half the images left–right (on)
  --workers N (2)  --cache DIR  --on-bad-image skip|fail
Output:
  --out DIR                run folder: a new or empty one (default runs/<name>, or
                           runs/<name>-2, -3, … when that holds a run)
  --name NAME              run name (default: from the config: method, AFF, data and seed,
                           e.g. adashare-aff-default, baseline-aff-beauty-seed3)`;

/** Flag values as node:util parseArgs returns them for {@link RUN_OPTIONS}, by flag name. */
export type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * A numeric run flag: a decimal number (an exact integer with `integer`); "0x10", "Infinity"
 * or " 5" are refused. Ranges are the run config's (validateRunConfig names the field).
 */
function num(v: unknown, flag: string, integer = false): number | undefined {
  return numberFlag(v, flag, { integer });
}

/** A flag whose value is one of `allowed` (exactly: "Sample" is not "sample"). */
function oneOf<T extends string>(v: unknown, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    throw new Error(
      `Cannot parse --${flag}: expected one of ${allowed.join(", ")}: current value is "${v}"`,
    );
  }
  return v as T;
}

/**
 * Parses `NAME=SOURCE[@SPLIT[:val=F]]`. The split follows the last "@" only if it names a
 * split; `:val=F` sets the validation share carved out of a shipped split's training list
 * (a number in (0, 0.5]; validateRunConfig checks the range and the split).
 */
export function parseDbFlag(v: string): DatabaseSpec {
  const eq = v.indexOf("=");
  if (eq <= 0) throw new Error(`Cannot parse --db "${v}": expected NAME=SOURCE[@SPLIT[:val=F]]`);
  const name = v.slice(0, eq);
  let source = v.slice(eq + 1), split: string | undefined, valFraction: number | undefined;
  const at = source.lastIndexOf("@");
  const m = /^(stratified|official|cv[1-5]|manifest)(?::(.*))?$/.exec(source.slice(at + 1));
  if (at > 0 && m) {
    split = m[1];
    source = source.slice(0, at);
    if (m[2] !== undefined) {
      const val = /^val=(.*)$/.exec(m[2]);
      valFraction = val && /^(\d+(\.\d*)?|\.\d+)$/.test(val[1]) ? Number(val[1]) : NaN;
      if (Number.isNaN(valFraction)) {
        throw new Error(
          `Cannot parse --db "${v}": expected ":val=F" after the split, F a fraction such ` +
            `as 0.15: current value is "${m[2]}"`,
        );
      }
    }
  }
  return valFraction === undefined ? { name, source, split } : { name, source, split, valFraction };
}

/**
 * Parses `NAME=DB:LABEL[:λ[:KIND]]`: λ defaults to 1 (an empty λ too, as in
 * `beauty=scut:beauty::5`), an absent or empty LABEL to the kind's (score: "score", dist:
 * "ratings", class: NAME). KIND is `class` (the default), `score`, `dist`, or a class count
 * K written `K` or `classK` (`5`, `class5`): a class task declaring its classes (ids
 * 0..K−1, or exactly K names), against which every label is checked before the run starts.
 * Refused as likely slips: a KIND in λ's place (`s=db:score:score`), an integer λ ≥ 2
 * without a KIND (`b=db:beauty:5`: the old K position; `b=db:beauty:5:class` is weight 5),
 * and the labels "score" or "ratings" without a KIND (a class task would learn them).
 * @throws {Error} `Cannot parse --task "…": …` with what was expected
 */
export function parseTaskFlag(v: string): TaskSpec {
  const fail = (why: string): never => {
    throw new Error(`Cannot parse --task ${quote(v)}: ${why}`);
  };
  const m = /^([^=:]+)=([^:]+)(?::([^:]*))?(?::([^:]*))?(?::([^:]*))?$/.exec(v);
  if (!m) fail("expected NAME=DB:LABEL[:λ[:KIND]], e.g. beauty=scut:beauty:1:5");
  const [, name, database, labelText, l, kindText] = m!;
  const isKind = (x: string) => /^(?:class|score|dist|class\d+)$/.test(x);
  // The kind first: the label's default and the checks below depend on it.
  let kind: "score" | "dist" | undefined, classes: number | undefined;
  if (kindText === "score" || kindText === "dist") {
    kind = kindText;
  } else if (kindText !== undefined && kindText !== "class") {
    // An integer K (the syntax before task kinds) or classK declares a class task's classes.
    const k = /^(?:class)?(\d+)$/.exec(kindText)?.[1];
    if (k === undefined) {
      fail(
        `KIND ${quote(kindText)} is not class, score, dist or a class count K (5, class5)`,
      );
    }
    if (Number(k) < 2 || Number(k) > MAX_CLASSES) {
      fail(`class count ${quote(kindText)} is not an integer from 2 to ${MAX_CLASSES}`);
    }
    classes = Number(k);
  }
  const label = labelText === undefined || labelText === ""
    ? (kind === "score" ? SCORE_LABEL : kind === "dist" ? DIST_LABEL : name)
    : labelText;
  let lambda = 1;
  if (l !== undefined && l !== "") {
    if (isKind(l)) {
      fail(
        `λ ${quote(l)} is a KIND: expected NAME=DB:LABEL::KIND (λ may be empty), e.g. ` +
          `${name}=${database}:${labelText}::${l}`,
      );
    }
    lambda = Number(l);
    if (l.trim() !== l || !Number.isFinite(lambda) || lambda < 0) {
      fail(`λ ${quote(l)} is not a number ≥ 0`);
    }
    if (kindText === undefined && /^\d+$/.test(l) && lambda >= 2) {
      fail(
        `λ ${l} looks like a class count: write ${name}=${database}:${label}::${l} (or ` +
          `${name}=${database}:${label}:${l}:class to mean the weight)`,
      );
    }
  }
  if (kindText === undefined && (label === SCORE_LABEL || label === DIST_LABEL)) {
    const want = label === SCORE_LABEL ? "score" : "dist";
    fail(
      `LABEL ${quote(label)} is what ${want} tasks learn, and no KIND was given (a class ` +
        `task would read it as classes): add ":${want}", e.g. ` +
        `${name}=${database}:${label}:${l ?? ""}:${want}`,
    );
  }
  const spec: TaskSpec = { name, database, label, lambda };
  if (kind) spec.kind = kind;
  if (classes !== undefined) spec.classes = classes;
  return spec;
}

/**
 * Builds a run config from parsed flags: the preset, then every flag given.
 * @param values the flags as parseArgs gives them for {@link RUN_OPTIONS}
 * @param runsDir the folder of the default run folder `<runsDir>/<name>`
 * @throws {Error} naming the flag for a malformed value
 * @example The flags of `deno task train --batch 16 --no-aff --seed 3`
 * ```ts
 * import assert from "node:assert/strict";
 * import { runConfigFromArgs } from "./run_args.ts";
 * const config = runConfigFromArgs({ batch: "16", "no-aff": true, seed: "3" });
 * assert.equal(config.batch, 16);
 * assert.equal(config.aff, false);
 * assert.equal(config.seed, 3);
 * assert.equal(config.out, "runs/adashare-default-seed3"); // named from method, data, seed
 * ```
 */
export function runConfigFromArgs(values: Values, runsDir = "runs"): RunConfig {
  const preset = oneOf(values.preset, "preset", PRESETS) ??
    (values.scut && !values.db ? "paper-scut" : "default");
  const base = presetConfig(preset as PresetName, {
    scut: values.scut as string,
    lsafbd: values.lsafbd as string,
  });
  const c: Omit<RunConfig, "name" | "out"> = { ...base, epochs: { ...base.epochs } };
  if (values.db) c.databases = (values.db as string[]).map(parseDbFlag);
  if (values.task) c.tasks = (values.task as string[]).map(parseTaskFlag);
  if (values.db && !values.task) {
    throw new Error(
      "Cannot start the run: --db given without --task: say which label each task learns",
    );
  }
  const policy = oneOf(values.policy, "policy", ["adashare", "none"] as const);
  if (policy) c.method = policy === "none" ? "baseline" : "adashare";
  if (c.method === "baseline" && !values.task && c.tasks.length > 1) {
    // The baseline trains one task: keep the first of the preset's tasks and its database.
    c.tasks = [c.tasks[0]];
    c.databases = c.databases.filter((d) => d.name === c.tasks[0].database);
  }
  if (values.aff && values["no-aff"]) {
    throw new Error("Cannot parse flags: --aff and --no-aff both given");
  }
  if (values.arch !== undefined) {
    c.arch = String(values.arch);
    // AFF belongs to ResNet's skip connection: other trunks train without it unless asked;
    // their head dropout is torchvision's unless --dropout says otherwise.
    if (!isResNet(c.arch)) c.aff = false;
    c.dropout = torchvisionDropout(c.arch) ?? c.dropout;
  }
  if (values.aff) c.aff = true;
  if (values["no-aff"]) c.aff = false;
  const set = <K extends keyof typeof c>(key: K, v: (typeof c)[K] | undefined) => {
    if (v !== undefined) c[key] = v;
  };
  set("pretrained", values.pretrained as string | undefined);
  c.epochs.warmup = num(values["warmup-epochs"], "warmup-epochs", true) ?? c.epochs.warmup;
  c.epochs.policy = num(values["policy-epochs"], "policy-epochs", true) ?? c.epochs.policy;
  c.epochs.retrain = num(values["retrain-epochs"], "retrain-epochs", true) ?? c.epochs.retrain;
  c.epochs.baseline = num(values.epochs, "epochs", true) ?? c.epochs.baseline;
  set("batch", num(values.batch, "batch", true));
  set("lr", num(values.lr, "lr"));
  set("lrSchedule", oneOf(values["lr-schedule"], "lr-schedule", ["cosine", "constant"] as const));
  set("weightDecay", num(values["weight-decay"], "weight-decay"));
  set("seed", num(values.seed, "seed", true));
  const size = num(values["image-size"], "image-size", true);
  if (size !== undefined) {
    c.imageSize = size;
    c.resize = Math.round((size * 256) / 224);
  }
  set("resize", num(values.resize, "resize", true));
  set("tau", num(values.tau, "tau"));
  set("tauDecay", num(values["tau-decay"], "tau-decay"));
  set("curriculumSpeed", num(values["curriculum-speed"], "curriculum-speed"));
  set("sparsityWeight", num(values["sparsity-weight"], "sparsity-weight"));
  set("shareWeight", num(values["share-weight"], "share-weight"));
  set("policyLr", num(values["policy-lr"], "policy-lr"));
  if (values["hard-gumbel"]) c.hardGumbel = true;
  if (values["fixed-policy"] !== undefined) {
    c.fixedPolicy = parseFixedPolicy(String(values["fixed-policy"]));
  }
  set("finalPolicy", oneOf(values["final-policy"], "final-policy", ["sample", "argmax"] as const));
  set("bn", oneOf(values.bn, "bn", ["auto", "per-database", "per-task", "shared"] as const));
  if (values.flip && values["no-flip"]) {
    throw new Error("Cannot parse flags: --flip and --no-flip both given");
  }
  if (values.flip) c.flip = true;
  if (values["no-flip"]) c.flip = false;
  set("crop", oneOf(values.crop, "crop", ["random", "center"] as const));
  set("affScale", num(values["aff-scale"], "aff-scale"));
  set("dropout", num(values.dropout, "dropout"));
  if (values.widths !== undefined) {
    const w = String(values.widths).split(",").map((x) => num(x, "widths", true)!);
    if (w.length !== 4 || w.some((x) => x < 1)) {
      throw new Error(
        `Cannot parse --widths: expected 4 positive integers: current value is "${values.widths}"`,
      );
    }
    c.widths = w as [number, number, number, number];
  }
  set("workers", num(values.workers, "workers", true));
  set("cacheDir", values.cache as string | undefined);
  set("onBadImage", oneOf(values["on-bad-image"], "on-bad-image", ["skip", "fail"] as const));
  // Task kinds and class balance.
  set("scoreLoss", oneOf(values["score-loss"], "score-loss", SCORE_LOSSES));
  set("balance", oneOf(values.balance, "balance", BALANCES));
  set("focalGamma", num(values["focal-gamma"], "focal-gamma"));
  // Task weights: the scheme's own options need the scheme.
  set("taskWeights", oneOf(values["task-weights"], "task-weights", TASK_WEIGHT_SCHEMES));
  set("taskWeightsLr", num(values["task-weights-lr"], "task-weights-lr"));
  set("gradnormAlpha", num(values["gradnorm-alpha"], "gradnorm-alpha"));
  set("dwaTemperature", num(values["dwa-temperature"], "dwa-temperature"));
  for (
    const [flag, schemes] of [
      ["task-weights-lr", ["uncertainty", "gradnorm"]],
      ["gradnorm-alpha", ["gradnorm"]],
      ["dwa-temperature", ["dwa"]],
    ] as const
  ) {
    if (values[flag] !== undefined && !(schemes as readonly string[]).includes(c.taskWeights)) {
      throw new Error(
        `Cannot parse --${flag}: it sets --task-weights ${schemes.join(" or ")}: current ` +
          `task weights are "${c.taskWeights}"`,
      );
    }
  }
  if (values["score-loss"] !== undefined && !c.tasks.some((t) => t.kind === "score")) {
    throw new Error(
      `Cannot parse --score-loss: it sets the loss of score tasks (--task NAME=DB:score::score): ` +
        `current tasks are ${c.tasks.map((t) => `"${t.name}" (${t.kind ?? "class"})`).join(", ")}`,
    );
  }
  if (values["focal-gamma"] !== undefined && c.balance !== "focal") {
    throw new Error(
      `Cannot parse --focal-gamma: it sets the focal loss of --balance focal: current ` +
        `balance is "${c.balance}"`,
    );
  }
  if (
    preset.startsWith("paper-") && !c.pretrained && !values["from-scratch"] &&
    values.resume === undefined
  ) {
    throw new Error(
      `Cannot use preset "${preset}" without ImageNet weights: the paper initialises ResNet18 ` +
        `from ImageNet. Hint: give --pretrained FILE, torchvision's resnet18 weights ` +
        `(resnet18-f37072fd.pth; with PyTorch installed, ` +
        `python3 -c "import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')" ` +
        `saves it in ~/.cache/torch/hub/checkpoints/), or --from-scratch to train from random ` +
        `weights`,
    );
  }
  const name = (values.name as string | undefined) ?? defaultRunName(c, preset, base);
  return { ...c, name, out: (values.out as string | undefined) ?? join(runsDir, name) };
}

/**
 * Parses `--fixed-policy beauty=11011010,gender=11110000` (one bit per gated block, 1 =
 * execute: 8 for ResNet18; the run config checks the count against the arch).
 */
export function parseFixedPolicy(v: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const part of v.split(",")) {
    const m = /^([A-Za-z0-9_-]+)=([01]+)$/.exec(part.trim());
    if (!m) {
      throw new Error(
        `Cannot parse --fixed-policy "${v}": expected TASK=BITS[,TASK=BITS…] with bits 0/1 ` +
          `per task (one per gated block, 8 for ResNet18, 1 = execute): "${part}" is not`,
      );
    }
    if (m[1] in out) throw new Error(`Cannot parse --fixed-policy "${v}": task "${m[1]}" twice`);
    out[m[1]] = [...m[2]].map(Number);
  }
  return out;
}

/**
 * A run's default name, from what it trains: method, AFF, the preset's name when its data
 * and tasks are the preset's (else the task names), the class balance (`balance-focal`,
 * with γ when not the preset's: `balance-focal1`) and the score loss (`score-l1`) when not
 * the preset's, adaptive task weights, and the seed when not 0; so runs that differ in
 * these do not share a default folder.
 */
function defaultRunName(
  c: Omit<RunConfig, "name" | "out">,
  preset: string,
  base: Omit<RunConfig, "name" | "out">,
): string {
  const samePreset = JSON.stringify([c.databases, c.tasks]) ===
    JSON.stringify([base.databases, base.tasks]);
  const data = samePreset ? preset : c.tasks.map((t) => t.name).join("+");
  return [
    c.method === "baseline" ? "baseline" : "adashare",
    ...(c.arch !== "resnet18" ? [c.arch] : []),
    ...(c.aff ? ["aff"] : []),
    data,
    ...(c.balance !== "none"
      ? [
        `balance-${c.balance}${
          c.balance === "focal" && c.focalGamma !== base.focalGamma ? c.focalGamma : ""
        }`,
      ]
      : []),
    ...(c.scoreLoss !== base.scoreLoss ? [`score-${c.scoreLoss}`] : []),
    ...(c.taskWeights !== "fixed" ? [c.taskWeights] : []),
    ...(c.seed !== 0 ? [`seed${c.seed}`] : []),
  ].join("-");
}

/** The config fields each run flag sets (dotted paths), for comparing a resume's flags. */
const FLAG_FIELDS: Record<string, readonly string[]> = {
  preset: ["databases", "tasks"],
  scut: ["databases", "tasks"],
  lsafbd: ["databases", "tasks"],
  db: ["databases"],
  task: ["tasks"],
  aff: ["aff"],
  arch: ["arch", "aff", "dropout"],
  "no-aff": ["aff"],
  policy: ["method"],
  pretrained: ["pretrained"],
  "warmup-epochs": ["epochs.warmup"],
  "policy-epochs": ["epochs.policy"],
  "retrain-epochs": ["epochs.retrain"],
  epochs: ["epochs.baseline"],
  batch: ["batch"],
  lr: ["lr"],
  "lr-schedule": ["lrSchedule"],
  "weight-decay": ["weightDecay"],
  seed: ["seed"],
  "image-size": ["imageSize"],
  resize: ["resize"],
  tau: ["tau"],
  "tau-decay": ["tauDecay"],
  "curriculum-speed": ["curriculumSpeed"],
  "sparsity-weight": ["sparsityWeight"],
  "share-weight": ["shareWeight"],
  "policy-lr": ["policyLr"],
  "hard-gumbel": ["hardGumbel"],
  "final-policy": ["finalPolicy"],
  bn: ["bn"],
  crop: ["crop"],
  flip: ["flip"],
  "no-flip": ["flip"],
  "from-scratch": [],
  "fixed-policy": ["fixedPolicy"],
  "aff-scale": ["affScale"],
  dropout: ["dropout"],
  widths: ["widths"],
  workers: ["workers"],
  cache: ["cacheDir"],
  "on-bad-image": ["onBadImage"],
  name: ["name"],
  "score-loss": ["scoreLoss"],
  balance: ["balance"],
  "focal-gamma": ["focalGamma"],
  "task-weights": ["taskWeights"],
  "task-weights-lr": ["taskWeightsLr"],
  "gradnorm-alpha": ["gradnormAlpha"],
  "dwa-temperature": ["dwaTemperature"],
};

/** A config field's value for a message: numbers and words as they are, lists shortened. */
function shown(c: RunConfig, path: string): string {
  const v = path.split(".").reduce<unknown>(
    (o, k) => (o as Record<string, unknown> | undefined)?.[k],
    c,
  );
  const text = Array.isArray(v) && v.every((x) => typeof x === "number")
    ? v.join(",")
    : typeof v === "object" || v === undefined
    ? JSON.stringify(v) ?? "none"
    : String(v);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/**
 * The config of `--resume DIR`: the run's own (`stored`, from DIR/config.json) in DIR,
 * with the run flags given checked against it. A flag that matches the run is accepted;
 * one that may change (RESUME_MAY_CHANGE: workers) is applied; any other is refused.
 * @throws {Error} naming every flag that differs from the run, with both values
 */
export function resumedRunConfig(stored: RunConfig, values: Values, dir: string): RunConfig {
  const given = Object.keys(FLAG_FIELDS).filter((f) => values[f] !== undefined);
  const config: RunConfig = { ...stored, out: dir };
  const problems: string[] = [];
  if (values.out !== undefined && resolve(String(values.out)) !== resolve(dir)) {
    problems.push(`--out ${values.out} (--resume ${dir} writes into ${dir})`);
  }
  if (given.length > 0) {
    const built = runConfigFromArgs(values);
    const differ = new Set(configDifferences(stored, built));
    for (const flag of given) {
      const fields = FLAG_FIELDS[flag].filter((f) => differ.has(f));
      if (fields.length === 0) continue;
      if (fields.every((f) => (RESUME_MAY_CHANGE as readonly string[]).includes(f))) {
        Object.assign(
          config,
          Object.fromEntries(fields.map((f) => [f, built[f as keyof RunConfig]])),
        );
        continue;
      }
      const value = typeof values[flag] === "boolean" ? "" : ` ${values[flag]}`;
      problems.push(
        `--${flag}${value} (the run has ${
          fields.map((f) => `${f} ${shown(stored, f)}`).join(", ")
        })`,
      );
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `Cannot resume run "${dir}": options differ from the run's: ${problems.join("; ")}. ` +
        `Hint: resume with no run options (only --device and --workers may change), or ` +
        `start a new run with another --out`,
    );
  }
  return config;
}
