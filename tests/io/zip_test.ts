import assert from "node:assert/strict";
import { writeStoredZip, ZipArchive } from "../../src/io/zip.ts";
import { assertFormatError, assertFormatRejects, buildZip, bytesOf, zeroBomb } from "./_helpers.ts";

const text = (s: string) => new TextEncoder().encode(s);
const repeated = text("tensor bytes ".repeat(400));

/** Offset of the first central-directory header. */
function centralAt(zip: Uint8Array): number {
  const view = new DataView(zip.buffer, zip.byteOffset);
  for (let p = 0; p + 4 <= zip.length; p++) if (view.getUint32(p, true) === 0x02014b50) return p;
  throw new Error("no central header");
}

/** A copy of `zip` with a little-endian field overwritten. */
function patched(zip: Uint8Array, offset: number, value: number, bytes: 2 | 4): Uint8Array {
  const copy = zip.slice();
  const view = new DataView(copy.buffer);
  if (bytes === 2) view.setUint16(offset, value, true);
  else view.setUint32(offset, value, true);
  return copy;
}

/** Asserts that ZipArchive.open() refuses `zip` with a message containing `message`. */
function refuses(zip: Uint8Array, message: string): void {
  assertFormatError(() => ZipArchive.open(zip), message);
}

/** {@link refuses} for patched copies of `zip`: [offset, value, bytes (2 or 4), message]. */
function refusesPatched(zip: Uint8Array, cases: [number, number, 2 | 4, string][]): void {
  for (const [offset, value, bytes, message] of cases) {
    refuses(patched(zip, offset, value, bytes), message);
  }
}

Deno.test("ZipArchive reads stored and deflated entries and checks their CRC", async () => {
  const zip = await buildZip([
    { name: "a/data.pkl", data: text("pickle") },
    { name: "a/data/0", data: repeated, deflate: true },
    { name: "a/empty", data: new Uint8Array(0) },
  ]);
  const archive = ZipArchive.open(zip);
  assert.deepEqual([...archive.entries.keys()], ["a/data.pkl", "a/data/0", "a/empty"]);
  assert.equal(archive.entries.get("a/data/0")!.method, 8);
  assert.ok(archive.entries.get("a/data/0")!.compressedSize < repeated.length / 10);
  assert.deepEqual(await archive.read("a/data.pkl"), text("pickle"));
  assert.deepEqual(await archive.read("a/data/0"), repeated);
  assert.equal((await archive.read("a/empty")).length, 0);
  await assertFormatRejects(() => archive.read("a/nope"), 'entry "a/nope" is missing');
});

Deno.test("ZipArchive reads zip64 records and extra fields", async () => {
  const zip = await buildZip([
    { name: "x/data.pkl", data: text("hello") },
    { name: "x/data/0", data: repeated, deflate: true },
  ], { zip64: true });
  const archive = ZipArchive.open(zip);
  assert.deepEqual(await archive.read("x/data.pkl"), text("hello"));
  assert.deepEqual(await archive.read("x/data/0"), repeated);
  assertFormatError(
    () => ZipArchive.open(bytesOf(zip.subarray(0, zip.length - 42), zip.subarray(zip.length - 22))),
    "zip64 end of central directory locator not found",
  );
});

Deno.test("ZipArchive rejects truncated archives and bad end records", async () => {
  const zip = await buildZip([{ name: "a", data: text("abc") }]);
  assertFormatError(
    () => ZipArchive.open(zip.subarray(0, 10), { source: "t.pth", what: ".pth file" }),
    'Cannot read .pth file "t.pth": file is 10 bytes, too short',
  );
  refuses(zip.subarray(0, zip.length - 1), "end of central directory record not found");
  refuses(bytesOf(zip, "junk"), "end of central directory record not found");
  const end = zip.length - 22;
  refusesPatched(zip, [
    [end + 4, 1, 2, "multi-disk archives are not supported"],
    [end + 16, 0xfffff0, 4, "central directory runs past its end"],
    [end + 10, 9, 2, "multi-disk"],
  ]);
  refuses(patched(patched(zip, end + 8, 9, 2), end + 10, 9, 2), "cannot hold 9 entries");
});

Deno.test("ZipArchive rejects entries with bad sizes, offsets, names or methods", async () => {
  const zip = await buildZip([
    { name: "a/one", data: text("first entry") },
    { name: "a/two", data: text("second entry") },
  ]);
  const c = centralAt(zip);
  refusesPatched(zip, [
    [c + 20, 9999, 4, 'entry "a/one" has data past the end of the entries'],
    [c + 24, 3, 4, 'entry "a/one" is stored but its sizes differ: 11 stored, 3 declared'],
    [c + 10, 12, 2, 'entry "a/one" uses compression method 12: only stored (0) and deflate (8)'],
    [c + 8, 1, 2, 'entry "a/one" is encrypted'],
    [c + 42, 3, 4, 'entry "a/one" has no local header at byte 3'],
    [c, 0, 4, "central directory entry 0 is malformed"],
  ]);
  // Rename the second local header so it differs from its central record.
  const second = 30 + 5 + 11;
  const renamed = zip.slice();
  renamed[second + 30 + 4] = "X".charCodeAt(0);
  refuses(renamed, 'entry "a/two" has a different name in its local header');
  // Point the second entry at the first local header: the names disagree.
  refuses(patched(zip, c + 46 + 5 + 42, 0, 4), 'a/two" has a different name');
  const nonUtf8 = zip.slice();
  nonUtf8[c + 46] = 0xff;
  refuses(nonUtf8, "central directory entry 0 has a name that is not valid UTF-8");
  const twice = await buildZip([{ name: "same", data: text("1") }, {
    name: "same",
    data: text("2"),
  }]);
  refuses(twice, 'entry "same" appears twice');
});

Deno.test("ZipArchive rejects overlapping entries", async () => {
  const zip = await buildZip([{ name: "n", data: text("0123456789") }, {
    name: "n2",
    data: text("x"),
  }]);
  // Make entry "n" claim 20 bytes: its data then runs over the local header of "n2".
  const c = centralAt(zip);
  const grown = patched(patched(zip, c + 20, 20, 4), c + 24, 20, 4);
  refuses(grown, 'entries "n" and "n2" overlap');
});

Deno.test("ZipArchive rejects corrupt data on read", async () => {
  const zip = await buildZip([
    { name: "plain", data: text("plain data") },
    { name: "packed", data: repeated, deflate: true },
  ]);
  const flipped = zip.slice();
  flipped[30 + 5 + 2] ^= 0x01;
  await assertFormatRejects(
    () => ZipArchive.open(flipped).read("plain"),
    'entry "plain" is corrupt: CRC-32 is 0x',
    "expected 0x",
  );
  const c = centralAt(zip);
  const second = c + 46 + 5;
  // Declared smaller than the real output: inflation stops at the declared size.
  await assertFormatRejects(
    () => ZipArchive.open(patched(zip, second + 24, 100, 4)).read("packed"),
    "inflates to more than its declared 100 bytes",
  );
  await assertFormatRejects(
    () => ZipArchive.open(patched(zip, second + 24, 6000, 4)).read("packed"),
    "inflates to 5200 bytes, expected 6000",
  );
  refuses(patched(zip, second + 24, 0x7fffffff, 4), "more than deflate can produce");
  const garbage = zip.slice();
  const data = 30 + 5 + 10 + 30 + 6;
  garbage.fill(0xff, data, data + 8);
  await assertFormatRejects(
    () => ZipArchive.open(garbage).read("packed"),
    'entry "packed" is not valid deflate data',
  );
});

Deno.test("ZipArchive.checkDeclaredSizes() refuses entries over a limit, each and in all", async () => {
  const zip = ZipArchive.open(
    await buildZip([
      { name: "a", data: repeated, deflate: true }, // 5200 bytes
      { name: "b", data: text("x".repeat(3000)), deflate: true },
    ]),
    { source: "book.xlsx", what: "ratings file" },
  );
  zip.checkDeclaredSizes(8200);
  assertFormatError(
    () => zip.checkDeclaredSizes(5000, "set X to raise it"),
    'Cannot read ratings file "book.xlsx": entry "a" declares 5200 bytes uncompressed, ' +
      "more than the limit of 5000 bytes (set X to raise it)",
  );
  assertFormatError(
    () => zip.checkDeclaredSizes(8000),
    "its 2 entries declare 8200 bytes uncompressed in all, more than the limit of 8000 bytes",
  );
});

Deno.test("ZipArchive.verify() checks size and CRC without keeping the bytes", async () => {
  const zip = await buildZip([
    { name: "plain", data: text("plain data") },
    { name: "packed", data: repeated, deflate: true },
    { name: "bomb", data: new Uint8Array(0), deflated: { ...zeroBomb(64 << 20), size: 1000 } },
  ]);
  const archive = ZipArchive.open(zip);
  await archive.verify("plain");
  await archive.verify("packed");
  // 64 MiB behind a declared 1000 bytes: stopped after the first inflate step.
  await assertFormatRejects(
    () => archive.verify("bomb"),
    'entry "bomb" inflates to more than its declared 1000 bytes',
  );
  const flipped = zip.slice();
  flipped[30 + 5 + 2] ^= 0x01;
  await assertFormatRejects(() => ZipArchive.open(flipped).verify("plain"), "is corrupt");
  await assertFormatRejects(() => archive.verify("nope"), 'entry "nope" is missing');
});

Deno.test("ZipArchive inflates a large entry in bounded steps and reads it whole", async () => {
  const big = zeroBomb(40 << 20);
  const zip = ZipArchive.open(
    await buildZip([{ name: "z", data: new Uint8Array(0), deflated: big }]),
  );
  const out = await zip.read("z");
  assert.equal(out.length, 40 << 20);
  assert.ok(out.every((b) => b === 0));
});

Deno.test("writeStoredZip() writes what ZipArchive reads back", async () => {
  const files = [
    { name: "a.txt", data: text("hello") },
    { name: "dir/é.bin", data: Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff) },
    { name: "empty", data: new Uint8Array(0) },
  ];
  const zip = ZipArchive.open(writeStoredZip(files));
  assert.deepEqual([...zip.entries.keys()], files.map((f) => f.name));
  for (const f of files) {
    assert.deepEqual(await zip.read(f.name), f.data);
    assert.equal(zip.entries.get(f.name)!.method, 0);
  }
});
