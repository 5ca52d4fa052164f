/**
 * One planned run of an experiment in a process of its own: the child that
 * `--jobs N` of `deno task compare` and `deno task sweep-ratios` starts per run
 * (tasks/_cli/jobs.ts). It reads a {@link CellJob} as JSON on stdin, trains it with the
 * same progress lines as `deno task train` on stderr, and exits 0 once metrics.json is
 * written, 130 when interrupted (SIGINT: the step finishes and last.safetensors is saved,
 * so the next invocation resumes it), 1 with a one-line error otherwise.
 * @module
 */
import { isRunConfig } from "../../src/train/run_config.ts";
import { useDevice } from "./device.ts";
import type { CellJob } from "./jobs.ts";
import { runCli } from "./main.ts";
import { ProgressBar } from "./progress.ts";
import { trainWithProgress } from "./training.ts";

/** Parses the job the parent wrote on stdin. */
function parseJob(text: string): CellJob {
  let job: Partial<CellJob>;
  try {
    job = JSON.parse(text);
  } catch (e) {
    throw new Error(`Cannot read the planned run on stdin: ${(e as Error).message}`);
  }
  if (
    typeof job !== "object" || job === null || !isRunConfig(job.config) ||
    typeof job.resume !== "boolean" || typeof job.force !== "boolean" ||
    !(job.device === undefined || typeof job.device === "string") ||
    !(job.precision === undefined || typeof job.precision === "string") ||
    !(job.deterministic === undefined || typeof job.deterministic === "boolean")
  ) {
    throw new Error(
      "Cannot read the planned run on stdin: expected {config, resume, force, device?, precision?, deterministic?} " +
        "with a run config (tasks/_cli/jobs.ts writes it)",
    );
  }
  return job as CellJob;
}

await runCli(async () => {
  // Listen first: a Ctrl-C at the terminal reaches every child of the experiment too.
  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => controller.abort());
  const job = parseJob(await new Response(Deno.stdin.readable).text());
  const backend = await useDevice(job);
  const bar = new ProgressBar();
  const threads = Deno.env.get("OMP_NUM_THREADS") ?? "default";
  bar.note(
    `run ${job.config.name} → ${job.config.out} (${backend.name} backend, ` +
      `OMP_NUM_THREADS ${threads}${job.resume ? ", resumed" : ""})`,
  );
  const result = await trainWithProgress(job.config, {
    backend,
    resume: job.resume,
    force: job.force,
    signal: controller.signal,
  }, bar);
  return result ? 0 : 130;
});
