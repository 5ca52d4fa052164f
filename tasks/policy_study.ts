/**
 * `deno task policy-study`: does AdaShare's policy learning do its job? Trains the method
 * once per seed, then, per seed, a random policy with as many executed blocks per task,
 * re-trained the same way; prints how far p(execute) moved, how often the seeds' policies
 * agree, and learnt vs random accuracy (mean ± std). Finished runs are reused, stopped
 * ones resumed.
 * @module
 */
import { join } from "node:path";
import { formatPolicy, randomPolicyLike } from "../src/models/policy.ts";
import { Rng } from "../src/random/rng.ts";
import { policyStudy, policyStudyCsv, policyStudyMarkdown } from "../src/report/policy_study.ts";
import { type PlannedRun, planRepeats } from "../src/train/experiments.ts";
import type { RunResult } from "../src/train/result.ts";
import { DEVICE_HELP, runNetworkCli } from "./_cli/device.ts";
import { numberFlag } from "./_cli/options.ts";
import { RUN_HELP, RUN_OPTIONS, runConfigFromArgs } from "./_cli/run_args.ts";
import { runExperiment, runName, validatePlan } from "./_cli/training.ts";

const HELP = `Usage: deno task policy-study [--seeds N] [--dir DIR] [options]

Checks that the policy is learnt: trains the method (warm-up, policy learning,
re-training) with seeds S … S+N-1 under DIR/learned/, then for each seed a random policy
that executes as many blocks per task as the learnt one, re-trained the same way (same
epochs, initial weights and data) under DIR/random/. Prints and writes DIR/policy-study.md
and .json: the share of p(execute) at least 0.1 away from 0.5, how often the seeds' final
policies agree entry by entry, and test ACC / F1-macro, learnt vs random, mean ± std.

  --seeds N                seeds per arm (default 3), from --seed (default 0)
  --jobs N                 train N runs at once in child processes (default 1)
  --dir DIR                the study folder (default runs/policy-study-<preset>)
  --json                   print the study as JSON (last line of stdout)
${DEVICE_HELP}
  -h, --help               this help
Every train option applies to each run:
${RUN_HELP}`;

async function readResult(run: PlannedRun): Promise<RunResult> {
  return JSON.parse(await Deno.readTextFile(join(run.config.out, "metrics.json")));
}

await runNetworkCli({
  help: HELP,
  options: {
    ...RUN_OPTIONS,
    seeds: { type: "string" },
    jobs: { type: "string" },
    dir: { type: "string" },
  },
}, async ({ values }) => {
  for (const flag of ["policy", "fixed-policy"] as const) {
    if (values[flag] !== undefined) {
      throw new Error(`Cannot parse --${flag}: the study learns the policy, then randomises it`);
    }
  }
  const count = numberFlag(values.seeds, "seeds", { integer: true, min: 1, max: 100 }) ?? 3;
  const base = runConfigFromArgs(values);
  const seeds = Array.from({ length: count }, (_, i) => base.seed + i);
  const dir = values.dir ?? join("runs", `policy-study-${values.preset ?? "default"}`);
  const learned = planRepeats(
    [{ label: "learnt", config: { ...base, name: "learned", out: join(dir, "learned") } }],
    { seeds },
  );
  validatePlan(learned);
  const learnedCode = await runExperiment({ ...values, json: false }, learned, {
    out: join(dir, "learned"),
    describe: (run, how) => `learnt policy, ${runName(run)}: ${how}`,
    tables: async (done) => {
      const results = await Promise.all(learned.map(readResult));
      const text = results.map((r, i) => `seed ${seeds[i]}: ${formatPolicy(r.policy)}`)
        .join("\n");
      const csv = [
        "seed,task,policy",
        ...results.flatMap((r, i) =>
          Object.entries(r.policy).map(([t, v]) => `${seeds[i]},${t},${v.join("")}`)
        ),
      ].join("\n") + "\n";
      return {
        table: text,
        csv,
        json: JSON.stringify(done.map((d) => d.result.policy)),
      };
    },
  });
  if (learnedCode !== 0) return learnedCode;
  const learnedResults = await Promise.all(learned.map(readResult));
  // Checked before the random arm trains: a result without probabilities cannot be studied.
  for (const [i, r] of learnedResults.entries()) {
    if (!r.policyProbabilities) {
      throw new Error(
        `Cannot study "${learned[i].config.out}": its metrics.json has no policy ` +
          `probabilities (written before they were recorded). Hint: delete that run folder ` +
          `and run the study again`,
      );
    }
  }
  // The control of each seed: its learnt policy's block counts, at random places.
  const random: PlannedRun[] = learned.map((run, i) => ({
    ...run,
    label: "random",
    config: {
      ...run.config,
      name: `random-seed${seeds[i]}`,
      out: join(dir, "random", `seed${seeds[i]}`),
      fixedPolicy: randomPolicyLike(learnedResults[i].policy, new Rng(seeds[i], 0x7a2d0)),
    },
  }));
  validatePlan(random);
  return await runExperiment(values, random, {
    out: join(dir, "policy-study"),
    describe: (run, how) => `random policy, ${runName(run)}: ${how}`,
    tables: async () => {
      const study = policyStudy(seeds, learnedResults, await Promise.all(random.map(readResult)));
      return {
        table: policyStudyMarkdown(study),
        csv: policyStudyCsv(study),
        json: JSON.stringify(study),
      };
    },
  });
});
