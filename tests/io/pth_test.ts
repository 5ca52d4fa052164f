import assert from "node:assert/strict";
import { parsePth, readPth } from "../../src/io/pth.ts";
import {
  assertFormatRejects,
  assertTensorsEqual,
  buildPth,
  bytesOf,
  f32Bytes,
  fixturePath,
  loadExpected,
  type PickledTensor,
  pk,
  readFixture,
  stateDictPickle,
} from "./_helpers.ts";

const expected = loadExpected();

/** A .pth holding one float32 tensor `w` over storage "0" with the given view. */
function oneTensor(view: Partial<PickledTensor>, storage = f32Bytes([0, 1, 2, 3, 4, 5])) {
  const t = { key: "w", storage: "0", numel: 6, size: [6], stride: [1], ...view };
  return buildPth(stateDictPickle([t]), { "0": storage });
}

Deno.test("parsePth() reads torch.save fixtures with their expected values", async () => {
  for (const name of ["state_dict.pth", "deflated.pth", "protocol4.pth", "half.pth"]) {
    assertTensorsEqual(await readPth(fixturePath(name)), expected.tensors[name]);
  }
});

Deno.test("parsePth() copies strided views and storage offsets out in row-major order", async () => {
  const sd = await parsePth(readFixture("state_dict.pth"));
  // transposed: (3, 5) with stride (1, 3); sliced: offset 6, stride (6, 2) over a (4, 6) base.
  assert.deepEqual(sd.get("transposed")!.shape, [3, 5]);
  assert.deepEqual(sd.get("sliced")!.shape, [2, 3]);
  const strided = await parsePth(await oneTensor({ offset: 1, size: [2, 2], stride: [1, 2] }));
  assert.deepEqual([...strided.get("w")!.data], [1, 3, 2, 4]);
  const scalar = await parsePth(await oneTensor({ offset: 5, size: [], stride: [] }));
  assert.deepEqual(scalar.get("w")!.shape, []);
  assert.deepEqual([...scalar.get("w")!.data], [5]);
});

Deno.test("parsePth() keeps the file's key order and every dtype, int64 included", async () => {
  const sd = await parsePth(readFixture("state_dict.pth"));
  assert.deepEqual([...sd.keys()], Object.keys(expected.tensors["state_dict.pth"]));
  const counter = sd.get("bn1.num_batches_tracked")!;
  assert.equal(counter.dtype, "I64");
  assert.deepEqual([...counter.data], [7]);
  // int64 rounds to the nearest float32: 2^24 + 1 becomes 2^24.
  assert.deepEqual([...sd.get("counts")!.data], [-3, 0, 5, 16777216]);
});

Deno.test("parsePth() refuses the os.system fixture naming the global, without running it", async () => {
  const marker = "pwned.txt";
  await assertFormatRejects(
    () => readPth(fixturePath("malicious.pth")),
    `Cannot read .pth file "${fixturePath("malicious.pth")}": pickle references global ` +
      `"os.system" (GLOBAL at byte 47), which is not allowed`,
  );
  assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
});

Deno.test("parsePth() refuses every global outside the allow-list", async () => {
  const evil = [
    ["posix", "system"],
    ["builtins", "eval"],
    ["__builtin__", "exec"],
    ["torch", "load"],
    ["torch.serialization", "_load"],
    ["torch._utils", "_rebuild_qtensor"],
    ["numpy.core.multiarray", "_reconstruct"],
  ];
  for (const [module, name] of evil) {
    const pickle = bytesOf(
      pk.proto(),
      pk.global(module, name),
      pk.str("echo pwned"),
      "\x85R.",
    );
    await assertFormatRejects(
      async () => await parsePth(await buildPth(pickle)),
      `global "${module}.${name}"`,
      "not allowed",
    );
  }
  // A storage "type" in the persistent id must be a torch storage class.
  const wrongType = stateDictPickle([{
    key: "w",
    storage: "0",
    numel: 1,
    size: [1],
    stride: [1],
    type: "FloatStorage",
  }]);
  const swapped = String.fromCharCode(...wrongType).replace(
    "ctorch\nFloatStorage\n",
    "ccollections\nOrderedDict\n",
  );
  await assertFormatRejects(
    async () => await parsePth(await buildPth(bytesOf(swapped), { "0": f32Bytes([1]) })),
    "storage type collections.OrderedDict is not a torch storage class",
  );
});

Deno.test("parsePth() refuses legacy, TorchScript and non-zip files with a hint", async () => {
  await assertFormatRejects(
    () => readPth(fixturePath("legacy.pth")),
    "legacy (before PyTorch 1.6) torch.save format, which is not supported",
    "Hint: load it with PyTorch and re-save it",
  );
  await assertFormatRejects(
    () => readPth(fixturePath("torchscript.pt")),
    "TorchScript archive (torch.jit.save)",
  );
  await assertFormatRejects(() => parsePth(bytesOf("hello")), "it is not a zip archive");
  const tar = new Uint8Array(600);
  tar.set(bytesOf("ustar"), 257);
  await assertFormatRejects(() => parsePth(tar), "legacy");
});

Deno.test("parsePth() refuses unsupported dtypes naming the tensor", async () => {
  const error = await assertFormatRejects(
    () => readPth(fixturePath("float64.pth")),
    'tensor "w" has dtype float64 (torch.DoubleStorage), which is not supported',
  );
  assert.equal(error.key, "w");
  await assertFormatRejects(
    async () =>
      await parsePth(
        await buildPth(
          stateDictPickle([{
            key: "mask",
            storage: "0",
            numel: 4,
            size: [4],
            stride: [1],
            type: "BoolStorage",
          }]),
          { "0": new Uint8Array(4) },
        ),
      ),
    'tensor "mask" has dtype bool',
  );
});

Deno.test("parsePth() refuses pickles that are not a dict of tensors", async () => {
  const list = bytesOf(pk.proto(), "]", pk.int(1), "a.");
  await assertFormatRejects(
    async () => await parsePth(await buildPth(list)),
    "the pickle holds a list, not a state dict",
  );
  const epoch = bytesOf(pk.proto(), "}", pk.str("epoch"), pk.int(3), "s.");
  await assertFormatRejects(
    async () => await parsePth(await buildPth(epoch)),
    'value of "epoch" is an int, not a tensor',
    "Hint: save model.state_dict()",
  );
  const intKey = bytesOf(pk.proto(), "}", pk.int(1), pk.int(3), "s.");
  await assertFormatRejects(
    async () => await parsePth(await buildPth(intKey)),
    "the state dict has an int key",
  );
});

Deno.test("parsePth() checks storages against their entries", async () => {
  await assertFormatRejects(
    async () =>
      await parsePth(
        await buildPth(
          stateDictPickle([{ key: "w", storage: "7", numel: 1, size: [1], stride: [1] }]),
        ),
      ),
    'storage "7" has no entry "archive/data/7"',
  );
  await assertFormatRejects(
    async () => await parsePth(await oneTensor({}, f32Bytes([1, 2, 3]))),
    'storage "0" holds 12 bytes, expected 24 (6 float32 elements)',
  );
  const twoTypes = stateDictPickle([
    { key: "a", storage: "0", numel: 6, size: [6], stride: [1] },
    { key: "b", storage: "0", numel: 3, size: [3], stride: [1] },
  ]);
  await assertFormatRejects(
    async () => await parsePth(await buildPth(twoTypes, { "0": f32Bytes([0, 1, 2, 3, 4, 5]) })),
    'storage "0" is referenced with two different types or sizes',
  );
});

Deno.test("parsePth() refuses views outside their storage", async () => {
  const cases: [Partial<PickledTensor>, string][] = [
    [
      { offset: 3, size: [4] },
      'tensor "w" reads storage "0" up to element 6, but the storage holds 6 elements',
    ],
    [{ size: [3, 2], stride: [2, 3] }, "up to element 7"],
    [
      { size: [100], stride: [0] },
      'tensor "w" has 100 elements but its storage holds 6: expanded (stride 0) tensors',
    ],
    [{ size: [2, 3], stride: [1] }, "tensor size has 2 dimensions but its stride has 1"],
    [{ offset: -1 }, "storage offset is not a non-negative integer: current value is -1"],
  ];
  for (const [view, message] of cases) {
    await assertFormatRejects(async () => await parsePth(await oneTensor(view)), message);
  }
  // An empty view may point anywhere.
  const empty = await parsePth(await oneTensor({ offset: 6, size: [0, 9], stride: [9, 1] }));
  assert.deepEqual(empty.get("w")!.shape, [0, 9]);
});

Deno.test("parsePth() bounds the output to 4x the file size", async () => {
  // 2000 keys viewing one 4 KiB storage would produce 8 MB from a small file.
  const tensors = Array.from(
    { length: 2000 },
    (_, i) => ({ key: `k${i}`, storage: "0", numel: 1024, size: [1024], stride: [1] }),
  );
  const pth = await buildPth(stateDictPickle(tensors), { "0": new Uint8Array(4096) });
  await assertFormatRejects(() => parsePth(pth), "tensors total more than", "4× the file size");
});

Deno.test("parsePth() checks byteorder and version entries", async () => {
  const pickle = stateDictPickle([{ key: "w", storage: "0", numel: 1, size: [1], stride: [1] }]);
  const storages = { "0": f32Bytes([1]) };
  /** The file with one more entry `name` holding `text`. */
  const withEntry = (name: string, text: string) =>
    buildPth(pickle, storages, [{ name, data: bytesOf(text) }]);
  const little = await withEntry("archive/byteorder", "little");
  assert.deepEqual([...(await parsePth(little)).get("w")!.data], [1]);
  const big = await withEntry("archive/byteorder", "big");
  await assertFormatRejects(
    () => parsePth(big),
    'written with byte order "big": only "little" is supported',
  );
  const version = await withEntry("archive/.data/version", "x");
  await assertFormatRejects(
    () => parsePth(version),
    'entry "archive/.data/version" is not a version number',
  );
});

Deno.test("parsePth() needs exactly one <archive>/data.pkl", async () => {
  const zip = await buildPth(bytesOf(pk.proto(), "}."), {}, [{
    name: "other/data.pkl",
    data: bytesOf("."),
  }]);
  await assertFormatRejects(
    () => parsePth(zip),
    'it has 2 "<archive>/data.pkl" entries, expected 1',
  );
});

Deno.test("parsePth() detects a corrupted storage byte by CRC", async () => {
  const bytes = readFixture("state_dict.pth").slice();
  // The last storage's data sits just before the central directory; flip a byte inside.
  // Storage 0 (conv1.weight, 432 bytes) ends before the 30-byte local header of entry
  // "data/1" and a data descriptor of at most 24 bytes; 100 bytes back is inside it.
  const nextName = String.fromCharCode(...bytes).indexOf("state_dict/data/1");
  const dataStart = nextName - 100;
  bytes[dataStart] ^= 0x40;
  await assertFormatRejects(() => parsePth(bytes), 'entry "state_dict/data/0" is corrupt');
});
