import assert from "node:assert/strict";
import type { Dataset, ImageRecord } from "../../src/data/records.ts";
import {
  assertDisjoint,
  carveValidation,
  chooseSplit,
  splitRecords,
  stratifiedSplit,
} from "../../src/data/split.ts";
import { throwsWith } from "./helpers.ts";

/** 50 images of grade 0, 30 of grade 1, 20 of grade 2, and 5 without a grade. */
function records(): ImageRecord[] {
  const out: ImageRecord[] = [];
  for (const [grade, n] of [[0, 50], [1, 30], [2, 20]]) {
    for (let i = 0; i < n; i++) out.push({ path: `${grade}/${i}.jpg`, labels: { beauty: grade } });
  }
  for (let i = 0; i < 5; i++) out.push({ path: `none/${i}.jpg`, labels: { gender: 0 } });
  return out;
}

function perClass(rs: ImageRecord[], split: number[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const i of split) {
    const k = String(rs[i].labels.beauty ?? "none");
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

Deno.test("stratifiedSplit() keeps 6:2:2 in every class and covers each image once", () => {
  const rs = records();
  const s = stratifiedSplit(rs, { seed: 1 });
  assert.deepEqual(perClass(rs, s.train), { "0": 30, "1": 18, "2": 12, none: 3 });
  assert.deepEqual(perClass(rs, s.val), { "0": 10, "1": 6, "2": 4, none: 1 });
  assert.deepEqual(perClass(rs, s.test), { "0": 10, "1": 6, "2": 4, none: 1 });
  const all = [...s.train, ...s.val, ...s.test].sort((a, b) => a - b);
  assert.deepEqual(all, rs.map((_, i) => i));
  assertDisjoint(s, "stratified");
});

Deno.test("stratifiedSplit() is fixed by its seed", () => {
  const rs = records();
  assert.deepEqual(stratifiedSplit(rs, { seed: 5 }), stratifiedSplit(rs, { seed: 5 }));
  assert.notDeepEqual(stratifiedSplit(rs, { seed: 5 }).test, stratifiedSplit(rs, { seed: 6 }).test);
  const s = stratifiedSplit(rs, { ratios: [8, 0, 2], by: "gender" });
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [84, 0, 21]);
});

Deno.test("stratifiedSplit() rejects bad ratios", () => {
  throwsWith(
    () => stratifiedSplit(records(), { ratios: [0, 0, 0] }),
    "Cannot split: ratios must be three non-negative numbers with a positive sum: current value is 0:0:0",
  );
  throwsWith(() => stratifiedSplit(records(), { ratios: [6, -1, 2] }), "current value is 6:-1:2");
});

Deno.test("carveValidation() moves a stratified part of train into val", () => {
  const rs = records();
  const official = {
    train: rs.map((_, i) => i).filter((i) => i % 5 !== 0),
    val: [],
    test: [] as number[],
  };
  official.test = rs.map((_, i) => i).filter((i) => i % 5 === 0);
  const s = carveValidation(rs, official, 0.25, { seed: 2 });
  assert.equal(s.val.length, 21);
  assert.equal(s.train.length + s.val.length, official.train.length);
  assert.deepEqual(s.test, official.test);
  assertDisjoint(s, "carved");
});

Deno.test("chooseSplit() picks a shipped split and rejects unknown or overlapping ones", () => {
  const rs = records().slice(0, 4);
  const d: Pick<Dataset, "records" | "splits" | "source"> = {
    records: rs,
    source: "scut:x",
    splits: {
      official: { train: [0, 1], val: [], test: [2, 3] },
      bad: { train: [0, 1], val: [], test: [1, 2] },
    },
  };
  assert.deepEqual(chooseSplit(d, "official"), d.splits.official);
  assert.deepEqual(splitRecords(rs, d.splits.official).test, [rs[2], rs[3]]);
  throwsWith(
    () => chooseSplit(d, "cv9"),
    `Cannot use split "cv9" of "scut:x": it has no such split: available are "stratified", "official", "bad"`,
  );
  throwsWith(
    () => chooseSplit(d, "bad"),
    `Cannot use split "bad": image 1 ("0/1.jpg") is in both train and test`,
  );
  throwsWith(
    () => assertDisjoint({ train: [3, 3], val: [], test: [] }, "dup"),
    `Cannot use split "dup": image 3 is twice in train`,
  );
});
