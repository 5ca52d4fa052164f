import assert from "node:assert/strict";
import { join } from "node:path";
import { readImage } from "../../src/data/decode.ts";
import { beautyGrade } from "../../src/data/grade.ts";
import { ProblemLog } from "../../src/data/problems.ts";
import { readRatings } from "../../src/data/ratings.ts";
import { resizeRgb } from "../../src/data/resize.ts";
import { readScut } from "../../src/data/scut.ts";
import { assertDisjoint } from "../../src/data/split.ts";
import { generateSynthetic, simulateFaces } from "../../src/data/synth/generate.ts";
import { withTempDir } from "./fixtures.ts";
import { rejectsWith } from "./helpers.ts";

async function files(dir: string, base = dir): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) { for (const [k, v] of await files(p, base)) out.set(k, v); }
    else out.set(p.slice(base.length + 1), await Deno.readFile(p));
  }
  return out;
}

Deno.test("generateSynthetic() is deterministic for a seed", async () => {
  await withTempDir(async (dir) => {
    const opts = { count: 24, size: 32, raters: 7 };
    await generateSynthetic({ ...opts, out: join(dir, "a") });
    await generateSynthetic({ ...opts, out: join(dir, "b") });
    await generateSynthetic({ ...opts, out: join(dir, "c"), seed: 1 });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((d) => files(join(dir, d))));
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [name, bytes] of a) {
      // The xlsx zip stamps its entries with the write time; its cells are compared below.
      if (!name.endsWith(".xlsx")) assert.deepEqual(b.get(name), bytes, name);
    }
    const log = new ProblemLog();
    assert.deepEqual(
      await readRatings(join(dir, "a", "All_Ratings.xlsx"), log),
      await readRatings(join(dir, "b", "All_Ratings.xlsx"), log),
    );
    assert.notDeepEqual(c.get("Images/AF1.jpg"), a.get("Images/AF1.jpg"));
  });
});

Deno.test("generateSynthetic() writes a SCUT-FBP5500 layout the reader reads cleanly", async () => {
  await withTempDir(async (dir) => {
    const r = await generateSynthetic({ out: dir, count: 24, size: 32, raters: 9, seed: 3 });
    assert.deepEqual(r.groups, { AF: 9, AM: 9, CF: 3, CM: 3 });
    const d = await readScut(dir);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.skips, {});
    assert.equal(d.records.length, 24);
    assert.equal((await readImage(d.records[0].path)).width, 32);
    assert.deepEqual(Object.keys(d.splits), ["official", "cv1", "cv2", "cv3", "cv4", "cv5"]);
    assert.deepEqual([d.splits.official.train.length, d.splits.official.test.length], [14, 10]);
    const cvTests = [1, 2, 3, 4, 5].flatMap((k) => d.splits[`cv${k}`].test).sort((a, b) => a - b);
    assert.deepEqual(cvTests, d.records.map((_, i) => i)); // the folds' test parts tile the set
    for (const [name, s] of Object.entries(d.splits)) assertDisjoint(s, name);
    // Grades are the reader's rule applied to the simulated raters.
    const faces = simulateFaces({ count: 24, size: 32, raters: 9, seed: 3 });
    assert.deepEqual(
      d.records.map((r) => r.labels.beauty),
      faces.map((f) => beautyGrade(f.ratings, f.ratings.reduce((a, b) => a + b) / 9).grade),
    );
  });
});

Deno.test("generateSynthetic() options: female-only PNG database, CSV ratings, no ratings", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "f");
    const r = await generateSynthetic({
      out,
      count: 10,
      size: 24,
      genders: "F",
      format: "png",
      ratings: "csv",
      style: 1,
    });
    assert.deepEqual(r.groups, { AF: 7, CF: 3 });
    const d = await readScut(out);
    assert.ok(d.records.every((x) => x.path.endsWith(".png") && x.labels.gender === 0));
    assert.deepEqual(d.problems, []);
    const none = join(dir, "n");
    await generateSynthetic({ out: none, count: 4, size: 16, ratings: "none" });
    const dn = await readScut(none);
    assert.equal(dn.records.length, 4);
    assert.match(dn.problems[0].message, /^no All_Ratings\.xlsx or All_Ratings\.csv/);
    // Regenerating over a previous synthetic database replaces it.
    await generateSynthetic({ out: none, count: 2, size: 16, ratings: "none" });
    assert.equal((await readScut(none)).records.length, 2);
    await rejectsWith(
      () => generateSynthetic({ out: join(dir, "x"), count: 0 }),
      "Cannot generate synthetic database: count must be an integer from 1 to 1000000: current value is 0",
    );
    await rejectsWith(
      () => generateSynthetic({ out: join(dir, "x"), genders: "X" as "F" }),
      `Cannot generate synthetic database: genders must be "FM", "F" or "M": current value is "X"`,
    );
  });
});

Deno.test("synthetic labels are learnable from the drawn features", async () => {
  // Beauty: the grade follows the features' true score except for the noisy images.
  const faces = simulateFaces({ count: 400, labelNoise: 0.05 });
  const clean = faces.filter((f) => !f.noisy);
  const agree = clean.filter((f) => {
    const g = beautyGrade(f.ratings).grade;
    return Math.abs(g - (Math.min(5, Math.max(1, Math.round(f.perceived))) - 1)) === 0;
  });
  assert.ok(agree.length / clean.length > 0.85, `grade agrees on ${agree.length}/${clean.length}`);
  const noisy = faces.filter((f) => f.noisy).length;
  assert.ok(noisy > 8 && noisy < 35, `${noisy} noisy labels of 400 at 5%`);
  // Gender: a nearest-centroid classifier on 12×12 thumbnails beats chance by far.
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 120, size: 48, ratings: "none", labelNoise: 0 });
    const d = await readScut(dir);
    const thumbs = await Promise.all(d.records.map(async (r) => {
      const img = await readImage(r.path);
      return resizeRgb(img.data, img.width, img.height, 4, 12, 12);
    }));
    const train = d.records.map((_, i) => i).filter((i) => i % 2 === 0);
    const test = d.records.map((_, i) => i).filter((i) => i % 2 === 1);
    const centroid = (g: number) => {
      const idx = train.filter((i) => d.records[i].labels.gender === g);
      const c = new Float64Array(12 * 12 * 3);
      for (const i of idx) thumbs[i].forEach((v, k) => (c[k] += v / idx.length));
      return c;
    };
    const cs = [centroid(0), centroid(1)];
    const dist = (t: Uint8Array, c: Float64Array) => t.reduce((s, v, k) => s + (v - c[k]) ** 2, 0);
    const right = test.filter((i) => {
      const guess = dist(thumbs[i], cs[0]) < dist(thumbs[i], cs[1]) ? 0 : 1;
      return guess === d.records[i].labels.gender;
    }).length;
    assert.ok(right / test.length > 0.75, `gender accuracy ${right}/${test.length}`);
  });
});

Deno.test("synthetic beauty grades are bell-shaped, independent of sex, and show in the pixels", async () => {
  // Grades: all five present, mostly 1–3 around grade 2 but no class near half the data.
  const faces = simulateFaces({ count: 2000, labelNoise: 0 });
  const hist = [0, 0, 0, 0, 0];
  for (const f of faces) hist[beautyGrade(f.ratings).grade]++;
  const share = hist.map((n) => n / faces.length);
  assert.ok(share[0] > 0.03 && share[4] > 0.03, `grade shares ${share}`);
  assert.ok(share[2] === Math.max(...share) && share[2] < 0.45, `grade shares ${share}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const bySex = ["F", "M"].map((s) =>
    mean(faces.filter((f) => f.name[1] === s).map((f) => f.perceived))
  );
  assert.ok(Math.abs(bySex[0] - bySex[1]) < 0.15, `mean score F ${bySex[0]}, M ${bySex[1]}`);
  // Pixels: at 32 px a face's redness (blotchy, flushed skin) already ranks low grades
  // (0–1) above high ones (3–4) for almost every pair.
  await withTempDir(async (dir) => {
    await generateSynthetic({
      out: dir,
      count: 120,
      size: 32,
      raters: 15,
      labelNoise: 0,
      style: 1,
    });
    const d = await readScut(dir);
    const low: number[] = [], high: number[] = [];
    for (const r of d.records) {
      const img = await readImage(r.path);
      const t = resizeRgb(img.data, img.width, img.height, 4, 8, 8);
      let red = 0;
      for (let y = 2; y < 5; y++) {
        for (let x = 2; x < 6; x++) red += t[(y * 8 + x) * 3] - t[(y * 8 + x) * 3 + 1];
      }
      const g = r.labels.beauty as number;
      if (g <= 1) low.push(red);
      else if (g >= 3) high.push(red);
    }
    const pairs = low.flatMap((l) => high.map((h) => (l > h ? 1 : 0)));
    assert.ok(low.length > 10 && high.length > 10, `${low.length} low, ${high.length} high`);
    assert.ok(mean(pairs) > 0.9, `low grades redder than high ones in ${mean(pairs)} of pairs`);
  });
});
