/**
 * Progress reporting of training runs, shared by train, sweep-ratios and compare.
 * @module
 */
import type { TrainOptions } from "../../src/train/trainer.ts";
import type { ProgressBar } from "./progress.ts";

/** Trainer callbacks that draw the bar and print one line per epoch. */
export function trainingOptions(
  bar: ProgressBar,
): Pick<TrainOptions, "onProgress" | "onEpoch" | "onNote"> {
  return {
    onProgress: (e) =>
      bar.update(
        `${e.kind} ${e.epoch}/${e.of}`,
        e.step,
        e.steps,
        e.images,
        e.seconds,
        `loss ${e.loss.toFixed(3)}`,
      ),
    onEpoch: (h) => {
      const tasks = Object.entries(h.tasks).map(([t, m]) =>
        `${t} val ${m.valAccuracy === undefined ? "—" : (100 * m.valAccuracy).toFixed(1)}%`
      );
      bar.note(
        `${h.stage} ${h.epoch}: loss ${h.loss.toFixed(3)}  ${tasks.join("  ")}${
          h.tau ? `  τ ${h.tau.toFixed(2)}` : ""
        }`,
      );
    },
    onNote: (m) => bar.note(m),
  };
}
