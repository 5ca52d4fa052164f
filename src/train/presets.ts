/**
 * Ready-made run configs: the newcomer's default (a small synthetic two-database set that
 * trains the full method in minutes on a 2-core CPU) and the paper's two settings. Every
 * preset task declares its classes (beauty: 5 grades, gender: 2), so a database whose
 * labels do not fit (a sixth grade, a third gender spelling) is refused before the run.
 * @module
 */
import { RUN_DEFAULTS, type RunConfig } from "./run_config.ts";

/** Names of the presets. */
export const PRESETS = ["default", "paper-scut", "paper-lsafbd"] as const;
/** A preset name. */
export type PresetName = typeof PRESETS[number];

/** Where the paper presets find their data. */
export interface PresetData {
  /** SCUT-FBP5500 source (e.g. `scut:data/SCUT-FBP5500_v2`). */
  scut?: string;
  /** LSAFBD source (e.g. `list:lsafbd/train.txt@lsafbd/images`). */
  lsafbd?: string;
}

/** The synthetic databases of the default run: a female-only beauty set and a mixed set. */
export const DEFAULT_SOURCES = {
  beautyDb: "synthetic:count=400,size=72,seed=11,genders=F,style=1,labels=beauty",
  genderDb: "synthetic:count=400,size=72,seed=12,labels=gender",
} as const;

/**
 * A preset's config (the caller may override fields afterwards).
 * @param data where the paper presets find SCUT-FBP5500 and LSAFBD
 * @returns every field of a run config but `name` and `out`
 * @throws {Error} when a paper preset lacks the path of its data
 * @example The default preset, shortened
 * ```ts
 * import assert from "node:assert/strict";
 * import { presetConfig } from "./presets.ts";
 * import { validateRunConfig } from "./run_config.ts";
 * const config = {
 *   ...presetConfig("default"),
 *   name: "quick",
 *   out: "runs/quick",
 *   epochs: { warmup: 1, policy: 1, retrain: 2, baseline: 2 },
 * };
 * validateRunConfig(config);
 * assert.deepEqual(config.tasks.map((t) => t.name), ["beauty", "gender"]);
 * ```
 */
export function presetConfig(
  name: PresetName,
  data: PresetData = {},
): Omit<RunConfig, "name" | "out"> {
  if (name === "default") {
    return {
      ...RUN_DEFAULTS,
      databases: [
        { name: "faces", source: DEFAULT_SOURCES.beautyDb },
        { name: "people", source: DEFAULT_SOURCES.genderDb },
      ],
      tasks: [
        { name: "beauty", database: "faces", label: "beauty", lambda: 1, classes: 5 },
        { name: "gender", database: "people", label: "gender", lambda: 0.6, classes: 2 },
      ],
      imageSize: 64,
      resize: 72,
      batch: 32,
      epochs: { warmup: 5, policy: 6, retrain: 15, baseline: 20 },
      tau: 5,
      // Two blocks a policy epoch, so all 8 follow the policy from the 5th of 6 policy epochs.
      curriculumSpeed: 0.5,
      // This run gives the logits ~18 Adam steps where AdaShare's code gives thousands, so
      // they learn 10× faster; and the regularisers weigh a tenth of AdaShare's 0.05, which
      // here outweigh the task losses (docs/adashare.md has the measurements).
      policyLr: 0.1,
      sparsityWeight: 0.005,
      shareWeight: 0.005,
    };
  }
  if (name === "paper-scut") {
    if (!data.scut) {
      throw new Error(
        `Cannot use preset "paper-scut": give the SCUT-FBP5500 folder with --scut DIR`,
      );
    }
    return {
      ...RUN_DEFAULTS,
      databases: [{
        name: "scut",
        source: data.scut.includes(":") ? data.scut : `scut:${data.scut}`,
      }],
      tasks: [
        { name: "beauty", database: "scut", label: "beauty", lambda: 1, classes: 5 },
        { name: "gender", database: "scut", label: "gender", lambda: 0.6, classes: 2 },
      ],
    };
  }
  if (!data.scut || !data.lsafbd) {
    throw new Error(`Cannot use preset "paper-lsafbd": give --lsafbd SOURCE and --scut DIR`);
  }
  return {
    ...RUN_DEFAULTS,
    databases: [
      { name: "lsafbd", source: data.lsafbd },
      { name: "scut", source: data.scut.includes(":") ? data.scut : `scut:${data.scut}` },
    ],
    tasks: [
      { name: "beauty", database: "lsafbd", label: "beauty", lambda: 1, classes: 5 },
      { name: "gender", database: "scut", label: "gender", lambda: 0.6, classes: 2 },
    ],
  };
}
