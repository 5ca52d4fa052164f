/**
 * The run folder's lock (issue 8): a second training process on the same `--out` is
 * refused while the first runs; two runs started together in one process cannot both take
 * it; a lock left by a killed process (even one whose pid this process now has) is taken
 * over.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { RunLock } from "../../src/train/run_dir.ts";
import { genderBaseline, tinyRun, tinyRunCommand } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-lock-" });
const people = `synthetic:dir=${root}/people,count=60,size=40,seed=4,labels=gender`;
await readSource(people);

Deno.test("a second training process on the same folder is refused while the first runs", async () => {
  const config = tinyRun("locked", join(root, "run"), {
    ...genderBaseline(people, 1000),
    batch: 6,
  });
  const command = await tinyRunCommand(config, root, [], "null");
  const first = command.spawn();
  try {
    while (!(await Deno.stat(join(config.out, "log.jsonl")).then(() => true, () => false))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await command.output();
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
