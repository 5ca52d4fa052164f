import assert from "node:assert/strict";
import { join } from "node:path";
import { formatSource, parseSource, readSource, type SourceSpec } from "../../src/data/source.ts";
import { solidImage, withTempDir, writeScut } from "./fixtures.ts";
import { rejectsWith, throwsWith } from "./helpers.ts";

Deno.test("parseSource() parses every kind", () => {
  const cases: [string, SourceSpec][] = [
    ["scut:data/SCUT-FBP5500_v2", { kind: "scut", dir: "data/SCUT-FBP5500_v2" }],
    ["scut:/data/with space/and%percent", { kind: "scut", dir: "/data/with space/and%percent" }],
    ["csv:manifest.csv", { kind: "csv", file: "manifest.csv" }],
    ["folders:lsafbd/train", { kind: "folders", dir: "lsafbd/train" }],
    ["list:train.txt", { kind: "list", file: "train.txt" }],
    ["list:lists/train.txt@images", { kind: "list", file: "lists/train.txt", imageRoot: "images" }],
    ["list:a@b.txt@root", { kind: "list", file: "a@b.txt", imageRoot: "root" }],
    ["synthetic", { kind: "synthetic", options: {} }],
    ["synthetic:", { kind: "synthetic", options: {} }],
    [
      "synthetic:count=200,size=64,seed=7,label-noise=0.1,genders=f,labels=beauty+gender,dir=x",
      {
        kind: "synthetic",
        options: {
          count: 200,
          size: 64,
          seed: 7,
          labelNoise: 0.1,
          genders: "F",
          labels: ["beauty", "gender"],
          dir: "x",
        },
      },
    ],
  ];
  for (const [spec, want] of cases) assert.deepEqual(parseSource(spec), want, spec);
});

Deno.test("parseSource() rejects a bad spec with a clear message", () => {
  const cases: [string, string][] = [
    ["", `Cannot parse data source "": expected "<kind>:<path>" with kind one of scut, csv,`],
    [
      "data/scut",
      `Cannot parse data source "data/scut": expected "<kind>:<path>" with kind one of scut, csv, folders, list, synthetic`,
    ],
    [
      "zip:a.zip",
      `Cannot parse data source "zip:a.zip": unknown kind "zip": expected one of scut, csv`,
    ],
    ["scut:", `Cannot parse data source "scut:": missing path after "scut:"`],
    ["list:  ", `Cannot parse data source "list:  ": missing path after "list:"`],
    [
      "list:train.txt@",
      `Cannot parse data source "list:train.txt@": image root is empty around "@"`,
    ],
    ["list:@root", `Cannot parse data source "list:@root": list file is empty around "@"`],
    [
      "synthetic:count",
      `Cannot parse data source "synthetic:count": expected option "key=value": current value is "count"`,
    ],
    [
      "synthetic:colour=red",
      `unknown option "colour": expected one of count, size, seed, raters, style,`,
    ],
    ["synthetic:count=abc", `option "count" must be an integer: current value is "abc"`],
    [
      "synthetic:count=0",
      `Cannot parse data source "synthetic:count=0": count must be an integer from 1 to 1000000: current value is 0`,
    ],
    ["synthetic:size=8", "size must be an integer from 16 to 1024: current value is 8"],
    ["synthetic:labelNoise=1.5", "labelNoise must be in [0, 1]: current value is 1.5"],
    ["synthetic:raterNoise=x", `option "raterNoise" must be a number: current value is "x"`],
    ["synthetic:format=gif", `option "format" must be one of jpg, png: current value is "gif"`],
    ["synthetic:style=9", "style must be an integer in 0–2: current value is 9"],
    ["synthetic:labels=beauty+age", `option "labels" must join beauty, gender, race with "+"`],
    ["synthetic:seed=1,seed=2", `option "seed" given twice`],
    ["synthetic:dir=", `option "dir" is empty`],
  ];
  for (const [spec, message] of cases) throwsWith(() => parseSource(spec), message);
});

Deno.test("formatSource() writes what parseSource() reads", () => {
  for (
    const spec of [
      "scut:a b/c%",
      "csv:m.csv",
      "folders:f",
      "list:t.txt",
      "list:t.txt@img",
      "synthetic",
      "synthetic:count=20,labels=gender+race",
    ]
  ) {
    assert.equal(formatSource(parseSource(spec)), spec);
  }
});

Deno.test("readSource() reads each kind, including SCUT folders with spaces and %", async () => {
  await withTempDir(async (dir) => {
    const scut = join(dir, "SCUT-FBP5500 v2 (100%)");
    await writeScut(scut, {
      images: ["AF1.jpg", "CM1.jpg"],
      labels: "AF1.jpg 2.2\nCM1.jpg 4.4\n",
      official: { train: "AF1.jpg 2.2\n", test: "CM1.jpg 4.4\n" },
    });
    const d = await readSource(`scut:${scut}`);
    assert.equal(d.name, "scut");
    assert.equal(d.source, `scut:${scut}`);
    assert.deepEqual(d.records.map((r) => r.labels), [
      { race: 0, gender: 0, beauty: 1 },
      { race: 1, gender: 1, beauty: 3 },
    ]);
    assert.deepEqual(d.splits.official, { train: [0], val: [], test: [1] });
    await Deno.mkdir(join(dir, "f", "1"), { recursive: true });
    await Deno.writeFile(
      join(dir, "f", "1", "x.png"),
      await solidImage([1, 2, 3], { format: "png" }),
    );
    assert.equal((await readSource(`folders:${join(dir, "f")}`)).records.length, 1);
    await Deno.writeTextFile(join(dir, "l.txt"), "x.png 1\n");
    assert.equal(
      (await readSource(`list:${join(dir, "l.txt")}@${join(dir, "f", "1")}`)).records.length,
      1,
    );
    await Deno.writeTextFile(join(dir, "m.csv"), "path,label\nf/1/x.png,1\n");
    assert.equal((await readSource(`csv:${join(dir, "m.csv")}`)).records.length, 1);
    await rejectsWith(() => readSource("folders:"), `missing path after "folders:"`);
  });
});

Deno.test("readSource() generates a synthetic source once and keeps only the asked labels", async () => {
  await withTempDir(async (dir) => {
    const spec = `synthetic:count=12,size=32,raters=5,dir=${join(dir, "s")},labels=gender`;
    const d = await readSource(spec);
    assert.equal(d.name, "synthetic");
    assert.equal(d.records.length, 12);
    assert.deepEqual(d.classes, { gender: ["F", "M"] });
    assert.ok(d.records.every((r) => Object.keys(r.labels).join() === "gender"));
    const mtime = (await Deno.stat(join(dir, "s", "synthetic.json"))).mtime;
    await readSource(spec); // reused, not regenerated
    assert.deepEqual((await Deno.stat(join(dir, "s", "synthetic.json"))).mtime, mtime);
    await Deno.writeTextFile(join(dir, "other.txt"), "x");
    await rejectsWith(
      () => readSource(`synthetic:count=3,dir=${dir}`),
      `Cannot write synthetic database to "${dir}": folder is not empty and holds no synthetic.json`,
    );
  });
});
