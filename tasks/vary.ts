/**
 * `deno task vary`: the same run once per variant — one option given several values, or
 * named sets of train flags — as independent runs under one folder, optionally over
 * folds and seeds and several runs at once; prints one row per variant with every test
 * figure its tasks have (ACC, F1-macro; PC, MAE, RMSE for score tasks) as mean ± std, and
 * writes vary.md / .csv / .json. Complete runs are reused, stopped ones resumed.
 * @module
 */
import { join } from "node:path";
import { planVariants, type Variant } from "../src/train/experiments.ts";
import { variantsCsv, variantsJson, variantsTable } from "../src/report/variants_table.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs, type Values } from "./_cli/run_args.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import { parseFlags } from "./_cli/options.ts";
import {
  EXPERIMENT_HELP,
  EXPERIMENT_OPTIONS,
  repeatRuns,
  runExperiment,
  runName,
  validatePlan,
} from "./_cli/training.ts";

const HELP = `Usage: deno task vary (--vary FLAG=V1,V2,… | --variant 'LABEL: FLAGS' …) [options]

Trains the same run once per variant under one folder (default runs/vary-<flag>), then
prints a table with one row per variant — per task its test figures (ACC, F1-macro, and
PC, MAE, RMSE for score and dist tasks), mean ± std over --folds/--seeds — and writes
vary.md, vary.csv and vary.json. Complete runs are reused; a stopped study continues.

  --vary FLAG=V1,V2,…      one train flag, one variant per value (labels FLAG=V); a flag
                           without a value takes true,false (e.g. --vary hard-gumbel=true,false)
  --variant 'LABEL: FLAGS' a variant named LABEL with its own train flags (repeatable);
                           they replace the same flags given outside, e.g.
                           --variant 'class: --task beauty=syn:beauty:1:class'
                           (flags are split at spaces: a value cannot hold one)
  --dir DIR                the study folder
${EXPERIMENT_HELP}
  --json                   print the table as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run:
${RUN_HELP}

Examples:
  deno task vary --vary balance=none,weights,sampler,focal --seeds 3
  deno task vary --vary task-weights=fixed,uncertainty,gradnorm,dwa --seeds 3 --jobs 2`;

/** Parses one variant's train flags (the same parser and options as `deno task train`). */
function variantFlags(label: string, args: string[]): Values {
  try {
    return parseFlags({ args, options: RUN_OPTIONS, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new Error(`Cannot parse variant "${label}": ${(e as Error).message}`);
  }
}

/** `FLAG=V1,V2` → one variant per value, each with `--FLAG V`. */
function varyFlag(spec: string): [string, string[]][] {
  const eq = spec.indexOf("=");
  const flag = (eq < 0 ? spec : spec.slice(0, eq)).replace(/^--/, "");
  const option = (RUN_OPTIONS as Record<string, { type: string; multiple?: boolean }>)[flag];
  if (option === undefined) {
    throw new Error(`Cannot parse --vary "${spec}": "${flag}" is not a train flag (see --help)`);
  }
  const values = eq < 0 ? ["true", "false"] : spec.slice(eq + 1).split(",");
  if (values.length < 2 || values.some((v) => v === "")) {
    throw new Error(
      `Cannot parse --vary "${spec}": expected FLAG=V1,V2,… with at least two values`,
    );
  }
  return values.map((v) => {
    if (option.type === "boolean") {
      if (v !== "true" && v !== "false") {
        throw new Error(`Cannot parse --vary "${spec}": --${flag} takes true or false, not "${v}"`);
      }
      return [`${flag}=${v}`, v === "true" ? [`--${flag}`] : []];
    }
    return [`${flag}=${v}`, [`--${flag}=${v}`]];
  });
}

/** `LABEL: --flag v …` → the label and its flags. */
function namedVariant(spec: string): [string, string[]] {
  const colon = spec.indexOf(":");
  const label = colon < 0 ? "" : spec.slice(0, colon).trim();
  if (label === "") {
    throw new Error(`Cannot parse --variant "${spec}": expected 'LABEL: FLAGS'`);
  }
  return [label, spec.slice(colon + 1).trim().split(/\s+/).filter((w) => w !== "")];
}

/** The variants' configs: the shared flags, each variant's own replacing the same flags. */
function variantsOf(values: Values): Variant[] {
  const specs: [string, string[]][] = [
    ...(values.vary === undefined ? [] : varyFlag(values.vary as string)),
    ...((values.variant as string[] | undefined) ?? []).map(namedVariant),
  ];
  if (specs.length < 2) {
    throw new Error("Cannot plan the study: give --vary FLAG=V1,V2 or at least two --variant");
  }
  const shared: Values = {};
  for (const key of Object.keys(RUN_OPTIONS)) {
    if (values[key] !== undefined) shared[key] = values[key];
  }
  return specs.map(([label, args]) => {
    const own = variantFlags(label, args);
    // A boolean variant "false" removes the shared flag; its own flags replace shared ones.
    const merged: Values = { ...shared, ...own };
    if (args.length === 0 && label.endsWith("=false")) delete merged[label.split("=")[0]];
    try {
      return { label, config: runConfigFromArgs(merged) };
    } catch (e) {
      throw new Error(`Cannot plan variant "${label}": ${(e as Error).message}`);
    }
  });
}

await runNetworkCli(
  {
    help: HELP,
    options: {
      ...RUN_OPTIONS,
      ...EXPERIMENT_OPTIONS,
      dir: { type: "string" },
      vary: { type: "string" },
      variant: { type: "string", multiple: true },
    },
  },
  async ({ values }) => {
    const variants = variantsOf(values);
    const first = (values.vary ?? "variants").split("=")[0].replace(/^--/, "");
    const dir = values.dir ?? join("runs", `vary-${first}`);
    const planned = planVariants(variants, dir);
    const runs = await repeatRuns(values, planned[0].config, planned);
    validatePlan(runs);
    return await runExperiment(values, runs, {
      out: join(dir, "vary"),
      describe: (run, how) => `${run.label} (${runName(run)}): ${how}`,
      tables: (done) => ({
        table: variantsTable(done),
        csv: variantsCsv(done),
        json: variantsJson(done),
      }),
    });
  },
);
