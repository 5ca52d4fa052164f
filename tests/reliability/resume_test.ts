/**
 * Resume (issue 20): stopped at every stage boundary and inside every stage (warm-up,
 * policy weights, policy logits, re-training), a resumed run ends with the numbers of an
 * uninterrupted one; `--resume DIR` reads and writes DIR only (resuming a copy leaves the
 * original byte-identical, a wrong `out` in its config.json creates nothing); options that
 * differ from the run are refused naming each, while `--device` and `--workers` are
 * applied and logged; a run whose images differ from its splits.json is refused; a
 * finished run is left untouched; a checkpoint holding NaN is reported as damaged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { parseSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunResult } from "../../src/train/result.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { type ProgressEvent, RunInterrupted, train } from "../../src/train/trainer.ts";
import {
  copyFolder,
  exists,
  resumeTestRun,
  resumeTestSources,
  runTask,
  snapshot,
} from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-resume-" });
const data = await resumeTestSources(root, 60);

/**
 * The method on both tasks: warm-up 1, policy 2 (weights + logits each: a resume inside the
 * second meets the temperature, curriculum and rates of a later policy epoch), re-train 2.
 */
function config(name: string): RunConfig {
  return resumeTestRun(name, join(root, name), data, {
    warmup: 1,
    policy: 2,
    retrain: 2,
    baseline: 1,
  });
}

/** Trains `c` until `stopAt` steps are done, then stops it. */
async function stopAfter(c: RunConfig, stopAt: number): Promise<void> {
  const controller = new AbortController();
  let steps = 0;
  await assert.rejects(
    train(c, {
      backend,
      signal: controller.signal,
      onProgress: () => {
        if (++steps === stopAt) controller.abort();
      },
    }),
    RunInterrupted,
  );
}

function sameNumbers(got: RunResult, want: RunResult, where: string): void {
  for (const task of ["beauty", "gender"]) {
    assert.deepEqual(got.tasks[task].test, want.tasks[task].test, `${where}: test of ${task}`);
    assert.equal(got.tasks[task].train.accuracy, want.tasks[task].train.accuracy, where);
  }
  assert.deepEqual(got.policy, want.policy, `${where}: policy`);
  assert.deepEqual(got.policyProbabilities, want.policyProbabilities, `${where}: p(execute)`);
  assert.deepEqual(
    got.history.map((h) => h.policyProbabilities),
    want.history.map((h) => h.policyProbabilities),
    `${where}: p(execute) path`,
  );
  assert.deepEqual(got.history.map((h) => h.loss), want.history.map((h) => h.loss), where);
}

Deno.test("stopped at every stage boundary and inside every stage, a resumed run ends the same", async () => {
  const progress: ProgressEvent[] = [];
  const reference = await train(config("reference"), {
    backend,
    onProgress: (e) => progress.push(e),
  });
  // Every step that ends an epoch (a boundary), and the first step of each epoch that has
  // more (inside it), of every kind of epoch.
  const stops: [number, string][] = [];
  progress.forEach((e, i) => {
    if (i + 1 === progress.length) return; // the run's last step: nothing left to resume
    if (e.step === e.steps) stops.push([i + 1, `end of ${e.kind} ${e.epoch}`]);
    else if (e.step === 1) stops.push([i + 1, `inside ${e.kind} ${e.epoch}`]);
  });
  for (const kind of ["warmup", "policy-weights", "policy-logits", "retrain"]) {
    assert.ok(stops.some(([, w]) => w.startsWith("inside") && w.includes(kind)), `in ${kind}`);
    assert.ok(stops.some(([, w]) => w.startsWith("end") && w.includes(kind)), `after ${kind}`);
  }
  // One run, stopped at each of them in turn and resumed each time.
  const c = config("stopped");
  let done = 0;
  for (const [at, where] of stops) {
    const controller = new AbortController();
    const notes: string[] = [];
    await assert.rejects(
      train(c, {
        backend,
        resume: done > 0,
        signal: controller.signal,
        onNote: (m) => notes.push(m),
        onProgress: () => {
          if (++done === at) controller.abort();
        },
      }),
      RunInterrupted,
      where,
    );
    assert.equal(done, at, where);
  }
  sameNumbers(await train(c, { backend, resume: true }), reference, "resumed at every stop");
});

Deno.test("a checkpoint holding NaN is reported as damaged, naming the file", async () => {
  const c = config("damaged");
  await stopAfter(c, 5);
  const last = join(c.out, "last.safetensors");
  const file = parseSafetensors(await Deno.readFile(last), { source: last });
  file.tensors.get("layer2.0.conv1.weight")!.data[3] = NaN;
  await writeSafetensors(last, file.tensors, {
    metadata: { fbp: file.metadata.fbp, resume: file.metadata.resume },
  });
  await assert.rejects(
    train(c, { backend, resume: true }),
    new RegExp(
      `^Error: Cannot resume from "${last}": the checkpoint is damaged: tensor ` +
        `"layer2\\.0\\.conv1\\.weight" holds NaN \\(element 3\\), which training never saves\\. ` +
        `Hint: restore the file from a copy, or start the run again with --force$`,
    ),
  );
});

/** A stopped run of the method (two tasks), made in-process, as a CLI would have left it. */
let stopped = "";

Deno.test("--resume of a copy trains the copy: the original stays byte-identical", async () => {
  const c = config("original");
  await stopAfter(c, 2);
  stopped = c.out;
  const before = await snapshot(c.out);
  const copy = join(root, "copy");
  await copyFolder(c.out, copy);
  const r = await runTask("train", ["--resume", copy]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /resuming at epoch 1 of 7, step 2/);
  assert.ok(await exists(join(copy, "metrics.json")));
  assert.ok(await exists(join(copy, "report.md")));
  assert.match(r.stdout, new RegExp(`report: ${copy}/report\\.md`));
  assert.deepEqual(await snapshot(c.out), before, "the original is untouched");
  // A config.json whose "out" names another folder: that folder is not created.
  const moved = join(root, "moved");
  await copyFolder(c.out, moved);
  const cfg = JSON.parse(await Deno.readTextFile(join(moved, "config.json")));
  await Deno.writeTextFile(
    join(moved, "config.json"),
    JSON.stringify({ ...cfg, out: join(root, "elsewhere") }),
  );
  const m = await runTask("train", ["--resume", moved]);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(await exists(join(root, "elsewhere")), false);
  assert.ok(await exists(join(moved, "metrics.json")));
  assert.deepEqual(await snapshot(c.out), before, "the original is untouched");
});

Deno.test("--resume refuses a run whose images differ from its splits.json", async () => {
  assert.ok(stopped, "needs the stopped run of an earlier test");
  const dir = join(root, "other-images");
  await copyFolder(stopped, dir);
  const path = join(dir, "splits.json");
  const splits = JSON.parse(await Deno.readTextFile(path));
  const dropped = splits.faces.val.pop();
  await Deno.writeTextFile(path, JSON.stringify(splits));
  const before = await snapshot(dir);
  await assert.rejects(
    train({ ...config("original"), out: dir }, { backend, resume: true }),
    (e: Error) =>
      e.message.startsWith(`Cannot resume run "${dir}": the val images of database "faces"`) &&
      e.message.includes(`"${dropped}" is new`),
  );
  assert.deepEqual(await snapshot(dir), before, "a refused resume changes nothing");
});

Deno.test("--resume refuses options that differ from the run's, applies --workers and --device", async () => {
  assert.ok(stopped, "needs the stopped run of the previous test");
  const dir = join(root, "options");
  await copyFolder(stopped, dir);
  const before = await snapshot(dir);
  const refused = await runTask("train", [
    ...["--resume", dir, "--batch", "4", "--lr", "0.5", "--no-aff", "--out", join(root, "x")],
  ]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(
    refused.stderr.trim(),
    new RegExp(
      `^error: Cannot resume run "${dir}": options differ from the run's: ` +
        `--out .*x \\(--resume ${dir} writes into ${dir}\\); ` +
        `--no-aff \\(the run has aff true\\); --batch 4 \\(the run has batch 8\\); ` +
        `--lr 0\\.5 \\(the run has lr 0\\.003\\)\\. Hint: resume with no run options ` +
        `\\(only --device and --workers may change\\), or start a new run with another --out$`,
    ),
  );
  assert.deepEqual(await snapshot(dir), before, "a refused resume changes nothing");
  // Options equal to the run's are accepted; --workers and --device are applied and logged.
  const ok = await runTask("train", [
    ...["--resume", dir, "--batch", "8", "--lr", "0.003", "--workers", "1", "--device", "cpu"],
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const log = (await Deno.readTextFile(join(dir, "log.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
  const resumed = log.filter((l) => l.kind === "resume");
  assert.deepEqual(resumed, [
    {
      kind: "resume",
      position: 0,
      step: 2,
      device: "cpu",
      precision: "fp32",
      deterministic: false,
      changed: { workers: [0, 1] },
    },
  ]);
  assert.equal(JSON.parse(await Deno.readTextFile(join(dir, "config.json"))).workers, 0);

  // Finished now: a resume says so, exits 0 and touches nothing.
  const done = await snapshot(dir);
  for (const args of [[], ["--workers", "2"]]) {
    const again = await runTask("train", ["--resume", dir, ...args]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), `${dir} finished: 7 of 7 epochs, nothing to do`);
    assert.deepEqual(await snapshot(dir), done, "a finished run is left byte-identical");
  }
});

Deno.test("--resume of a folder that holds no run, or with --force, is one clear line", async () => {
  const empty = join(root, "empty");
  await Deno.mkdir(empty);
  const cases: [string[], RegExp][] = [
    [["--resume", join(root, "nowhere")], /Cannot resume run: ".*nowhere" does not exist/],
    [["--resume", empty], /Cannot resume run: ".*empty" holds no run/],
    [["--resume", stopped, "--force"], /Cannot use --force with --resume/],
  ];
  for (const [args, message] of cases) {
    const r = await runTask("train", args);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
  assert.equal(await exists(join(root, "nowhere")), false);
  assert.deepEqual([...Deno.readDirSync(empty)], []);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
