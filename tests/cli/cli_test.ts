/**
 * The command-line tools as a user runs them: `--help` everywhere, a tiny `train --json`
 * whose last stdout line is the documented object, `predict --json` in its exact shape,
 * `eval`, and clear errors (exit code 1, one line) for bad input; the shared flag parser
 * and number parser of every CLI (tasks/_cli/options.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describeRange,
  FlagError,
  numberFlag,
  type NumberRange,
  parseFlags,
  SEED_RANGE,
} from "../../tasks/_cli/options.ts";
import { runTask } from "../_run_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-cli-" });

const run = runTask;

const lastLine = (s: string) => s.trimEnd().split("\n").at(-1)!;
const faces = `synthetic:dir=${root}/faces,count=60,size=36,seed=5,genders=F,labels=beauty`;
const people = `synthetic:dir=${root}/people,count=60,size=36,seed=6,labels=gender`;
const tiny = [
  "--db",
  `faces=${faces}`,
  "--db",
  `people=${people}`,
  "--task",
  "beauty=faces:beauty:1",
  "--task",
  "gender=people:gender:0.6",
  "--widths",
  "4,4,8,8",
  "--image-size",
  "32",
  "--batch",
  "8",
  "--workers",
  "0",
  "--warmup-epochs",
  "1",
  "--policy-epochs",
  "1",
  "--retrain-epochs",
  "1",
];

for (
  const name of [
    "train",
    "eval",
    "predict",
    "sweep_ratios",
    "compare",
    "vary",
    "data",
    "bench",
    "build",
  ]
) {
  Deno.test(`${name} --help prints usage and exits 0`, async () => {
    const r = await run(name, ["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage|usage/);
  });
}

Deno.test("train --json ends with the documented object; predict and eval read its checkpoint", async () => {
  const out = join(root, "run");
  const r = await run("train", [...tiny, "--out", out, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(lastLine(r.stdout));
  for (const task of ["beauty", "gender"]) {
    const t = result.tasks[task];
    for (const k of ["accuracy", "f1_macro", "f1_weighted"]) {
      assert.ok(t.test[k] >= 0 && t.test[k] <= 1, `${task}.test.${k} = ${t.test[k]}`);
    }
    assert.ok(t.train.accuracy >= 0 && t.train.accuracy <= 1);
    assert.equal(result.policy[task].length, 8);
    assert.ok(result.policy[task].every((v: number) => v === 0 || v === 1));
  }
  assert.equal(result.out, out);
  for (const f of ["report.md", "policy.svg", "loss.svg", "accuracy.svg", "confusion-beauty.svg"]) {
    await Deno.stat(join(out, f));
  }
  assert.match(await Deno.readTextFile(join(out, "report.md")), /beauty/);

  // predict --json on two images of the synthetic database.
  const images = [...Deno.readDirSync(join(root, "faces", "Images"))].map((e) =>
    join(root, "faces", "Images", e.name)
  ).sort().slice(0, 2);
  const p = await run("predict", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--json",
    ...images,
  ]);
  assert.equal(p.code, 0, p.stderr);
  const preds = JSON.parse(lastLine(p.stdout));
  assert.equal(preds.length, 2);
  assert.deepEqual(preds.map((x: { image: string }) => x.image), images);
  assert.deepEqual(Object.keys(preds[0]).sort(), ["image", "tasks"]);
  assert.deepEqual(Object.keys(preds[0].tasks).sort(), ["beauty", "gender"]);
  const b = preds[0].tasks.beauty;
  assert.deepEqual(Object.keys(b).sort(), ["label", "probabilities"]);
  assert.equal(b.probabilities.length, 5);
  assert.ok(Math.abs(b.probabilities.reduce((a: number, x: number) => a + x, 0) - 1) < 1e-5);
  assert.equal(b.label, b.probabilities.indexOf(Math.max(...b.probabilities)));

  const e = await run("eval", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--json",
    faces,
    people,
  ]);
  assert.equal(e.code, 0, e.stderr);
  const m = JSON.parse(lastLine(e.stdout));
  assert.equal(m.split, "test");
  assert.ok(m.tasks.beauty.count > 0 && m.tasks.gender.count > 0);
  // The same test split as training: eval's metrics equal the run's test metrics.
  assert.deepEqual(
    m.tasks.gender.confusion,
    JSON.parse(await Deno.readTextFile(join(out, "metrics.json"))).tasks.gender.test.confusion,
  );
  // A shipped split named as train's --db names it: the test list of SCUT's 60/40 split.
  const official = await run("eval", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--json",
    `faces=${faces}@official`,
    `people=${people}`,
  ]);
  assert.equal(official.code, 0, official.stderr);
  const list = join(root, "faces", "train_test_files", "split_of_60%training and 40%testing");
  const testList = (await Deno.readTextFile(join(list, "test.txt"))).trim().split("\n");
  assert.equal(JSON.parse(lastLine(official.stdout)).tasks.beauty.count, testList.length);
});

Deno.test("bad input ends with one clear error line and exit code 1", async () => {
  const cases: [string, string[], RegExp][] = [
    ["train", ["--batch", "x"], /Cannot parse --batch: expected an integer: current value is "x"/],
    [
      "train",
      ["--task", "beauty=nowhere:beauty", "--db", `faces=${faces}`],
      /task "beauty" uses unknown database "nowhere"/,
    ],
    ["train", ["--preset", "paper-scut"], /give the SCUT-FBP5500 folder with --scut DIR/],
    [
      "predict",
      ["--checkpoint", join(root, "missing.safetensors"), "x.jpg"],
      /missing\.safetensors/,
    ],
    ["predict", ["x.jpg"], /--checkpoint FILE is required/],
    ["sweep_ratios", ["--ratios", "1-0.5"], /"1-0\.5" is not of the form λ1:λ2/],
    ["vary", ["--vary", "colour=red,blue"], /"colour" is not a train flag/],
    ["vary", ["--vary", "batch=16"], /expected FLAG=V1,V2,… with at least two values/],
    ["vary", ["--variant", "a: --batch x", "--variant", "b:"], /variant "a": .*--batch/],
  ];
  for (const [name, args, message] of cases) {
    const r = await run(name, args);
    assert.equal(r.code, 1, `${name} ${args.join(" ")}: exit ${r.code}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  }
});

Deno.test("parseFlags() takes a value that starts with '-' and says every refusal in one line", () => {
  const options = {
    batch: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  } as const;
  const parse = (...args: string[]) => parseFlags({ args, options, allowPositionals: true });
  assert.equal(parse("--batch", "-1").values.batch, "-1");
  assert.equal(parse("--batch", "-1e-3", "--json").values.batch, "-1e-3");
  assert.deepEqual(parse("--", "--batch", "-1").positionals, ["--batch", "-1"]);
  const refusals: [string[], RegExp][] = [
    [["--batch", "--json"], /^Cannot parse --batch: it needs a value, and "--json" is an option/],
    [["--batch", "-h"], /^Cannot parse --batch: it needs a value, and "-h" is an option/],
    [["--batch"], /^Cannot parse --batch: it needs a value \(see --help\)$/],
    [["--json=1"], /^Cannot parse --json: it takes no value/],
    [["--bogus"], /^Cannot parse the command line: unknown option --bogus/],
  ];
  for (const [args, message] of refusals) {
    assert.throws(() => parse(...args), (e: Error) => {
      assert.ok(e instanceof FlagError && e.code.startsWith("ERR_PARSE_ARGS"), String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
  assert.throws(
    () => parseFlags({ args: ["x"], options }),
    /Cannot parse the command line: unexpected argument "x"/,
  );
});

Deno.test("numberFlag() reads decimal numbers only and names the range it expects", () => {
  assert.equal(numberFlag(undefined, "n"), undefined);
  for (const [v, n] of [["3", 3], ["-1", -1], ["0.5", 0.5], [".5", 0.5], ["1e-3", 1e-3]] as const) {
    assert.equal(numberFlag(v, "n"), n);
  }
  for (const v of ["", " 5", "0x10", "Infinity", "NaN", "1_000", "5 ", "1e999"]) {
    assert.throws(() => numberFlag(v, "n"), /: Cannot parse --n: expected a number: current value/);
  }
  assert.throws(() => numberFlag("1.5", "n", { integer: true }), /expected an integer:/);
  assert.throws(() => numberFlag("1e30", "n", { integer: true }), /expected an integer:/);
  const cases: [NumberRange, string][] = [
    [{ integer: true, min: 1, max: 64 }, "an integer from 1 to 64"],
    [{ above: 0 }, "a number > 0"],
    [{ min: 0, below: 1 }, "a number ≥ 0 and < 1"],
    [SEED_RANGE, "an integer from 0 to 4294967295"],
  ];
  for (const [range, text] of cases) {
    assert.equal(describeRange(range), text);
    assert.throws(
      () => numberFlag("-7", "n", range),
      new RegExp(`: Cannot parse --n: expected ${text}: current value is "-7"$`),
    );
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
