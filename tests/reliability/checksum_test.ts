/**
 * Checkpoints that prove they are intact (issue 20 §4): one bit flipped in the tensor data
 * of a `checkpoint.safetensors` or a `last.safetensors` that a real run wrote is refused by
 * `predict`, `eval` and `train --resume` with one line naming the file. Before, the flip
 * (a low mantissa bit: the weight stays finite) went unnoticed and each command ran on the
 * damaged weights.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readSource } from "../../src/data/source.ts";
import { genderBaseline, tinyRun, tinyRunCommand } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-checksum-" });
const people = `synthetic:dir=${root}/people,count=24,size=36,seed=4,labels=gender,labelNoise=0`;
await readSource(people); // generate the images once, before any child reads them
/** The first image (by path) under `dir`. */
function firstImage(dir: string): string {
  const entries = [...Deno.readDirSync(dir)].sort((x, y) => x.name < y.name ? -1 : 1);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isFile && /\.(png|jpe?g)$/i.test(e.name)) return path;
    if (e.isDirectory) {
      const inside = firstImage(path);
      if (inside) return inside;
    }
  }
  return "";
}
const image = firstImage(join(root, "people"));
const tool = (name: string) => new URL(`../../tasks/${name}.ts`, import.meta.url).pathname;

/** Runs a command-line tool (without the build step); its exit code and stderr. */
async function cli(name: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", tool(name), ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", OMP_NUM_THREADS: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** A copy of a safetensors file with one bit flipped in its tensor data. */
async function flipped(file: string, to: string): Promise<string> {
  const bytes = await Deno.readFile(file);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const dataStart = 8 + headerLength;
  // The lowest byte of a float32 in the middle of the data: the value stays finite and
  // changes by one unit in the last place, which no other check can see.
  const at = dataStart + 4 * Math.floor((bytes.length - dataStart) / 8);
  bytes[at] ^= 0x01;
  await Deno.writeFile(to, bytes);
  return to;
}

/**
 * Asserts exit 1 and a one-line error `"FILE" is damaged: checksum mismatch…` (train
 * prints where the run goes before it).
 */
function assertDamaged(r: { code: number; stderr: string }, file: string, what: string): void {
  assert.equal(r.code, 1, `${what}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.ok(lines.length <= 2, `${what}: a short error:\n${r.stderr}`);
  assert.ok(
    lines.at(-1)!.startsWith(`error: "${file}" is damaged: checksum mismatch: `),
    `${what}: ${r.stderr}`,
  );
}

// An unfinished run: trained until its first checkpoints exist, then killed.
const config = tinyRun("run", join(root, "run"), { ...genderBaseline(people, 40), batch: 8 });
const last = join(config.out, "last.safetensors");
const best = join(config.out, "checkpoint.safetensors");
const child = (await tinyRunCommand(config, root, [], "null")).spawn();
for (const until = Date.now() + 120_000; Date.now() < until;) {
  const have = await Promise.all([last, best].map((f) => Deno.stat(f).then(() => 1, () => 0)));
  if (have[0] + have[1] === 2) break;
  await new Promise((r) => setTimeout(r, 5));
}
try {
  child.kill("SIGKILL");
} catch {
  // it ended on its own: the checks below say why
}
await child.status;
void child.stderr.cancel();

Deno.test("intact checkpoints load: predict and eval run", async () => {
  const p = await cli("predict", ["--checkpoint", best, "--device", "cpu", image]);
  assert.equal(p.code, 0, p.stderr);
  const e = await cli("eval", ["--checkpoint", best, "--device", "cpu", `people=${people}`]);
  assert.equal(e.code, 0, e.stderr);
});

Deno.test("predict and eval refuse a byte-flipped checkpoint.safetensors and last.safetensors", async () => {
  for (const file of [best, last]) {
    const damaged = await flipped(file, join(root, `damaged-${file.split("/").pop()}`));
    const p = await cli("predict", ["--checkpoint", damaged, "--device", "cpu", image]);
    assertDamaged(p, damaged, `predict ${damaged}`);
    const e = await cli("eval", ["--checkpoint", damaged, "--device", "cpu", `people=${people}`]);
    assertDamaged(e, damaged, `eval ${damaged}`);
  }
});

Deno.test("train --resume refuses a byte-flipped last.safetensors and leaves the run as it was", async () => {
  await flipped(last, last);
  const before = await Deno.readFile(last);
  const r = await cli("train", ["--resume", config.out, "--device", "cpu"]);
  assertDamaged(r, last, "train --resume");
  assert.deepEqual(await Deno.readFile(last), before, "last.safetensors was not rewritten");
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
