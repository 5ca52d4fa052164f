/**
 * Run folders are never overwritten (issue 20): `deno task train` refuses a folder that
 * holds a run (naming `--resume` and `--force`) or anyone else's files (even with
 * `--force`) and leaves it byte-identical; `--force` deletes only the files a run writes;
 * default names never meet an earlier run; `--out` naming a file is one line; and every
 * option and data source is checked before the folder exists (`--image-size 100000`,
 * a run too big for memory, a missing CSV leave nothing behind).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { RUN_FILES } from "../../src/train/run_dir.ts";
import { copyFolder, exists, runTask, snapshot } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-runfolder-" });
const people = `synthetic:dir=${root}/people,count=40,size=36,seed=6,labels=gender`;
await readSource(people); // generate the images once, before any child races to

/**
 * Flags of a one-epoch single-task baseline of a narrow network on 32×32 images, with
 * `over` replacing or adding flags (each given once).
 */
function tiny(over: Record<string, string> = {}): string[] {
  const flags: Record<string, string> = {
    db: `people=${people}`,
    task: "gender=people:gender",
    policy: "none",
    epochs: "1",
    widths: "4,4,8,8",
    "image-size": "32",
    batch: "8",
    workers: "0",
    seed: "0",
    ...over,
  };
  return Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
}

/** The one error line of a refused command (exit code 1, no stack trace). */
function refusal(r: { code: number; stderr: string }, message: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
  assert.match(lines[0], message);
}

let finished = "";

Deno.test("a new run on a finished run's folder is refused and leaves it byte-identical", async () => {
  finished = join(root, "finished");
  const first = await runTask("train", [...tiny(), "--out", finished]);
  assert.equal(first.code, 0, first.stderr);
  const before = await snapshot(finished);
  assert.ok(before.has("report.md") && before.has("checkpoint.safetensors"));
  for (const args of [tiny(), tiny({ seed: "1" })]) {
    const again = await runTask("train", [...args, "--out", finished]);
    refusal(
      again,
      new RegExp(
        `^error: Cannot start run: "${finished}" already holds a run \\(config\\.json, ` +
          `splits\\.json, last\\.safetensors, checkpoint\\.safetensors, …\\)\\. ` +
          `Hint: continue it with --resume ${finished}, or replace it with --force$`,
      ),
    );
  }
  assert.deepEqual(await snapshot(finished), before);
});

Deno.test("a folder of someone else's files is refused and untouched, even with --force", async () => {
  const theirs = join(root, "theirs");
  await Deno.mkdir(join(theirs, "sub"), { recursive: true });
  await Deno.writeTextFile(join(theirs, "notes.txt"), "mine\n");
  await Deno.writeTextFile(join(theirs, "config.json"), '{"not": "a run"}\n');
  await Deno.writeTextFile(join(theirs, "report.md"), "# my report\n");
  await Deno.writeTextFile(join(theirs, "sub", "data.csv"), "a,b\n");
  const before = await snapshot(theirs);
  for (const force of [[], ["--force"]]) {
    refusal(
      await runTask("train", [...tiny(), "--out", theirs, ...force]),
      new RegExp(
        `^error: Cannot start run: "${theirs}" is not empty and holds no run ` +
          `\\(notes\\.txt, sub, config\\.json, report\\.md\\)${
            force.length ? "; --force replaces only a run folder" : ""
          }\\. Hint: choose a new or empty folder with --out$`,
      ),
    );
  }
  assert.deepEqual(await snapshot(theirs), before);
  // The file system's root and /etc: refused before anything is written there.
  for (const dir of ["/", "/etc"]) {
    const had = await exists(join(dir, "config.json"));
    refusal(
      await runTask("train", [...tiny(), "--out", dir]),
      /^error: Cannot start run: ".*" is not empty and holds no run \(/,
    );
    assert.equal(await exists(join(dir, "config.json")), had, `no config.json in ${dir}`);
  }
});

Deno.test("--force replaces a run folder, deleting only the files a run writes", async () => {
  assert.ok(finished, "needs the finished run of the first test");
  const dir = join(root, "replaced");
  await copyFolder(finished, dir);
  // Besides the run's files: a plot this run does not write (it has no task "beauty"),
  // and files and a folder that no run writes.
  await Deno.writeTextFile(join(dir, "confusion-beauty.svg"), "<svg/>");
  await Deno.writeTextFile(join(dir, "notes.txt"), "keep me\n");
  await Deno.writeTextFile(join(dir, ".config.json.notmine.tmp"), "keep me too\n");
  await Deno.mkdir(join(dir, "plots"));
  await Deno.writeTextFile(join(dir, "plots", "loss.svg"), "<svg/>");
  const old = await snapshot(dir);
  const r = await runTask("train", [...tiny({ seed: "1" }), "--out", dir, "--force"]);
  assert.equal(r.code, 0, r.stderr);
  const now = await snapshot(dir);
  for (const kept of ["notes.txt", ".config.json.notmine.tmp", join("plots", "loss.svg")]) {
    assert.deepEqual(now.get(kept), old.get(kept), `${kept} is kept`);
  }
  assert.ok(!now.has("confusion-beauty.svg"), "the old run's plot is gone");
  assert.equal(JSON.parse(new TextDecoder().decode(now.get("config.json"))).seed, 1);
  const log = new TextDecoder().decode(now.get("log.jsonl"));
  assert.equal(log.split("\n").filter((l) => l.includes('"kind":"epoch"')).length, 1);
  // Only run files and the ones kept.
  for (const name of now.keys()) {
    assert.ok(
      RUN_FILES.includes(name) || /^confusion-gender|^notes|^\.config|^plots/.test(name),
      name,
    );
  }
});

Deno.test("--out naming a regular file is a one-line error", async () => {
  const file = join(root, "a-file");
  await Deno.writeTextFile(file, "data\n");
  refusal(
    await runTask("train", [...tiny(), "--out", file]),
    /^error: Cannot start run: ".*a-file" is a file, not a folder\. Hint: choose a folder with --out$/,
  );
  assert.equal(await Deno.readTextFile(file), "data\n");
  refusal(
    await runTask("train", [...tiny(), "--out", join(file, "run")]),
    /^error: Cannot use run folder ".*a-file\/run": Not a directory/,
  );
});

Deno.test("train twice with the default name keeps both runs and says where each went", async () => {
  const cwd = join(root, "cwd");
  await Deno.mkdir(cwd);
  const first = await runTask("train", [...tiny(), "--name", "twice"], cwd);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /run twice → runs\/twice \(/);
  assert.match(first.stdout, /report: runs\/twice\/report\.md/);
  const before = await snapshot(join(cwd, "runs", "twice"));
  const second = await runTask("train", [...tiny(), "--name", "twice"], cwd);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /run twice → runs\/twice-2 \(/);
  assert.match(second.stdout, /report: runs\/twice-2\/report\.md/);
  assert.deepEqual(await snapshot(join(cwd, "runs", "twice")), before);
  assert.ok(await exists(join(cwd, "runs", "twice-2", "metrics.json")));
});

Deno.test("a refused run leaves no folder: sizes bounded, memory estimated, data checked first", async () => {
  const cases: [string[], RegExp][] = [
    [
      tiny({ "image-size": "100000" }),
      /image size must be at most 4096: current value is 100000/,
    ],
    [
      tiny({ "image-size": "2048", batch: "1024", widths: "64,128,256,512" }),
      /^error: Cannot start the run: it needs about [\d.]+ TiB of memory \(image size 2048, batch 1024 × 1 task, widths 64,128,256,512\) and [\d.]+ [GMT]iB is available\. Hint: lower --image-size or --batch$/,
    ],
    [tiny({ db: `people=csv:${root}/missing.csv` }), /missing\.csv/],
    [tiny({ batch: "500" }), /fewer than the batch of 500/],
    // The paper presets need ImageNet weights (or --from-scratch).
    [["--preset", "paper-scut", "--scut", join(root, "scut")], /without ImageNet weights/],
    // A run that fails before it saved any progress removes what it wrote.
    [tiny({ lr: "1000" }), /the loss diverged.*none yet.*Nothing of the run was kept/],
  ];
  for (const [i, [args, message]] of cases.entries()) {
    const out = join(root, `refused-${i}`, "run");
    const r = await runTask("train", [...args, "--out", out]);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message);
    assert.equal(
      await exists(join(root, `refused-${i}`)),
      false,
      `${args.join(" ")} left a folder`,
    );
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
