/**
 * Whether policy learning did its job, from finished runs: how far the learnt p(execute)
 * moved from the coin flip it starts at, how often seeds agree on the final policy, and
 * the learnt policies' accuracy against random policies with as many executed blocks
 * re-trained the same way (`deno task policy-study`).
 * @module
 */
import { formatPolicy } from "../models/policy.ts";
import type { RunResult } from "../train/result.ts";
import { markdownTable } from "./markdown.ts";
import { formatPercent, meanStd } from "./tables.ts";

/** How many (task, block) p(execute) ended at least `threshold` away from 0.5. */
export function policyMovement(
  probabilities: Readonly<Record<string, readonly number[]>>,
  threshold = 0.1,
): { moved: number; total: number } {
  const all = Object.values(probabilities).flat();
  // The 1e-12 keeps 0.6 (0.09999…) on the side it is written on.
  return {
    moved: all.filter((p) => Math.abs(p - 0.5) >= threshold - 1e-12).length,
    total: all.length,
  };
}

/**
 * Agreement of final policies (one per seed), entry by entry: the share of (task, block)
 * entries on which every policy makes the same decision, and the mean share over pairs.
 */
export function policyAgreement(
  policies: readonly Readonly<Record<string, readonly number[]>>[],
): { all: number; pairwise: number; entries: number } {
  if (policies.length === 0) return { all: 1, pairwise: 1, entries: 0 };
  const keys = Object.entries(policies[0]).flatMap(([t, bits]) => bits.map((_, b) => [t, b]));
  const at = (p: Readonly<Record<string, readonly number[]>>, [t, b]: (string | number)[]) =>
    p[t as string]?.[b as number];
  const all = keys.filter((k) => policies.every((p) => at(p, k) === at(policies[0], k))).length;
  let pairs = 0, same = 0;
  for (let i = 0; i < policies.length; i++) {
    for (let j = i + 1; j < policies.length; j++) {
      pairs++;
      same += keys.filter((k) => at(policies[i], k) === at(policies[j], k)).length / keys.length;
    }
  }
  return {
    all: keys.length ? all / keys.length : 1,
    pairwise: pairs ? same / pairs : 1,
    entries: keys.length,
  };
}

/** A cell "mean ± std" in percent (the std only over more than one run). */
function pct(values: readonly number[]): string {
  const m = meanStd(values);
  return m.std === undefined
    ? formatPercent(m.mean)
    : `${formatPercent(m.mean)} ± ${(100 * m.std).toFixed(2)}`;
}

/** The figures of a study: per-seed movement and the accuracy of both arms per task. */
export interface PolicyStudy {
  seeds: number[];
  /** Per learnt run: entries at least 0.1 from 0.5, of all. */
  movement: { seed: number; moved: number; total: number }[];
  agreement: { all: number; pairwise: number; entries: number };
  /** Per task: test accuracy and macro-F1 per seed of the learnt and the random policies. */
  tasks: Record<string, {
    learned: { accuracy: number[]; f1_macro: number[] };
    random: { accuracy: number[]; f1_macro: number[] };
  }>;
  /** Final policies, per seed. */
  learnedPolicies: Record<string, number[]>[];
  randomPolicies: Record<string, number[]>[];
  /** The learnt p(execute) per seed. */
  probabilities: Record<string, number[]>[];
}

/**
 * The study from the learnt runs and their random controls, in seed order (same length).
 * @throws {Error} when a learnt run has no probabilities (not a learnt AdaShare run)
 */
export function policyStudy(
  seeds: readonly number[],
  learned: readonly RunResult[],
  random: readonly RunResult[],
): PolicyStudy {
  const probabilities = learned.map((r) => {
    if (!r.policyProbabilities) {
      throw new Error(`Run "${r.out}" has no learnt policy probabilities: it learnt no policy`);
    }
    return r.policyProbabilities;
  });
  const tasks: PolicyStudy["tasks"] = {};
  for (const task of Object.keys(learned[0]?.tasks ?? {})) {
    const arm = (runs: readonly RunResult[]) => ({
      accuracy: runs.map((r) => r.tasks[task].test.accuracy),
      f1_macro: runs.map((r) => r.tasks[task].test.f1_macro),
    });
    tasks[task] = { learned: arm(learned), random: arm(random) };
  }
  return {
    seeds: [...seeds],
    movement: probabilities.map((p, i) => ({ seed: seeds[i], ...policyMovement(p) })),
    agreement: policyAgreement(learned.map((r) => r.policy)),
    tasks,
    learnedPolicies: learned.map((r) => r.policy),
    randomPolicies: random.map((r) => r.policy),
    probabilities,
  };
}

/** The study as Markdown: movement, agreement, then learnt vs random per task. */
export function policyStudyMarkdown(s: PolicyStudy): string {
  const moved = s.movement.reduce((a, m) => a + m.moved, 0);
  const total = s.movement.reduce((a, m) => a + m.total, 0);
  return [
    `## Policy learning over ${s.seeds.length} seed${s.seeds.length === 1 ? "" : "s"}`,
    "",
    markdownTable(
      ["Seed", "Moved ≥ 0.1 from 0.5", "Learnt policy", "Random control"],
      ["right", "right", "left", "left"],
      s.movement.map((m, i) => [
        String(m.seed),
        `${m.moved}/${m.total}`,
        formatPolicy(s.learnedPolicies[i]),
        formatPolicy(s.randomPolicies[i] ?? {}),
      ]),
    ),
    "",
    `p(execute) at least 0.1 away from 0.5: ${moved} of ${total} entries ` +
    `(${formatPercent(total ? moved / total : 0)} %). Final policies of all seeds agree on ` +
    `${formatPercent(s.agreement.all)} % of the ${s.agreement.entries} (task, block) entries; ` +
    `two seeds agree on ${formatPercent(s.agreement.pairwise)} % on average.`,
    "",
    markdownTable(
      ["Task", "Learnt ACC", "Random ACC", "Learnt F1-macro", "Random F1-macro"],
      ["left", "right", "right", "right", "right"],
      Object.entries(s.tasks).map(([t, a]) => [
        t,
        pct(a.learned.accuracy),
        pct(a.random.accuracy),
        pct(a.learned.f1_macro),
        pct(a.random.f1_macro),
      ]),
    ),
    "",
    "Test figures in percent, mean ± sample std (n − 1) over the seeds. A random control " +
    "executes as many blocks per task as the learnt policy of its seed, at random places, and " +
    "is re-trained the same way (same epochs, initial weights and data).",
  ].join("\n");
}

/** The study's per-run figures as CSV: task, arm, seed, test accuracy and macro-F1. */
export function policyStudyCsv(s: PolicyStudy): string {
  const rows = ["task,arm,seed,accuracy,f1_macro"];
  for (const [task, arms] of Object.entries(s.tasks)) {
    for (const arm of ["learned", "random"] as const) {
      arms[arm].accuracy.forEach((a, i) =>
        rows.push(`${task},${arm},${s.seeds[i]},${a},${arms[arm].f1_macro[i]}`)
      );
    }
  }
  return rows.join("\n") + "\n";
}
