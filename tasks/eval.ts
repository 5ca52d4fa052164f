/**
 * `deno task eval --checkpoint FILE [NAME=]SOURCE…`: metrics of a trained network on the
 * databases it was trained for (accuracy, macro/weighted F1, confusion per task).
 * @module
 */
import { join } from "node:path";
import { BatchLoader } from "../src/data/loader.ts";
import { taskClasses } from "../src/data/classes.ts";
import { readSource } from "../src/data/source.ts";
import { chooseSplit } from "../src/data/split.ts";
import { DecodePool } from "../src/data/worker_pool.ts";
import { loadCheckpoint } from "../src/models/checkpoint.ts";
import { type EvalPart, evaluateParts } from "../src/train/evaluate.ts";
import { DEVICE_HELP, requiredCheckpoint, runNetworkCli, useDevice } from "./_cli/device.ts";
import { numberFlag, SEED_RANGE } from "./_cli/options.ts";

/** The --split values. */
const SPLITS = ["test", "val", "train", "all", "official", "cv1", "cv2", "cv3", "cv4", "cv5"];

const HELP = `Usage: deno task eval --checkpoint FILE [--split test|val|train|all] [NAME=]SOURCE...

Evaluates a trained network. Give one source per database of the checkpoint, in the
checkpoint's database order or as NAME=SOURCE. Each task is scored on its database's
split (stratified 6:2:2 with --seed, as in training; or a split the source ships).

  --checkpoint FILE        a checkpoint.safetensors written by deno task train
  --split NAME             test (default) | val | train | all | official | cv1..cv5
  --seed N                 seed of the stratified split, 0–4294967295 (the training seed;
                           default 0)
  --label TASK=LABEL       label name of a task when it differs from the task name
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
  const labels = new Map<string, string>();
  for (const l of values.label ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(l);
    if (!m) throw new Error(`Cannot parse --label: expected TASK=LABEL: current value is "${l}"`);
    labels.set(m[1], m[2]);
  }
  const backend = await useDevice(values.device);
  const net = await loadCheckpoint(checkpoint, { backend });
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
    const source = named && dbs.includes(named[1]) ? named[2] : arg;
    const dataset = await readSource(source);
    const tasks = net.config.tasks.filter((t) => t.database === database).map((t) => ({
      name: t.name,
      label: labels.get(t.name) ?? t.name,
      classes: t.classes,
    }));
    for (const t of tasks) {
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
      const parts3 = chooseSplit(
        dataset,
        ["test", "val", "train"].includes(split) ? "stratified" : split,
        { seed, by: tasks[0].label },
      );
      const which = ["val", "train"].includes(split) ? split as "val" | "train" : "test";
      records = parts3[which].map((j) => dataset.records[j]);
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
    console.log(
      `${task}: accuracy ${(100 * m.accuracy).toFixed(2)}%  F1 (weighted) ${
        (100 * m.f1_weighted).toFixed(2)
      }%  F1 (macro) ${(100 * m.f1_macro).toFixed(2)}%  n=${m.count}`,
    );
  }
  if (values.json) console.log(JSON.stringify({ split, tasks: metrics }));
});
