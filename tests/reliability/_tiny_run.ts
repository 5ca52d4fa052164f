/**
 * A tiny real training run for the crash tests: `deno run -A _tiny_run.ts CONFIG.json
 * [resume] [force] [kill-after-removing=N] [fill=EPOCH:FILE:SAVE_DIR]` trains the run
 * config in the JSON file on the CPU backend (`force`: replacing the run in its folder),
 * prints one JSON line per epoch, then `{"done": …}` with the final numbers; on an
 * error, `error: <message>` on stderr and exit code 1 (as the CLI does).
 * `kill-after-removing=N` kills the process (SIGKILL) as soon as `force` has deleted N
 * files of the old run. `fill=` simulates
 * a disk filling up: at the end of epoch EPOCH, before that epoch's checkpoint writes, it
 * copies the run's checkpoint files to SAVE_DIR and then grows FILE until the disk is full,
 * leaving 64 KiB. Not a test itself (no _test suffix).
 * @module
 */
import { join } from "node:path";
import { loadBackend } from "../../src/backend/load.ts";
import { setDefaultBackend } from "../../src/tensor/tensor.ts";
import type { RunConfig } from "../../src/train/run_config.ts";
import { train } from "../../src/train/trainer.ts";

const config: RunConfig = JSON.parse(await Deno.readTextFile(Deno.args[0]));
const fillArg = Deno.args.find((a) => a.startsWith("fill="))?.slice(5).split(":");
const fill = fillArg && { epoch: Number(fillArg[0]), file: fillArg[1], saveDir: fillArg[2] };
const killAfter = Number(
  Deno.args.find((a) => a.startsWith("kill-after-removing="))?.split("=")[1] ?? NaN,
);
let removed = 0;

function fillDisk(file: string, saveDir: string): void {
  for (const name of ["checkpoint.safetensors", "last.safetensors"]) {
    Deno.copyFileSync(join(config.out, name), join(saveDir, name));
  }
  const filler = Deno.openSync(file, { create: true, write: true });
  const chunk = new Uint8Array(1 << 16);
  try {
    for (;;) filler.writeSync(chunk);
  } catch {
    // ENOSPC: the disk is full
  }
  filler.truncateSync(Math.max(0, filler.statSync().size - (1 << 16)));
  filler.close();
}
const backend = await loadBackend("cpu");
setDefaultBackend(backend);
try {
  const result = await train(config, {
    backend,
    resume: Deno.args.includes("resume"),
    force: Deno.args.includes("force"),
    onRemoved: () => {
      if (++removed === killAfter) Deno.kill(Deno.pid, "SIGKILL");
    },
    onEpoch: (h) => {
      console.log(JSON.stringify({ stage: h.stage, epoch: h.epoch }));
      if (fill && h.epoch === fill.epoch) fillDisk(fill.file, fill.saveDir);
    },
  });
  console.log(JSON.stringify({
    done: true,
    tasks: result.tasks,
    losses: result.history.map((h) => h.loss),
  }));
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
