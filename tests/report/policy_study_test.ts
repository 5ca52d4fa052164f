/** The policy study's figures against hand counts, and its random controls. */
import assert from "node:assert/strict";
import { randomPolicyLike } from "../../src/models/policy.ts";
import { Rng } from "../../src/random/rng.ts";
import {
  policyAgreement,
  policyMovement,
  policyStudy,
  policyStudyCsv,
  policyStudyMarkdown,
} from "../../src/report/policy_study.ts";
import type { RunResult, TaskMetrics } from "../../src/train/result.ts";

Deno.test("policyMovement() counts p(execute) at least 0.1 from 0.5, either way", () => {
  const m = policyMovement({ a: [0.5, 0.6, 0.4, 0.59, 0.41, 0.9], b: [0.1, 0.55] });
  assert.deepEqual(m, { moved: 4, total: 8 }); // 0.6, 0.4, 0.9, 0.1
});

Deno.test("policyAgreement() is the share of entries all seeds decide alike, and per pair", () => {
  const p1 = { a: [1, 1, 0, 0], b: [1, 0, 1, 0] };
  const p2 = { a: [1, 1, 0, 1], b: [1, 0, 1, 0] };
  const p3 = { a: [1, 0, 0, 1], b: [1, 0, 1, 1] };
  const g = policyAgreement([p1, p2, p3]);
  // All three agree on 5 of 8 entries (a0, a2, b0, b1, b2).
  assert.equal(g.all, 5 / 8);
  assert.equal(g.entries, 8);
  // Pairs: (1,2) 7/8, (1,3) 5/8, (2,3) 6/8.
  assert.ok(Math.abs(g.pairwise - (7 + 5 + 6) / 24) < 1e-12);
  assert.equal(policyAgreement([p1]).all, 1);
});

Deno.test("randomPolicyLike() keeps each task's executed count, seeded, at varying places", () => {
  const like = { beauty: [1, 1, 1, 0, 0, 1, 0, 0], gender: [0, 0, 0, 0, 0, 0, 0, 1] };
  const draws = Array.from({ length: 20 }, (_, s) => randomPolicyLike(like, new Rng(s, 1)));
  for (const d of draws) {
    assert.equal(d.beauty.filter((v) => v === 1).length, 4);
    assert.equal(d.gender.filter((v) => v === 1).length, 1);
    assert.ok(d.beauty.every((v) => v === 0 || v === 1));
  }
  assert.deepEqual(randomPolicyLike(like, new Rng(3, 1)), draws[3], "same seed, same policy");
  const distinct = new Set(draws.map((d) => d.beauty.join("")));
  assert.ok(distinct.size > 5, `only ${distinct.size} different policies in 20 draws`);
  // Every block is drawn sometimes: the control is not biased to the learnt places.
  for (let b = 0; b < 8; b++) assert.ok(draws.some((d) => d.gender[b] === 1), `block ${b}`);
});

function run(seed: number, acc: number, policy: Record<string, number[]>, probs?: number[]) {
  const metrics = { accuracy: acc, f1_macro: acc / 2 } as TaskMetrics;
  return {
    out: `runs/s${seed}`,
    policy,
    ...(probs ? { policyProbabilities: { beauty: probs } } : {}),
    tasks: { beauty: { test: metrics, train: { accuracy: 1 }, gap: 1 - acc } },
  } as unknown as RunResult;
}

Deno.test("policyStudy() gathers movement, agreement and both arms' mean ± std", () => {
  const learned = [
    run(0, 0.5, { beauty: [1, 0] }, [0.9, 0.45]),
    run(1, 0.7, { beauty: [1, 1] }, [0.8, 0.7]),
  ];
  const random = [run(0, 0.4, { beauty: [0, 1] }), run(1, 0.4, { beauty: [1, 1] })];
  const s = policyStudy([0, 1], learned, random);
  assert.deepEqual(s.movement, [{ seed: 0, moved: 1, total: 2 }, { seed: 1, moved: 2, total: 2 }]);
  assert.equal(s.agreement.all, 1 / 2);
  assert.deepEqual(s.tasks.beauty.learned.accuracy, [0.5, 0.7]);
  const md = policyStudyMarkdown(s);
  assert.ok(md.includes("| beauty | 60.00 ± 14.14 | 40.00 ± 0.00 | 30.00 ± 7.07 | 20.00 ± 0.00 |"));
  assert.ok(md.includes("at least 0.1 away from 0.5: 3 of 4 entries (75.00 %)"));
  assert.equal(policyStudyCsv(s).split("\n")[1], "beauty,learned,0,0.5,0.25");
  assert.throws(() => policyStudy([0], [random[0]], [random[0]]), /no learnt policy/);
});
