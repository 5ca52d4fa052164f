/**
 * Killed runs (issue 8): a real training process (tests/reliability/_tiny_run.ts) is killed
 * with SIGKILL at seeded random moments — some right as a checkpoint's temporary file
 * appears, i.e. during the write — and after every kill `checkpoint.safetensors` and
 * `last.safetensors` must parse, and `--resume` must continue. The run, killed five times
 * and resumed, must end with the same numbers as an uninterrupted run. Also: a full disk
 * (a 32 MiB tmpfs, when this process may mount one, filled up by the run itself just
 * before an epoch's writes) is reported naming the file, the previous checkpoint files
 * survive byte for byte, and the run resumes once there is space. Issue 20: kills in the
 * policy stage (weight and logit epochs) and in re-training resume to the same numbers;
 * a kill at every point of a `--force` replacement leaves the old run's files (some of
 * them, untouched) or none, never a mix with the new run's, and the replacement then
 * completes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { parseSafetensors } from "../../src/io/safetensors.ts";
import { checkpointConfig } from "../../src/models/checkpoint.ts";
import { readResume } from "../../src/train/resume.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { mulberry32 } from "../io/_helpers.ts";
import {
  copyFolder,
  genderBaseline,
  snapshot,
  tinyRun,
  tinyRunCommand,
  twoTasks,
} from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-crash-" });
const people = `synthetic:dir=${root}/people,count=120,size=40,seed=4,labels=gender,labelNoise=0`;
const faces =
  `synthetic:dir=${root}/faces,count=120,size=40,seed=3,genders=F,labels=beauty,labelNoise=0`;
// Generate the images once, before any child races to.
await readSource(people);
await readSource(faces);

function tinyConfig(name: string, out = join(root, name)): RunConfig {
  return tinyRun(name, out, {
    ...genderBaseline(people, 16),
    widths: [32, 32, 64, 64],
    batch: 12,
    lr: 3e-3,
    dropout: 0.1,
  });
}

interface Child {
  process: Deno.ChildProcess;
  /** Resolves with stdout once the process ends. */
  output: Promise<string>;
}

async function spawnRun(config: RunConfig, resume: boolean, extra: string[] = []): Promise<Child> {
  const args = resume ? ["resume", ...extra] : extra;
  const process = (await tinyRunCommand(config, root, args, "piped")).spawn();
  const output = (async () => {
    const [out, err] = await Promise.all([
      new Response(process.stdout).text(),
      new Response(process.stderr).text(),
    ]);
    return out + (err ? `\nstderr: ${err}` : "");
  })();
  return { process, output };
}

const temps = (dir: string) =>
  [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp")).map((e) => e.name);

/** What a finished run printed last: `{done, tasks, losses}`. */
function finalLine(output: string): { tasks: Record<string, { test: unknown }>; losses: number[] } {
  const line = output.trim().split("\n").find((l) => l.startsWith('{"done"'));
  assert.ok(line, `the run did not finish:\n${output}`);
  return JSON.parse(line);
}

/** Both run files parse (when present) and the resume state belongs to the config. */
async function checkRunFiles(config: RunConfig): Promise<void> {
  const best = join(config.out, "checkpoint.safetensors");
  const last = join(config.out, "last.safetensors");
  try {
    const file = parseSafetensors(await Deno.readFile(best), { source: best });
    checkpointConfig(file.metadata, best);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const resume = await readResume(last, config);
  assert.ok(resume.state.position >= 1, "last.safetensors holds at least one epoch");
}

Deno.test("SIGKILL at random moments, even mid-write, loses nothing and resumes exactly", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const reference = await spawnRun(tinyConfig("uninterrupted"), false);
  const expected = finalLine(await reference.output);
  assert.equal((await reference.process.status).code, 0);

  const config = tinyConfig("killed");
  const last = join(config.out, "last.safetensors");
  const rng = mulberry32(8);
  let midWrite = 0;
  for (let kill = 0; kill < 5; kill++) {
    const started = Date.now();
    const child = await spawnRun(config, kill > 0);
    // Wait for a resume point newer than this child's start (so a resume is possible).
    for (;;) {
      const m = await Deno.stat(last).then((s) => s.mtime?.getTime() ?? 0, () => 0);
      if (m >= started) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    if (kill % 2 === 0) {
      // At a random moment within the next epoch or two.
      await new Promise((r) => setTimeout(r, Math.floor(rng() * 300)));
    } else {
      // As soon as a temporary file shows a checkpoint write in progress.
      const until = Date.now() + 3000;
      while (Date.now() < until && temps(config.out).length === 0) {
        await new Promise((r) => setTimeout(r, 0));
      }
    }
    if (temps(config.out).length > 0) midWrite++;
    try {
      child.process.kill("SIGKILL");
    } catch {
      // It finished first: the kill loop ends below.
    }
    const status = await child.process.status;
    await child.output;
    await checkRunFiles(config);
    if (status.success) break;
    assert.equal(status.signal, "SIGKILL");
  }
  // The last resume runs to the end.
  const final = await spawnRun(config, true);
  const got = finalLine(await final.output);
  assert.equal((await final.process.status).code, 0);
  assert.deepEqual(got.tasks, expected.tasks, "metrics equal the uninterrupted run's");
  assert.deepEqual(got.losses, expected.losses, "epoch losses equal the uninterrupted run's");
  assert.deepEqual(temps(config.out), [], "the resumed run removed the killed writes' temp files");
  console.log(`${midWrite} of the kills hit a checkpoint write in progress`);
  assert.ok(midWrite >= 1, "at least one kill landed during a write");
});

/** The method on two tasks: warm-up 1, policy 2 rounds (weights + logits), re-train 3. */
function methodConfig(name: string): RunConfig {
  return tinyRun(name, join(root, name), {
    ...twoTasks(faces, people),
    widths: [8, 8, 16, 16],
    batch: 12,
    lr: 3e-3,
    dropout: 0.1,
    epochs: { warmup: 1, policy: 2, retrain: 3, baseline: 1 },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SIGKILL in the policy stage and in re-training resumes to the same numbers", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const reference = await spawnRun(methodConfig("method-uninterrupted"), false);
  const expected = finalLine(await reference.output);
  assert.equal((await reference.process.status).code, 0);

  const config = methodConfig("method-killed");
  const log = join(config.out, "log.jsonl");
  const rng = mulberry32(20);
  const reached: string[] = [];
  for (const [i, stage] of ["policy-weights", "policy-logits", "retrain"].entries()) {
    const from = i === 0 ? 0 : (await Deno.readTextFile(log)).length;
    const child = await spawnRun(config, i > 0);
    let ended = false;
    child.process.status.then(() => ended = true);
    // Kill a random moment after the run's log shows a step of the stage.
    while (!ended) {
      const text = await Deno.readTextFile(log).catch(() => "");
      if (text.slice(from).includes(`"stage":"${stage}"`)) break;
      await sleep(5);
    }
    await sleep(Math.floor(rng() * 150));
    try {
      child.process.kill("SIGKILL");
    } catch {
      // It finished first.
    }
    const status = await child.process.status;
    await child.output;
    assert.equal(status.signal, "SIGKILL", `the run was killed in ${stage}`);
    await checkRunFiles(config);
    const lines = (await Deno.readTextFile(log)).slice(from).trim().split("\n");
    reached.push(JSON.parse(lines.at(-1)!).stage);
  }
  console.log(`killed in: ${reached.join(", ")}`);
  assert.ok(reached.some((s) => s.startsWith("policy-")), "a kill landed in the policy stage");
  assert.equal(reached.at(-1), "retrain", "the last kill landed in re-training");
  const final = await spawnRun(config, true);
  const got = finalLine(await final.output);
  assert.equal((await final.process.status).code, 0);
  assert.deepEqual(got.tasks, expected.tasks, "metrics equal the uninterrupted run's");
  assert.deepEqual(got.losses, expected.losses, "epoch losses equal the uninterrupted run's");
});

Deno.test("SIGKILL during a --force replacement leaves no mixed folder, and it completes after", {
  ignore: Deno.build.os === "windows",
}, async () => {
  const small = (name: string, seed: number) =>
    tinyRun(name, join(root, name), { ...genderBaseline(people, 2), batch: 12, seed });
  const reference = await spawnRun(small("force-reference", 1), false);
  const expected = finalLine(await reference.output);
  const first = await spawnRun(small("force-old", 0), false);
  finalLine(await first.output);
  const oldDir = join(root, "force-old");
  await Deno.writeTextFile(join(oldDir, "notes.txt"), "not a run's\n");
  const old = await snapshot(oldDir);
  const runFiles = [...old.keys()].filter((n) => n !== "notes.txt");
  assert.ok(runFiles.length >= 5, runFiles.join(", "));
  for (let n = 1; n <= runFiles.length; n++) {
    const config = small(`force-${n}`, 1);
    await copyFolder(oldDir, config.out);
    const killed = await spawnRun(config, false, ["force", `kill-after-removing=${n}`]);
    await killed.output;
    assert.equal((await killed.process.status).signal, "SIGKILL", `killed after ${n} removals`);
    // Only the old run's files, untouched (and the dead run's lock); config.json goes last.
    const now = await snapshot(config.out);
    const left = [...now.keys()].filter((k) => k !== ".lock" && k !== "notes.txt");
    for (const name of left) {
      assert.deepEqual(now.get(name), old.get(name), `${name} after ${n} removals`);
    }
    assert.equal(left.length, runFiles.length - n, `after ${n} removals: ${left.join(", ")}`);
    if (left.length > 0) assert.ok(left.includes("config.json"), "config.json is deleted last");
    assert.deepEqual(now.get("notes.txt"), old.get("notes.txt"));
    // The replacement, run again, completes with the numbers of a fresh run.
    const again = await spawnRun(config, false, ["force"]);
    const got = finalLine(await again.output);
    assert.equal((await again.process.status).code, 0);
    assert.deepEqual(got.tasks, expected.tasks, `after ${n} removals`);
    assert.deepEqual(got.losses, expected.losses, `after ${n} removals`);
    assert.deepEqual((await snapshot(config.out)).get("notes.txt"), old.get("notes.txt"));
  }
});

/** Mounts a tmpfs of `mb` MiB at a new folder; undefined where this process cannot. */
async function mountTmpfs(mb: number): Promise<string | undefined> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "fbp-diskfull-" });
  try {
    const r = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${mb}m`, "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).output();
    if (r.success) return dir;
  } catch {
    // no mount program
  }
  await Deno.remove(dir);
  return undefined;
}

Deno.test("a full disk during a checkpoint write is reported and the old checkpoint survives", async () => {
  const mnt = await mountTmpfs(32);
  if (!mnt) {
    // Filling a real disk is not an option; without root (or in a container that forbids
    // mounts) there is no small file system to fill.
    console.log("skipped: cannot mount a tmpfs here (needs root and mount rights)");
    return;
  }
  try {
    const config = tinyConfig("full", join(mnt, "run"));
    const saved = join(root, "saved");
    await Deno.mkdir(saved);
    const child = await spawnRun(config, false, [`fill=3:${join(mnt, "filler")}:${saved}`]);
    const output = await child.output;
    assert.equal((await child.process.status).code, 1, output);
    assert.match(
      output,
      /error: Cannot write (checkpoint|resume state) ".*(checkpoint|last)\.safetensors": No space left on device.*Its previous version, if any, is intact/,
    );
    for (const name of ["checkpoint.safetensors", "last.safetensors"]) {
      const now = await Deno.readFile(join(config.out, name));
      assert.deepEqual(now, await Deno.readFile(join(saved, name)), `${name} is unchanged`);
      parseSafetensors(now, { source: name });
    }
    assert.deepEqual(temps(config.out), [], "the failed write removed its temporary file");
    // With space again, the run resumes from the surviving state and finishes.
    await Deno.remove(join(mnt, "filler"));
    const resumed = await spawnRun(config, true);
    finalLine(await resumed.output);
    assert.equal((await resumed.process.status).code, 0);
  } finally {
    await new Deno.Command("umount", { args: [mnt] }).output();
    await Deno.remove(mnt, { recursive: true });
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
