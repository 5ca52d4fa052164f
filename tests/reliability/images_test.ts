/**
 * Damaged and unusual images (issue 8), through `readImage` / `decodeImage` and the batch
 * loader's skip|fail policy: truncated JPEGs, a PNG with a bad CRC, 1×1 images, headers
 * claiming 20000×20000 (refused before decoding), grey / grey+alpha / RGBA / 16-bit PNGs
 * (converted to 8-bit RGB), a folder and a FIFO named like an image, a huge file, and an
 * unreadable file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imagescript";
import { BatchLoader } from "../../src/data/loader.ts";
import { BadImageError, decodeImage, MAX_IMAGE_PIXELS, readImage } from "../../src/data/decode.ts";
import { readImageHeader } from "../../src/data/image_header.ts";
import { prepareImage } from "../../src/data/prepare.ts";
import type { ImageRecord } from "../../src/data/records.ts";
import { bytesOf, pngChunk } from "../io/_helpers.ts";

const root = await Deno.makeTempDir({ prefix: "fbp-images-" });

async function zlib(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function ihdr(w: number, h: number, depth: number, color: number): Uint8Array {
  const b = new Uint8Array(13);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  b[8] = depth;
  b[9] = color;
  return b;
}

const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** A PNG file whose header says `ihdr(w, h, depth, color)` and whose IDAT holds `raw` rows. */
async function pngFile(
  w: number,
  h: number,
  depth: number,
  color: number,
  raw: Uint8Array,
): Promise<Uint8Array> {
  return bytesOf(
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr(w, h, depth, color)),
    pngChunk("IDAT", await zlib(raw)),
    pngChunk("IEND", new Uint8Array(0)),
  );
}

/**
 * A PNG written sample by sample (filter 0): `pixel(x, y)` gives the channel values of
 * colour type `color` (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA) at bit depth 8 or 16.
 */
async function png(
  w: number,
  h: number,
  depth: 8 | 16,
  color: 0 | 2 | 4 | 6,
  pixel: (x: number, y: number) => number[],
): Promise<Uint8Array> {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[color];
  const raw = new Uint8Array(h * (1 + (w * channels * depth) / 8));
  let o = 0;
  for (let y = 0; y < h; y++) {
    raw[o++] = 0;
    for (let x = 0; x < w; x++) {
      for (const v of pixel(x, y)) {
        if (depth === 16) {
          raw[o++] = v >> 8;
          raw[o++] = v & 255;
        } else raw[o++] = v;
      }
    }
  }
  return await pngFile(w, h, depth, color, raw);
}

async function jpeg(w: number, h: number): Promise<Uint8Array> {
  const img = new Image(w, h);
  for (let i = 0; i < w * h; i++) img.bitmap.set([(i * 7) % 256, 90, 200, 255], i * 4);
  return await img.encodeJPEG(90);
}

/** Offset of the JPEG frame header's height field (SOF0 marker + 5). */
function sofOffset(b: Uint8Array): number {
  for (let i = 2; i < b.length - 1; i++) if (b[i] === 0xff && b[i + 1] === 0xc0) return i;
  throw new Error("no SOF0");
}

async function rejectsBad(bytes: Uint8Array, reason: RegExp, name = "x"): Promise<void> {
  await assert.rejects(decodeImage(bytes, name), (e: unknown) => {
    assert.ok(e instanceof BadImageError, `expected BadImageError, got ${e}`);
    assert.equal(e.path, name);
    assert.match(e.reason, reason);
    return true;
  });
}

Deno.test("decodeImage() names a truncated JPEG wherever it is cut", async () => {
  const good = await jpeg(40, 30);
  assert.equal((await decodeImage(good, "ok.jpg")).width, 40);
  const scan = good.findIndex((_, i) => good[i] === 0xff && good[i + 1] === 0xda);
  const cuts = [3, 10, 25, 200, scan + 1, scan + 20, good.length - 40, good.length - 1];
  for (const cut of cuts) {
    await rejectsBad(good.subarray(0, cut), /^corrupt image data \(JPEG is truncated/);
  }
});

Deno.test("decodeImage() refuses a PNG with a bad CRC, naming the chunk", async () => {
  const good = await png(5, 4, 8, 2, (x, y) => [x * 40, y * 60, 7]);
  assert.equal((await decodeImage(good, "ok.png")).height, 4);
  const idat = good.findIndex((_, i) => String.fromCharCode(...good.subarray(i, i + 4)) === "IDAT");
  const bad = good.slice();
  bad[idat + 6] ^= 0x20; // a byte of the compressed data
  await rejectsBad(bad, /PNG chunk "IDAT" at byte 33 has a bad CRC/);
  const badHeader = good.slice();
  badHeader[19] ^= 1; // a width byte inside IHDR
  await rejectsBad(badHeader, /PNG chunk "IHDR" at byte 8 has a bad CRC/);
  await rejectsBad(good.subarray(0, good.length - 12), /PNG is truncated at byte \d+: no IEND/);
  await rejectsBad(good.subarray(0, 45), /PNG is truncated: chunk "IDAT" at byte 33 declares/);
});

Deno.test("decodeImage() says in words why a well-formed file does not decode (no bare status)", async () => {
  // Chunks, CRCs and segments are intact: what is wrong is the image data itself.
  const chunks = (w: number, h: number, color: number, ...body: Uint8Array[]) =>
    bytesOf(
      PNG_SIGNATURE,
      pngChunk("IHDR", ihdr(w, h, 8, color)),
      ...body,
      pngChunk("IEND", new Uint8Array(0)),
    );
  const pixels = /^corrupt PNG image data: the compressed pixels \(IDAT\) do not decode to the 8×8/;
  const notZlib = chunks(8, 8, 2, pngChunk("IDAT", new Uint8Array([1, 2, 3, 4, 5, 6])));
  const tooShort = chunks(8, 8, 2, pngChunk("IDAT", await zlib(new Uint8Array(50))));
  const badFilter = chunks(
    8,
    8,
    2,
    pngChunk("IDAT", await zlib(new Uint8Array(200).fill(9))),
  );
  for (const bad of [notZlib, tooShort, badFilter]) await rejectsBad(bad, pixels);
  const palette = new Uint8Array(8 * 9); // filter byte 0 and index 0 on every row
  await rejectsBad(
    chunks(8, 8, 3, pngChunk("IDAT", await zlib(palette))),
    /^corrupt image data \(PNG has a palette colour type but no PLTE chunk/,
  );
  await rejectsBad(
    chunks(
      8,
      8,
      2,
      pngChunk("ABCD", new Uint8Array(3)),
      pngChunk("IDAT", await zlib(palette)),
    ),
    /^corrupt image data \(PNG has an unknown critical chunk "ABCD" at byte 33\)/,
  );
  // The same checks pass what decodes: a palette image with its PLTE, an ancillary chunk.
  const withPlte = chunks(
    8,
    8,
    3,
    pngChunk("PLTE", new Uint8Array(6)),
    pngChunk("IDAT", await zlib(palette)),
  );
  assert.equal((await decodeImage(withPlte, "ok.png")).width, 8);
  const text = pngChunk("tEXt", new TextEncoder().encode("Comment\0hi"));
  const rgb = await zlib(new Uint8Array(8 * 25));
  assert.equal(
    (await decodeImage(chunks(8, 8, 2, text, pngChunk("IDAT", rgb)), "t.png")).height,
    8,
  );
  // A JPEG whose segments are intact but whose Huffman table counts are not.
  const good = await jpeg(40, 30);
  const dht = good.findIndex((_, i) => good[i] === 0xff && good[i + 1] === 0xc4);
  const bad = good.slice();
  bad.fill(0xff, dht + 5, dht + 21);
  await rejectsBad(
    bad,
    /^corrupt JPEG image data: the decoder could not read the compressed pixels$/,
  );
});

Deno.test("readImage() names a device file given as an image", async () => {
  await assert.rejects(
    readImage("/dev/zero"),
    /Cannot decode image "\/dev\/zero": it is a character device, not an image file$/,
  );
});

Deno.test("decodeImage() reads 1×1 images and the loader resizes them", async () => {
  const onePng = await png(1, 1, 8, 2, () => [10, 20, 30]);
  assert.deepEqual(await decodeImage(onePng, "1.png"), {
    width: 1,
    height: 1,
    data: new Uint8Array([10, 20, 30, 255]),
  });
  const oneJpg = await jpeg(1, 1);
  assert.equal((await decodeImage(oneJpg, "1.jpg")).width, 1);
  const path = join(root, "one.png");
  await Deno.writeFile(path, onePng);
  const out = await prepareImage({ path, resize: 8, size: 8, crop: {} });
  assert.equal(out.length, 3 * 8 * 8);
  assert.ok(out.every(Number.isFinite));
  // Every pixel of the 8×8 is the one source pixel.
  assert.ok(out.subarray(0, 64).every((v) => v === out[0]));
});

Deno.test("decodeImage() refuses 20000×20000 headers before decoding", async () => {
  // A PNG whose IHDR says 20000×20000 with a few bytes of data: the decoder would allocate
  // 1.6 GB for it; the header check refuses it at once.
  const hugePng = await pngFile(20000, 20000, 8, 2, new Uint8Array(64));
  const hugeJpg = (await jpeg(16, 16)).slice();
  const sof = sofOffset(hugeJpg);
  hugeJpg.set([0x4e, 0x20, 0x4e, 0x20], sof + 5); // height, width = 20000
  assert.deepEqual(readImageHeader(hugeJpg), { format: "jpeg", width: 20000, height: 20000 });
  for (const bytes of [hugePng, hugeJpg]) {
    const t0 = performance.now();
    await rejectsBad(
      bytes,
      new RegExp(
        `^image is 20000×20000 \\(400000000 pixels\\), more than the limit of ${MAX_IMAGE_PIXELS}; refused before decoding$`,
      ),
    );
    assert.ok(performance.now() - t0 < 200, "refused without decoding");
  }
  const zeroWide = await pngFile(0, 5, 8, 2, new Uint8Array(5));
  await rejectsBad(zeroWide, /png header gives a size of 0×5/);
  await rejectsBad(new TextEncoder().encode("GIF89a......"), /^not a JPEG or PNG file$/);
});

Deno.test("decodeImage() converts grey, grey+alpha, RGBA and 16-bit PNGs to 8-bit RGBA", async () => {
  const cases: [string, Uint8Array, number[]][] = [
    ["grey 8", await png(2, 1, 8, 0, (x) => [x ? 200 : 10]), [10, 10, 10, 255, 200, 200, 200, 255]],
    [
      "grey 16",
      await png(2, 1, 16, 0, (x) => [x ? 0xc8ff : 0x0a00]),
      [10, 10, 10, 255, 200, 200, 200, 255],
    ],
    ["grey+alpha 8", await png(2, 1, 8, 4, (x) => [x ? 200 : 10, 128]), [
      10,
      10,
      10,
      128,
      200,
      200,
      200,
      128,
    ]],
    [
      "RGB 16",
      await png(2, 1, 16, 2, (x) => [0x0a00, 0x1400, x ? 0xffff : 0x1e00]),
      [10, 20, 30, 255, 10, 20, 255, 255],
    ],
    ["RGBA 8", await png(2, 1, 8, 6, () => [10, 20, 30, 0]), [10, 20, 30, 0, 10, 20, 30, 0]],
    [
      "RGBA 16",
      await png(2, 1, 16, 6, () => [0x0a00, 0x1400, 0x1e00, 0x8000]),
      [10, 20, 30, 128, 10, 20, 30, 128],
    ],
  ];
  for (const [name, bytes, rgba] of cases) {
    const img = await decodeImage(bytes, name);
    assert.deepEqual([img.width, img.height, ...img.data], [2, 1, ...rgba], name);
    // The pipeline keeps RGB and drops alpha (as PIL's convert("RGB") does).
    const path = join(root, `${name.replaceAll(/\W/g, "_")}.png`);
    await Deno.writeFile(path, bytes);
    const out = await prepareImage({
      path,
      resize: 2,
      size: 1,
      crop: {},
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    assert.equal(out.length, 3, name);
  }
});

Deno.test("readImage() refuses a folder, a FIFO and a huge file named like images, at once", async () => {
  const dir = join(root, "folder.jpg");
  await Deno.mkdir(dir);
  await assert.rejects(readImage(dir), /Cannot decode image ".*folder\.jpg": it is a directory/);
  const fifo = join(root, "pipe.png");
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  if (mk.success) {
    // A plain read of a FIFO with no writer blocks forever; stat refuses it first.
    await assert.rejects(
      readImage(fifo),
      /Cannot decode image ".*pipe\.png": it is a FIFO \(named pipe\), not an image file/,
    );
  }
  const huge = join(root, "huge.jpg");
  const f = await Deno.open(huge, { create: true, write: true });
  await f.truncate(300 * 1024 * 1024); // sparse: no disk space used
  f.close();
  await assert.rejects(readImage(huge), /file is 314572800 bytes, more than the limit/);
  await assert.rejects(readImage(join(root, "absent.jpg")), /absent\.jpg": file not found/);
});

Deno.test({
  name: "readImage() names an unreadable file",
  // Root reads any file whatever its mode bits (CAP_DAC_OVERRIDE), so the case cannot fail
  // as root; the FIFO and folder cases above are the ones that fail for root too.
  ignore: Deno.build.os === "windows" || Deno.uid() === 0,
  fn: async () => {
    const path = join(root, "locked.png");
    await Deno.writeFile(path, await png(1, 1, 8, 2, () => [1, 2, 3]));
    await Deno.chmod(path, 0o000);
    await assert.rejects(readImage(path), /locked\.png": permission denied/);
  },
});

Deno.test("BatchLoader skips every kind of bad image, or fails at the first, per policy", async () => {
  const dir = join(root, "loader");
  await Deno.mkdir(dir);
  const good: ImageRecord[] = [];
  for (let i = 0; i < 6; i++) {
    const path = join(dir, `good${i}.${i % 2 ? "png" : "jpg"}`);
    await Deno.writeFile(
      path,
      i % 2 ? await png(12, 10, 16, 6, () => [i * 9000, 0, 0, 65535]) : await jpeg(10, 12),
    );
    good.push({ path, labels: { y: i % 2 } });
  }
  const bad: [string, Uint8Array | "dir", RegExp][] = [
    ["truncated.jpg", (await jpeg(20, 20)).subarray(0, 300), /JPEG is truncated/],
    ["empty.png", new Uint8Array(0), /file is empty/],
    ["one.png", await png(1, 1, 8, 0, () => [9]), /never/], // good: 1×1 grey is usable
    ["folder.jpg", "dir", /it is a directory/],
    [
      "huge.png",
      await pngFile(20000, 20000, 8, 2, new Uint8Array(8)),
      /refused before decoding/,
    ],
  ];
  const crc = (await png(4, 4, 8, 2, () => [1, 2, 3])).slice();
  crc[40] ^= 0xff;
  bad.push(["crc.png", crc, /bad CRC/]);
  const records = [...good];
  for (const [name, bytes] of bad) {
    const path = join(dir, name);
    if (bytes === "dir") await Deno.mkdir(path);
    else await Deno.writeFile(path, bytes);
    records.splice(records.length - 2, 0, { path, labels: { y: 0 } });
  }
  for (const workers of [0, 2]) {
    const skip = new BatchLoader(records, { batchSize: 4, size: 8, workers });
    let images = 0;
    for await (const b of skip.epoch(0)) {
      images += b.paths.length;
      assert.ok(b.images.every(Number.isFinite));
    }
    skip.close();
    assert.equal(images, good.length + 1, "the good images and the 1×1 grey PNG");
    const reported = skip.problems.map((p) => p.file.slice(dir.length + 1)).sort();
    assert.deepEqual(reported, bad.map((b) => b[0]).filter((n) => n !== "one.png").sort());
    for (const p of skip.problems) {
      const [, , reason] = bad.find(([n]) => p.file.endsWith(n))!;
      assert.match(p.message, reason);
      assert.match(p.message, /; skipped$/);
      assert.equal(p.skipped, true);
    }
    const fail = new BatchLoader(records, { batchSize: 4, size: 8, workers, onBadImage: "fail" });
    await assert.rejects(
      async () => {
        for await (const _ of fail.epoch(0)) { /* drain */ }
      },
      (e: unknown) => e instanceof BadImageError && /truncated\.jpg/.test(e.path),
    );
    fail.close();
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
