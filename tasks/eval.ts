/**
 * `deno task eval --checkpoint FILE [NAME=]SOURCE…`: metrics of a trained network on the
 * databases it was trained for (accuracy, macro/weighted F1, confusion per task).
 * @module
 */
import { join } from "node:path";
import { BatchLoader } from "../src/data/loader.ts";
import { taskClasses } from "../src/data/classes.ts";
import { readSource } from "../src/data/source.ts";
import { trainingSplit } from "../src/data/split.ts";
import { DecodePool } from "../src/data/worker_pool.ts";
import { loadCheckpoint } from "../src/models/checkpoint.ts";
import { archFamily } from "../src/models/archs/registry.ts";
import { type EvalPart, evaluateParts } from "../src/train/evaluate.ts";
import { addGradeLabels } from "../src/train/data_setup.ts";
import { isScoreMetrics } from "../src/train/result.ts";
import { DIST_LABEL, GRADE_CLASSES, SCORE_LABEL } from "../src/train/task_kinds.ts";
import { DEVICE_HELP, requiredCheckpoint, runNetworkCli, useDevice } from "./_cli/device.ts";
import { parseDbFlag } from "./_cli/run_args.ts";
import { numberFlag, SEED_RANGE } from "./_cli/options.ts";

/** The parts of a split --split picks; its other values name a shipped split's test part. */
const PARTS = ["test", "val", "train"] as const;
/** The --split values. */
const SPLITS = [...PARTS, "all", "official", "cv1", "cv2", "cv3", "cv4", "cv5"];

const HELP =
  `Usage: deno task eval --checkpoint FILE [--split test|val|train|all] [NAME=]SOURCE[@SPLIT]...

Evaluates a trained network. Give one source per database of the checkpoint, in the
checkpoint's database order or as NAME=SOURCE. Each task is scored on a part of its
database's split, made exactly as training makes it: stratified 6:2:2 with --seed, or the
split named after the source as in train's --db (SOURCE@official, @cv3, @manifest; a shipped
split without validation gets it carved out of its train list, @cv3:val=0.15).

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
  --arch NAME              the architecture the checkpoint must be (it names its own;
                           e.g. mobilenet_v3_small, see deno task train --help)
  --split PART             test (default) | val | train | all; official and cv1..cv5 are
                           the test part of that shipped split (as SOURCE@official)
  --seed N                 seed of the stratified split, 0–4294967295 (the training seed;
                           default 0)
  --label TASK=LABEL       label name of a task when it differs from the task name
                           (score and dist tasks read the mean scores / the raters'
                           histograms, and report PC, MAE, RMSE and their implied grade)
  --json                   print the metrics as one JSON object (last line)
  --out DIR                also write metrics.json there
${DEVICE_HELP}
  -h, --help               this help

Example:
  deno task eval --checkpoint runs/paper-scut/checkpoint.safetensors scut:data/SCUT-FBP5500_v2`;

await runNetworkCli({
  help: HELP,
  positionals: true,
  options: {
    checkpoint: { type: "string" },
    arch: { type: "string" },
    split: { type: "string" },
    seed: { type: "string" },
    label: { type: "string", multiple: true },
    out: { type: "string" },
  },
}, async ({ values, positionals }) => {
  const checkpoint = requiredCheckpoint(values, "evaluate");
  // Every flag is checked before the checkpoint, the backend or any data is read.
  const split = values.split ?? "test";
  if (!SPLITS.includes(split)) {
    throw new Error(
      `Cannot parse --split: expected one of ${SPLITS.join(", ")}: current value is "${split}"`,
    );
  }
  const seed = numberFlag(values.seed, "seed", SEED_RANGE) ?? 0;
  if (values.arch !== undefined) archFamily(values.arch);
  const labels = new Map<string, string>();
  for (const l of values.label ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(l);
    if (!m) throw new Error(`Cannot parse --label: expected TASK=LABEL: current value is "${l}"`);
    labels.set(m[1], m[2]);
  }
  const backend = await useDevice(values);
  const net = await loadCheckpoint(checkpoint, { backend });
  if (values.arch !== undefined && values.arch !== net.config.arch) {
    throw new Error(
      `Cannot evaluate: "${checkpoint}" is a ${net.config.arch} network, --arch says ${values.arch}`,
    );
  }
  const dbs = net.config.databases;
  if (positionals.length !== dbs.length) {
    throw new Error(
      `Cannot evaluate: the checkpoint has ${dbs.length} database(s) (${
        dbs.join(", ")
      }); ${positionals.length} source(s) given`,
    );
  }
  for (const task of labels.keys()) {
    if (!net.config.tasks.some((t) => t.name === task)) {
      throw new Error(
        `Cannot parse --label ${task}=…: the checkpoint has no task "${task}" (it has ${
          net.config.tasks.map((t) => t.name).join(", ")
        })`,
      );
    }
  }
  const pool = new DecodePool({ workers: 2 });
  const parts: EvalPart[] = [];
  const classes: Record<string, string[]> = {};
  const size = net.config.imageSize ?? 224;
  for (const [i, arg] of positionals.entries()) {
    const named = /^([A-Za-z0-9_-]+)=(.+)$/.exec(arg);
    const database = named && dbs.includes(named[1]) ? named[1] : dbs[i];
    // The same NAME=SOURCE[@SPLIT[:val=F]] syntax as train's --db, so a run's split is
    // named the same way in both.
    const spec = parseDbFlag(`${database}=${named && dbs.includes(named[1]) ? named[2] : arg}`);
    const source = spec.source;
    const part = PARTS.find((p) => p === split);
    if (spec.split && !part) {
      throw new Error(
        `Cannot evaluate "${arg}": the split is given twice (--split ${split} and @${spec.split})`,
      );
    }
    const splitName = spec.split ??
      (part || split === "all" ? "stratified" : split);
    const dataset = await readSource(source);
    const tasks = net.config.tasks.filter((t) => t.database === database).map((t) => ({
      name: t.name,
      // Score and dist tasks read the mean score / the rating histograms.
      label: t.kind === "score"
        ? SCORE_LABEL
        : t.kind === "dist"
        ? DIST_LABEL
        : labels.get(t.name) ?? t.name,
      classes: t.classes,
      kind: t.kind,
    }));
    for (const t of tasks) {
      if (t.kind === "score" || t.kind === "dist") {
        // Their targets are the images' scores or histograms, with their grades as labels.
        addGradeLabels(dataset, t);
        if (!dataset.records.some((r) => r.labels[t.label] !== undefined)) {
          throw new Error(
            `Cannot evaluate task "${t.name}" (kind ${t.kind}): source "${source}" has no ${
              t.kind === "score" ? "mean scores" : "rating histograms (All_Ratings)"
            }`,
          );
        }
        classes[t.name] = [...GRADE_CLASSES];
        continue;
      }
      if (!dataset.classes[t.label]) {
        throw new Error(
          `Cannot evaluate task "${t.name}": source "${source}" has no "${t.label}" labels (use --label ${t.name}=LABEL)`,
        );
      }
      // The labels are checked against the network's class count, as training checks them.
      classes[t.name] = taskClasses(dataset, t);
    }
    let records = dataset.records;
    if (split !== "all") {
      const parts3 = trainingSplit(dataset, splitName, {
        seed,
        labels: tasks.map((t) => t.label),
        valFraction: spec.valFraction,
      }).split;
      records = parts3[part ?? "test"].map((j) => dataset.records[j]);
    }
    const loader = new BatchLoader(records, {
      batchSize: 32,
      size,
      resize: size,
      pool,
      labels: tasks.map((t) => t.label),
    });
    parts.push({ database, loader, tasks });
  }
  const metrics = await evaluateParts(net, parts, classes);
  for (const p of parts) p.loader.close();
  pool.close();
  net.dispose();
  if (values.out) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(
      join(values.out, "metrics.json"),
      JSON.stringify({ split, tasks: metrics }, null, 2),
    );
  }
  for (const [task, m] of Object.entries(metrics)) {
    const score = isScoreMetrics(m)
      ? `PC ${m.pc.toFixed(4)}  MAE ${m.mae.toFixed(4)}  RMSE ${m.rmse.toFixed(4)}  grade `
      : "";
    console.log(
      `${task}: ${score}accuracy ${(100 * m.accuracy).toFixed(2)}%  F1 (weighted) ${
        (100 * m.f1_weighted).toFixed(2)
      }%  F1 (macro) ${(100 * m.f1_macro).toFixed(2)}%  n=${m.count}`,
    );
  }
  if (values.json) console.log(JSON.stringify({ split, tasks: metrics }));
});
