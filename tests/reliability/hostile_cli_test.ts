/**
 * Hostile command lines and files (issue 20): every command × every numeric option with a
 * non-number, a negative, zero and a huge value, malformed command lines, and files that
 * are not what they claim (a PNG that does not decode, /dev/zero, a folder named like an
 * image). Each row runs the command as a subprocess in a fresh folder (its cwd, so default
 * outputs such as runs/<name> land there) and checks the exit code, that the error is one
 * line (the last thing on stderr, no stack trace) matching `message`, and that the folder
 * holds nothing but the row's own `files` afterwards.
 *
 * The place where the next finding goes — add a row to ROWS:
 *   row("train", ["--batch", "-1", ...NO_DATA], refused("batch")),
 *   row("predict", ["--checkpoint", CKPT, "$DIR/x.png"], /x\.png/, { files: { "x.png": "" } }),
 * `$DIR` in args, file names and file contents is the row's folder; `files` are created
 * there first (text or bytes: a file; null: a folder). A value that is valid ends at
 * NO_DATA's missing CSV, so an accepted row is as cheap as a refused one (`accepted`).
 * Options: `code` (default 1; `data` usage errors exit 2; with 0, `message` is matched
 * against stdout), `created` (paths the command may leave behind). Every failing row is
 * listed with the last lines the command printed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imagescript";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { pngChunk } from "../io/_helpers.ts";
import { saveCheckpoint } from "../../src/models/checkpoint.ts";
import { parseNetworkConfig } from "../../src/models/config.ts";
import { MultiTaskNet } from "../../src/models/network.ts";

type Command =
  | "train"
  | "eval"
  | "predict"
  | "sweep_ratios"
  | "compare"
  | "data"
  | "bench"
  | "build";

interface Row {
  cmd: Command;
  args: string[];
  /** stderr's last line(s) when the command fails; stdout when `code` is 0. */
  message: RegExp;
  /** Expected exit code (default 1). */
  code?: number;
  /** Created in the row's folder before the command runs; null makes a folder. */
  files?: Record<string, string | Uint8Array | null>;
  /** Paths (relative to the row's folder) the command may create. */
  created?: string[];
}

const root = await Deno.makeTempDir({ prefix: "fbp-hostile-" });
const repo = new URL("../../", import.meta.url).pathname;
const CONCURRENCY = 3;
const ROW_TIMEOUT_MS = 60_000;

/** A checkpoint of a tiny network (widths 4,4,8,8 at 32×32) that predict and eval load. */
const CKPT = join(root, "tiny.safetensors");
await saveCheckpoint(
  CKPT,
  new MultiTaskNet(
    parseNetworkConfig({
      arch: "resnet18",
      tasks: [{ name: "beauty", classes: 5, database: "faces" }],
      widths: [4, 4, 8, 8],
      imageSize: 32,
    }, "hostile test"),
    { backend: new ReferenceBackend() },
  ),
);

/** An 8×8 RGB PNG whose chunks and CRCs are intact but whose IDAT is not zlib data. */
function corruptPng(): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 8);
  new DataView(ihdr.buffer).setUint32(4, 8);
  ihdr.set([8, 2], 8);
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

const BAD_PNG = corruptPng();
const GOOD_PNG = await new Image(8, 8).fill(0x808080ff).encode();

// ---- Row helpers ----

function row(cmd: Command, args: string[], message: RegExp, more: Partial<Row> = {}): Row {
  return { cmd, args, message, ...more };
}

/** An error that names the option (or the run config field it sets). */
function refused(word: string): RegExp {
  return new RegExp(`Cannot [a-z ]+.*(${word})`, "i");
}

/** A data source that does not exist: a run whose flags are all valid stops here. */
const NO_DATA = ["--db", "d=csv:$DIR/no-such.csv", "--task", "t=d:beauty"];
/** The same with the two tasks a ratio sweep needs. */
const NO_DATA_2 = [...NO_DATA, "--task", "u=d:gender"];
/** What NO_DATA ends with: every flag before it was accepted. */
const accepted = /no-such\.csv/;

/**
 * The numeric run flags (train, sweep-ratios, compare): the word their errors use, whether
 * 0 is a valid value, and a value far beyond any run (a typo, or a hostile line).
 */
const RUN_FLAGS: [flag: string, word: string, zeroOk: boolean, huge: string][] = [
  ["warmup-epochs", "warmup", true, "1000000"],
  ["policy-epochs", "policy.epochs|epochs.policy", true, "1000000"],
  ["retrain-epochs", "retrain", false, "1000000"],
  ["epochs", "epochs", true, "1000000"],
  ["batch", "batch", false, "1000000"],
  ["lr", "lr|learning rate", false, "1e6"],
  ["weight-decay", "weight.decay", true, "1e6"],
  ["seed", "seed", true, "1e12"],
  ["image-size", "image.size", false, "100000"],
  ["resize", "resize", false, "1000000"],
  ["tau", "tau", false, "1e6"],
  ["tau-decay", "tau.decay", false, "1e6"],
  ["curriculum-speed", "curriculum.speed", false, "1000000"],
  ["sparsity-weight", "sparsity.weight", true, "1e6"],
  ["share-weight", "share.weight", true, "1e6"],
  ["policy-lr", "policy.lr", false, "1e6"],
  ["aff-scale", "aff.scale", false, "1e6"],
  ["dropout", "dropout", true, "1e6"],
  ["widths", "widths", false, "1000000,8,8,8"],
  ["workers", "workers", true, "1000000"],
];

/**
 * Hostile values of every run flag and of the λ of --task, for `cmd` with its no-data
 * arguments: all four (a non-number, -1, 0, a huge value) with `every`, else one per flag,
 * the kind rotating (sweep-ratios and compare parse the run flags with train's code, which
 * train's rows cover in full; one row each shows they reach it, and keeps the test fast).
 */
function runFlagRows(cmd: Command, noData: string[], o: { every?: boolean; skip?: string[] }) {
  const rows: Row[] = [];
  const flags = RUN_FLAGS.filter(([flag]) => !o.skip?.includes(flag));
  const lambda: (typeof RUN_FLAGS)[number] = ["λ", "λ", true, "1e6"];
  for (const [i, [flag, word, zeroOk, huge]] of [...flags, lambda].entries()) {
    if (flag === "λ" && o.skip?.includes("λ")) continue;
    const args = (v: string) =>
      flag === "λ"
        ? [...noData.slice(0, 3), `t=d:beauty:${v}`, ...noData.slice(4)]
        : [`--${flag}`, flag === "widths" && v !== huge ? [v, v, v, v].join(",") : v, ...noData];
    const cases: [string, RegExp][] = [
      [
        "x",
        flag === "λ"
          ? /Cannot parse --task "t=d:beauty:x"/
          : new RegExp(`Cannot parse --${flag}: expected`),
      ],
      ["-1", refused(word)],
      ["0", zeroOk ? accepted : refused(word)],
      [huge, refused(word)],
    ];
    for (const [v, message] of o.every ? cases : [cases[i % 4]]) {
      rows.push(row(cmd, args(v), message));
    }
  }
  return rows;
}

/** Command-line mistakes every command refuses in one line. */
function commandLineRows(cmd: Command, pre: string[] = [], valueFlag = "--out"): Row[] {
  const code = cmd === "data" ? 2 : 1;
  return [
    row(cmd, [...pre, "--bogus"], /unknown option --bogus/, { code }),
    row(cmd, [...pre, valueFlag], new RegExp(`Cannot parse ${valueFlag}: it needs a value`), {
      code,
    }),
    row(cmd, [...pre, valueFlag, "--help"], new RegExp(`Cannot parse ${valueFlag}: it needs a`), {
      code,
    }),
  ];
}

// ---- The table ----

const ROWS: Row[] = [
  // train: every run flag, the command line, files given as weights.
  ...runFlagRows("train", NO_DATA, { every: true }),
  ...commandLineRows("train"),
  row("train", ["stray", ...NO_DATA], /unexpected argument "stray"/),
  row("train", ["--json=1", ...NO_DATA], /Cannot parse --json: it takes no value/),
  row("train", ["--batch", "0x10", ...NO_DATA], /Cannot parse --batch: expected an integer/),
  row("train", ["--lr", "Infinity", ...NO_DATA], /Cannot parse --lr: expected a number/),
  ...["preset", "policy", "lr-schedule", "final-policy", "bn", "on-bad-image"].map((flag) =>
    row(
      "train",
      [`--${flag}`, "bogus", ...NO_DATA],
      new RegExp(`Cannot parse --${flag}: expected one of`),
    )
  ),
  row("train", ["--device", "bogus", ...NO_DATA], /Cannot use device "bogus": expected cpu/),
  row(
    "train",
    ["--db", "x", "--task", "t=x:beauty"],
    /Cannot parse --db "x": expected NAME=SOURCE/,
  ),
  row("train", ["--db", "d=csv:x.csv", "--task", "t"], /Cannot parse --task "t": expected NAME=DB/),
  row("train", ["--pretrained", "/dev/zero", ...NO_DATA], /"\/dev\/zero": it is not a regular/),
  row("train", ["--pretrained", "$DIR/w.pth", ...NO_DATA], /"[^"]*w\.pth": it is a directory/, {
    files: { "w.pth": null },
  }),

  // sweep-ratios: the run flags (its runs set --batch from --batches), --ratios, --batches.
  ...runFlagRows("sweep_ratios", NO_DATA_2, { skip: ["batch", "λ"] }),
  ...commandLineRows("sweep_ratios", [], "--dir"),
  row("sweep_ratios", ["--batch", "8", ...NO_DATA_2], /Cannot parse --batch: .*--batches/),
  row("sweep_ratios", ["--batches", "x", ...NO_DATA_2], /--batches: "x" is not a batch size/),
  row("sweep_ratios", ["--batches", "-1", ...NO_DATA_2], /--batches: "-1" is not a batch size/),
  row("sweep_ratios", ["--batches", "0", ...NO_DATA_2], /--batches: "0" is not a batch size/),
  row("sweep_ratios", ["--batches", "1000000", ...NO_DATA_2], refused("batch")),
  row("sweep_ratios", ["--batches", "8,8", ...NO_DATA_2], /--batches: 8 is given twice/),
  row("sweep_ratios", ["--ratios", "x:1", ...NO_DATA_2], /--ratios: "x:1" is not of the form/),
  row("sweep_ratios", ["--ratios", "-1:1", ...NO_DATA_2], /--ratios: "-1:1" is not of the form/),
  row("sweep_ratios", ["--ratios", "0:0", ...NO_DATA_2], /--ratios: "0:0": .*not all 0/),
  row("sweep_ratios", ["--ratios", "1:1e6", ...NO_DATA_2], /--ratios: "1:1e6": each weight/),
  row("sweep_ratios", ["--ratios", "1:.", ...NO_DATA_2], /--ratios: "1:\." is not of the form/),

  // compare: the run flags (its baselines need --epochs ≥ 1; it sets the method and AFF).
  ...runFlagRows("compare", NO_DATA, {}),
  row("compare", ["--epochs", "0", ...NO_DATA], refused("epochs")),
  ...commandLineRows("compare", [], "--dir"),
  row("compare", ["--policy", "none", ...NO_DATA], /Cannot parse --policy: the comparison/),
  row("compare", ["--no-aff", ...NO_DATA], /Cannot parse --no-aff: the comparison/),

  // eval: its flags are checked before the checkpoint is read.
  ...["x", "-1", "1e12"].map((v) =>
    row("eval", ["--checkpoint", CKPT, "--seed", v, "faces=x"], /Cannot parse --seed: expected/)
  ),
  row("eval", ["--checkpoint", "$DIR/none.safetensors", "--seed", "0", "x"], /none\.safetensors/),
  row("eval", ["--checkpoint", CKPT, "--split", "bogus", "x"], /Cannot parse --split/),
  row("eval", ["--checkpoint", CKPT, "--label", "beauty", "x"], /--label: expected TASK=LABEL/),
  row("eval", ["--checkpoint", CKPT, "--label", "nope=x", "x"], /no task "nope"/),
  row("eval", ["--checkpoint", "/dev/zero", "x"], /"\/dev\/zero": it is not a regular file/),
  row("eval", ["--checkpoint", CKPT, "--device", "bogus", "x"], /Cannot use device "bogus"/),
  // Labels are checked against the network's classes, as in training: one odd label (999
  // beside 0–4, or a sixth grade for a 5-class head) is refused naming the value.
  ...[["0", "999"], ["0", "5"]].map(([a, b]) =>
    row("eval", ["--checkpoint", CKPT, "--split", "all", "faces=csv:$DIR/m.csv"], new RegExp(b), {
      files: {
        "m.csv": `path,beauty\na.png,${a}\nb.png,${b}\n`,
        "a.png": GOOD_PNG,
        "b.png": GOOD_PNG,
      },
    })
  ),
  ...commandLineRows("eval", ["--checkpoint", CKPT], "--seed"),

  // predict: files that are not images.
  row(
    "predict",
    ["--checkpoint", CKPT, "$DIR/bad.png"],
    /"[^"]*bad\.png": corrupt PNG image data/,
    {
      files: { "bad.png": BAD_PNG },
    },
  ),
  row("predict", ["--checkpoint", CKPT, "/dev/zero"], /"\/dev\/zero": it is a character device/),
  row("predict", ["--checkpoint", CKPT, "$DIR/face.jpg"], /"[^"]*face\.jpg": it is a directory/, {
    files: { "face.jpg": null },
  }),
  row("predict", ["--checkpoint", CKPT, "$DIR/none.jpg"], /"[^"]*none\.jpg": file not found/),
  row("predict", ["--checkpoint", CKPT, "$DIR/e.png"], /"[^"]*e\.png": file is empty/, {
    files: { "e.png": "" },
  }),
  row("predict", ["--checkpoint", CKPT, "$DIR/t.png"], /"[^"]*t\.png": not a JPEG or PNG/, {
    files: { "t.png": "hello" },
  }),
  row("predict", ["--checkpoint", "/dev/zero", "x.png"], /"\/dev\/zero": it is not a regular/),
  row("predict", ["--checkpoint", "$DIR/c", "x.png"], /"[^"]*c": it is a directory/, {
    files: { c: null },
  }),
  ...commandLineRows("predict", ["--checkpoint", CKPT], "--checkpoint"),

  // data synth: every numeric option; a valid value ends at the non-empty --out.
  ...([
    ["count", false, "1e9"],
    ["size", false, "100000"],
    ["seed", true, "1e12"],
    ["raters", false, "1e9"],
    ["rater-noise", true, "1e6"],
    ["label-noise", true, "1e6"],
    ["style", true, "1e6"],
  ] as const).flatMap(([flag, zeroOk, huge]) =>
    ["x", "-1", "0", huge].map((v) => {
      const ok = v === "0" && zeroOk;
      return row(
        "data",
        ["synth", "--out", "$DIR/out", `--${flag}`, v],
        ok ? /is not empty/ : new RegExp(`Cannot parse --${flag}: expected`),
        {
          code: ok ? 1 : 2,
          files: { "out/keep.txt": "not a synthetic database" },
        },
      );
    })
  ),
  ...["format", "genders", "races", "ratings"].map((flag) =>
    row(
      "data",
      ["synth", "--out", "$DIR/out", `--${flag}`, "bogus"],
      new RegExp(`--${flag}: expected one of`),
      {
        code: 2,
      },
    )
  ),
  ...commandLineRows("data", ["synth"]),

  // data info / manifest: their numeric options, on a one-image manifest.
  // 0 is valid for each (inline decoding, seed 0, no problem listed): it runs to the end.
  ...([
    ["info", "workers", "1000000"],
    ["info", "seed", "1e12"],
    ["info", "max-problems", "1e12"],
    ["manifest", "seed", "1e12"],
  ] as const).flatMap(([sub, flag, huge]) =>
    ["x", "-1", "0", huge].map((v) => {
      const ok = v === "0";
      const args = [
        "csv:$DIR/m.csv",
        `--${flag}`,
        v,
        ...(sub === "manifest" ? ["--out", "$DIR/o.csv"] : []),
      ];
      return row("data", [sub, ...args], ok ? /images +1|wrote .*o\.csv/ : refused(flag), {
        // A pool of a million decode workers is refused when the pool starts (exit 1).
        code: ok ? 0 : v === huge && flag === "workers" ? 1 : 2,
        files: { "m.csv": "path,beauty\na.png,0\n", "a.png": GOOD_PNG },
        created: sub === "manifest" ? ["o.csv"] : [],
      });
    })
  ),
  row(
    "data",
    ["info", "csv:$DIR/m.csv", "--on-bad-image", "fail"],
    /"[^"]*bad\.png": corrupt PNG image data/,
    {
      files: { "m.csv": "path,beauty\nbad.png,1\n", "bad.png": BAD_PNG },
    },
  ),
  row("data", ["info", "folders:$DIR/f"], /x\.jpg: folder inside a class folder/, {
    code: 0,
    files: { "f/a/x.jpg": null, "f/a/z.png": GOOD_PNG, "f/b/y.png": GOOD_PNG },
  }),
  row(
    "data",
    ["info", "--json", "csv:$DIR/m.csv"],
    /\/dev\/zero.*(character device|not a regular file)/,
    {
      code: 0,
      files: { "m.csv": "path,beauty\n/dev/zero,0\n$DIR/a.png,0\n", "a.png": GOOD_PNG },
    },
  ),
  row("data", ["info", "csv:$DIR/m.csv", "--on-bad-image", "x"], /--on-bad-image: expected/, {
    code: 2,
  }),
  row("data", ["manifest", "csv:$DIR/m.csv", "--out", "$DIR/o.csv", "--split", "x"], /split "x"/, {
    files: { "m.csv": "path,beauty\na.png,0\n", "a.png": GOOD_PNG },
  }),
  row("data", ["bogus"], /unknown command/, { code: 2 }),
  ...commandLineRows("data", ["info", "csv:$DIR/m.csv"], "--workers"),

  // bench: --reps (a valid value ends at the unknown section), --only, --device.
  ...["x", "-1", "0", "1e9"].map((v) =>
    row("bench", ["--reps", v], /Cannot parse --reps: expected/)
  ),
  row("bench", ["--reps", "1", "--only", "nope"], /Cannot parse --only: unknown section "nope"/),
  row("bench", ["--only", ","], /Cannot parse --only: expected section names/),
  row("bench", ["--device", "nope"], /Cannot parse --device: expected one of/),
  ...commandLineRows("bench", [], "--reps"),

  // build: no numeric option; the command line.
  ...commandLineRows("build", [], "--quiet").slice(0, 1),
  row("build", ["stray"], /unexpected argument "stray"/),
  row("build", ["--quiet=1"], /Cannot parse --quiet: it takes no value/),
];

// ---- The runner ----

const tool = (cmd: Command) => join(repo, "tasks", `${cmd}.ts`);
const HINT = /^Run "deno task data \w+ --help" for usage\.$/;

async function listing(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    out.push(e.isDirectory ? `${rel}/` : rel);
    if (e.isDirectory) out.push(...await listing(join(dir, e.name), `${rel}/`));
  }
  return out.sort();
}

/** Runs one row; returns what is wrong with it, or undefined. */
async function check(r: Row, i: number): Promise<string | undefined> {
  const dir = join(root, `row-${i}`);
  await Deno.mkdir(dir);
  const sub = (s: string) => s.replaceAll("$DIR", dir);
  for (const [name, content] of Object.entries(r.files ?? {})) {
    const path = join(dir, sub(name));
    if (content === null) {
      await Deno.mkdir(path, { recursive: true });
    } else {
      await Deno.mkdir(join(path, ".."), { recursive: true });
      if (typeof content === "string") await Deno.writeTextFile(path, sub(content));
      else await Deno.writeFile(path, content);
    }
  }
  const before = await listing(dir);
  const args = r.args.map(sub);
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", join(repo, "deno.json"), tool(r.cmd), ...args],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(ROW_TIMEOUT_MS),
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(p.stdout), stderr = dec.decode(p.stderr);
  const what = `${r.cmd} ${args.join(" ")}`.replaceAll(dir, "$DIR");
  const code = r.code ?? 1;
  if (p.signal) return `${what}: still running after ${ROW_TIMEOUT_MS / 1000} s`;
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  const problems: string[] = [];
  if (p.code !== code) problems.push(`exit code ${p.code}, expected ${code}`);
  if (/^\s+at |Uncaught|Stack backtrace/m.test(stderr)) problems.push("a stack trace");
  if (code === 0) {
    if (!r.message.test(stdout)) problems.push(`stdout does not match ${r.message}`);
  } else {
    const at = lines.findIndex((l) => r.message.test(l));
    if (at < 0) problems.push(`no stderr line matches ${r.message}`);
    else if (lines.slice(at + 1).some((l) => !HINT.test(l))) {
      problems.push("the error is not the last line of stderr");
    }
  }
  const allowed = new Set([...before, ...(r.created ?? [])]);
  const extra = (await listing(dir)).filter((f) => !allowed.has(f));
  if (extra.length) problems.push(`left behind: ${extra.join(", ")}`);
  if (problems.length === 0) return undefined;
  const said = (code === 0 ? stdout : stderr).trim().split("\n").slice(-3).join(" ⏎ ");
  return `${what}: ${problems.join("; ")}\n    said: ${said.slice(0, 400)}`;
}

/** Runs rows CONCURRENCY at a time; every failing row is reported, not only the first. */
async function runRows(rows: readonly Row[], offset: number): Promise<void> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < rows.length) {
      const i = next++;
      const f = await check(rows[i], offset + i);
      if (f) failures.push(f);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.equal(
    failures.length,
    0,
    `${failures.length} of ${rows.length} rows:\n${failures.join("\n")}`,
  );
}

const COMMANDS: Command[] = [
  "train",
  "sweep_ratios",
  "compare",
  "eval",
  "predict",
  "data",
  "bench",
  "build",
];
for (const cmd of COMMANDS) {
  const rows = ROWS.filter((r) => r.cmd === cmd);
  Deno.test(`hostile command lines: ${cmd} (${rows.length} rows)`, async () => {
    await runRows(rows, ROWS.indexOf(rows[0]));
  });
}

Deno.test("hostile command lines: every command has rows", () => {
  for (const cmd of COMMANDS) assert.ok(ROWS.some((r) => r.cmd === cmd), cmd);
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
