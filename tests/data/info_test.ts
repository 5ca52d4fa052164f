import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { collectInfo, formatInfo } from "../../src/data/info.ts";
import { readScut } from "../../src/data/scut.ts";
import { ratingRows, withTempDir, writeScut } from "./fixtures.ts";
import { rejectsWith } from "./helpers.ts";

const NAMES = ["AF1", "AF2", "AF3", "AM1", "AM2", "CF1", "CF2", "CM1", "CM2", "CM3"];

/** A SCUT fixture of 10 labelled images, two of them bad (CF2 corrupt, CM3 empty). */
async function fixture(dir: string): Promise<string> {
  const ratings: Record<string, number[]> = {};
  NAMES.forEach((n, i) => (ratings[`${n}.jpg`] = [1 + (i % 5), 1 + (i % 5), 3]));
  return await writeScut(dir, {
    images: NAMES.map((n) => (n === "CF2" ? "corrupt:" : n === "CM3" ? "zero:" : "") + `${n}.jpg`),
    labels: NAMES.map((n, i) => `${n}.jpg ${(1 + (i % 5) * 0.9).toFixed(6)}`).join("\n") +
      "\nAF7.jpg 3\n",
    ratings: [{ name: "Sheet1", rows: [["Rater", "Filename", "Rating"], ...ratingRows(ratings)] }],
    official: {
      train: NAMES.slice(0, 6).map((n) => `${n}.jpg 3`).join("\n"),
      test: NAMES.slice(6).map((n) => `${n}.jpg 3`).join("\n"),
    },
  });
}

Deno.test("collectInfo() counts decodable images per class and split and lists every problem", async () => {
  await withTempDir(async (dir) => {
    const d = await readScut(await fixture(dir));
    const info = await collectInfo(d, { workers: 2 });
    assert.equal(info.images, 8);
    assert.equal(info.skipped, 3);
    assert.deepEqual(info.skips, { "image listed but missing": 1, "bad image": 2 });
    // Ratings (g+1, g+1, 3) for g = i mod 5 give grade g; CF2 (g=1) and CM3 (g=4) are bad.
    assert.deepEqual(info.labels, {
      beauty: { "0": 2, "1": 1, "2": 2, "3": 2, "4": 1 },
      gender: { F: 4, M: 4 },
      race: { A: 5, C: 3 },
    });
    const bad = info.problems.filter((p) => p.message.endsWith("; skipped"));
    assert.deepEqual(bad, [
      {
        file: join(dir, "Images", "CF2.jpg"),
        message:
          "corrupt image data (JPEG is truncated: segment 0xC4 at byte 210 declares 181 bytes, 133 remain); skipped",
        skipped: true,
      },
      {
        file: join(dir, "Images", "CM3.jpg"),
        message: "file is empty (0 bytes); skipped",
        skipped: true,
      },
    ]);
    assert.deepEqual(info.problems[0], {
      file: join(dir, "train_test_files", "All_labels.txt"),
      line: 11,
      message: `image "${join(dir, "Images", "AF7.jpg")}" not found`,
      skipped: true,
    });
    assert.deepEqual(
      [info.splits.official.train.images, info.splits.official.test.images],
      [6, 2],
    );
    assert.equal(
      info.splits.stratified.train.images + info.splits.stratified.val.images +
        info.splits.stratified.test.images,
      8,
    );
    const text = formatInfo(info);
    assert.match(text, /^source {3}scut:/);
    assert.match(text, /images {3}8 \(all decoded\)/);
    assert.match(text, /gender {3}F 4 {2}M 4/);
    assert.match(text, /CM3\.jpg: file is empty \(0 bytes\); skipped/);
    const quick = await collectInfo(d, { decode: false });
    assert.equal(quick.images, 10);
    await rejectsWith(
      () => collectInfo(d, { onBadImage: "fail", workers: 1 }),
      `Cannot decode image "${join(dir, "Images", "CF2.jpg")}": corrupt image data`,
    );
  });
});

const DATA = fileURLToPath(new URL("../../tasks/data.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, DATA, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("data info --json prints images, skipped, problems and labels", async () => {
  await withTempDir(async (dir) => {
    await fixture(dir);
    const r = await cli("info", `scut:${dir}`, "--json");
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assert.equal(info.images, 8);
    assert.equal(info.skipped, 3);
    assert.deepEqual(info.labels.gender, { F: 4, M: 4 });
    assert.deepEqual(Object.keys(info.labels), ["beauty", "gender", "race"]);
    for (const p of info.problems) {
      assert.equal(typeof p.file, "string");
      assert.equal(typeof p.message, "string");
      assert.ok(p.line === undefined || Number.isInteger(p.line));
    }
    const fail = await cli("info", `scut:${dir}`, "--on-bad-image", "fail");
    assert.equal(fail.code, 1);
    assert.match(fail.err, /^Cannot decode image ".*CF2\.jpg": corrupt image data/);
    const bad = await cli("info", `scut:${dir}`, "--on-bad-image", "maybe");
    assert.equal(bad.code, 2);
    assert.match(
      bad.err,
      /Cannot parse --on-bad-image: expected skip or fail: current value is "maybe"/,
    );
    const spec = await cli("info", "scut");
    assert.equal(spec.code, 1);
    assert.match(spec.err, /Cannot parse data source "scut": expected "<kind>:<path>"/);
  });
});

Deno.test("data synth writes a database that data info reads; --help works for each command", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "synth db");
    const r = await cli("synth", "--out", out, "--count", "12", "--size", "32", "--seed", "2");
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^wrote .*synth db \(AF 4, AM 4, CF 2, CM 2\) in [\d.]+ s; read it with scut:/,
    );
    const info = JSON.parse((await cli("info", `scut:${out}`, "--json")).out);
    assert.equal(info.images, 12);
    assert.deepEqual(info.problems, []);
    const noOut = await cli("synth", "--count", "abc");
    assert.equal(noOut.code, 2);
    assert.match(noOut.err, /Cannot run "data synth": --out DIR is required/);
    const badCount = await cli("synth", "--out", out, "--count", "abc");
    assert.match(badCount.err, /Cannot parse --count: expected an integer.*current value is "abc"/);
    const man = await cli(
      "manifest",
      `scut:${out}`,
      "--out",
      join(dir, "m.csv"),
      "--split",
      "official",
    );
    assert.equal(man.code, 0, man.err);
    assert.match(
      await Deno.readTextFile(join(dir, "m.csv")),
      /^path,score,beauty,gender,race,split\n/,
    );
    for (const cmd of ["info", "synth", "manifest"]) {
      const h = await cli(cmd, "--help");
      assert.equal(h.code, 0);
      assert.match(h.out, new RegExp(`^Usage: deno task data ${cmd}`));
    }
    const unknown = await cli("frobnicate");
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.err,
      /Cannot run "data frobnicate": unknown command: expected info, synth or manifest/,
    );
  });
});

Deno.test("data info shows each label's class table and flags odd labels before training", async () => {
  await withTempDir(async (dir) => {
    for (const f of ["a", "b", "c", "d", "e", "f", "g"]) {
      await Deno.writeFile(join(dir, `${f}.jpg`), new Uint8Array(1));
    }
    const file = join(dir, "m.csv");
    await Deno.writeTextFile(
      file,
      "path,grade,gender\na.jpg,0,F\nb.jpg,1,M\nc.jpg,2.5,F\nd.jpg,999,f\ne.jpg,2,M\n" +
        "f.jpg,3,F\ng.jpg,4,M\n",
    );
    const r = await cli("info", `csv:${file}`, "--no-decode");
    assert.equal(r.code, 1, r.err);
    // The class table: images per class, empty ids joined.
    assert.match(
      r.out,
      /\n {2}grade {4}0 1 {2}1 1 {2}2 1 {2}3 1 {2}4 1 {2}5–998 none {2}999 1 {2}✗ 2/,
    );
    assert.match(r.out, /\n {2}gender {3}F 3 {2}M 3 {2}f 1 {2}✗ 1 label error\n/);
    assert.match(r.out, /label errors \(3\): a task on "grade", "gender" is refused until fixed/);
    assert.ok(r.out.includes(`${file}:4: label "grade" is "2.5": expected a class id`), r.out);
    assert.ok(r.out.includes(`${file}:5: label "grade" is 999, which leaves 994 of its 1000`));
    assert.ok(r.out.includes(`${file}:5: label "gender" is written "F" (3) and "f" (1)`));
    assert.equal(
      r.err.trim(),
      `csv:${file}: 3 label errors ("grade": 2, "gender": 1): a task on these labels is ` +
        `refused until they are fixed`,
    );
    const json = JSON.parse((await cli("info", `csv:${file}`, "--no-decode", "--json")).out);
    assert.deepEqual(json.labelErrors.grade.map((p: { line: number }) => p.line), [4, 5]);
    assert.equal(json.labelErrors.grade[0].error, true);
    // A declared class count: checked like a task's.
    await Deno.writeTextFile(file, "path,grade\na.jpg,0\nb.jpg,1\nc.jpg,3\n");
    assert.equal((await cli("info", `csv:${file}`, "--no-decode", "--classes", "grade=5")).code, 0);
    const over = await cli("info", `csv:${file}`, "--no-decode", "--classes", "grade=3");
    assert.equal(over.code, 1);
    assert.ok(over.out.includes(`${file}:4: label "grade" is 3: expected a class id below 3`));
    const badFlag = await cli("info", `csv:${file}`, "--classes", "grade=1");
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.err, /Cannot parse --classes: expected LABEL=K with K an integer from 2/);
    // data manifest refuses to export a label with errors.
    const man = await cli("manifest", `csv:${file}`, "--out", join(dir, "out.csv"));
    assert.equal(man.code, 1);
    assert.match(
      man.err,
      /Cannot write manifest from csv:.*m\.csv:4: label "grade" is 3, which leaves/,
    );
  });
});
