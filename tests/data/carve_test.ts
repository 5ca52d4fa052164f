/**
 * Validation carved out of a shipped split's training list (SCUT-FBP5500's official 60/40
 * and its five folds ship train and test only): stratified, seeded, the right size,
 * disjoint from the test list, which stays as shipped; which sources ship folds.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { collectInfo, formatInfo } from "../../src/data/info.ts";
import type { ImageRecord, Split } from "../../src/data/records.ts";
import { readSource, sourceFolds } from "../../src/data/source.ts";
import {
  assertDisjoint,
  carveStrata,
  carveValidation,
  DEFAULT_VAL_FRACTION,
  trainingSplit,
} from "../../src/data/split.ts";
import { generateSynthetic } from "../../src/data/synth/generate.ts";
import { withTempDir, writeScut } from "./fixtures.ts";
import { rejectsWith, throwsWith } from "./helpers.ts";

/** 200 images: beauty 0–4 × gender 0–1 in uneven numbers (joint class (b, g) has 4 + 4b + 8g). */
function records(): ImageRecord[] {
  const out: ImageRecord[] = [];
  for (let b = 0; b < 5; b++) {
    for (let g = 0; g < 2; g++) {
      for (let i = 0; i < 4 + 4 * b + 8 * g; i++) {
        out.push({ path: `${b}-${g}-${i}.jpg`, labels: { beauty: b, gender: g } });
      }
    }
  }
  return out;
}

/** Every 5th image is test, the rest train, as a shipped split without validation. */
function shipped(rs: readonly ImageRecord[]): Split {
  const all = rs.map((_, i) => i);
  return { train: all.filter((i) => i % 5 !== 0), val: [], test: all.filter((i) => i % 5 === 0) };
}

/** Images per joint class among `idx`. */
function joint(rs: readonly ImageRecord[], idx: readonly number[]): Map<string, number> {
  const c = new Map<string, number>();
  for (const i of idx) {
    const k = `${rs[i].labels.beauty}/${rs[i].labels.gender}`;
    c.set(k, (c.get(k) ?? 0) + 1);
  }
  return c;
}

Deno.test("carveValidation() takes round(f × train) images, each joint class ⌊share⌋ or ⌈share⌉", () => {
  const rs = records();
  const split = shipped(rs);
  for (const fraction of [0.1, 0.15, 0.5]) {
    const s = carveValidation(rs, split, fraction, { seed: 3, by: ["beauty", "gender"] });
    assert.equal(s.val.length, Math.round(split.train.length * fraction), `fraction ${fraction}`);
    assert.deepEqual(s.test, split.test, "the shipped test list is untouched");
    assert.deepEqual([...s.train, ...s.val].sort((a, b) => a - b), split.train);
    assertDisjoint(s, "carved", rs);
    const inTrain = joint(rs, split.train), inVal = joint(rs, s.val);
    for (const [k, n] of inTrain) {
      const got = inVal.get(k) ?? 0;
      assert.ok(
        got === Math.floor(n * fraction) || got === Math.ceil(n * fraction),
        `class ${k}: ${got} of ${n} in val at ${fraction}`,
      );
    }
  }
});

Deno.test("carveValidation() is fixed by its seed and keeps a shipped validation part", () => {
  const rs = records();
  const split = shipped(rs);
  const a = carveValidation(rs, split, 0.1, { seed: 7, by: "beauty" });
  assert.deepEqual(carveValidation(rs, split, 0.1, { seed: 7, by: "beauty" }), a);
  assert.notDeepEqual(carveValidation(rs, split, 0.1, { seed: 8, by: "beauty" }).val, a.val);
  const withVal = carveValidation(rs, { ...split, val: [1000] }, 0.1, { seed: 7, by: "beauty" });
  assert.deepEqual(withVal.val, [...a.val, 1000]);
  for (const bad of [0, -0.1, 0.51, NaN]) {
    throwsWith(
      () => carveValidation(rs, split, bad),
      `Cannot carve validation: the fraction must be in (0, 0.5]: current value is ${bad}`,
    );
  }
});

Deno.test("carveStrata() stratifies jointly unless a joint class expects no validation image", () => {
  const rs = records();
  const { train } = shipped(rs);
  // The smallest joint class has 4 images in all, 3 or 4 in train: 0.25 × 3 < 1.
  assert.deepEqual(carveStrata(rs, train, ["beauty", "gender"], 0.5), ["beauty", "gender"]);
  assert.deepEqual(carveStrata(rs, train, ["beauty", "gender"], 0.25), ["beauty"]);
  assert.deepEqual(carveStrata(rs, train, ["gender", "beauty"], 0.1), ["gender"]);
  assert.deepEqual(carveStrata(rs, train, ["beauty", "beauty"], 0.1), ["beauty"]);
  assert.deepEqual(carveStrata(rs, train, [], 0.1), []);
});

Deno.test("trainingSplit() carves validation from official and cv1–cv5 of a SCUT layout", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "scut");
    await generateSynthetic({ out: root, count: 60, size: 16, seed: 4, ratings: "none" });
    const d = await readSource(`scut:${root}`);
    assert.deepEqual(Object.keys(d.splits), ["official", "cv1", "cv2", "cv3", "cv4", "cv5"]);
    for (const name of Object.keys(d.splits)) {
      const release = d.splits[name];
      const used = trainingSplit(d, name, { seed: 2, labels: ["beauty", "gender"] });
      assert.deepEqual(used.split.test, release.test, `${name}: test list as shipped`);
      assert.equal(used.carved?.fraction, DEFAULT_VAL_FRACTION);
      assert.equal(used.split.val.length, Math.round(release.train.length * 0.1));
      const train = new Set(release.train);
      assert.ok(used.split.val.every((i) => train.has(i)), `${name}: val comes from train`);
      assert.equal(used.split.train.length + used.split.val.length, release.train.length);
      assertDisjoint(used.split, name, d.records);
    }
    const other = trainingSplit(d, "cv3", { seed: 3, labels: ["beauty"], valFraction: 0.25 });
    assert.equal(other.split.val.length, Math.round(d.splits.cv3.train.length * 0.25));
    assert.deepEqual(other.carved?.by, ["beauty"]);
    // The stratified 6:2:2 split has its own validation part: a fraction is refused.
    assert.equal(trainingSplit(d, "stratified", { seed: 2 }).carved, undefined);
    throwsWith(
      () => trainingSplit(d, "stratified", { valFraction: 0.2 }),
      `Cannot carve validation out of split "stratified" of "scut:${root}": the stratified split has its own (6:2:2)`,
    );
    // data info shows the sizes a run trains on.
    const info = await collectInfo(d, { decode: false, valFraction: 0.2 });
    const n = d.splits.official.train.length;
    assert.deepEqual(info.splits.official.carved, {
      fraction: 0.2,
      train: n - Math.round(n * 0.2),
      val: Math.round(n * 0.2),
    });
    assert.match(
      formatInfo(info),
      new RegExp(
        `official: train ${n}, val 0, test ${d.splits.official.test.length}; a run carves ` +
          `20% of train into val: train ${n - Math.round(n * 0.2)}, val ${Math.round(n * 0.2)}`,
      ),
    );
  });
});

Deno.test("trainingSplit() refuses a fraction for a split with its own validation part", () => {
  const rs = records();
  const d = {
    records: rs,
    source: "csv:m.csv",
    splits: { manifest: { ...shipped(rs), val: [1] } },
  };
  d.splits.manifest.train = d.splits.manifest.train.filter((i) => i !== 1);
  assert.equal(trainingSplit(d, "manifest").carved, undefined);
  throwsWith(
    () => trainingSplit(d, "manifest", { valFraction: 0.1 }),
    `Cannot carve validation out of split "manifest" of "csv:m.csv": it has its own validation part (1 image)`,
  );
});

Deno.test("sourceFolds() finds the folds a source ships without reading it", async () => {
  await withTempDir(async (dir) => {
    const fold = { train: "AF1.jpg 3\n", test: "AF2.jpg 3\n" };
    await writeScut(join(dir, "three"), {
      images: ["AF1.jpg", "AF2.jpg"],
      labels: "AF1.jpg 3\nAF2.jpg 3\n",
      folds: [fold, fold, fold],
    });
    assert.deepEqual(await sourceFolds(`scut:${join(dir, "three")}`), [1, 2, 3]);
    await writeScut(join(dir, "none"), { images: ["AF1.jpg"], labels: "AF1.jpg 3\n" });
    assert.deepEqual(await sourceFolds(`scut:${join(dir, "none")}`), []);
    // A folder that does not exist is named, not taken for a database without folds.
    await rejectsWith(
      () => sourceFolds(`scut:${join(dir, "missing")}`),
      `Cannot find the cross-validation folds of SCUT-FBP5500 at "${join(dir, "missing")}": ` +
        `folder not found`,
    );
    assert.deepEqual(await sourceFolds(`synthetic:dir=${dir}/s,count=10`), [1, 2, 3, 4, 5]);
    assert.deepEqual(await sourceFolds(`csv:${dir}/m.csv`), []);
    await rejectsWith(() => sourceFolds("nope:x"), `Cannot parse data source "nope:x"`);
  });
});
