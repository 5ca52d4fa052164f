/**
 * SCUT-FBP5500's own protocols train: `@official` (60/40) and `@cv1`…`@cv5` on a tiny
 * SCUT-layout database, with validation carved out of the shipped train list and the
 * shipped test list as the test set; usedSplits() names the image files of each part.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { generateSynthetic } from "../../src/data/synth/generate.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import { prepareData, usedSplits } from "../../src/train/data_setup.ts";
import { train } from "../../src/train/trainer.ts";
import { type RunConfig, validateRunConfig } from "../../src/train/run_config.ts";
import { parseDbFlag } from "../../tasks/_cli/run_args.ts";
import { tinyRun } from "../_run_helpers.ts";

const backend = await loadBackend("cpu");
setDefaultBackend(backend);
const root = await Deno.makeTempDir({ prefix: "fbp-shipped-" });
const scut = join(root, "scut");
await generateSynthetic({ out: scut, count: 40, size: 32, seed: 9, ratings: "none" });
const lists = join(scut, "train_test_files");

/** The image names of a shipped list file, as the release writes them. */
async function listed(...path: string[]): Promise<string[]> {
  const text = await Deno.readTextFile(join(lists, ...path));
  return text.split("\n").filter((l) => l.trim()).map((l) => `Images/${l.split(" ")[0]}`).sort();
}

/** A one-epoch gender baseline on `--db s=<flag>`. */
function baseline(name: string, flag: string): RunConfig {
  return tinyRun(name, join(root, "runs", name), {
    method: "baseline",
    databases: [parseDbFlag(`s=${flag}`)],
    tasks: [{ name: "gender", database: "s", label: "gender", lambda: 1 }],
    epochs: { warmup: 0, policy: 0, retrain: 1, baseline: 1 },
    batch: 4,
    seed: 5,
  });
}

Deno.test("@official and @cv1–@cv5 train, testing on the shipped test list", async () => {
  const folds: [string, string[], string[]][] = [
    ["official", ["split_of_60%training and 40%testing", "train.txt"], [
      "split_of_60%training and 40%testing",
      "test.txt",
    ]],
  ];
  for (let k = 1; k <= 5; k++) {
    const dir = join("5_folders_cross_validations_files", `cross_validation_${k}`);
    folds.push([`cv${k}`, [dir, `train_${k}.txt`], [dir, `test_${k}.txt`]]);
  }
  for (const [split, trainList, testList] of folds) {
    const config = baseline(`gender-${split}`, `scut:${scut}@${split}`);
    validateRunConfig(config);
    const used = usedSplits((await prepareData(config)).databases).s;
    const [release, test] = [await listed(...trainList), await listed(...testList)];
    assert.equal(used.split, split);
    assert.deepEqual([...used.test].sort(), test, `${split}: the test set is the shipped list`);
    assert.deepEqual([...used.train, ...used.val].sort(), release, `${split}: train + val`);
    assert.equal(used.val.length, Math.round(release.length * 0.1), `${split}: 10% carved`);
    assert.deepEqual(used.carvedValidation, { fraction: 0.1, stratifiedBy: ["gender"] });
    const result = await train(config, { backend });
    assert.equal(result.tasks.gender.test.count, test.length, `${split}: tested on its list`);
    assert.equal(result.tasks.gender.val?.count, used.val.length);
  }
});

Deno.test("@official:val=F carves F of train, by beauty alone where a joint class is too small", async () => {
  const config: RunConfig = {
    ...baseline("two-tasks", `scut:${scut}@official:val=0.3`),
    method: "adashare",
    tasks: [
      { name: "beauty", database: "s", label: "beauty", lambda: 1 },
      { name: "gender", database: "s", label: "gender", lambda: 0.6 },
    ],
    epochs: { warmup: 1, policy: 1, retrain: 1, baseline: 0 },
  };
  assert.equal(config.databases[0].valFraction, 0.3);
  const { databases } = await prepareData(config);
  const used = usedSplits(databases).s;
  const n = (await listed("split_of_60%training and 40%testing", "train.txt")).length;
  assert.equal(used.val.length, Math.round(n * 0.3));
  // 24 training images: a (grade, gender) class below 1 / 0.3 images falls back to beauty.
  assert.deepEqual(used.carvedValidation, { fraction: 0.3, stratifiedBy: ["beauty"] });
  // The same seed carves the same images; another seed others.
  const again = usedSplits((await prepareData(config)).databases).s;
  assert.deepEqual(again.val, used.val);
  const other = usedSplits((await prepareData({ ...config, seed: 6 })).databases).s;
  assert.notDeepEqual(other.val, used.val);
  assert.deepEqual(other.test, used.test);
  const result = await train(config, { backend });
  assert.equal(result.tasks.beauty.val?.count, used.val.length);
});

Deno.test("a fraction is refused outside (0, 0.5] or for the stratified split", () => {
  for (
    const [flag, message] of [
      [
        `scut:${scut}@official:val=0.6`,
        `validation fraction of database "s" must be in (0, 0.5]: current value is 0.6`,
      ],
      [`scut:${scut}@cv2:val=0`, `must be in (0, 0.5]: current value is 0`],
      [`scut:${scut}@stratified:val=0.2`, `the stratified split has its own (6:2:2)`],
    ]
  ) {
    assert.throws(() => validateRunConfig(baseline("bad", flag)), (e: Error) => {
      assert.ok(e.message.includes(message), e.message);
      return true;
    });
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
