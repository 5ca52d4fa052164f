/**
 * The model config: everything needed to rebuild a network, stored as JSON in a
 * checkpoint's `__metadata__.fbp` (DESIGN.md §3). Readers accept a minimal config and fill
 * defaults; unknown architectures and inconsistent fields are refused with the field named.
 * @module
 */
import type { BnMode } from "../nn/batch_norm.ts";
import { archFamily, archTable, isResNet } from "./archs/registry.ts";
import type { ResNetConfig } from "./archs/resnet.ts";

/** One task: a head of `classes` outputs trained on images of `database`. */
export interface TaskConfig {
  /** Task name (letters, digits, "_" or "-"): the head's key, `heads.<name>.*`. */
  name: string;
  /**
   * Outputs of the head: the classes of a class task (≥ 2); 1 for a score task, 5 (ratings
   * 1–5) for a dist task.
   */
  classes: number;
  /** The database whose images this task is trained on (one of `databases`). */
  database: string;
  /**
   * What the head predicts (src/train/task_kinds.ts): "class" (absent: checkpoints written
   * before task kinds), "score" (the mean rating) or "dist" (the raters' histogram).
   */
  kind?: "class" | "score" | "dist";
}

/** The network config (DESIGN.md §3). */
export interface NetworkConfig {
  /** Trunk architecture, a torchvision builder name ("resnet18", "mobilenet_v3_small", …). */
  arch: string;
  /**
   * The arch's own table when it is not the named variant's (e.g. a small one in tests);
   * absent: the variant's (src/models/archs/).
   */
  archConfig?: unknown;
  /**
   * Names of the blocks AdaShare gates, in gate order (written by the network when built;
   * absent in older checkpoints: ResNet18's layer1.0 … layer4.1).
   */
  gates?: string[];
  /** The tasks, one head each, in head order (names distinct, at least one). */
  tasks: TaskConfig[];
  /** Database names (default: those of the tasks, in order of first use). */
  databases: string[];
  /** AFF at every block's skip connection. */
  aff: boolean;
  /** AFF fusion scale s (2 = the AFF authors' code, 1 = the paper's printed formula). */
  affScale: number;
  /** AFF channel reduction r. */
  affReduction: number;
  /** Batch-norm sharing: per database (DAB), per task, or shared. */
  bn: BnMode;
  /** Optional fixed hard policy: task → 1 (execute) / 0 (skip) per block. */
  policy?: Record<string, number[]>;
  /** Head dropout probability. */
  dropout: number;
  /**
   * Channel widths of the stem/layer1..layer4 of a ResNet (64,128,256,512); tests narrow it.
   * Other architectures ignore it.
   */
  widths: [number, number, number, number];
  /** Input side the network was trained at (a writer's extra key; predict resizes to it). */
  imageSize?: number;
}

/** Residual blocks of ResNet18 (layer1.0 … layer4.1). */
export const BLOCKS = 8;

/** ResNet18's block b's dotted name, e.g. 3 → "layer2.1". */
export function blockName(b: number): string {
  return `layer${(b >> 1) + 1}.${b & 1}`;
}

/** The name of gate `b` of a network config (its `gates`, else ResNet18's block name). */
export function gateName(config: Pick<NetworkConfig, "gates">, b: number): string {
  return config.gates?.[b] ?? blockName(b);
}

/**
 * The number of gates of a config's trunk when it is known without building it (ResNet:
 * one per block), else undefined (the network checks policies when it is built).
 */
export function knownGateCount(arch: string, table: unknown): number | undefined {
  if (!isResNet(arch)) return undefined;
  return (table as ResNetConfig).layers.reduce((a, b) => a + b, 0);
}

const NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Validates a config (e.g. parsed from a checkpoint) and fills defaults.
 * @throws {Error} naming the field and the value received
 */
export function parseNetworkConfig(raw: unknown, source = "model config"): NetworkConfig {
  const fail = (msg: string): never => {
    throw new Error(`Cannot read ${source}: ${msg}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("expected a JSON object");
  const r = raw as Record<string, unknown>;
  const arch = r.arch ?? "resnet18";
  if (typeof arch !== "string") fail(`"arch" must be a string: got ${JSON.stringify(arch)}`);
  try {
    archFamily(arch as string);
  } catch (e) {
    fail((e as Error).message);
  }
  const table = archTable(arch as string, r.archConfig, `${source} "archConfig"`);
  const gateCount = knownGateCount(arch as string, table);
  if (!Array.isArray(r.tasks) || r.tasks.length === 0) fail('"tasks" must be a non-empty array');
  const tasks: TaskConfig[] = (r.tasks as unknown[]).map((t, i) => {
    const o = (typeof t === "object" && t !== null ? t : {}) as Record<string, unknown>;
    if (typeof o.name !== "string" || !NAME.test(o.name)) {
      fail(
        `tasks[${i}].name must be a name of letters, digits, "_" or "-": got ${
          JSON.stringify(o.name)
        }`,
      );
    }
    const kind = o.kind ?? "class";
    if (kind !== "class" && kind !== "score" && kind !== "dist") {
      fail(
        `tasks[${i}].kind must be "class", "score" or "dist": got ${JSON.stringify(o.kind)}`,
      );
    }
    // A score head has 1 output, a dist head one per rating 1–5.
    const outputs = kind === "score" ? 1 : kind === "dist" ? 5 : undefined;
    const classes = o.classes ?? outputs;
    if (outputs !== undefined && classes !== outputs) {
      fail(
        `tasks[${i}].classes of a ${kind} task must be ${outputs}: got ${JSON.stringify(classes)}`,
      );
    }
    if (!Number.isInteger(classes) || (outputs === undefined && (classes as number) < 2)) {
      fail(`tasks[${i}].classes must be an integer ≥ 2: got ${JSON.stringify(o.classes)}`);
    }
    if (typeof o.database !== "string" || !NAME.test(o.database)) {
      fail(`tasks[${i}].database must be a database name: got ${JSON.stringify(o.database)}`);
    }
    const task: TaskConfig = {
      name: o.name as string,
      classes: classes as number,
      database: o.database as string,
    };
    if (kind !== "class") task.kind = kind as "score" | "dist";
    return task;
  });
  if (new Set(tasks.map((t) => t.name)).size !== tasks.length) fail("task names must be distinct");
  const databases = (r.databases ?? [...new Set(tasks.map((t) => t.database))]) as unknown;
  if (!Array.isArray(databases) || databases.some((d) => typeof d !== "string" || !NAME.test(d))) {
    fail(`"databases" must be an array of names: got ${JSON.stringify(databases)}`);
  }
  for (const t of tasks) {
    if (!(databases as string[]).includes(t.database)) {
      fail(`task "${t.name}" uses database "${t.database}", which is not in "databases"`);
    }
  }
  const bn = r.bn ?? "per-database";
  if (bn !== "per-database" && bn !== "per-task" && bn !== "shared") {
    fail(`"bn" must be "per-database", "per-task" or "shared": got ${JSON.stringify(bn)}`);
  }
  const num = (key: string, dflt: number, ok: (v: number) => boolean): number => {
    const v = r[key] ?? dflt;
    if (typeof v !== "number" || !ok(v)) fail(`"${key}" is invalid: got ${JSON.stringify(v)}`);
    return v as number;
  };
  const widths = (r.widths ?? [64, 128, 256, 512]) as unknown;
  if (
    !Array.isArray(widths) || widths.length !== 4 ||
    widths.some((w) => !Number.isInteger(w) || w < 1)
  ) fail(`"widths" must be 4 positive integers: got ${JSON.stringify(widths)}`);
  let policy: Record<string, number[]> | undefined;
  if (r.policy !== undefined && r.policy !== null) {
    policy = {};
    for (const t of tasks) {
      const p = (r.policy as Record<string, unknown>)[t.name];
      if (
        !Array.isArray(p) || (gateCount !== undefined && p.length !== gateCount) ||
        p.some((v) => v !== 0 && v !== 1)
      ) {
        fail(
          `"policy.${t.name}" must be ${gateCount ?? "one per gate:"} values of 0 or 1: got ${
            JSON.stringify(p)
          }`,
        );
      }
      policy[t.name] = p as number[];
    }
  }
  let gates: string[] | undefined;
  if (r.gates !== undefined) {
    if (!Array.isArray(r.gates) || r.gates.some((g) => typeof g !== "string")) {
      fail(`"gates" must be an array of block names: got ${JSON.stringify(r.gates)}`);
    }
    gates = r.gates as string[];
  }
  return {
    arch: arch as string,
    ...(r.archConfig !== undefined && r.archConfig !== null ? { archConfig: r.archConfig } : {}),
    ...(gates ? { gates } : {}),
    tasks,
    databases: databases as string[],
    aff: Boolean(r.aff ?? true),
    affScale: num("affScale", 2, (v) => v > 0),
    affReduction: num("affReduction", 4, (v) => Number.isInteger(v) && v >= 1),
    bn: bn as BnMode,
    policy,
    dropout: num("dropout", 0.5, (v) => v >= 0 && v < 1),
    widths: widths as [number, number, number, number],
    imageSize: r.imageSize === undefined
      ? undefined
      : num("imageSize", 224, (v) => Number.isInteger(v) && v >= 16),
  };
}
