import assert from "node:assert/strict";
import { join } from "node:path";
import { cropNormalize, IMAGENET_MEAN, IMAGENET_STD } from "../../src/data/augment.ts";
import { type Batch, BatchLoader, drawTogether } from "../../src/data/loader.ts";
import { loadResized } from "../../src/data/prepare.ts";
import type { ImageRecord } from "../../src/data/records.ts";
import { resizeRgb, shorterSideSize } from "../../src/data/resize.ts";
import { benchPipeline } from "../../src/data/pipeline_bench.ts";
import { DecodePool } from "../../src/data/worker_pool.ts";
import { corruptJpeg, solidImage, withTempDir } from "./fixtures.ts";
import { rejectsWith, throwsWith } from "./helpers.ts";

Deno.test("resizeRgb() keeps constants, copies at scale 1 and averages when shrinking", () => {
  const rgba = new Uint8Array(6 * 4 * 4);
  for (let i = 0; i < 24; i++) rgba.set([10, 200, 77, 255], i * 4);
  assert.deepEqual(
    resizeRgb(rgba, 6, 4, 4, 3, 2),
    new Uint8Array(3 * 2 * 3).map((_, i) => [10, 200, 77][i % 3]),
  );
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  assert.deepEqual(resizeRgb(rgb, 5, 3, 3, 5, 3), rgb);
  // A 4-wide row 0,0,255,255 halves to two pixels: the antialias filter (support 2) mixes
  // in the neighbours with weights 3/7, 3/7, 1/7.
  const row = Uint8Array.from([0, 0, 255, 255].flatMap((v) => [v, v, v]));
  const out = resizeRgb(row, 4, 1, 3, 2, 1);
  assert.deepEqual([out[0], out[3]], [Math.round(255 / 7), Math.round(255 * 6 / 7)]);
  assert.deepEqual(shorterSideSize(350, 350, 256), [256, 256]);
  assert.deepEqual(shorterSideSize(400, 300, 72), [96, 72]);
  assert.deepEqual(shorterSideSize(144, 200, 72), [72, 100]);
});

Deno.test("cropNormalize() crops, flips and normalises into CHW", () => {
  // 3×2 image, pixel (x, y) has red = 10·x + 100·y, green 0, blue 255.
  const rgb = new Uint8Array(3 * 2 * 3);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) rgb.set([10 * x + 100 * y, 0, 255], (y * 3 + x) * 3);
  }
  const norm = (v: number, c: number) =>
    Math.fround((v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
  const out = new Float32Array(2 * 4 * 3);
  cropNormalize(rgb, 3, 2, 2, { u: 0.99, v: 0 }, out, 12); // x0 = floor(0.99 · 2) = 1
  const red = Array.from(out.subarray(12, 16));
  const close = (a: number[], b: number[]) =>
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5, `${a} vs ${b}`));
  close(red, [10, 20, 110, 120].map((v) => norm(v, 0)));
  close(Array.from(out.subarray(16, 20)), [0, 0, 0, 0].map((v) => norm(v, 1)));
  close(Array.from(out.subarray(20, 24)), [255, 255, 255, 255].map((v) => norm(v, 2)));
  cropNormalize(rgb, 3, 2, 2, { u: 0, v: 0, flip: true }, out);
  close(Array.from(out.subarray(0, 4)), [10, 0, 110, 100].map((v) => norm(v, 0)));
  cropNormalize(rgb, 3, 2, 2, {}, out); // centre: x0 = floor(1/2) = 0
  close(Array.from(out.subarray(0, 4)), [0, 10, 100, 110].map((v) => norm(v, 0)));
  throwsWith(() => cropNormalize(rgb, 3, 2, 4, {}, out), "Cannot crop 4×4: image is 3×2");
});

/** Writes `n` distinct 40×30 images; returns records with beauty (and gender on even ones). */
async function fixture(dir: string, n: number): Promise<ImageRecord[]> {
  const out: ImageRecord[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(dir, `img${i}.${i % 3 === 0 ? "png" : "jpg"}`);
    const rgb: [number, number, number] = [(i * 53) % 256, (i * 97) % 256, (i * 151) % 256];
    await Deno.writeFile(
      path,
      await solidImage(rgb, { width: 40, height: 30, format: i % 3 === 0 ? "png" : "jpg" }),
    );
    out.push({ path, labels: i % 2 === 0 ? { beauty: i % 5, gender: 0 } : { beauty: i % 5 } });
  }
  return out;
}

async function collect(loader: BatchLoader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

Deno.test("BatchLoader makes NCHW batches with labels, −1 where missing", async () => {
  await withTempDir(async (dir) => {
    const recs = await fixture(dir, 10);
    const loader = new BatchLoader(recs, { batchSize: 4, size: 16, workers: 0 });
    try {
      const batches = await collect(loader, 0);
      assert.deepEqual(batches.map((b) => b.paths.length), [4, 4, 2]); // eval keeps the last part
      const b = batches[0];
      assert.equal(b.images.length, 4 * 3 * 16 * 16);
      assert.deepEqual(b.paths, recs.slice(0, 4).map((r) => r.path)); // eval keeps order
      assert.deepEqual(Object.keys(b.labels), ["beauty", "gender"]);
      assert.deepEqual(Array.from(b.labels.beauty), [0, 1, 2, 3]);
      assert.deepEqual(Array.from(b.labels.gender), [0, -1, 0, -1]);
      // Image 1 is a solid colour (53, 97, 151) apart from its corner marker: the centre pixel
      // of its green plane must be that colour normalised (JPEG keeps solid colours within 2).
      const g = b.images[1 * 768 + 256 + 8 * 16 + 8];
      assert.ok(Math.abs(g - (97 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1]) < 0.05, `${g}`);
      assert.equal(loader.batchesPerEpoch, 3);
    } finally {
      loader.close();
    }
  });
});

Deno.test("BatchLoader training batches are fixed by the seed, whatever the workers", async () => {
  await withTempDir(async (dir) => {
    const recs = await fixture(dir, 9);
    const opts = { batchSize: 4, train: true, size: 16, resize: 20 };
    const loaders = [
      new BatchLoader(recs, { ...opts, seed: 4, workers: 0 }),
      new BatchLoader(recs, { ...opts, seed: 4, workers: 2 }),
      new BatchLoader(recs, { ...opts, seed: 5, workers: 1 }),
    ];
    try {
      const [a, b, c] = await Promise.all(loaders.map((l) => collect(l, 0)));
      assert.equal(a.length, 2); // training drops the last partial batch
      assert.deepEqual(a, b);
      assert.notDeepEqual(a.map((x) => x.paths), c.map((x) => x.paths));
      const a1 = await collect(loaders[0], 1);
      assert.notDeepEqual(a1.map((x) => x.paths), a.map((x) => x.paths)); // new epoch, new order
      assert.deepEqual(await collect(loaders[1], 1), a1);
      // Labels follow their images through the shuffle.
      for (const batch of a) {
        batch.paths.forEach((p, i) => {
          assert.equal(batch.labels.beauty[i], recs.find((r) => r.path === p)!.labels.beauty);
        });
      }
    } finally {
      for (const l of loaders) l.close();
    }
  });
});

Deno.test("BatchLoader.next() streams across epochs and drawTogether() takes one batch per database", async () => {
  await withTempDir(async (dir) => {
    const recs = await fixture(dir, 7);
    const pool = new DecodePool({ workers: 2 });
    const a = new BatchLoader(recs, { batchSize: 3, train: true, size: 8, resize: 10, pool });
    const b = new BatchLoader(recs.slice(0, 4), {
      batchSize: 2,
      train: true,
      size: 8,
      resize: 10,
      pool,
      seed: 9,
    });
    try {
      const epochs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const got = await drawTogether({ scut: a, lsafbd: b });
        assert.deepEqual(Object.keys(got), ["scut", "lsafbd"]);
        assert.equal(got.scut.paths.length, 3);
        assert.equal(got.lsafbd.paths.length, 2);
        epochs.push(a.lastEpoch);
      }
      assert.deepEqual(epochs, [0, 0, 1, 1, 2]); // 2 full batches of 3 per epoch of 7
      const tiny = new BatchLoader(recs.slice(0, 2), { batchSize: 3, train: true, size: 8, pool });
      await rejectsWith(
        () => tiny.next(),
        "Cannot draw a batch: 2 usable images, fewer than one batch of 3",
      );
    } finally {
      a.close();
      b.close();
      pool.close();
    }
  });
});

Deno.test("BatchLoader with a cache gives the same batches and fills one file per image", async () => {
  await withTempDir(async (dir) => {
    const recs = await fixture(dir, 6);
    const cacheDir = join(dir, "cache");
    const opts = { batchSize: 3, train: true, size: 16, resize: 20, seed: 2, workers: 2 };
    const plain = new BatchLoader(recs, opts);
    const cached = new BatchLoader(recs, { ...opts, cacheDir });
    try {
      const want = [await collect(plain, 0), await collect(plain, 1)];
      assert.deepEqual(await collect(cached, 0), want[0]); // fills
      assert.equal([...Deno.readDirSync(cacheDir)].length, 6);
      assert.deepEqual(await collect(cached, 1), want[1]); // reads
      assert.equal([...Deno.readDirSync(cacheDir)].length, 6);
      // An edited image misses the cache (its mtime and size are in the key).
      await Deno.writeFile(
        recs[0].path,
        await solidImage([1, 2, 3], { width: 50, height: 30, format: "png" }),
      );
      const img = await loadResized(recs[0].path, 20, cacheDir);
      assert.deepEqual([img.width, img.height], [33, 20]);
      assert.equal([...Deno.readDirSync(cacheDir)].length, 7);
    } finally {
      plain.close();
      cached.close();
    }
  });
});

Deno.test("BatchLoader skips or fails on a corrupt JPEG and a zero-byte file per policy", async () => {
  await withTempDir(async (dir) => {
    const recs = await fixture(dir, 4);
    const corrupt = join(dir, "corrupt.jpg"), empty = join(dir, "empty.jpg");
    await Deno.writeFile(corrupt, await corruptJpeg());
    await Deno.writeFile(empty, new Uint8Array(0));
    const all = [...recs.slice(0, 2), { path: corrupt, labels: { beauty: 1 } }, {
      path: empty,
      labels: { beauty: 2 },
    }, ...recs.slice(2)];
    const skip = new BatchLoader(all, { batchSize: 3, size: 8, workers: 2 });
    const fail = new BatchLoader(all, { batchSize: 3, size: 8, workers: 2, onBadImage: "fail" });
    try {
      const batches = await collect(skip, 0);
      assert.deepEqual(batches.map((b) => b.paths.length), [2, 2]);
      assert.deepEqual(batches.flatMap((b) => b.paths), recs.map((r) => r.path));
      assert.deepEqual(skip.problems, [
        {
          file: corrupt,
          message:
            "corrupt image data (JPEG is truncated: segment 0xC4 at byte 210 declares 181 bytes, 133 remain); skipped",
          skipped: true,
        },
        { file: empty, message: "file is empty (0 bytes); skipped", skipped: true },
      ]);
      await collect(skip, 1); // known bad images are left out up front and not reported twice
      assert.equal(skip.problems.length, 2);
      await rejectsWith(
        () => collect(fail, 0),
        `Cannot decode image "${corrupt}": corrupt image data`,
      );
      const inline = new BatchLoader([all[3]], {
        batchSize: 1,
        size: 8,
        workers: 0,
        onBadImage: "fail",
      });
      await rejectsWith(
        () => collect(inline, 0),
        `Cannot decode image "${empty}": file is empty (0 bytes)`,
      );
    } finally {
      skip.close();
      fail.close();
    }
  });
});

Deno.test("BatchLoader rejects bad options", () => {
  const recs: ImageRecord[] = [{ path: "x.jpg", labels: {} }];
  const pool = new DecodePool({ workers: 0 });
  throwsWith(
    () => new BatchLoader(recs, { batchSize: 0, pool }),
    "Cannot create batch loader: batchSize must be a positive integer: current value is 0",
  );
  throwsWith(
    () => new BatchLoader(recs, { batchSize: 1, size: 64, resize: 32, pool }),
    "resize must be an integer ≥ size (64): current value is 32",
  );
  throwsWith(
    () => new BatchLoader(recs, { batchSize: 1, onBadImage: "ignore" as "skip", pool }),
    `onBadImage must be "skip" or "fail": current value is "ignore"`,
  );
  throwsWith(
    () => new DecodePool({ workers: -1 }),
    "Cannot start decode pool: workers must be an integer ≥ 0: current value is -1",
  );
});

Deno.test("benchPipeline() measures images/s for each configuration", async () => {
  const r = await benchPipeline({ count: 8, batchSize: 4, sourceSize: 48, size: 32, resize: 40 });
  assert.deepEqual([r.images, r.batchSize, r.sourceSize, r.size], [8, 4, 48, 32]);
  for (const v of [r.inline, r.workers1, r.workers2, r.cached]) {
    assert.ok(v > 0 && Number.isFinite(v));
  }
});
