/**
 * The multi-task network: a trunk (ResNet18 by default, or any architecture of
 * src/models/archs/) whose convolutions are shared by every task, with per-database batch
 * norm (DAB), AFF at each ResNet block's skip connection, an AdaShare gate per task and
 * residual block, and one head per task (the trunk's pooled features → dropout → linear).
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
import { formatShape, graphScope, type Tensor, tensor } from "../tensor/tensor.ts";
import { Linear } from "../nn/linear.ts";
import { Module } from "../nn/module.ts";
import type { Backbone, BackboneBlock, Gate, Pass } from "./backbone.ts";
import { archTable, buildBackbone } from "./archs/registry.ts";
import type { NetworkConfig, TaskConfig } from "./config.ts";
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
  /** Builds the logits of `tasks` tasks over `blocks` gated blocks, every entry 0.5. */
  constructor(tasks: number, blocks: number, backend?: Backend) {
    super();
    // AdaShare initialises both logits equally (0.5): no block is favoured at first.
    this.logits = this.param(
      "logits",
      tensor(new Float32Array(tasks * blocks * 2).fill(0.5), [tasks, blocks, 2], { backend }),
    );
  }
}

/** A trunk (ResNet18 by default) + DAB + AFF + AdaShare over T tasks and D databases. */
export class MultiTaskNet extends Module {
  /** The config the network was built from (stored in its checkpoints). */
  readonly config: NetworkConfig;
  /** The trunk; its modules are registered at the root, under torchvision's names. */
  readonly backbone: Backbone;
  /** The trunk's blocks in order; `gateIndex[b]` is block b's gate, or -1 (always runs). */
  readonly blocks: readonly BackboneBlock[];
  /** Gate index of each block (-1: not gateable). */
  readonly gateIndex: readonly number[];
  /** Names of the gated blocks, in gate order (the policy's columns). */
  readonly gateNames: readonly string[];
  /** One linear head per task. */
  readonly heads: Heads;
  /** The AdaShare policy logits (trained only in the policy-learning stage). */
  readonly policy: Policy;

  /**
   * Builds a freshly initialised network (seeded: the same seed gives the same weights).
   * @param config a validated config (see parseNetworkConfig)
   * @throws {Error} when a fixed policy does not have one value per gate
   */
  constructor(config: NetworkConfig, opts: { seed?: number; backend?: Backend } = {}) {
    super();
    const rng = new Rng(opts.seed ?? 0, 0x1417);
    const backend = opts.backend;
    this.config = config;
    const aff = config.aff ? { reduction: config.affReduction, scale: config.affScale } : null;
    const table = archTable(config.arch, config.archConfig, `the config of "${config.arch}"`);
    this.backbone = this.adopt(
      buildBackbone(config.arch, table, { keys: this.bnKeys(), rng, backend }, {
        widths: config.widths,
        aff,
      }),
    );
    this.blocks = this.backbone.blocks;
    let g = 0;
    this.gateIndex = this.blocks.map((b) => (b.gateable ? g++ : -1));
    this.gateNames = this.blocks.filter((b) => b.gateable).map((b) => b.name);
    if (config.arch !== "resnet18") this.config = { ...config, gates: [...this.gateNames] };
    for (const [task, p] of Object.entries(config.policy ?? {})) {
      if (p.length !== this.gateNames.length) {
        throw new Error(
          `Cannot build the network: the policy of task "${task}" has ${p.length} values, ` +
            `"${config.arch}" has ${this.gateNames.length} gated blocks`,
        );
      }
    }
    this.heads = this.child(
      "heads",
      new Heads(config.tasks, this.backbone.features, rng, backend),
    );
    this.policy = this.child(
      "policy",
      new Policy(config.tasks.length, this.gateNames.length, backend),
    );
  }

  /** The backend the network's parameters live on. */
  get backend(): Backend {
    return this.policy.logits.backend;
  }

  /** Number of gated blocks (the policy's B). */
  get gateCount(): number {
    return this.gateNames.length;
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
    const p = argmaxPolicy(this.policy.logits.toArray(), this.config.tasks.length, this.gateCount);
    return Object.fromEntries(this.config.tasks.map((t, i) => [t.name, p[i]]));
  }

  /** p(execute) per task and block from the policy logits (softmax over execute/skip). */
  policyProbabilities(): Record<string, number[]> {
    const p = executeProbabilities(
      this.policy.logits.toArray(),
      this.config.tasks.length,
      this.gateCount,
    );
    return Object.fromEntries(this.config.tasks.map((t, i) => [t.name, p[i]]));
  }

  /** Hard gates per task for evaluation. */
  evalGates(): Map<string, Gate[]> {
    return new Map(Object.entries(this.evalPolicy()).map(([k, v]) => [k, fixedGates(v)]));
  }

  /** All-execute gates for every task (warm-up, baselines). */
  allExecuteGates(): Map<string, Gate[]> {
    return new Map(this.config.tasks.map((t) => [t.name, allExecute(this.gateCount)]));
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
      const pass: Pass = { key, training, seed: opts.dropoutSeed ?? 0 };
      let signature = `${key}/`;
      let x = memo.get(signature);
      if (!x) {
        // graphScope: intermediates no backward rule reads are freed per stage, not per step.
        x = graphScope(() => this.backbone.stem(images, pass));
        memo.set(signature, x);
      }
      for (let b = 0; b < this.blocks.length; b++) {
        const gi = this.gateIndex[b];
        const g: Gate = gi < 0 ? "execute" : gates[gi];
        signature += typeof g === "string" ? (g === "execute" ? "1" : "0") : `|${task.name}:${b}`;
        const hit = memo.get(signature);
        if (hit) {
          x = hit;
          continue;
        }
        const input: Tensor = x;
        x = graphScope((): Tensor => this.blocks[b].forward(input, pass, g));
        memo.set(signature, x);
      }
      const last: Tensor = x;
      let features = graphScope(() => this.backbone.tail(last, pass));
      const p = this.config.dropout;
      if (training && p > 0) {
        features = dropout(features, p, ((opts.dropoutSeed ?? 0) * 31 + ti) >>> 0);
      }
      out.set(task.name, this.heads.byTask.get(task.name)!.forward(features));
    }
    return out;
  }
}
