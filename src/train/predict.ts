/**
 * Inference on image files: decode (imagescript), resize to the network's input size
 * (the checkpoint's training size, 224 when it does not say; an image already that size
 * is used as is), ImageNet normalisation, every task in eval mode with the fixed policy.
 * @module
 */
import { prepareImage } from "../data/prepare.ts";
import type { MultiTaskNet } from "../models/network.ts";
import { predictBatch } from "./step.ts";

/** One task's prediction for one image. */
export interface TaskPrediction {
  /**
   * The predicted class index (argmax); for score and dist tasks the grade 0–4 the
   * prediction implies (task_kinds.ts).
   */
  label: number;
  /**
   * The softmax over the task's classes (index = class); a dist task's predicted rating
   * histogram (index = rating − 1); empty for a score task.
   */
  probabilities: number[];
  /** Score and dist tasks: the predicted mean score 1–5 (dist: the expected rating). */
  score?: number;
}

/** Per-image prediction: for each task, the class and the class probabilities. */
export interface ImagePrediction {
  /** The image's path, as given. */
  image: string;
  /** By task name (see {@link TaskPrediction}). */
  tasks: Record<string, TaskPrediction>;
}

/**
 * Predicts every task of `net` for each image (batched by `batch`).
 * @param paths image files (JPEG or PNG)
 * @param opts.batch images per forward pass (default 16)
 * @param opts.size the network's input side (default: the checkpoint's, else 224)
 * @param opts.resize the side images are resized to before the centre crop of `size`
 *   (default `size`: an image of that size is used as is)
 * @returns one prediction per path, in order
 * @throws {BadImageError} naming the file when an image cannot be decoded
 * @example Predict two images with a trained run's checkpoint
 * ```ts ignore
 * import { loadBackend, loadCheckpoint, setDefaultBackend } from "../../mod.ts";
 * import { predictImages } from "./predict.ts";
 * setDefaultBackend(await loadBackend("cpu"));
 * const net = await loadCheckpoint("runs/demo/checkpoint.safetensors");
 * for (const { image, tasks } of await predictImages(net, ["a.jpg", "b.png"])) {
 *   console.log(image, tasks.beauty.label, tasks.beauty.probabilities);
 * }
 * net.dispose();
 * ```
 */
export async function predictImages(
  net: MultiTaskNet,
  paths: readonly string[],
  opts: { batch?: number; size?: number; resize?: number } = {},
): Promise<ImagePrediction[]> {
  const size = opts.size ?? net.config.imageSize ?? 224;
  const resize = opts.resize ?? size;
  const batch = opts.batch ?? 16;
  const gates = net.evalGates();
  const out: ImagePrediction[] = paths.map((image) => ({ image, tasks: {} }));
  // Images of any database share the trunk; the BN copy is the task's own database.
  for (let start = 0; start < paths.length; start += batch) {
    const chunk = paths.slice(start, start + batch);
    const images = new Float32Array(chunk.length * 3 * size * size);
    for (const [i, path] of chunk.entries()) {
      images.set(await prepareImage({ path, resize, size, crop: {} }), i * 3 * size * size);
    }
    for (const db of net.config.databases) {
      const tasks = net.config.tasks.filter((t) => t.database === db).map((t) => t.name);
      if (tasks.length === 0) continue;
      const res = predictBatch(net, images, size, db, { gates, tasks });
      for (const [task, r] of res) {
        for (let i = 0; i < chunk.length; i++) {
          const probabilities = r.kind === "score" ? [] : Array.from(
            r.probabilities.subarray(i * r.classes, (i + 1) * r.classes),
          );
          out[start + i].tasks[task] = {
            label: r.predictions[i],
            probabilities,
            ...(r.scores ? { score: r.scores[i] } : {}),
          };
        }
      }
    }
  }
  return out;
}
