/**
 * The multi-task network: a ResNet18 trunk whose convolutions are shared by every task,
 * with per-database batch norm (DAB), AFF at each block's skip connection, an AdaShare
 * gate per task and block, and one head per task (avg-pool → dropout → linear).
 * A single-task plain ResNet18 is the same class with one task and all-execute gates.
 *
 * Forward computes each distinct path once: tasks that read the same images through the
 * same BN copy and take the same hard decisions share their prefix (all-execute warm-up
 * of two tasks on one database costs one trunk, not two).
 * @module
 */
import type { Backend } from "../backend/backend.ts";
import { Rng } from "../random/rng.ts";
import { dropout } from "../ops/dropout.ts";
import { relu } from "../ops/elementwise.ts";
import { globalAvgPool, maxPool2d } from "../ops/pool.ts";
import { formatShape, graphScope, type Tensor, tensor } from "../tensor/tensor.ts";
import { DatasetBatchNorm } from "../nn/batch_norm.ts";
import { Conv2d } from "../nn/conv2d.ts";
import { Linear } from "../nn/linear.ts";
import { Module, ModuleList } from "../nn/module.ts";
import { BasicBlock, type Gate } from "./basic_block.ts";
import { BLOCKS, type NetworkConfig, type TaskConfig } from "./config.ts";
import { allExecute, argmaxPolicy, executeProbabilities, fixedGates } from "./policy.ts";

/** Options of a forward pass. */
export interface ForwardOptions {
  /** Training mode: batch statistics, dropout on (default false). */
  training?: boolean;
  /** Gates per task name; tasks without an entry use `evalGates()`. */
  gates?: ReadonlyMap<string, readonly Gate[]>;
  /** Seed of this step's dropout masks (training only). */
  dropoutSeed?: number;
  /** Run only these tasks (default: every task of the database). */
  tasks?: readonly string[];
}

/** The task heads: one Linear (features → classes) per task, named `heads.<task>`. */
export class Heads extends Module {
  /** Each task's head, by task name. */
  readonly byTask: Map<string, Linear> = new Map();
  /** Builds a freshly initialised head per task, of `features` inputs. */
  constructor(tasks: readonly TaskConfig[], features: number, rng: Rng, backend?: Backend) {
    super();
    for (const t of tasks) {
      this.byTask.set(t.name, this.child(t.name, new Linear(features, t.classes, rng, backend)));
    }
  }
}

/** The AdaShare policy: execute/skip logits per task and block, named `policy.logits`. */
export class Policy extends Module {
  /** (T, B, 2): column 0 = execute, 1 = skip. */
  readonly logits: Tensor;
  /** Builds the logits of `tasks` tasks, every entry 0.5. */
  constructor(tasks: number, backend?: Backend) {
    super();
    // AdaShare initialises both logits equally (0.5): no block is favoured at first.
    this.logits = this.param(
      "logits",
      tensor(new Float32Array(tasks * BLOCKS * 2).fill(0.5), [tasks, BLOCKS, 2], { backend }),
    );
  }
}

/** ResNet18 + DAB + AFF + AdaShare over T tasks and D databases. */
export class MultiTaskNet extends Module {
  /** The config the network was built from (stored in its checkpoints). */
  readonly config: NetworkConfig;
  /** The stem's 7×7 stride-2 convolution, 3 → widths[0] channels. */
  readonly conv1: Conv2d;
  /** The stem's batch norm, one copy per BN key. */
  readonly bn1: DatasetBatchNorm;
  /** The 8 residual blocks in order, layer1.0 … layer4.1 (gate index = block index). */
  readonly blocks: BasicBlock[] = [];
  /** One linear head per task. */
  readonly heads: Heads;
  /** The AdaShare policy logits (trained only in the policy-learning stage). */
  readonly policy: Policy;

  /**
   * Builds a freshly initialised network (seeded: the same seed gives the same weights).
   * @param config a validated config (see parseNetworkConfig)
   */
  constructor(config: NetworkConfig, opts: { seed?: number; backend?: Backend } = {}) {
    super();
    this.config = config;
    const rng = new Rng(opts.seed ?? 0, 0x1417);
    const backend = opts.backend;
    const keys = this.bnKeys();
    const [w1, w2, w3, w4] = config.widths;
    this.conv1 = this.child(
      "conv1",
      new Conv2d(3, w1, rng, { kernel: 7, stride: 2, padding: 3, backend }),
    );
    this.bn1 = this.child("bn1", new DatasetBatchNorm(w1, keys, backend));
    const aff = config.aff ? { reduction: config.affReduction, scale: config.affScale } : null;
    const widths = [w1, w2, w3, w4];
    let cin = w1;
    for (let layer = 0; layer < 4; layer++) {
      const layerModule = this.child(`layer${layer + 1}`, new ModuleList());
      for (let j = 0; j < 2; j++) {
        const stride = layer > 0 && j === 0 ? 2 : 1;
        const block = new BasicBlock(cin, widths[layer], stride, keys, rng, { aff, backend });
        this.blocks.push(layerModule.add(`${j}`, block));
        cin = widths[layer];
      }
    }
    this.heads = this.child("heads", new Heads(config.tasks, w4, rng, backend));
    this.policy = this.child("policy", new Policy(config.tasks.length, backend));
  }

  /** The BN copies every DatasetBatchNorm holds, by the config's `bn` mode. */
  bnKeys(): string[] {
    const c = this.config;
    if (c.bn === "per-database") return [...c.databases];
    if (c.bn === "per-task") return c.tasks.map((t) => t.name);
    return ["shared"];
  }

  /** The BN copy a task's path uses. */
  bnKeyOf(task: TaskConfig): string {
    const mode = this.config.bn;
    return mode === "per-database" ? task.database : mode === "per-task" ? task.name : "shared";
  }

  /** The task config by name. */
  task(name: string): TaskConfig {
    const t = this.config.tasks.find((t) => t.name === name);
    if (!t) {
      throw new Error(
        `Cannot find task "${name}": the network has ${
          this.config.tasks.map((t) => `"${t.name}"`).join(", ")
        }`,
      );
    }
    return t;
  }

  /** The hard policy used for evaluation: the config's fixed policy, else argmax of the logits. */
  evalPolicy(): Record<string, number[]> {
    if (this.config.policy) return this.config.policy;
    const p = argmaxPolicy(this.policy.logits.toArray(), this.config.tasks.length, BLOCKS);
    return Object.fromEntries(this.config.tasks.map((t, i) => [t.name, p[i]]));
  }

  /** p(execute) per task and block from the policy logits (softmax over execute/skip). */
  policyProbabilities(): Record<string, number[]> {
    const p = executeProbabilities(this.policy.logits.toArray(), this.config.tasks.length, BLOCKS);
    return Object.fromEntries(this.config.tasks.map((t, i) => [t.name, p[i]]));
  }

  /** Hard gates per task for evaluation. */
  evalGates(): Map<string, Gate[]> {
    return new Map(Object.entries(this.evalPolicy()).map(([k, v]) => [k, fixedGates(v)]));
  }

  /** All-execute gates for every task (warm-up, baselines). */
  allExecuteGates(): Map<string, Gate[]> {
    return new Map(this.config.tasks.map((t) => [t.name, allExecute(BLOCKS)]));
  }

  /** Network weights: every parameter except the policy logits. */
  weightParameters(): Tensor[] {
    return this.namedParameters().filter(([k]) => k !== "policy.logits").map(([, t]) => t);
  }

  /**
   * Runs the images of one database (N, 3, H, W) through the path of every task that
   * uses it. Returns logits (N, K_t) by task name.
   * @throws {Error} on an unknown database or a task of another database
   */
  forward(images: Tensor, database: string, opts: ForwardOptions = {}): Map<string, Tensor> {
    if (!this.config.databases.includes(database)) {
      throw new Error(
        `Cannot run the network on database "${database}": it knows ${
          this.config.databases.map((d) => `"${d}"`).join(", ")
        }`,
      );
    }
    if (images.rank !== 4 || images.shape[1] !== 3) {
      throw new RangeError(
        `Cannot run the network: images must be (N, 3, H, W): current shape is ${
          formatShape(images.shape)
        }`,
      );
    }
    const training = opts.training ?? false;
    const tasks = opts.tasks
      ? opts.tasks.map((n) => this.task(n))
      : this.config.tasks.filter((t) => t.database === database);
    for (const t of tasks) {
      if (t.database !== database) {
        throw new Error(
          `Cannot run task "${t.name}" on database "${database}": it is trained on "${t.database}"`,
        );
      }
    }
    const fallback = opts.gates && tasks.every((t) => opts.gates!.has(t.name))
      ? null
      : this.evalGates();
    // Memo of computed prefixes keyed by path signature: BN copy, "/", decisions so far. The
    // "/" (never in a name) keeps copy "d" after an executed block apart from copy "d1".
    const memo = new Map<string, Tensor>();
    const out = new Map<string, Tensor>();
    for (const [ti, task] of tasks.entries()) {
      const key = this.bnKeyOf(task);
      const gates = opts.gates?.get(task.name) ?? fallback!.get(task.name)!;
      let signature = `${key}/`;
      let x = memo.get(signature);
      if (!x) {
        // graphScope: intermediates no backward rule reads are freed per stage, not per step.
        x = graphScope(() =>
          maxPool2d(relu(this.bn1.forward(this.conv1.forward(images), key, training)))
        );
        memo.set(signature, x);
      }
      for (let b = 0; b < BLOCKS; b++) {
        const g = gates[b];
        signature += typeof g === "string" ? (g === "execute" ? "1" : "0") : `|${task.name}:${b}`;
        const hit = memo.get(signature);
        if (hit) {
          x = hit;
          continue;
        }
        const input: Tensor = x;
        x = graphScope((): Tensor => this.blocks[b].forward(input, key, training, g));
        memo.set(signature, x);
      }
      let features = globalAvgPool(x);
      const p = this.config.dropout;
      if (training && p > 0) {
        features = dropout(features, p, ((opts.dropoutSeed ?? 0) * 31 + ti) >>> 0);
      }
      out.set(task.name, this.heads.byTask.get(task.name)!.forward(features));
    }
    return out;
  }
}
