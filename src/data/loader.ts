/**
 * Batches for training and evaluation: seeded shuffling and augmentation, decoding on a
 * {@link DecodePool} with a bounded prefetch queue, and bad images handled by policy.
 *
 * Pipeline per image: decode → resize (shorter side `resize`, default 256) → random
 * `size` crop (default 224) + horizontal flip for training, or resize to `size` + centre
 * crop for evaluation (the same as a plain resize for square images) → ImageNet
 * mean/std → float32. A batch is (N, 3, size, size) NCHW.
 *
 * All random choices are drawn here on the calling thread from `Rng(seed, epoch)`, so the
 * same seed gives the same batches whatever the number of workers.
 * @module
 */

import { type CropParams, randomCrop } from "./augment.ts";
import { BadImageError } from "./decode.ts";
import type { PrepareRequest } from "./prepare.ts";
import type { Problem } from "./problems.ts";
import type { ImageRecord } from "./records.ts";
import { Rng } from "../random/rng.ts";
import { balancedOrder } from "./balanced_order.ts";
import { RATING_BINS } from "./grade.ts";
import { recordScore } from "./mean_score.ts";
import { DecodePool } from "./worker_pool.ts";

/** A batch of images and labels; a missing label is −1. */
export interface Batch {
  /** (N, 3, S, S) normalised images. */
  images: Float32Array;
  /** (N) integer labels per label name; −1 where an image has no such label. */
  labels: Record<string, Int32Array>;
  /** (N) image paths. */
  paths: string[];
  /** (N) mean scores (1–5) where the records have one; NaN where not. */
  scores?: Float32Array;
  /**
   * (N·5) the raters' histograms over ratings 1–5, row-major, where the records have one
   * (ImageRecord.ratingHistogram); NaN rows where not.
   */
  histograms?: Float32Array;
}

/** What to do with an image that cannot be decoded. */
export type BadImagePolicy = "skip" | "fail";

/** Options of {@link BatchLoader}. */
export interface LoaderOptions {
  /** Images per batch. */
  batchSize: number;
  /** Training mode: shuffle, random crop and flip (default false: fixed order, centre). */
  train?: boolean;
  /** Side of the output images (default 224). */
  size?: number;
  /** Shorter side before the random crop in training (default size·256/224, rounded). */
  resize?: number;
  /** Seed of shuffling and augmentation (default 0). */
  seed?: number;
  /** Labels to put in batches (default: every label any record has, sorted). */
  labels?: string[];
  /** Pool to decode on; if absent the loader starts its own with `workers` workers. */
  pool?: DecodePool;
  /** Workers of the loader's own pool (default 2; 0 = inline). */
  workers?: number;
  /** Batches decoded ahead of the consumer (default 2). */
  prefetch?: number;
  /** Folder of the decoded-image cache (off when absent). */
  cacheDir?: string;
  /** Bad image policy (default "skip": drop it from the batch and report it). */
  onBadImage?: BadImagePolicy;
  /** Drop a last partial batch (default: true in training). */
  dropLast?: boolean;
  /** Shuffle each epoch (default: true in training). */
  shuffle?: boolean;
  /** Training: mirror half the images left–right (default true). */
  flip?: boolean;
  /** Training: where to crop the resized image: "random" (default) or "center". */
  crop?: "random" | "center";
  /**
   * Class-balanced epochs (`--balance sampler`): each shuffled epoch is replaced by as many
   * draws with replacement, equal per class of this label (class_balance.ts balancedOrder);
   * images without the label keep their natural share. Only with `shuffle`.
   */
  balanceLabel?: string;
}

interface Assembled {
  batch?: Batch;
  bad: { index: number; error: BadImageError }[];
}

interface Plan {
  epoch: number;
  items: { index: number; req: PrepareRequest }[];
}

/** Seeded, prefetching batch iterator over one database's records. */
export class BatchLoader {
  /** The records batched (indices in `paths` order refer to these). */
  readonly records: readonly ImageRecord[];
  /** Label names in every batch. */
  readonly labelNames: readonly string[];
  /** Bad images found so far (each skipped from then on). */
  readonly problems: Problem[] = [];
  readonly #o: Required<Omit<LoaderOptions, "pool" | "cacheDir" | "labels" | "balanceLabel">> & {
    cacheDir?: string;
  };
  /** Class of each record under `balanceLabel` (−1: none), when the epochs are balanced. */
  readonly #balanceGroups?: Int32Array;
  readonly #pool: DecodePool;
  readonly #ownPool: boolean;
  readonly #bad = new Set<number>();
  #stream?: AsyncGenerator<Batch>;

  /**
   * The training crop per the options. The three numbers are drawn either way, so turning
   * flips off leaves every other random choice of the run as it was.
   */
  #trainCrop(drawn: CropParams): CropParams {
    const { flip, crop } = this.#o;
    return {
      ...(crop === "random" ? { u: drawn.u, v: drawn.v } : {}),
      flip: flip && drawn.flip,
    };
  }
  #lastEpoch = -1;

  /** Creates a loader; it starts its own worker pool unless `options.pool` is given. */
  constructor(records: readonly ImageRecord[], options: LoaderOptions) {
    const train = options.train ?? false;
    const size = options.size ?? 224;
    this.#o = {
      batchSize: options.batchSize,
      train,
      size,
      resize: options.resize ?? Math.round((size * 256) / 224),
      seed: options.seed ?? 0,
      workers: options.workers ?? 2,
      prefetch: options.prefetch ?? 2,
      cacheDir: options.cacheDir,
      onBadImage: options.onBadImage ?? "skip",
      dropLast: options.dropLast ?? train,
      shuffle: options.shuffle ?? train,
      flip: options.flip ?? true,
      crop: options.crop ?? "random",
    };
    const o = this.#o;
    const check = (ok: boolean, what: string, v: unknown) => {
      if (!ok) throw new RangeError(`Cannot create batch loader: ${what}: current value is ${v}`);
    };
    check(
      Number.isInteger(o.batchSize) && o.batchSize > 0,
      "batchSize must be a positive integer",
      o.batchSize,
    );
    check(Number.isInteger(o.size) && o.size > 0, "size must be a positive integer", o.size);
    check(
      Number.isInteger(o.resize) && o.resize >= o.size,
      `resize must be an integer ≥ size (${o.size})`,
      o.resize,
    );
    check(
      Number.isInteger(o.prefetch) && o.prefetch >= 1,
      "prefetch must be an integer ≥ 1",
      o.prefetch,
    );
    check(
      ["skip", "fail"].includes(o.onBadImage),
      `onBadImage must be "skip" or "fail"`,
      `"${o.onBadImage}"`,
    );
    this.records = records;
    this.labelNames = options.labels ??
      [...new Set(records.flatMap((r) => Object.keys(r.labels)))].sort();
    if (options.balanceLabel !== undefined && o.shuffle) {
      const label = options.balanceLabel;
      this.#balanceGroups = Int32Array.from(records, (r) => r.labels[label] ?? -1);
    }
    this.#ownPool = !options.pool;
    this.#pool = options.pool ?? new DecodePool({ workers: o.workers });
  }

  /** Batches in one epoch (before any bad images are found). */
  get batchesPerEpoch(): number {
    const n = this.records.length, b = this.#o.batchSize;
    return this.#o.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** Epoch of the batch last yielded (−1 before the first): tells {@link next}'s callers when an epoch ends. */
  get lastEpoch(): number {
    return this.#lastEpoch;
  }

  /** The batch plans of one epoch: order from `Rng(seed, epoch)`, crops from a second stream. */
  *#plans(epoch: number): Generator<Plan> {
    const o = this.#o;
    const order = this.records.map((_, i) => i).filter((i) => !this.#bad.has(i));
    if (o.shuffle) new Rng(o.seed, epoch).shuffle(order);
    const balanced = this.#balanceGroups
      ? balancedOrder(order, this.#balanceGroups, new Rng(o.seed, epoch, 2))
      : order;
    const aug = new Rng(o.seed, epoch, 1);
    for (let s = 0; s < balanced.length; s += o.batchSize) {
      const idx = balanced.slice(s, s + o.batchSize);
      if (idx.length < o.batchSize && o.dropLast) break;
      yield {
        epoch,
        items: idx.map((index) => ({
          index,
          req: {
            path: this.records[index].path,
            resize: o.train ? o.resize : o.size,
            size: o.size,
            crop: o.train ? this.#trainCrop(randomCrop(aug)) : {},
            cacheDir: o.cacheDir,
          },
        })),
      };
    }
  }

  /** Plans of epoch 0, 1, … without end. */
  *#endlessPlans(): Generator<Plan> {
    for (let e = 0;; e++) {
      const before = this.#bad.size;
      let any = false;
      for (const p of this.#plans(e)) {
        any = true;
        yield p;
      }
      // An epoch with no batch (all images bad, or fewer than a batch) would loop forever.
      if (!any && this.#bad.size === before) {
        throw new Error(
          `Cannot draw a batch: ${this.records.length - this.#bad.size} usable images, ` +
            `fewer than one batch of ${this.#o.batchSize}`,
        );
      }
    }
  }

  /**
   * Runs plans with up to `prefetch` batches in flight, yielding them in order. Bad
   * images are handled here, in batch order, so reports do not depend on timing.
   */
  async *#run(plans: Iterator<Plan>): AsyncGenerator<Batch> {
    const inFlight: { epoch: number; result: Promise<Assembled> }[] = [];
    const launch = () => {
      const p = plans.next();
      if (p.done) return false;
      const result = this.#assemble(p.value);
      // A later batch may fail before an earlier one is awaited: mark it handled now.
      result.catch(() => {});
      inFlight.push({ epoch: p.value.epoch, result });
      return true;
    };
    try {
      while (inFlight.length < this.#o.prefetch && launch());
      while (inFlight.length > 0) {
        const { epoch, result } = inFlight.shift()!;
        const { batch, bad } = await result;
        for (const { index, error } of bad) {
          if (this.#o.onBadImage === "fail") throw error;
          if (this.#bad.has(index)) continue;
          this.#bad.add(index);
          this.problems.push({
            file: error.path,
            message: `${error.reason}; skipped`,
            skipped: true,
          });
        }
        launch();
        this.#lastEpoch = epoch;
        if (batch) yield batch;
      }
    } finally {
      // Settle what is still in flight before the caller moves on.
      await Promise.allSettled(inFlight.map((f) => f.result));
    }
  }

  /** Decodes a plan's images and packs the good ones; bad images come back separately. */
  async #assemble(plan: Plan): Promise<Assembled> {
    const results = await Promise.allSettled(plan.items.map((it) => this.#pool.prepare(it.req)));
    const keep: { index: number; data: Float32Array }[] = [];
    const bad: Assembled["bad"] = [];
    results.forEach((r, k) => {
      const index = plan.items[k].index;
      if (r.status === "fulfilled") keep.push({ index, data: r.value });
      else if (r.reason instanceof BadImageError) bad.push({ index, error: r.reason });
      else throw r.reason;
    });
    if (keep.length === 0) return { bad };
    const per = 3 * this.#o.size * this.#o.size;
    const images = new Float32Array(keep.length * per);
    const labels: Record<string, Int32Array> = {};
    for (const name of this.labelNames) labels[name] = new Int32Array(keep.length);
    keep.forEach(({ index, data }, n) => {
      images.set(data, n * per);
      const rec = this.records[index];
      for (const name of this.labelNames) labels[name][n] = rec.labels[name] ?? -1;
    });
    const paths = keep.map(({ index }) => this.records[index].path);
    // Score and dist tasks' targets (cheap: 6 floats an image).
    const scores = new Float32Array(keep.length).fill(NaN);
    const histograms = new Float32Array(keep.length * RATING_BINS).fill(NaN);
    keep.forEach(({ index }, n) => {
      const rec = this.records[index];
      // The same mean score the evaluation and the data checks read (recordScore).
      const score = recordScore(rec);
      if (score !== undefined) scores[n] = score;
      if (rec.ratingHistogram) histograms.set(rec.ratingHistogram, n * RATING_BINS);
    });
    return { batch: { images, labels, paths, scores, histograms }, bad };
  }

  /**
   * One pass over the records as batches; epoch `e` fixes the shuffle and the crops.
   * @throws {BadImageError} With policy "fail", at the first bad image.
   */
  epoch(e = 0): AsyncGenerator<Batch> {
    return this.#run(this.#plans(e));
  }

  /**
   * The next batch of an endless stream that runs epoch after epoch (0, 1, …) and
   * prefetches across epoch boundaries. Await each call before the next.
   * @throws {BadImageError} With policy "fail", at the first bad image.
   */
  async next(): Promise<Batch> {
    if (this.records.length === 0) {
      throw new Error("Cannot draw a batch: the loader has no records");
    }
    this.#stream ??= this.#run(this.#endlessPlans());
    const r = await this.#stream.next();
    if (r.done) throw new Error("Cannot draw a batch: every image is bad");
    return r.value;
  }

  /** Stops the loader's own pool (a shared pool is left to its owner). */
  close(): void {
    void this.#stream?.return(undefined);
    if (this.#ownPool) this.#pool.close();
  }
}

/**
 * Draws one batch from each database's loader at once, for a multi-task step (each
 * database's images go through every task that uses it).
 * @example
 * ```ts ignore
 * const batches = await drawTogether({ scut: scutLoader, lsafbd: lsafbdLoader });
 * ```
 */
export async function drawTogether(
  loaders: Readonly<Record<string, BatchLoader>>,
): Promise<Record<string, Batch>> {
  const names = Object.keys(loaders);
  const batches = await Promise.all(names.map((n) => loaders[n].next()));
  return Object.fromEntries(names.map((n, i) => [n, batches[i]]));
}
