/**
 * The experiment flags as a user gives them: `--db NAME=SOURCE@SPLIT:val=F`, `--folds`,
 * `--seeds` and `--jobs` — folds planned only where a source ships them (refused clearly
 * where none does), and a tiny sweep-ratios run in two child processes whose re-run
 * reuses every finished cell and trains only the new ones.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { planSweep } from "../../src/train/experiments.ts";
import { RUN_DEFAULTS, type RunConfig } from "../../src/train/run_config.ts";
import { parseDbFlag } from "../../tasks/_cli/run_args.ts";
import { parseFolds, repeatRuns } from "../../tasks/_cli/training.ts";
import { threadsPerJob } from "../../tasks/_cli/jobs.ts";
import { runTask } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-repeats-cli-" });

Deno.test("parseDbFlag() reads the split and its validation fraction", () => {
  assert.deepEqual(parseDbFlag("s=scut:data/x@cv3"), {
    name: "s",
    source: "scut:data/x",
    split: "cv3",
  });
  assert.deepEqual(parseDbFlag("s=scut:data/x@official:val=0.15"), {
    name: "s",
    source: "scut:data/x",
    split: "official",
    valFraction: 0.15,
  });
  // The fraction's range is the config's to check (it names the database).
  assert.equal(parseDbFlag("s=scut:x@cv1:val=.7").valFraction, 0.7);
  // An "@" that names no split belongs to the source.
  assert.deepEqual(parseDbFlag("l=list:a.txt@images"), {
    name: "l",
    source: "list:a.txt@images",
    split: undefined,
  });
  for (const bad of ["s=scut:x@official:val=", "s=scut:x@cv2:val=a", "s=scut:x@cv2:v=0.1"]) {
    assert.throws(
      () => parseDbFlag(bad),
      (e: Error) =>
        e.message.startsWith(`Cannot parse --db "${bad}": expected ":val=F" after the split`),
    );
  }
});

Deno.test("parseFolds() reads folds and ranges and refuses anything else", () => {
  assert.deepEqual(parseFolds("1-5"), [1, 2, 3, 4, 5]);
  assert.deepEqual(parseFolds("3,1"), [1, 3]);
  assert.deepEqual(parseFolds("2"), [2]);
  assert.deepEqual(parseFolds("1-2,4"), [1, 2, 4]);
  for (const bad of ["0", "6", "3-1", "1-6", "a", "", "1,"]) {
    assert.throws(() => parseFolds(bad), /^Error: Cannot parse --folds: ".*" is not a fold/);
  }
  assert.throws(() => parseFolds("1-3,2"), /^Error: Cannot parse --folds: fold 2 is given twice$/);
});

Deno.test("repeatRuns() plans folds where sources ship them, and refuses where none does", async () => {
  const config = (databases: RunConfig["databases"]): RunConfig => ({
    ...RUN_DEFAULTS,
    name: "base",
    out: "x",
    databases,
    tasks: [
      { name: "beauty", database: databases[0].name, label: "beauty", lambda: 1 },
      { name: "gender", database: databases.at(-1)!.name, label: "gender", lambda: 0.6 },
    ],
    seed: 4,
  });
  const mixed = config([
    { name: "syn", source: `synthetic:dir=${root}/never,count=10` },
    { name: "csv", source: `csv:${root}/m.csv` },
  ]);
  const runs = planSweep(mixed, [[1, 0.6]], [8], join(root, "plan"));
  assert.deepEqual(await repeatRuns({}, mixed, runs), runs);
  const planned = await repeatRuns({ folds: "2-3", seeds: "2" }, mixed, runs);
  assert.deepEqual(
    planned.map((r) => [r.fold, r.seed, r.config.databases.map((d) => d.split)]),
    [[2, 4, ["cv2", undefined]], [2, 5, ["cv2", undefined]], [3, 4, ["cv3", undefined]], [
      3,
      5,
      ["cv3", undefined],
    ]],
  );
  const csv = config([{ name: "csv", source: `csv:${root}/m.csv` }]);
  await assert.rejects(
    repeatRuns({ folds: "1" }, csv, planSweep(csv, [[1, 0.6]], [8], root)),
    (e: Error) =>
      e.message.startsWith(
        `Cannot use --folds: no database ships cross-validation folds ("csv" (csv:${root}/m.csv))`,
      ),
  );
  // A scut: folder that does not exist is named, not taken for a database without folds.
  const typo = config([{ name: "s", source: `scut:${root}/typo` }]);
  await assert.rejects(
    repeatRuns({ folds: "1-5" }, typo, planSweep(typo, [[1, 0.6]], [8], root)),
    (e: Error) =>
      e.message.startsWith(
        `Cannot find the cross-validation folds of SCUT-FBP5500 at "${root}/typo": ` +
          `folder not found`,
      ),
  );
  await assert.rejects(
    repeatRuns({ seeds: "0" }, csv, []),
    /^Error: Cannot parse --seeds: expected an integer from 1 to 1000: current value is "0"$/,
  );
  assert.equal(threadsPerJob(1) >= 1, true);
  assert.equal(threadsPerJob(1000), 1);
});

const data = [
  "--db",
  `faces=synthetic:dir=${root}/faces,count=30,size=32,seed=5,genders=F,labels=beauty`,
  "--db",
  `people=synthetic:dir=${root}/people,count=30,size=32,seed=6,labels=gender`,
  "--task",
  "beauty=faces:beauty:1",
  "--task",
  "gender=people:gender:0.6",
];
const tiny = [
  ...data,
  "--widths",
  "4,4,8,8",
  "--image-size",
  "32",
  "--workers",
  "0",
  "--warmup-epochs",
  "1",
  "--policy-epochs",
  "1",
  "--retrain-epochs",
  "1",
  "--ratios",
  "1:0.5",
  "--batches",
  "4",
  "--dir",
  join(root, "sweep"),
];

Deno.test("sweep-ratios --folds --jobs 2 trains cells in child processes; a re-run reuses them", async () => {
  const cell = join(root, "sweep", "ratio-1-0.5-batch-4");
  const first = await runTask("sweep_ratios", [...tiny, "--folds", "1,2", "--jobs", "2"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /2 runs at once, 1 thread each/);
  for (const fold of [1, 2]) {
    assert.match(
      first.stderr,
      new RegExp(`ratio-1-0\\.5-batch-4 fold${fold}-seed0: done: beauty ACC [\\d.]+ F1 [\\d.]+`),
    );
    const config = JSON.parse(
      await Deno.readTextFile(join(cell, `fold${fold}-seed0`, "config.json")),
    );
    assert.deepEqual(config.databases.map((d: { split: string }) => d.split), [
      `cv${fold}`,
      `cv${fold}`,
    ]);
    // The child's output went to the log beside the run folder.
    assert.match(await Deno.readTextFile(join(cell, `fold${fold}-seed0.log`)), /retrain 1:/);
  }
  assert.match(first.stdout, /\| 1:0\.5 \| 4 \| \*\*[\d.]+ ± [\d.]+\*\* \|/);
  assert.match(first.stdout, /over 2 runs per row \(folds 1, 2 × seed 0\)/);
  const log = await Deno.readTextFile(join(cell, "fold1-seed0.log"));
  // Two seeds: the seed-0 runs are reused (no child, the log unchanged), seed 1 trains.
  const second = await runTask("sweep_ratios", [
    ...tiny,
    "--folds",
    "1,2",
    "--seeds",
    "2",
    "--jobs",
    "2",
    "--json",
  ]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /fold1-seed0: reused: beauty ACC/);
  assert.match(second.stderr, /fold2-seed0: reused: beauty ACC/);
  assert.match(second.stderr, /fold1-seed1: done/);
  assert.match(second.stderr, /fold2-seed1: done/);
  assert.equal(await Deno.readTextFile(join(cell, "fold1-seed0.log")), log);
  const json = JSON.parse(second.stdout.trimEnd().split("\n").at(-1)!);
  assert.equal(json[0].n, 4);
  assert.deepEqual(
    json[0].runs.map((r: { fold: number; seed: number }) => `${r.fold}/${r.seed}`),
    ["1/0", "1/1", "2/0", "2/1"],
  );
  const md = await Deno.readTextFile(join(root, "sweep", "sweep.md"));
  assert.match(md, /over 4 runs per row \(folds 1, 2 × seeds 0, 1\)/);
});

Deno.test("sweep-ratios --folds refuses when no database ships folds", async () => {
  const out = await runTask("sweep_ratios", [
    "--db",
    `m=csv:${root}/m.csv`,
    "--task",
    "beauty=m:beauty",
    "--task",
    "gender=m:gender",
    "--folds",
    "1-5",
    "--dir",
    join(root, "none"),
  ]);
  assert.equal(out.code, 1);
  assert.match(
    out.stderr,
    /^error: Cannot use --folds: no database ships cross-validation folds \("m" \(csv:.*m\.csv\)\)\. Hint: folds come with SCUT-FBP5500/m,
  );
});

Deno.test("sweep-ratios --jobs 2 refuses an unknown --device before starting a child", async () => {
  const dir = join(root, "bad-device");
  // tiny without its --dir.
  const args = [...tiny.slice(0, -2), "--dir", dir, "--jobs", "2", "--device", "gpu"];
  const out = await runTask("sweep_ratios", args);
  assert.equal(out.code, 1, out.stderr);
  assert.equal(out.stderr.trim(), `error: Cannot use device "gpu": expected cpu, cuda or auto`);
  // No child ran: none wrote its log (<run folder>.log) or its run folder.
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
