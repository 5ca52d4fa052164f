/**
 * The run folder's lock (issue 8): a second training process on the same `--out` is
 * refused while the first runs; two runs started together in one process cannot both take
 * it; a lock left by a killed process (even one whose pid this process now has) is taken
 * over.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { RUN_DEFAULTS, type RunConfig } from "../../src/train/run_config.ts";
import { RunLock } from "../../src/train/run_dir.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-lock-" });
const people = `synthetic:dir=${root}/people,count=60,size=40,seed=4,labels=gender`;
await readSource(people);

Deno.test("a second training process on the same folder is refused while the first runs", async () => {
  const config: RunConfig = {
    ...RUN_DEFAULTS,
    name: "locked",
    out: join(root, "run"),
    method: "baseline",
    databases: [{ name: "people", source: people }],
    tasks: [{ name: "gender", database: "people", label: "gender", lambda: 1 }],
    widths: [4, 4, 8, 8],
    imageSize: 32,
    resize: 36,
    batch: 6,
    epochs: { warmup: 0, policy: 0, retrain: 1, baseline: 1000 },
    workers: 0,
  };
  const file = join(root, "config.json");
  await Deno.writeTextFile(file, JSON.stringify(config));
  const script = new URL("./_tiny_run.ts", import.meta.url).pathname;
  const spawn = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, file],
      stdout: "null",
      stderr: "piped",
      env: { OMP_NUM_THREADS: "1" },
    }).spawn();
  const first = spawn();
  try {
    while (!(await Deno.stat(join(config.out, "log.jsonl")).then(() => true, () => false))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await spawn().output();
    assert.equal(second.code, 1);
    assert.match(
      new TextDecoder().decode(second.stderr),
      new RegExp(`error: Cannot use run folder ".*run": process ${first.pid} is writing it`),
    );
  } finally {
    first.kill("SIGKILL");
    await first.status;
    await first.stderr.cancel();
  }
  // The killed run's lock is stale now: the next run takes it over.
  const lock = await RunLock.acquire(config.out);
  await lock.release();
});

Deno.test("RunLock.acquire() admits one of two runs started together in one process", async () => {
  const dir = join(root, "same-process");
  const results = await Promise.allSettled([RunLock.acquire(dir), RunLock.acquire(dir)]);
  const held = results.filter((r) => r.status === "fulfilled");
  const refused = results.filter((r) => r.status === "rejected");
  assert.equal(held.length, 1);
  assert.match(String(refused[0].reason), /this process is already writing it/);
  await held[0].value.release();
  // A lock file with this process's pid that it does not hold is stale (pid reuse).
  await Deno.writeTextFile(join(dir, ".lock"), `${Deno.pid}\n`);
  const again = await RunLock.acquire(dir);
  assert.equal((await Deno.readTextFile(join(dir, ".lock"))).trim(), String(Deno.pid));
  await again.release();
  assert.deepEqual([...Deno.readDirSync(dir)], []);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
