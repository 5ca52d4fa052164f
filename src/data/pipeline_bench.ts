/**
 * Throughput of the input pipeline (decode + resize + crop/flip + normalise + batch) on
 * 350×350 JPEGs (the SCUT-FBP5500 size) → 224 training batches, with 1 and 2 decode
 * workers and with a warm decoded-image cache. `deno run -A src/data/pipeline_bench.ts`
 * prints the figures; `deno task bench` reports them through {@link benchPipeline}.
 * @module
 */

import { join } from "node:path";
import { BatchLoader } from "./loader.ts";
import { readScut } from "./scut.ts";
import { generateSynthetic } from "./synth/generate.ts";
import { DecodePool } from "./worker_pool.ts";

/** Options of {@link benchPipeline}. */
export interface PipelineBenchOptions {
  /** Images per timed epoch (default 96). */
  count?: number;
  /** Batch size (default 32). */
  batchSize?: number;
  /** Side of the source JPEGs (default 350). */
  sourceSize?: number;
  /** Output side (default 224). */
  size?: number;
  /** Shorter side before the random crop (default 256). */
  resize?: number;
}

/** Images per second of each configuration. */
export interface PipelineBenchResult {
  /** Images per timed epoch. */
  images: number;
  /** Batch size. */
  batchSize: number;
  /** Side of the source JPEGs. */
  sourceSize: number;
  /** Output side. */
  size: number;
  /** Decode on the calling thread (no workers). */
  inline: number;
  /** One decode worker. */
  workers1: number;
  /** Two decode workers. */
  workers2: number;
  /** Two workers reading a warm decoded-image cache (resized 256 images). */
  cached: number;
}

async function timeEpoch(
  dir: string,
  workers: number,
  o: Required<PipelineBenchOptions>,
  cacheDir?: string,
): Promise<number> {
  const { records } = await readScut(dir);
  const pool = new DecodePool({ workers });
  try {
    // Start-up (worker spawn, WebAssembly compile) is not throughput: warm up first.
    await Promise.all(records.slice(0, Math.max(1, workers * 2)).map((r) => pool.check(r.path)));
    const loader = new BatchLoader(records, {
      batchSize: o.batchSize,
      train: true,
      size: o.size,
      resize: o.resize,
      pool,
      cacheDir,
      prefetch: 3,
    });
    if (cacheDir) { for await (const _ of loader.epoch(0)); // fill the cache
     }
    const t0 = performance.now();
    let n = 0;
    for await (const b of loader.epoch(1)) n += b.paths.length;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    pool.close();
  }
}

/** Measures pipeline throughput in images/s on generated JPEGs in a temporary folder. */
export async function benchPipeline(
  options: PipelineBenchOptions = {},
): Promise<PipelineBenchResult> {
  const o: Required<PipelineBenchOptions> = {
    count: options.count ?? 96,
    batchSize: options.batchSize ?? 32,
    sourceSize: options.sourceSize ?? 350,
    size: options.size ?? 224,
    resize: options.resize ?? 256,
  };
  const tmp = await Deno.makeTempDir({ prefix: "fbp-pipeline-bench-" });
  try {
    const dir = join(tmp, "db");
    await generateSynthetic({ out: dir, count: o.count, size: o.sourceSize, ratings: "none" });
    return {
      images: o.count,
      batchSize: o.batchSize,
      sourceSize: o.sourceSize,
      size: o.size,
      inline: await timeEpoch(dir, 0, o),
      workers1: await timeEpoch(dir, 1, o),
      workers2: await timeEpoch(dir, 2, o),
      cached: await timeEpoch(dir, 2, o, join(tmp, "cache")),
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const r = await benchPipeline();
  const src = `${r.sourceSize}×${r.sourceSize} JPEG → ${r.size} batch of ${r.batchSize}`;
  console.log(`input pipeline (${src}, ${r.images} images, images/s):`);
  for (
    const [k, v] of [["inline", r.inline], ["1 worker", r.workers1], ["2 workers", r.workers2], [
      "2 workers + cache",
      r.cached,
    ]] as const
  ) {
    console.log(`  ${k.padEnd(18)} ${v.toFixed(1)}`);
  }
}
