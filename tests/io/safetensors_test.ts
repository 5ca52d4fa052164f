import assert from "node:assert/strict";
import {
  CHECKSUM_KEY,
  MAX_HEADER_BYTES,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type TensorToWrite,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { WeightsFormatError } from "../../src/io/weights_format_error.ts";
import {
  assertFormatError,
  assertTensorsEqual,
  bytesOf,
  fixturePath,
  loadExpected,
  readFixture,
} from "./_helpers.ts";

const expected = loadExpected();

/** A safetensors file from a header (object or raw JSON text) and a data buffer. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = typeof header === "string" ? header : JSON.stringify(header);
  const text = new TextEncoder().encode(json);
  const prefix = new DataView(new ArrayBuffer(8));
  prefix.setBigUint64(0, length ?? BigInt(text.length), true);
  return bytesOf(new Uint8Array(prefix.buffer), text, data);
}

const twoFloats = new Uint8Array(Float32Array.from([1, 2]).buffer);

Deno.test("parseSafetensors() reads the Python-written fixtures with their expected values", () => {
  for (const name of ["f32", "f16", "bf16", "mixed"]) {
    const parsed = parseSafetensors(readFixture(`${name}.safetensors`));
    assertTensorsEqual(parsed.tensors, expected.tensors[`${name}.safetensors`]);
  }
});

Deno.test("parseSafetensors() returns __metadata__ including the fbp config", () => {
  const { metadata } = parseSafetensors(readFixture("f32.safetensors"));
  assert.deepEqual(metadata, expected.metadata["f32.safetensors"]);
  assert.equal(JSON.parse(metadata.fbp).arch, "resnet18");
});

Deno.test("parseSafetensors() returns I64 counters such as num_batches_tracked as float", () => {
  const { tensors } = parseSafetensors(readFixture("mixed.safetensors"));
  const counter = tensors.get("bn1.num_batches_tracked")!;
  assert.equal(counter.dtype, "I64");
  assert.deepEqual(counter.shape, []);
  assert.deepEqual([...counter.data], [7]);
});

Deno.test("serializeSafetensors() output matches the reference layout byte for byte", () => {
  const parsed = parseSafetensors(readFixture("f32.safetensors"));
  const bytes = serializeSafetensors(parsed.tensors, {
    metadata: parsed.metadata,
    checksum: false,
  });
  assert.deepEqual(bytes, readFixture("f32.safetensors"));
});

Deno.test("serializeSafetensors() round trips values bit for bit and pads the header", () => {
  const special = Float32Array.from([NaN, -0, Infinity, -Infinity, 1e-45, 3.4028234e38]);
  const tensors = new Map<string, TensorToWrite>([
    ["z.last", { shape: [2, 3], data: special }],
    ["a.first", { shape: [], data: Float32Array.from([42]) }],
    ["m.empty", { shape: [0, 4], data: new Float32Array(0) }],
    // A view into a larger buffer must be written from its own offset.
    ["view", { shape: [2], data: new Float32Array([9, 8, 7, 6]).subarray(1, 3) }],
  ]);
  const bytes = serializeSafetensors(tensors, { metadata: { note: "x", fbp: "{}" } });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  assert.deepEqual(Object.keys(header), ["__metadata__", "a.first", "m.empty", "view", "z.last"]);
  const back = parseSafetensors(bytes);
  assert.deepEqual(back.metadata, { fbp: "{}", note: "x" });
  for (const [key, t] of tensors) {
    const got = back.tensors.get(key)!;
    assert.equal(got.dtype, "F32");
    assert.deepEqual(got.shape, t.shape);
    assert.deepEqual(new Uint8Array(got.data.buffer), new Uint8Array(t.data.slice().buffer));
  }
});

Deno.test("serializeSafetensors() writes an empty file as {} padded to 8 bytes", () => {
  const bytes = serializeSafetensors(new Map(), { checksum: false });
  assert.equal(bytes.length, 16);
  assert.equal(parseSafetensors(bytes).tensors.size, 0);
  const summed = parseSafetensors(serializeSafetensors(new Map()));
  assert.deepEqual([summed.tensors.size, summed.metadata], [0, {}]);
  assert.match(summed.checksum!, /^crc32:[0-9a-f]{8}$/);
});

Deno.test("serializeSafetensors() rejects invalid tensors and metadata", () => {
  const one = Float32Array.from([1]);
  assert.throws(
    () => serializeSafetensors(new Map([["w", { shape: [2], data: one }]])),
    { name: "RangeError", message: /tensor "w" has shape \[2\] \(2 elements\) but 1 values/ },
  );
  assert.throws(
    () => serializeSafetensors(new Map([["w", { shape: [-1], data: one }]])),
    /dimensions must be non-negative integers/,
  );
  assert.throws(
    () => serializeSafetensors(new Map([["__metadata__", { shape: [1], data: one }]])),
    /is reserved/,
  );
  assert.throws(
    () =>
      serializeSafetensors(new Map(), {
        metadata: { n: 3 } as unknown as Record<string, string>,
      }),
    { name: "TypeError", message: /metadata value of "n" is number/ },
  );
});

Deno.test("writeSafetensors() and readSafetensors() round trip through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    const tensors = new Map([["w", { shape: [2], data: Float32Array.from([1.5, -2]) }]]);
    await writeSafetensors(path, tensors, { metadata: { fbp: "{}" } });
    const back = await readSafetensors(path);
    assert.deepEqual([...back.tensors.get("w")!.data], [1.5, -2]);
    assert.deepEqual(back.metadata, { fbp: "{}" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSafetensors() names the path in errors", async () => {
  const path = fixturePath("float64.safetensors");
  await assert.rejects(() => readSafetensors(path), (e: unknown) => {
    assert.ok(e instanceof WeightsFormatError);
    assert.equal(e.file, path);
    assert.equal(e.key, "w");
    assert.ok(e.message.startsWith(`Cannot read safetensors file "${path}": tensor "w"`));
    return true;
  });
});

Deno.test("parseSafetensors() rejects a refused or unknown dtype naming the tensor", () => {
  assertFormatError(
    () => parseSafetensors(readFixture("float64.safetensors"), { source: "f.st" }),
    'Cannot read safetensors file "f.st": tensor "w" has dtype "F64", which is not supported',
  );
  const header = { "a.b": { dtype: "F128", shape: [2], data_offsets: [0, 8] } };
  assertFormatError(() => parseSafetensors(file(header, twoFloats)), 'unknown dtype "F128"');
  const missing = { w: { shape: [2], data_offsets: [0, 8] } };
  assertFormatError(
    () => parseSafetensors(file(missing, twoFloats)),
    `tensor "w" has no "dtype" field`,
  );
});

Deno.test("parseSafetensors() rejects bad header lengths", () => {
  assertFormatError(() => parseSafetensors(new Uint8Array(5)), "too short");
  const body = file({}, new Uint8Array(0));
  const withLength = (n: bigint) => {
    const b = body.slice();
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
    return b;
  };
  assertFormatError(
    () => parseSafetensors(withLength(-1n)),
    "header length is negative: current value is -1",
  );
  assertFormatError(
    () => parseSafetensors(withLength(2n ** 40n)),
    `more than the limit of ${MAX_HEADER_BYTES}`,
  );
  assertFormatError(
    () => parseSafetensors(withLength(100n)),
    "header length is 100 bytes, past the end of the file: file size is 10",
  );
});

Deno.test("parseSafetensors() rejects non-UTF-8, invalid and non-object JSON headers", () => {
  assertFormatError(
    () => parseSafetensors(bytesOf(file("{}").subarray(0, 8), [0x7b, 0xff])),
    "not valid UTF-8",
  );
  assertFormatError(() => parseSafetensors(file('{"a":')), "header is not valid JSON");
  assertFormatError(() => parseSafetensors(file("[1]")), 'does not start with "{"');
  assertFormatError(() => parseSafetensors(file("\ufeff{}")), 'does not start with "{"');
  assertFormatError(() => parseSafetensors(file('{"a": 1}')), 'tensor "a" is number 1');
});

Deno.test("parseSafetensors() rejects deeply nested JSON before parsing it", () => {
  const deep = `{"__metadata__": {"x": "${"[".repeat(5)}"}, "y": ${"[".repeat(100_000)}`;
  assertFormatError(
    () => parseSafetensors(file(deep)),
    "nested 9 levels deep, more than the limit of 8",
  );
  // Brackets inside strings do not count.
  assert.deepEqual(
    parseSafetensors(file({ __metadata__: { x: "[[[[[[[[[[[[{{{{{{{" } })).metadata,
    { x: "[[[[[[[[[[[[{{{{{{{" },
  );
});

Deno.test("parseSafetensors() rejects bad shapes", () => {
  const entry = (shape: unknown, offsets = [0, 8]) => ({
    w: { dtype: "F32", shape, data_offsets: offsets },
  });
  assertFormatError(
    () => parseSafetensors(file(entry("2"), twoFloats)),
    'tensor "w" has shape the string "2"',
  );
  assertFormatError(
    () => parseSafetensors(file(entry([-2]), twoFloats)),
    "dimensions must be non-negative",
  );
  assertFormatError(
    () => parseSafetensors(file(entry([1.5]), twoFloats)),
    "dimensions must be non-negative",
  );
  assertFormatError(
    () => parseSafetensors(file(entry([2 ** 30, 2 ** 30, 2 ** 30]), twoFloats)),
    'tensor "w" has shape [1073741824,1073741824,1073741824] whose element count overflows',
  );
  assertFormatError(
    () => parseSafetensors(file(entry([3]), twoFloats)),
    'tensor "w" has shape [3] and dtype F32, which need 12 bytes, but its data_offsets span 8',
  );
});

Deno.test("parseSafetensors() rejects offsets past the end, overlapping or with holes", () => {
  const f32 = (offsets: unknown, shape = [1]) => ({ dtype: "F32", shape, data_offsets: offsets });
  assertFormatError(
    () => parseSafetensors(file({ w: f32([0, 12], [3]) }, twoFloats), { source: "x" }),
    'Cannot read safetensors file "x": tensor "w" has offsets past the end of the data: end is 12, data size is 8',
  );
  assertFormatError(() => parseSafetensors(file({ w: f32([8, 4]) }, twoFloats)), "begin after end");
  assertFormatError(
    () => parseSafetensors(file({ w: f32([0]) }, twoFloats)),
    "expected [begin, end]",
  );
  assertFormatError(
    () => parseSafetensors(file({ w: f32([0, -4]) }, twoFloats)),
    "expected [begin, end]",
  );
  const overlap = { a: f32([0, 8], [2]), b: f32([4, 8]) };
  const e = assertFormatError(
    () => parseSafetensors(file(overlap, twoFloats)),
    'tensor "b" overlaps tensor "a"',
  );
  assert.equal(e.key, "b");
  const hole = { a: f32([4, 8]) };
  assertFormatError(
    () => parseSafetensors(file(hole, twoFloats)),
    'tensor "a" is not contiguous',
    "begins at 4, expected 0",
  );
  assertFormatError(
    () => parseSafetensors(file({ a: f32([0, 4]) }, twoFloats)),
    "4 bytes after the last tensor",
  );
  // Duplicate JSON keys keep the last entry; the dropped one shows up as a hole.
  const duplicate = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
    '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  assertFormatError(() => parseSafetensors(file(duplicate, twoFloats)), "not contiguous");
});

Deno.test("parseSafetensors() rejects non-string metadata naming the key", () => {
  const e = assertFormatError(
    () => parseSafetensors(file({ __metadata__: { fbp: { arch: "resnet18" } } })),
    'metadata value of "fbp" is an object, expected a string',
  );
  assert.equal(e.key, "fbp");
  assertFormatError(
    () => parseSafetensors(file({ __metadata__: ["a"] })),
    '"__metadata__" is an array',
  );
});

Deno.test("parseSafetensors() keeps a __proto__ metadata key as plain data", () => {
  const { metadata } = parseSafetensors(file('{"__metadata__":{"__proto__":"x"}}'));
  assert.equal(Object.getPrototypeOf(metadata), Object.prototype);
  assert.deepEqual(Object.keys(metadata), ["__proto__"]);
});

Deno.test("parseSafetensors() copies data so results do not alias the input", () => {
  const bytes = file({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, twoFloats);
  const { tensors } = parseSafetensors(bytes.subarray(0)); // odd offsets are fine too
  bytes.fill(0);
  assert.deepEqual([...tensors.get("w")!.data], [1, 2]);
  const shifted = bytesOf(
    [0],
    file({ w: { dtype: "F16", shape: [1], data_offsets: [0, 2] } }, bytesOf([0x00, 0x3c])),
  );
  assert.deepEqual([...parseSafetensors(shifted.subarray(1)).tensors.get("w")!.data], [1]);
});

/** The header JSON and the data start of safetensors bytes. */
function headerOf(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, dataStart: 8 + n };
}

const checked = new Map<string, TensorToWrite>([
  ["b.bias", { shape: [3], data: Float32Array.from([0.5, -1, 2]) }],
  ["a.weight", { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
]);
const checkedMeta = { fbp: '{"arch":"resnet18"}', resume: '{"epoch":3}' };

Deno.test("serializeSafetensors() adds fbp_checksum; parseSafetensors() verifies and returns it", () => {
  const bytes = serializeSafetensors(checked, { metadata: checkedMeta });
  const { header } = headerOf(bytes);
  const stored = (header.__metadata__ as Record<string, string>)[CHECKSUM_KEY];
  assert.match(stored, /^crc32:[0-9a-f]{8}$/);
  const back = parseSafetensors(bytes);
  assert.equal(back.checksum, stored);
  assert.deepEqual(back.metadata, checkedMeta, "the checksum is not part of the metadata");
  // Writing what was read gives the same file; a stale fbp_checksum given is replaced.
  assert.deepEqual(serializeSafetensors(back.tensors, { metadata: back.metadata }), bytes);
  const stale = { ...checkedMeta, [CHECKSUM_KEY]: "crc32:00000000" };
  assert.deepEqual(serializeSafetensors(checked, { metadata: stale }), bytes);
  // checksum: false writes none, even when the metadata holds one.
  const plain = serializeSafetensors(checked, { metadata: stale, checksum: false });
  assert.equal(parseSafetensors(plain).checksum, undefined);
  assert.deepEqual(
    Object.keys(headerOf(plain).header.__metadata__ as object),
    ["fbp", "resume"],
  );
});

Deno.test("parseSafetensors() refuses a flipped byte anywhere a load reads, naming the file", () => {
  const bytes = serializeSafetensors(checked, { metadata: checkedMeta });
  const { dataStart } = headerOf(bytes);
  const text = new TextDecoder().decode(bytes);
  const flips: [string, number][] = [
    ["first data byte", dataStart],
    ["last data byte", bytes.length - 1],
    ["a low mantissa bit", dataStart + 12],
    ["the resume state", text.indexOf('"epoch\\":3') + 10],
    ["the config", text.indexOf("resnet18")],
    ["the checksum itself", text.indexOf("crc32:") + 8],
  ];
  for (const [what, at] of flips) {
    const damaged = bytes.slice();
    damaged[at] ^= what === "a low mantissa bit" ? 0x01 : 0x04;
    assert.throws(
      () => parseSafetensors(damaged, { source: "runs/x/last.safetensors" }),
      (e: unknown) => {
        assert.ok(e instanceof WeightsFormatError, what);
        assert.equal(e.file, "runs/x/last.safetensors");
        assert.match(
          e.message,
          /^"runs\/x\/last\.safetensors" is damaged: checksum mismatch: its tensors and metadata give crc32:[0-9a-f]{8}, its metadata records crc32:[0-9a-f]{8} \(the file changed after fbp wrote it\)$/,
          what,
        );
        return true;
      },
      what,
    );
  }
  // A value that is not a CRC is damage too, reported as such.
  const mangled = bytes.slice();
  mangled.set(new TextEncoder().encode("zzzzzzzz"), text.indexOf("crc32:") + 6);
  assertFormatError(
    () => parseSafetensors(mangled, { source: "c.safetensors" }),
    '"c.safetensors" is damaged: metadata "fbp_checksum" is "crc32:zzzzzzzz", expected "crc32:"',
  );
});

Deno.test("parseSafetensors() checksum does not depend on layout: another writer's order verifies", () => {
  const bytes = serializeSafetensors(checked, { metadata: checkedMeta });
  const { header, dataStart } = headerOf(bytes);
  const back = parseSafetensors(bytes);
  // Another writer puts "b.bias" first in the data and the metadata last in the header.
  const bias = bytes.slice(dataStart + 16, dataStart + 28);
  const weight = bytes.slice(dataStart, dataStart + 16);
  const reordered = file({
    "a.weight": { dtype: "F32", shape: [2, 2], data_offsets: [12, 28] },
    "b.bias": { dtype: "F32", shape: [3], data_offsets: [0, 12] },
    __metadata__: header.__metadata__,
  }, bytesOf(bias, weight));
  const other = parseSafetensors(reordered);
  assert.equal(other.checksum, back.checksum);
  assert.deepEqual([...other.tensors.get("b.bias")!.data], [0.5, -1, 2]);
  // Swapping the two tensors' names keeps every byte but not what a load reads.
  const swapped = file({
    "a.weight": { dtype: "F32", shape: [3], data_offsets: [0, 12] },
    "b.bias": { dtype: "F32", shape: [2, 2], data_offsets: [12, 28] },
    __metadata__: header.__metadata__,
  }, bytesOf(bias, weight));
  assertFormatError(() => parseSafetensors(swapped), "is damaged: checksum mismatch");
});

Deno.test("parseSafetensors() loads files without fbp_checksum as before", () => {
  for (const name of ["f32", "f16", "bf16", "mixed"]) {
    const parsed = parseSafetensors(readFixture(`${name}.safetensors`));
    assert.equal(parsed.checksum, undefined, name);
  }
});
